/** Runs the raw-ring baseline: a producer and a consumer domain on two pCPUs of a runtime of their own. */
import { ADDR_TOOLSTACK, CH, RpcEndpoint, ThreadRuntime } from '@xsim/hypervisor';
import { threadSleeps, wakeDelta } from './counts.ts';

import { RAW_KERNEL, rawRingBytes, type RawConfig, type RawOps } from './raw-kernel.ts';

export interface RawResult {
  frames: number;
  pps: number;
  gbps: number;
  elapsedMs: number;
  /** Both domains' time in their turns, per frame. */
  cpuUsPerFrame: number;
  /** Sleeps in Atomics.wait of every thread of the ring's runtime over the run (pCPU workers and its idle NIC thread). */
  wakes: number;
  wakesPerThread: Record<string, number>;
}

export class RawRing {
  private readonly rt: ThreadRuntime;
  private readonly ctl: RpcEndpoint<RawOps>[] = [];

  private constructor(readonly size: number) {
    this.rt = new ThreadRuntime(2, { log: (l) => console.error(l) });
  }

  static async start(size: number): Promise<RawRing> {
    const r = new RawRing(size);
    const { bytes, slotBytes } = rawRingBytes(size);
    const sab = new SharedArrayBuffer(bytes);
    const roles: RawConfig['role'][] = ['producer', 'consumer'];
    for (const [i, role] of roles.entries()) {
      const uid = i + 1;
      r.ctl.push(new RpcEndpoint<RawOps>(r.rt.bus, ADDR_TOOLSTACK, uid, CH.control).listen());
      const config: RawConfig = { role, sab, size, slotBytes, peerDoorbell: r.rt.doorbell(1 - i) };
      await r.rt.create({ kernel: RAW_KERNEL, name: `raw-${role}`, host: 'bench', hostIndex: 0, domid: uid, uid, config }, i);
    }
    return r;
  }

  async run(count: number): Promise<RawResult> {
    const before = threadSleeps(await this.rt.pcpuStats(5000));
    const [p, c] = await Promise.all(this.ctl.map((e) => e.request('run', { count }, 120_000)));
    const wakes = wakeDelta(before, threadSleeps(await this.rt.pcpuStats(5000)));
    const elapsedMs = c.last - c.first;
    const pps = elapsedMs > 0 ? ((c.frames - 1) * 1000) / elapsedMs : 0;
    return {
      frames: c.frames,
      pps,
      gbps: (pps * this.size * 8) / 1e9,
      elapsedMs,
      cpuUsPerFrame: ((p.awakeMs + c.awakeMs) * 1000) / Math.max(1, c.frames),
      wakes: wakes.total,
      wakesPerThread: wakes.perThread,
    };
  }

  async stop(): Promise<void> {
    await this.rt.shutdown(5000);
  }
}

/** One run on a ring of its own. */
export async function runRawRing(count: number, size: number): Promise<RawResult> {
  const r = await RawRing.start(size);
  try {
    return await r.run(count);
  } finally {
    await r.stop();
  }
}
