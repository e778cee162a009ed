/**
 * Runs the raw-ring baselines: a producer and a consumer domain on two pCPUs
 * of a runtime of their own (raw), or a producer, a forwarder and a consumer
 * on three (raw3).
 */
import { ADDR_TOOLSTACK, CH, RpcEndpoint, ThreadRuntime } from '@xsim/hypervisor';
import { threadSleeps, wakeDelta } from './counts.ts';

import { RAW_KERNEL, rawRingBytes, type RawConfig, type RawOps } from './raw-kernel.ts';

export interface RawResult {
  frames: number;
  pps: number;
  gbps: number;
  elapsedMs: number;
  /** Every domain's time in its turns, per frame. */
  cpuUsPerFrame: number;
  /** Sleeps in Atomics.wait of every thread of the ring's runtime over the run (pCPU workers and its idle NIC thread). */
  wakes: number;
  wakesPerThread: Record<string, number>;
}

export class RawRing {
  private readonly rt: ThreadRuntime;
  private readonly ctl: RpcEndpoint<RawOps>[] = [];

  private constructor(
    readonly size: number,
    readonly threads: 2 | 3,
  ) {
    this.rt = new ThreadRuntime(threads, { log: (l) => console.error(l) });
  }

  /**
   * Two threads: producer -> ring -> consumer. Three: producer -> ring 1 ->
   * forwarder -> ring 2 -> consumer, each domain on a pCPU of its own.
   */
  static async start(size: number, threads: 2 | 3 = 2): Promise<RawRing> {
    const r = new RawRing(size, threads);
    const { bytes, slotBytes } = rawRingBytes(size);
    const rings = Array.from({ length: threads - 1 }, () => new SharedArrayBuffer(bytes));
    const roles: RawConfig['role'][] = threads === 2 ? ['producer', 'consumer'] : ['producer', 'forwarder', 'consumer'];
    for (const [i, role] of roles.entries()) {
      const uid = i + 1;
      r.ctl.push(new RpcEndpoint<RawOps>(r.rt.bus, ADDR_TOOLSTACK, uid, CH.control).listen());
      // Domain i runs on pCPU i: it consumes ring i - 1 (produced by pCPU i - 1) and produces into ring i (consumed by pCPU i + 1).
      const config: RawConfig = {
        role,
        size,
        slotBytes,
        ...(i > 0 ? { in: { sab: rings[i - 1], peerDoorbell: r.rt.doorbell(i - 1) } } : {}),
        ...(i < roles.length - 1 ? { out: { sab: rings[i], peerDoorbell: r.rt.doorbell(i + 1) } } : {}),
      };
      await r.rt.create({ kernel: RAW_KERNEL, name: `raw-${role}`, host: 'bench', hostIndex: 0, domid: uid, uid, config }, i);
    }
    return r;
  }

  async run(count: number): Promise<RawResult> {
    const before = threadSleeps(await this.rt.pcpuStats(5000));
    const sides = await Promise.all(this.ctl.map((e) => e.request('run', { count }, 120_000)));
    const wakes = wakeDelta(before, threadSleeps(await this.rt.pcpuStats(5000)));
    const c = sides[sides.length - 1];
    const elapsedMs = c.last - c.first;
    const pps = elapsedMs > 0 ? ((c.frames - 1) * 1000) / elapsedMs : 0;
    return {
      frames: c.frames,
      pps,
      gbps: (pps * this.size * 8) / 1e9,
      elapsedMs,
      cpuUsPerFrame: (sides.reduce((n, x) => n + x.awakeMs, 0) * 1000) / Math.max(1, c.frames),
      wakes: wakes.total,
      wakesPerThread: wakes.perThread,
    };
  }

  async stop(): Promise<void> {
    await this.rt.shutdown(5000);
  }
}

/** One run on a ring of its own (two threads), or on two rings with a forwarder between (three). */
export async function runRawRing(count: number, size: number, threads: 2 | 3 = 2): Promise<RawResult> {
  const r = await RawRing.start(size, threads);
  try {
    return await r.run(count);
  } finally {
    await r.stop();
  }
}
