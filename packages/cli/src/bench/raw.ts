/** Runs the raw-ring baseline in two workers of its own pool. */
import { MessageChannel } from 'node:worker_threads';
import { DomainPool, type DomainTask } from '@xsim/hypervisor';
import { RAW_KERNEL, RAW_WAKE_OFFSET, rawRingBytes, type RawConfig } from './raw-kernel.ts';

export interface RawResult {
  frames: number;
  pps: number;
  gbps: number;
  elapsedMs: number;
  /** Both workers' time awake (not blocked in Atomics.wait), per frame. */
  cpuUsPerFrame: number;
}

export async function runRawRing(count: number, size: number, pool?: DomainPool): Promise<RawResult> {
  const own = pool ?? new DomainPool(2);
  const { bytes, slotBytes } = rawRingBytes(size);
  const sab = new SharedArrayBuffer(bytes);
  const task = (role: RawConfig['role']): DomainTask<RawConfig> => ({
    kernel: RAW_KERNEL,
    name: `raw-${role}`,
    host: 'bench',
    domid: role === 'producer' ? 1 : 2,
    control: new MessageChannel().port2,
    wake: { sab, offset: RAW_WAKE_OFFSET[role] },
    config: { role, sab, count, size, slotBytes },
  });
  try {
    const [p, c] = (await Promise.all([own.start(task('producer')), own.start(task('consumer'))])) as { frames: number; first: number; last: number; awakeMs: number }[];
    const elapsedMs = c.last - c.first;
    const pps = elapsedMs > 0 ? ((c.frames - 1) * 1000) / elapsedMs : 0;
    return { frames: c.frames, pps, gbps: (pps * size * 8) / 1e9, elapsedMs, cpuUsPerFrame: ((p.awakeMs + c.awakeMs) * 1000) / Math.max(1, c.frames) };
  } finally {
    if (!pool) await own.destroy();
  }
}
