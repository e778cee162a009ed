/**
 * What packet capture costs: the same stream with capture off and on, paired
 * within each repetition (off then on, or on then off, alternating, so drift
 * falls on both alike): at one tap point (the receiving guest's vif,
 * frontend side: present on every path) keeping whole frames, as `tcpdump -w`
 * does by default; at every point ('*') keeping 128 octets (headers, as
 * `tcpdump -s 128`); and at every point keeping whole frames, which on a small
 * machine writes more than its disk takes (what a full buffer cannot keep is
 * counted). The ratio is on / off goodput.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogLevel } from '@xsim/hypervisor';
import { Simulation } from '@xsim/toolstack';
import { runStream } from '@xsim/toolstack';
import { benchTopology, median, windowFrames } from './matrix.ts';
import type { BenchPath, CaptureCell } from './schema.ts';

export interface CaptureCostOptions {
  paths: BenchPath[];
  reps: number;
  /** Frames per repetition (0: sized from a warm-up to last about repSeconds). */
  frames: number;
  repSeconds: number;
  pcpus?: number;
  logLevel?: LogLevel;
  progress?: (what: string) => void;
}

const SIZE = 1500;
const FULL = 262_144;
const A1 = { host: 'host-a', domain: 'a1' };
const B1 = { host: 'host-b', domain: 'b1' };
const SPECS = [
  { name: 'host-b/b1/vif0', specs: ['host-b/b1/vif0'], snaplen: FULL },
  { name: '*', specs: ['*'], snaplen: 128 },
  { name: '*', specs: ['*'], snaplen: FULL },
];

export async function runCaptureCost(o: CaptureCostOptions): Promise<CaptureCell[]> {
  const paths = o.paths.filter((p): p is 'unaccel' | 'vnic' => p === 'unaccel' || p === 'vnic');
  if (paths.length === 0) return [];
  const dir = mkdtempSync(join(tmpdir(), 'xsim-capcost-'));
  const sim = await Simulation.start(benchTopology(SIZE), { pcpus: o.pcpus, logLevel: o.logLevel ?? 'warn' });
  const out: CaptureCell[] = [];
  try {
    for (const path of paths) {
      if (path === 'vnic') {
        await sim.loadPlugin('vnic');
        await sim.waitAccelerated([A1, B1], { plugin: 'vnic' });
      }
      const stream = (count: number) => runStream(sim, { from: A1, to: B1, count, frameSize: SIZE, window: windowFrames(SIZE), srcPort: 42000 });
      const warm = await stream(o.frames > 0 ? Math.min(2000, o.frames) : 20_000);
      const count = o.frames > 0 ? o.frames : Math.max(2000, Math.min(2_000_000, Math.round(warm.pps * o.repSeconds)));
      for (const { name, specs, snaplen } of SPECS) {
        o.progress?.(`capture cost: ${path}, ${name}, snap length ${snaplen}`);
        const reps: CaptureCell['reps'] = [];
        let taps = 0;
        for (let r = 0; r < o.reps; r++) {
          const off = async () => (await stream(count)).gbps;
          const on = async () => {
            const file = join(dir, `${r}.pcapng`);
            const c = await sim.captureStart(specs, { file, snaplen });
            taps = c.interfaces.length;
            const gbps = (await stream(count)).gbps;
            const s = await sim.captureStop();
            rmSync(file, { force: true });
            return { gbps, records: s.interfaces.reduce((n, f) => n + f.packets, 0), lost: s.interfaces.reduce((n, f) => n + f.lost, 0) };
          };
          let offGbps: number;
          let x: Awaited<ReturnType<typeof on>>;
          if (r % 2 === 0) {
            offGbps = await off();
            x = await on();
          } else {
            x = await on();
            offGbps = await off();
          }
          reps.push({ offGbps, onGbps: x.gbps, ratio: offGbps > 0 ? x.gbps / offGbps : 0, records: x.records, lost: x.lost });
        }
        const ratios = reps.map((x) => x.ratio);
        out.push({
          path,
          placement: 'cross',
          size: SIZE,
          spec: name,
          reps,
          ratio: median(ratios),
          spread: { min: Math.min(...ratios), max: Math.max(...ratios) },
          taps,
          snaplen,
          frames: count,
          note: `a1 -> b1; ${sim.threads().pcpus} pCPU workers + the NIC thread, the main thread merging and writing the file`,
        });
      }
      if (path === 'vnic') await sim.unloadPlugin('vnic');
    }
  } finally {
    await sim.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
