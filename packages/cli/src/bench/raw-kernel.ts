/**
 * The raw baseline: the same frames pushed over a bare SharedArrayBuffer ring
 * between two workers — one copy in, one copy out, the same spin-then-wait
 * policy and notification avoidance as the real paths, and nothing else (no
 * grants, no descriptors, no stack). It is the physical limit of this design
 * on this machine; every path is reported as a fraction of it.
 */
import { DomainLoop, WakeWord, type DomainTask } from '@xsim/hypervisor';

export const RAW_SLOTS = 256;
// Int32 words: [0] prod, [1] cons; wake words (counter, asleep flag) at bytes 8 (producer) and 16 (consumer).
const HDR = 64;
export const RAW_WAKE_OFFSET = { producer: 8, consumer: 16 } as const;

export interface RawConfig {
  role: 'producer' | 'consumer';
  sab: SharedArrayBuffer;
  count: number;
  size: number;
  slotBytes: number;
}

export function rawRingBytes(size: number): { bytes: number; slotBytes: number } {
  const slotBytes = Math.ceil(size / 64) * 64;
  return { bytes: HDR + RAW_SLOTS * slotBytes, slotBytes };
}

export function boot(task: DomainTask<RawConfig>): unknown {
  const { role, sab, count, size, slotBytes } = task.config;
  const i32 = new Int32Array(sab, 0, 16);
  const data = new Uint8Array(sab, HDR);
  const me = new WakeWord(sab, RAW_WAKE_OFFSET[role]);
  const peer = new WakeWord(sab, RAW_WAKE_OFFSET[role === 'producer' ? 'consumer' : 'producer']);
  const local = new Uint8Array(size);
  for (let i = 0; i < size; i++) local[i] = i & 255;
  let done = 0;
  let first = 0;
  let last = 0;
  // Every index update kicks the peer: a counter bump, and a notify only if it sleeps.
  const loop = new DomainLoop(me);
  const kick = () => peer.kick();
  loop.add(role, () => {
    const prod = Atomics.load(i32, 0);
    const cons = Atomics.load(i32, 1);
    let n = 0;
    if (role === 'producer') {
      let p = prod;
      while (done < count && p - cons < RAW_SLOTS && n < 64) {
        data.set(local, (p & (RAW_SLOTS - 1)) * slotBytes);
        p++;
        done++;
        n++;
      }
      if (n) {
        Atomics.store(i32, 0, p);
        kick();
      }
      if (done >= count && cons === Atomics.load(i32, 0)) loop.stop();
    } else {
      let c = cons;
      while (c !== prod && n < 64) {
        const o = (c & (RAW_SLOTS - 1)) * slotBytes;
        local.set(data.subarray(o, o + size));
        c++;
        n++;
      }
      if (n) {
        const t = performance.now();
        if (done === 0) first = t;
        last = t;
        done += n;
        Atomics.store(i32, 1, c);
        kick();
      }
      if (done >= count) loop.stop();
    }
    return n;
  });
  const started = performance.now();
  loop.run();
  return { role, frames: done, first, last, awakeMs: performance.now() - started - loop.stats.sleepMs };
}

export const RAW_KERNEL = new URL('./raw-kernel.ts', import.meta.url).href;
