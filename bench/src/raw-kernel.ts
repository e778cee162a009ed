/**
 * The raw baseline: the same frames pushed over a bare SharedArrayBuffer ring
 * between two domains on two pCPUs — one copy in, one copy out, the same
 * scheduler, spin-then-wait policy and doorbells as the real paths, and
 * nothing else (no grants, no descriptors, no stack). It is the physical
 * limit of this design on this machine; every path is reported as a fraction
 * of it.
 */
import { Type } from '@sinclair/typebox';
import { DEFERRED, NO_ARGS, RpcOpServer, WakeWord, op, replyOf, type DomainEnv } from '@xsim/hypervisor';

/** What one end measured: frames it moved, the first and last frame's time, and its time in turns. */
export interface RawSide {
  frames: number;
  first: number;
  last: number;
  awakeMs: number;
}

/**
 * The raw kernel's control channel:
 *   run       {count: int >= 1}   RawSide, once `count` frames have gone through this end
 *   shutdown  {}                  true; the domain stops
 */
export const RAW_OPS = {
  run: op(Type.Object({ count: Type.Integer({ minimum: 1 }) }), replyOf<RawSide>()),
  shutdown: op(NO_ARGS, replyOf<boolean>()),
} as const;
export type RawOps = typeof RAW_OPS;

export const RAW_SLOTS = 256;
// Int32 words: [0] prod, [1] cons.
const HDR = 64;

export interface RawConfig {
  role: 'producer' | 'consumer';
  sab: SharedArrayBuffer;
  size: number;
  slotBytes: number;
  /** The other end's pCPU doorbell: rung after each index update (a notify only if it sleeps). */
  peerDoorbell: SharedArrayBuffer;
}

export function rawRingBytes(size: number): { bytes: number; slotBytes: number } {
  const slotBytes = Math.ceil(size / 64) * 64;
  return { bytes: HDR + RAW_SLOTS * slotBytes, slotBytes };
}

export function boot(env: DomainEnv<RawConfig>): void {
  const { role, sab, size, slotBytes } = env.config;
  const i32 = new Int32Array(sab, 0, 16);
  const data = new Uint8Array(sab, HDR);
  const peer = new WakeWord(env.config.peerDoorbell, 0);
  const local = new Uint8Array(size);
  for (let i = 0; i < size; i++) local[i] = i & 255;
  let count = 0;
  let done = 0;
  let first = 0;
  let last = 0;
  let runMs = 0;
  let reply: ((v: unknown) => void) | null = null;
  const finish = () => {
    const r = reply;
    reply = null;
    r?.({ role, frames: done, first, last, awakeMs: env.core.c.runMs - runMs });
  };
  // Runnable when a turn would do something: the producer when the ring has room (or, all
  // sent, when the consumer has caught up and the run can be answered); the consumer when
  // frames wait.
  env.core.wakeOn(() => {
    if (reply === null) return false;
    const prod = Atomics.load(i32, 0);
    const cons = Atomics.load(i32, 1);
    if (role === 'consumer') return prod !== cons;
    return done < count ? prod - cons < RAW_SLOTS : prod === cons;
  });
  env.core.add(role, () => {
    if (!reply) return 0;
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
        peer.kick();
      }
      if (done >= count && cons === Atomics.load(i32, 0)) finish();
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
        peer.kick();
      }
      if (done >= count) finish();
    }
    return n;
  });
  env.control.onRequest(
    new RpcOpServer('raw control', RAW_OPS, {
      run: (a, { later }) => {
        count = a.count;
        done = 0;
        runMs = env.core.c.runMs;
        reply = later();
        env.core.wake();
        return DEFERRED;
      },
      shutdown: () => {
        env.core.stop();
        return true;
      },
    }).handle,
  );
}

export const RAW_KERNEL = new URL('./raw-kernel.ts', import.meta.url).href;
