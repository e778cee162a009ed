/**
 * The raw baseline: the same frames pushed over a bare SharedArrayBuffer ring
 * between two domains on two pCPUs — one copy in, one copy out, the same
 * scheduler, spin-then-wait policy and doorbells as the real paths, and
 * nothing else (no grants, no descriptors, no stack). It is the physical
 * limit of this design on this machine; every path is reported as a fraction
 * of it. The three-thread reference (raw3) puts a forwarder on a third pCPU
 * between two such rings, copying each frame once from one to the other as a
 * NIC does: every real path runs three threads or more (two pCPUs and the
 * NIC thread), so raw3 is the limit with as many threads as they have.
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
  /**
   * producer: fills `out`; consumer: empties `in`; forwarder (the three-thread
   * reference): moves each frame from `in` to `out` with one copy, as a NIC
   * does between a TX ring and an RX ring.
   */
  role: 'producer' | 'forwarder' | 'consumer';
  size: number;
  slotBytes: number;
  /** The ring this end consumes, and the doorbell of the pCPU that produces into it (rung after each cons update). */
  in?: { sab: SharedArrayBuffer; peerDoorbell: SharedArrayBuffer };
  /** The ring this end produces into, and the doorbell of the pCPU that consumes it (rung after each prod update: a notify only if it sleeps). */
  out?: { sab: SharedArrayBuffer; peerDoorbell: SharedArrayBuffer };
}

export function rawRingBytes(size: number): { bytes: number; slotBytes: number } {
  const slotBytes = Math.ceil(size / 64) * 64;
  return { bytes: HDR + RAW_SLOTS * slotBytes, slotBytes };
}

type Ring = ReturnType<typeof ring>;

function ring(r: { sab: SharedArrayBuffer; peerDoorbell: SharedArrayBuffer }) {
  return { i32: new Int32Array(r.sab, 0, 16), data: new Uint8Array(r.sab, HDR), peer: new WakeWord(r.peerDoorbell, 0) };
}

/** The rings of this end's role: `in` for all but the producer, `out` for all but the consumer. */
function rings(c: RawConfig) {
  const rin = c.in ? ring(c.in) : null;
  const rout = c.out ? ring(c.out) : null;
  if ((c.role !== 'producer') !== (rin !== null) || (c.role !== 'consumer') !== (rout !== null)) throw new Error(`raw ${c.role}: wrong rings`);
  return { rin, rout };
}

export function boot(env: DomainEnv<RawConfig>): void {
  const { role, size, slotBytes } = env.config;
  const { rin, rout } = rings(env.config);
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
  const waiting = (r: Ring | null) => (r ? Atomics.load(r.i32, 0) !== Atomics.load(r.i32, 1) : false);
  const room = (r: Ring | null) => (r ? Atomics.load(r.i32, 0) - Atomics.load(r.i32, 1) < RAW_SLOTS : false);
  // Runnable when a turn would do something: frames wait in `in` (and, forwarding, `out`
  // has room), the producer's `out` has room, or, all moved, `out` has drained and the
  // run can be answered.
  env.core.wakeOn(() => {
    if (reply === null) return false;
    if (role === 'consumer') return waiting(rin);
    if (done >= count) return !waiting(rout);
    return role === 'producer' ? room(rout) : waiting(rin) && room(rout);
  });
  env.core.add(role, () => {
    if (!reply) return 0;
    let n = 0;
    const inProd = rin ? Atomics.load(rin.i32, 0) : 0;
    let c = rin ? Atomics.load(rin.i32, 1) : 0;
    const outCons = rout ? Atomics.load(rout.i32, 1) : 0;
    let p = rout ? Atomics.load(rout.i32, 0) : 0;
    if (role === 'producer') {
      while (done < count && p - outCons < RAW_SLOTS && n < 64) {
        rout!.data.set(local, (p & (RAW_SLOTS - 1)) * slotBytes);
        p++;
        done++;
        n++;
      }
    } else if (role === 'forwarder') {
      while (done < count && c !== inProd && p - outCons < RAW_SLOTS && n < 64) {
        const o = (c & (RAW_SLOTS - 1)) * slotBytes;
        rout!.data.set(rin!.data.subarray(o, o + size), (p & (RAW_SLOTS - 1)) * slotBytes);
        c++;
        p++;
        done++;
        n++;
      }
    } else {
      while (c !== inProd && n < 64) {
        const o = (c & (RAW_SLOTS - 1)) * slotBytes;
        local.set(rin!.data.subarray(o, o + size));
        c++;
        n++;
      }
      if (n) {
        const t = performance.now();
        if (done === 0) first = t;
        last = t;
        done += n;
      }
    }
    if (n && rout) {
      Atomics.store(rout.i32, 0, p);
      rout.peer.kick();
    }
    if (n && rin) {
      Atomics.store(rin.i32, 1, c);
      rin.peer.kick();
    }
    if (done >= count && (role === 'consumer' || !waiting(rout))) finish();
    return n;
  });
  serve(env, (n, answer) => {
    count = n;
    done = 0;
    runMs = env.core.c.runMs;
    reply = answer;
    env.core.wake();
  });
}

/** The control channel: `run` starts a run (answered when it is over), `shutdown` stops the domain. */
function serve(env: DomainEnv<RawConfig>, start: (count: number, reply: (v: unknown) => void) => void): void {
  env.control.onRequest(
    new RpcOpServer('raw control', RAW_OPS, {
      run: (a, { later }) => {
        start(a.count, later());
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
