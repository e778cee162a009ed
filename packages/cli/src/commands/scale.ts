/**
 * `xsim scale`: boot time, peak RSS, idle CPU and a cross-rack stream against
 * the number of domains (bench/scale.ts), a table and a JSON file.
 */
import { LOG_BOOLEANS, intFlag, logLevelFlag, numFlag, parseArgs, progressLines } from '../args.ts';
import { saveJson, scaleReport } from '@xsim/bench';
import { measurePoint, runScale } from '@xsim/bench';

export async function scaleCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, ['domains', 'idle-seconds', 'stream-frames', 'pcpus', 'out', 'point'], ['j', 'json', ...LOG_BOOLEANS]);
  const level = logLevelFlag(p);
  const idleSeconds = numFlag(p, 'idle-seconds', 3, 0.5, 60);
  const streamFrames = intFlag(p, 'stream-frames', 20_000, 0, 10_000_000);
  const pcpus = p.flags.has('pcpus') ? intFlag(p, 'pcpus', 2, 1, 256) : undefined;
  if (p.flags.has('point')) {
    // A child of runScale: one point, one JSON line.
    const point = await measurePoint(intFlag(p, 'point', 16, 2, 12_800), { idleSeconds, streamFrames, pcpus });
    process.stdout.write(JSON.stringify(point) + '\n');
    return 0;
  }
  const domUs = String(p.flags.get('domains') ?? '16,64,256,1024')
    .split(',')
    .map((s) => {
      const n = Number(s.trim());
      if (!Number.isInteger(n) || n < 2 || n > 12_800) throw new Error(`--domains: "${s}" is not a domU count from 2 to 12800`);
      return n;
    });
  const r = await runScale({ domUs, idleSeconds, streamFrames, pcpus, progress: progressLines(level) });
  const out = typeof p.flags.get('out') === 'string' ? String(p.flags.get('out')) : undefined;
  if (out) saveJson(out, r);
  if (p.flags.has('j') || p.flags.has('json')) process.stdout.write(JSON.stringify(r) + '\n');
  else process.stdout.write(scaleReport(r) + (out ? `\n\nsaved ${out}` : '') + '\n');
  return r.points.every((x) => !x.stream || (x.stream.conserved && x.stream.delivered > 0)) ? 0 : 1;
}
