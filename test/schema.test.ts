/**
 * Results users keep: the published JSON Schema files are what the code
 * generates (they cannot drift), a real `xsim run -j` validates against the
 * published file with an independent validator (ajv), every result names what
 * produced it, and `bench --compare` refuses an unusable file before measuring.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { PUBLISHED_SCHEMAS, compareResults, compareText, schemaFileText, type BenchJson, type Comparable } from '@xsim/bench';
import { needs } from './tools.ts';

const root = new URL('..', import.meta.url).pathname;
const xsim = (...args: string[]) => {
  const r = spawnSync('npx', ['xsim', ...args], { cwd: root, timeout: 60_000 });
  const stderr = r.stderr
    .toString()
    .split('\n')
    .filter((l) => l && !l.startsWith('npm warn'))
    .join('\n');
  return { status: r.status, stdout: r.stdout.toString(), stderr };
};

function validator(file: string) {
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats.default(ajv);
  return ajv.compile(JSON.parse(readFileSync(join(root, 'schemas', file), 'utf8')) as object);
}

describe('published JSON Schemas and run metadata', () => {
  it('the committed schema files are what the code generates (run `npx xsim schema` after changing a result type)', () => {
    for (const [name, s] of Object.entries(PUBLISHED_SCHEMAS)) expect(readFileSync(join(root, 'schemas', name), 'utf8'), name).toBe(schemaFileText(s));
  });

  it('xsim run -j validates against schemas/xsim-run-1.schema.json and says what produced it', needs('git'), () => {
    const trace = join(mkdtempSync(join(tmpdir(), 'xsim-run-')), 'trace.json');
    const r = xsim('run', '--deterministic', '--count', '10000', '--interval', '0.01', '--trace', trace, '-j');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { meta: Record<string, unknown>; stream: object; trace: { frames: number; events: number } };
    // --trace wrote a trace from boot: its summary is in the result, its events in the file.
    // Every 1024th frame of the stream (10); the ping is ICMP echo, not a UDP stream frame (while it was UDP its
    // first probe, whose payload starts as seq 0 does, was sampled too).
    expect(out.trace.frames).toBe(Math.ceil(10_000 / 1024));
    expect((JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: unknown[] }).traceEvents.length).toBe(out.trace.events);
    const validate = validator('xsim-run-1.schema.json');
    expect(validate(out), JSON.stringify(validate.errors)).toBe(true);
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root }).toString().trim();
    expect(out.meta).toMatchObject({
      commit: head,
      command: ['run', '--deterministic', '--count', '10000', '--interval', '0.01', '--trace', trace, '-j'],
      node: process.version,
      pcpus: null,
      date: null,
    });
    // The validator is not a rubber stamp: a wrong field is refused.
    expect(validate({ ...out, stream: { ...out.stream, delivered: -1 } })).toBe(false);
    expect(validate({ ...out, meta: { ...out.meta, commit: 'not-a-commit' } })).toBe(false);
  });

  it("bench -j puts nothing but its JSON on stdout (the microbenchmarks' progress goes to stderr)", () => {
    const r = xsim(
      'bench',
      '--quick',
      '--sizes',
      '64',
      '--paths',
      'raw',
      '--placements',
      'cross',
      '--micro',
      '--no-capture',
      '-j',
      '--compare',
      join(root, 'bench/results/pcpu.json'),
    );
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { schema: string; micro: unknown[]; compare: { rows: unknown[] } };
    expect([out.schema, out.micro.length, out.compare.rows.length]).toEqual(['xsim-bench/6', 4, 1]);
    expect(r.stderr).toMatch(/xsim micro/);
  });

  it('bench --compare refuses an unusable file before measuring, naming what is wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xsim-cmp-'));
    const bad = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const cases: [string, RegExp][] = [
      [join(dir, 'missing.json'), /--compare .*missing\.json: cannot read it: ENOENT/],
      [bad('notjson.json', '{"schema": "xsim-bench/4",'), /notjson\.json: not JSON/],
      [bad('other.json', JSON.stringify({ schema: 'xsim-scale/1', date: 'x', cells: [] })), /other\.json: not a bench result xsim can compare .*\/schema/],
      [
        bad(
          'nocells.json',
          JSON.stringify({
            schema: 'xsim-bench/2',
            date: 'x',
            cells: [{ path: 'vnic', placement: 'cross', size: 1500, median: { gbps: 'fast' }, reps: [{ gbps: 1 }] }],
          }),
        ),
        /\/cells\/0\/median\/gbps: Expected number/,
      ],
    ];
    for (const [file, msg] of cases) {
      const r = xsim('bench', '--quick', '--compare', file);
      expect(r.status, file).toBe(1);
      expect(r.stderr, file).toMatch(msg);
      expect(r.stderr, `${file}: nothing was measured`).not.toMatch(/xsim bench: sizes/);
    }
    // A readable file that shares no cell with the run is refused too, listing what it has.
    const r = xsim('bench', '--quick', '--sizes', '777', '--compare', join(root, 'bench/results/baseline.json'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no cell in common with this run \(it has sizes 64,512,1500,9000, paths raw,unaccel,null,vnic,dom0, placements cross,same\)/);
  });

  it('marks which changes lie outside the old spread', () => {
    const cell = (gbps: number, reps: number[]) => ({
      path: 'vnic' as const,
      placement: 'cross' as const,
      size: 1500,
      median: { pps: 0, gbps },
      spread: { minGbps: Math.min(...reps), maxGbps: Math.max(...reps) },
      reps: reps.map((g) => ({ gbps: g })),
    });
    const old: Comparable = { schema: 'xsim-bench/2', date: 'then', cells: [cell(4, [3.8, 4, 4.3]), { ...cell(2, [1.9, 2, 2.1]), size: 64 }] };
    const now = { cells: [cell(4.2, [4.1, 4.2, 4.4]), { ...cell(2.5, [2.4, 2.5, 2.6]), size: 64 }] } as unknown as BenchJson;
    const c = compareResults(old, now, 'old.json');
    expect(c.rows.map((x) => [x.size, x.outside, Math.round(x.changePct)])).toEqual([
      [1500, false, 5],
      [64, true, 25],
    ]);
    expect(compareText(c)).toMatch(/\(1 of 2\)/);
    expect(compareText(c)).toMatch(/vnic +cross +64 .* \+25\.0% +OUTSIDE/);
  });
});
