/**
 * The README's examples, run as a reader would run them, so the README stays
 * true: every command it shows exits as shown and prints the table columns,
 * JSON keys and messages it quotes; every table of kept figures matches the
 * kept result it names.
 *
 * Markers. Every ```sh or ```console block of README.md has an HTML comment on
 * the line before it (a block without one fails this test, so no example
 * escapes it):
 *
 *   <!-- example -->                 run the block
 *   <!-- example: KEY=VALUE ... -->  run it, with:
 *       serve="ARGS"    the block talks to a simulation that `xsim run --serve ARGS`
 *                       keeps running: the test starts one on a socket of its own
 *                       and stops it after the block (`xsim shutdown`, and the
 *                       process must then exit 0)
 *       needs=TOOL,...  outside tools (test/tools.ts): skipped with the reason
 *                       printed when one is missing, failed when CI=true
 *       exit=N          the exit status every command of the block must have (default 0)
 *       known-issue=N   the block hits a known bug (issue N) that the README
 *                       describes next to it: the serving simulation is stopped
 *                       as the README says then (`xsim shutdown`, then Ctrl-C
 *                       again until it exits), not by `xsim shutdown` alone
 *   <!-- not-run: REASON -->         not run (the reason is printed); every --option a
 *                                    `npx xsim` line names must be in `xsim help`
 *   <!-- figures: FILE -->           before a table (markdown, or a plain ``` block):
 *                                    its figures are checked against that kept result
 *
 * A ```sh block is commands, one per line (`# comments` dropped). A ```console
 * block is a transcript: `$ COMMAND` lines, each followed by what it printed.
 * A line `$ # ... serving terminal:` is followed by lines the serving
 * simulation printed meanwhile. A `npx xsim run --serve ...` line in a ```sh
 * block starts the serving simulation the lines after it talk to.
 *
 * How a transcript's output is checked (against stdout and stderr together):
 *   - a table's header (a line followed by a dashed line): the same column
 *     names in the same order on one line of the output;
 *   - a table's row: a line of the output begins with its first cell;
 *   - JSON (output starting with `{` or `[`): the output is JSON and holds
 *     every key the README's JSON holds, at the same place;
 *   - any other line: a line of the output matches it, where every number
 *     (decimal, or hex with a digit in it) stands for any number and any run of
 *     spaces for any spacing; `…` inside a line stands for anything, and a line
 *     `...` or `…` for lines left out.
 *
 * How commands run: `npx xsim ARGS` as `node packages/cli/bin/xsim.mjs ARGS`
 * from the repository's root (no npm in between), `npm run bench -- ARGS` as
 * `xsim bench ARGS`; other commands (tshark, xenstore-ls) through bash. Setup
 * commands (`npm ci`, `npm test`, `npm run ...`) are not run. `/tmp/` in a
 * command or its output becomes a temporary directory of this test's, and
 * XSIM_SOCKET points into it, so nothing touches the reader's default socket.
 * Long runs are shortened, to keep this file to a couple of minutes on 2 cores:
 *   - `xsim run`: at most 2000 frames (--count added when absent); a serving
 *     simulation streams rounds of at most 1000 (it streams all the while the
 *     block's commands run: short rounds leave the 2 cores more room);
 *   - `xsim bench`: 1 repetition per cell, as --quick runs it (1500 frames, 10
 *     pings), no capture-cost streams, no microbenchmarks;
 *   - `xsim scale`: one point of 4 domUs (2 hosts), 0.5 s idle, 500 frames;
 *   - `xsim migration`: 1 repetition per case.
 * Every command, every wait for a serving simulation and every shutdown is
 * bounded; nothing sleeps for a fixed time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { migrationReport } from '@xsim/bench';
import { TOOLS, needs, type Tool } from './tools.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const XSIM = join(ROOT, 'packages/cli/bin/xsim.mjs');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
/** A temporary directory of this file's, made when first needed (a run that filters every test out makes none). */
let tmpDir: string | undefined;
const tmp = (): string => (tmpDir ??= mkdtempSync(join(tmpdir(), 'xsim-readme-')));

/** Bounds: one command, a serving simulation's start, its exit after shutdown, a line from it. */
const COMMAND_MS = 120_000;
const SERVE_START_MS = 90_000;
const SERVE_EXIT_MS = 60_000;
const SERVE_LINE_MS = 60_000;

// ---------------------------------------------------------------- parsing

interface Marker {
  kind: 'example' | 'not-run' | 'figures';
  /** example: its KEY=VALUE options; not-run: { reason }; figures: { file }. */
  opts: Record<string, string>;
}

interface Block {
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  body: string[];
  marker: Marker | null;
}

interface Table {
  line: number;
  rows: string[];
  file: string;
}

function parseMarker(text: string): Marker | null {
  const m = /^<!--\s*(example|not-run|figures)\s*(?::\s*([\s\S]*?))?\s*-->$/.exec(text.trim());
  if (!m) return null;
  const kind = m[1] as Marker['kind'];
  const rest = m[2] ?? '';
  if (kind === 'not-run') return { kind, opts: { reason: rest } };
  if (kind === 'figures') return { kind, opts: { file: rest } };
  const opts: Record<string, string> = {};
  for (const t of rest.matchAll(/([a-z-]+)=(?:"([^"]*)"|(\S+))/g)) opts[t[1]] = t[2] ?? t[3];
  const known = ['serve', 'needs', 'exit', 'known-issue'];
  for (const k of Object.keys(opts)) if (!known.includes(k)) throw new Error(`README marker "${text.trim()}": unknown key ${k} (known: ${known.join(', ')})`);
  return { kind, opts };
}

/** Fenced blocks with the marker before each, and tables marked `figures:`. */
function parseReadme(text: string): { blocks: Block[]; tables: Table[] } {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  const tables: Table[] = [];
  let inComment = false;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const t = raw.trim();
    // A multi-line HTML comment (the note at the top) is not markdown.
    if (inComment) {
      if (t.includes('-->')) inComment = false;
      continue;
    }
    if (t.startsWith('<!--') && !t.includes('-->')) {
      inComment = true;
      continue;
    }
    const fence = /^(\s*)(```+)(\S*)\s*$/.exec(raw);
    const prev = i > 0 ? lines[i - 1].trim() : '';
    const marker = prev.startsWith('<!--') ? parseMarker(prev) : null;
    if (fence) {
      const indent = fence[1].length;
      const body: string[] = [];
      let j = i + 1;
      for (; j < lines.length && !new RegExp(`^\\s*${fence[2]}\\s*$`).test(lines[j]); j++)
        body.push(lines[j].slice(Math.min(indent, lines[j].length - lines[j].trimStart().length)));
      blocks.push({ line: i + 1, lang: fence[3], body, marker });
      i = j;
      continue;
    }
    if (marker?.kind === 'figures' && t.startsWith('|')) {
      const rows: string[] = [];
      let j = i;
      for (; j < lines.length && lines[j].trim().startsWith('|'); j++) rows.push(lines[j].trim());
      tables.push({ line: i + 1, rows, file: marker.opts.file });
      i = j - 1;
    }
  }
  return { blocks, tables };
}

const SHELL_LANGS = ['sh', 'console', 'bash', 'shell'];

interface Command {
  /** As written in the README (after `$ `). */
  text: string;
  /** Line in README.md. */
  line: number;
  /** What it printed (console transcripts). */
  expected: string[];
}

function commandsOf(b: Block): Command[] {
  const out: Command[] = [];
  if (b.lang === 'console') {
    b.body.forEach((l, k) => {
      if (l.startsWith('$ ')) out.push({ text: l.slice(2).trim(), line: b.line + 1 + k, expected: [] });
      else if (out.length) out[out.length - 1].expected.push(l);
      else throw new Error(`README.md:${b.line + 1 + k}: a console block starts with output, not a "$ " command`);
    });
    return out;
  }
  b.body.forEach((l, k) => {
    const text = l.replace(/(^|\s)#.*$/, '').trim();
    if (text) out.push({ text, line: b.line + 1 + k, expected: [] });
  });
  return out;
}

// ---------------------------------------------------------------- rewriting

const atTmp = (s: string) => s.replaceAll('/tmp/', `${tmp()}/`);

/** The value of --name (`--name V` or `--name=V`), or undefined. */
function opt(args: string[], name: string): string | undefined {
  for (let k = 0; k < args.length; k++) {
    if (args[k] === `--${name}`) return args[k + 1];
    if (args[k].startsWith(`--${name}=`)) return args[k].slice(name.length + 3);
  }
  return undefined;
}

/** Set --name to `value` (replacing it where it is, or appending it). */
function setOpt(args: string[], name: string, value: string | null): string[] {
  const out: string[] = [];
  let done = false;
  for (let k = 0; k < args.length; k++) {
    if (args[k] === `--${name}`) {
      k++;
    } else if (!args[k].startsWith(`--${name}=`)) {
      out.push(args[k]);
      continue;
    }
    if (!done && value !== null) out.push(`--${name}`, value);
    done = true;
  }
  if (!done && value !== null) out.push(`--${name}`, value);
  return out;
}

const flag = (args: string[], name: string) => (args.includes(`--${name}`) ? args : [...args, `--${name}`]);

/** Shorten a long xsim command (see the header). */
function shorten(args: string[]): string[] {
  if (args.includes('--help') || args.includes('-h')) return args;
  const count = (max: number) => String(Math.min(Number(opt(args, 'count') ?? 200_000), max));
  switch (args[0]) {
    case 'run':
      return setOpt(args, 'count', count(args.includes('--serve') ? 1000 : 2000));
    case 'bench':
      // --quick: 1500 frames per repetition and 10 pings per cell; the sizes, paths and placements stay the README's.
      return flag(flag(flag(setOpt(args, 'reps', '1'), 'quick'), 'no-capture'), 'no-micro');
    case 'scale':
      return setOpt(setOpt(setOpt(args, 'domains', '4'), 'idle-seconds', '0.5'), 'stream-frames', '500');
    case 'migration':
      return setOpt(args, 'reps', '1');
    default:
      return args;
  }
}

/** An xsim command's arguments, or null for anything else. `npm run bench -- ARGS` is `xsim bench ARGS`. */
function xsimArgs(text: string): string[] | null {
  const words = text.split(/\s+/);
  if (words[0] === 'npx' && words[1] === 'xsim') return words.slice(2);
  if (words[0] === 'npm' && words[1] === 'run' && words[2] === 'bench') return ['bench', ...words.slice(words[3] === '--' ? 4 : 3)];
  return null;
}

const isSetup = (text: string) => /^(npm (ci|install|test|run (?!bench\b))|apt-get )/.test(text);

// ---------------------------------------------------------------- running

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv, what: string): Promise<Ran> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(file, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${what}: no exit within ${COMMAND_MS / 1000} s\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, COMMAND_MS);
    p.on('error', reject);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** A `run --serve` the test started: its output so far, and its exit. */
class Server {
  out = '';
  exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly waiters = new Set<() => void>();
  readonly proc: ChildProcess;
  readonly exit: Promise<void>;

  constructor(
    args: string[],
    env: NodeJS.ProcessEnv,
    readonly what: string,
  ) {
    this.proc = spawn(process.execPath, [XSIM, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const more = (d: Buffer) => {
      this.out += d.toString();
      for (const w of this.waiters) w();
    };
    this.proc.stdout!.on('data', more);
    this.proc.stderr!.on('data', more);
    this.exit = new Promise((resolve) =>
      this.proc.on('close', (code, signal) => {
        this.exited = { code, signal };
        for (const w of this.waiters) w();
        resolve();
      }),
    );
    SERVERS.add(this);
  }

  /** Wait (at most `ms`) until `ok(output)` holds; fail if the process exits first. */
  until(ok: (out: string) => boolean, ms: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (ok(this.out)) return finish();
        if (this.exited) finish(new Error(`${this.what}: exited (${this.exited.code ?? this.exited.signal}) before ${what}\n${this.out}`));
      };
      const timer = setTimeout(() => finish(new Error(`${this.what}: no ${what} within ${ms / 1000} s\n${this.out}`)), ms);
      const finish = (e?: Error) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (e) reject(e);
        else resolve();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Wait (at most `ms`) for the process to exit. */
  async exitWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
    const ok = await Promise.race([this.exit.then(() => true as const), late]);
    clearTimeout(timer);
    return ok;
  }
}

const SERVERS = new Set<Server>();

afterAll(async () => {
  // A server a failed block left running: end it (only processes this file started).
  for (const s of SERVERS) {
    if (!s.exited) {
      s.proc.kill('SIGKILL');
      await s.exitWithin(10_000);
    }
  }
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- checking output

const NUMBER = /[0-9a-fA-F]*\d[0-9a-fA-F]*(?:\.[0-9a-fA-F]*\d[0-9a-fA-F]*)*/g;
const ANY_NUMBER = '[0-9a-fA-F]+(?:\\.[0-9a-fA-F]+)*';
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const squash = (s: string) => s.trim().replace(/\s+/g, ' ');

/** A README line as a pattern: numbers stand for any number, `…` for anything, spacing is free. */
function template(line: string): string {
  return squash(line)
    .split('…')
    .map((part) => {
      let re = '';
      let at = 0;
      for (const m of part.matchAll(NUMBER)) {
        re += escapeRe(part.slice(at, m.index)) + ANY_NUMBER;
        at = m.index! + m[0].length;
      }
      return re + escapeRe(part.slice(at));
    })
    .join('.*');
}

const isRule = (l: string) => /^-+( +-+)*$/.test(l.trim());
const isElision = (l: string) => l.trim() === '...' || l.trim() === '…';

/** Every key path of a JSON value ("dev.host-a/web/vif1.domid"); arrays by their first element. */
function keyPaths(v: unknown, at = ''): string[] {
  if (Array.isArray(v)) return v.length ? keyPaths(v[0], `${at}[]`) : [];
  if (v === null || typeof v !== 'object') return [];
  return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => [`${at}.${k}`, ...keyPaths(x, `${at}.${k}`)]);
}

/** What of `expected` the output lacks: one message per problem. */
function outputProblems(expected: string[], output: string): string[] {
  const lines = output.split('\n').map(squash);
  const problems: string[] = [];
  const shown = expected.filter((l) => l.trim() !== '');
  // JSON: what the README shows parses as JSON (a line like "[ interval s ]" is text).
  let want: unknown;
  try {
    want = shown.length && /^[{[]/.test(shown[0].trim()) ? JSON.parse(shown.join('\n')) : undefined;
  } catch {
    want = undefined;
  }
  if (want !== undefined) {
    let got: unknown;
    try {
      got = JSON.parse(output);
    } catch {
      return ['the output is not JSON'];
    }
    const have = new Set(keyPaths(got));
    for (const k of keyPaths(want)) if (!have.has(k)) problems.push(`JSON key ${k} missing`);
    return problems;
  }
  let inRows = false;
  for (let k = 0; k < expected.length; k++) {
    const e = expected[k];
    const t = e.trim();
    if (t === '') {
      inRows = false;
      continue;
    }
    if (isElision(t)) continue;
    if (isRule(t)) {
      inRows = true;
      continue;
    }
    const next = expected[k + 1] ?? '';
    if (isRule(next)) {
      const cols = t.split(/\s{2,}/);
      const re = new RegExp(`^${cols.map((c) => escapeRe(squash(c))).join(' ')}$`);
      if (!lines.some((l) => re.test(l))) problems.push(`no table with the columns: ${cols.join(' | ')}`);
      continue;
    }
    if (inRows && !t.startsWith('(')) {
      const first = t.split(/\s{2,}/)[0];
      const re = new RegExp(`^${template(first)}( |$)`);
      if (!lines.some((l) => re.test(l))) problems.push(`no table row starting "${first}"`);
      continue;
    }
    inRows = false;
    const re = new RegExp(`^${template(t)}$`);
    if (!lines.some((l) => re.test(l))) problems.push(`no line like: ${t}`);
  }
  return problems;
}

// ---------------------------------------------------------------- kept figures

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** `shown` is `value` as printed: within half a unit of its last digit ("0.0020" of 0.001979). */
function near(shown: string, value: number | null | undefined, what: string, problems: string[]): void {
  const s = shown.replaceAll(',', '').trim();
  if (value === null || value === undefined) {
    if (s !== '-') problems.push(`${what}: README ${shown}, the file has none`);
    return;
  }
  const n = Number(s);
  const decimals = s.includes('.') ? s.split('.')[1].length : 0;
  if (!Number.isFinite(n) || Math.abs(n - value) > 0.5 * 10 ** -decimals + 1e-9 * Math.abs(value)) problems.push(`${what}: README ${shown}, the file ${value}`);
}

const cellsOf = (row: string) =>
  row
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((c) => c.trim().replaceAll('`', ''));

/** Check one markdown table against a kept result; what differs. */
function tableProblems(t: Table, r: Json): string[] {
  const problems: string[] = [];
  const header = cellsOf(t.rows[0]).join(' | ');
  const rows = t.rows.slice(2).map(cellsOf);
  const at = (k: number) => `README.md:${t.line + 2 + k}`;
  rows.forEach((c, k) => {
    const where = at(k);
    if (header.startsWith('path | placement | bytes')) {
      const cell = r.cells.find((x: Json) => x.path === c[0] && x.placement === c[1] && x.size === Number(c[2]));
      if (!cell) return problems.push(`${where}: no cell ${c.slice(0, 3).join(' ')}`);
      near(c[3], cell.median.pps / 1e6, `${where} Mpps`, problems);
      near(c[4], cell.median.gbps, `${where} Gbit/s`, problems);
      const [lo, hi] = c[5].split('..');
      near(lo, cell.spread.minGbps, `${where} spread min`, problems);
      near(hi, cell.spread.maxGbps, `${where} spread max`, problems);
      near(c[6].replace('%', ''), cell.lossRate * 100, `${where} loss`, problems);
      const [p50, p99] = c[7].split('/').map((x) => x.trim());
      near(p50, cell.rtt ? Math.round(cell.rtt.p50Us) : null, `${where} RTT p50`, problems);
      near(p99, cell.rtt ? Math.round(cell.rtt.p99Us) : null, `${where} RTT p99`, problems);
      near(c[8], cell.cpuUsPerFrame, `${where} CPU`, problems);
      // The self-checks (bench schema 5): wakes and copies per frame, and the share taken on the fast path.
      if (header.includes('wakes/frame')) {
        near(c[9], cell.wakesPerFrame, `${where} wakes/frame`, problems);
        near(c[10], cell.copiesPerFrame, `${where} copies/frame`, problems);
        const accelerated = c[0] === 'vnic' || c[0] === 'vdpa';
        near(c[11].replace('%', ''), accelerated ? cell.fastPathShare * 100 : null, `${where} fast path`, problems);
      }
    } else if (header.startsWith('bytes | placement | ratio | median')) {
      const x = r.acrossRuns.find((y: Json) => y.size === Number(c[0]) && y.placement === c[1] && y.ratio === c[2]);
      if (!x) return problems.push(`${where}: no ratio ${c[2]} across runs for ${c[0]} ${c[1]}`);
      near(c[3], x.median, `${where} median`, problems);
      const [lo, hi] = c[4].split('..');
      near(lo, x.min, `${where} min`, problems);
      near(hi, x.max, `${where} max`, problems);
    } else if (header.startsWith('pairs | bytes | vnic/unaccel aggregate')) {
      const x = r.pairs.ratios.find((y: Json) => y.pairs === Number(c[0]) && y.size === Number(c[1]));
      if (!x) return problems.push(`${where}: no pairs ratio for ${c[0]} pairs at ${c[1]} B`);
      near(c[2], x.vnicOverUnaccel, `${where} vnic/unaccel aggregate`, problems);
      const [lo, hi] = c[3].split('..');
      near(lo, x.min, `${where} min`, problems);
      near(hi, x.max, `${where} max`, problems);
    } else if (header.startsWith('bytes | placement | vnic/unaccel')) {
      const x = r.ratios.find((y: Json) => y.size === Number(c[0]) && y.placement === c[1]);
      if (!x) return problems.push(`${where}: no ratios for ${c[0]} ${c[1]}`);
      near(c[2], x.accelOverUnaccel, `${where} vnic/unaccel`, problems);
      near(c[3], x.accelOverDom0, `${where} vnic/dom0`, problems);
      ['unaccel', 'vnic', 'null', 'dom0'].forEach((p, i) => near(c[4 + i], x.overRaw[p], `${where} ${p}/raw`, problems));
    } else if (header.startsWith('microbenchmark')) {
      const m = r.micro.find((y: Json) => y.name === c[0]);
      if (!m) return problems.push(`${where}: no microbenchmark "${c[0]}"`);
      near(c[1].replace(/\s*M$/, ''), m.opsPerSec / 1e6, `${where} ops/s (M)`, problems);
    } else if (header.startsWith('path | captured at')) {
      const spec = c[1].replace(/\s*\(.*\)$/, '');
      const snap = c[2] === 'whole' ? null : Number(c[2]);
      const x = r.capture.find((y: Json) => y.path === c[0] && y.spec === spec && (snap === null ? y.snaplen >= 65_535 : y.snaplen === snap));
      if (!x) return problems.push(`${where}: no capture row ${c.slice(0, 3).join(' ')}`);
      const points = /\((\d+) points?\)/.exec(c[1]);
      if (points && Number(points[1]) !== x.taps) problems.push(`${where}: ${points[1]} tap points, the file ${x.taps}`);
      near(c[3], median(x.reps.map((y: Json) => y.offGbps)), `${where} off`, problems);
      near(c[4], median(x.reps.map((y: Json) => y.onGbps)), `${where} on`, problems);
      const m = /^([\d.]+) \(([\d.]+)\.\.([\d.]+)\)$/.exec(c[5]);
      if (!m) return problems.push(`${where}: on/off "${c[5]}" is not "median (min..max)"`);
      near(m[1], x.ratio, `${where} on/off`, problems);
      near(m[2], x.spread.min, `${where} on/off min`, problems);
      near(m[3], x.spread.max, `${where} on/off max`, problems);
      near(c[6], median(x.reps.map((y: Json) => y.records)), `${where} records per stream`, problems);
      near(
        c[7],
        x.reps.reduce((n: number, y: Json) => n + y.lost, 0),
        `${where} not kept`,
        problems,
      );
    } else if (header.startsWith('path | offloads | tcp-stream Gbit/s')) {
      // "unaccel, one host" is the same-host cell; "dom0 → dom0" the dom0 path.
      const [name, where2] = c[0].split(', ');
      const path = name.startsWith('dom0') ? 'dom0' : name;
      const placement = where2 === 'one host' ? 'same' : 'cross';
      const cell = r.tcp?.cells.find((x: Json) => x.path === path && x.placement === placement && x.offloads === c[1]);
      if (!cell) return problems.push(`${where}: no TCP cell ${path} ${placement} offloads ${c[1]}`);
      const reps = cell.reps as Json[];
      const tcp = reps.map((y) => y.stream.gbps as number);
      const m = /^([\d.]+) \(([\d.]+)\.\.([\d.]+)\)$/.exec(c[2]);
      if (!m) return problems.push(`${where}: tcp-stream "${c[2]}" is not "median (min..max)"`);
      near(m[1], median(tcp), `${where} tcp-stream`, problems);
      near(m[2], Math.min(...tcp), `${where} tcp-stream min`, problems);
      near(m[3], Math.max(...tcp), `${where} tcp-stream max`, problems);
      near(c[3], median(reps.map((y) => y.udp.gbps as number)), `${where} udp-stream`, problems);
      near(c[4], median(reps.map((y) => y.rr.tps as number)), `${where} tcp-rr /s`, problems);
      const [p50, p99] = c[5].split('/').map((x) => x.trim());
      near(p50, median(reps.map((y) => y.rr.p50Us as number)), `${where} rr p50`, problems);
      near(p99, median(reps.map((y) => y.rr.p99Us as number)), `${where} rr p99`, problems);
    } else if (header.startsWith('domUs | domains')) {
      const p = r.points.find((y: Json) => y.domUs === parseInt(c[0], 10));
      if (!p) return problems.push(`${where}: no point of ${c[0]} domUs`);
      near(c[1], p.domains, `${where} domains`, problems);
      near(c[2], p.hosts, `${where} hosts`, problems);
      near(c[3], p.switches, `${where} switches`, problems);
      near(c[4].replace(/ s$/, ''), p.bootMs / 1000, `${where} boot`, problems);
      near(c[5].replace(/ MB$/, ''), p.maxRssMb, `${where} RSS`, problems);
      near(c[6].replace(/ cores$/, ''), p.idleCores, `${where} idle`, problems);
      const s = /^([\d.]+) Mpps, (conserved|not conserved)$/.exec(c[7]);
      if (!s) return problems.push(`${where}: stream "${c[7]}" is not "N Mpps, conserved"`);
      near(s[1], p.stream.pps / 1e6, `${where} stream`, problems);
      if ((s[2] === 'conserved') !== p.stream.conserved) problems.push(`${where}: stream conserved ${p.stream.conserved}`);
      near(c[8].replace(/ s$/, ''), p.shutdownMs / 1000, `${where} shutdown`, problems);
    } else problems.push(`README.md:${t.line}: no check for a table headed "${header}"`);
  });
  return problems;
}

// ---------------------------------------------------------------- the tests

const { blocks, tables } = parseReadme(README);
const shellBlocks = blocks.filter((b) => SHELL_LANGS.includes(b.lang));
let helpText: string | undefined;

async function xsimHelp(): Promise<string> {
  helpText ??= (await run(process.execPath, [XSIM, 'help'], process.env, 'xsim help')).stdout;
  return helpText;
}

describe('README.md', () => {
  it('marks every shell block: example or not-run', () => {
    const unmarked = shellBlocks.filter((b) => b.marker === null || b.marker.kind === 'figures').map((b) => `README.md:${b.line}`);
    expect(unmarked, 'blocks without <!-- example --> or <!-- not-run: REASON --> before them').toEqual([]);
    expect(shellBlocks.filter((b) => b.marker?.kind === 'example').length).toBeGreaterThan(5);
  });

  it.each(tables.map((t) => [`README.md:${t.line} against ${t.file}`, t] as const))('figures at %s', (_name, t) => {
    const r = JSON.parse(readFileSync(join(ROOT, t.file), 'utf8')) as Json;
    expect(tableProblems(t, r)).toEqual([]);
  });

  const textFigures = blocks.filter((b) => b.marker?.kind === 'figures');
  it.each(textFigures.map((b) => [`README.md:${b.line} against ${b.marker!.opts.file}`, b] as const))('figures at %s', (_name, b) => {
    const r = JSON.parse(readFileSync(join(ROOT, b.marker!.opts.file), 'utf8')) as Json;
    expect(r.schema, 'only xsim migration results are printed as text here').toMatch(/^xsim-migration\//);
    const report = migrationReport(r as never)
      .split('\n')
      .map(squash);
    const missing = b.body.filter((l) => l.trim() && !report.includes(squash(l)));
    expect(missing, `lines of README.md:${b.line} that xsim's report of ${b.marker!.opts.file} does not print`).toEqual([]);
  });

  for (const b of shellBlocks) {
    const m = b.marker;
    if (m?.kind === 'not-run') {
      it(`README.md:${b.line} is not run (${m.opts.reason}); the options it names exist`, async () => {
        console.log(`README.md:${b.line}: not run: ${m.opts.reason}`);
        const help = await xsimHelp();
        // xsim lines, with their indented continuation lines (a synopsis wraps); their comments name options too.
        let inXsim = false;
        const xsimLines = b.body.filter((l) => {
          if (/^\S/.test(l)) inXsim = xsimArgs(l.trim()) !== null;
          return inXsim;
        });
        const named = xsimLines.flatMap((l) => [...l.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((x) => x[0])).filter((o) => o !== '--');
        const unknown = [...new Set(named)].filter((o) => !new RegExp(`${escapeRe(o)}(?![\\w-])`).test(help));
        expect(unknown, `options of README.md:${b.line} that xsim help does not know`).toEqual([]);
      });
      continue;
    }
    if (m?.kind !== 'example') continue;
    const tools = (m.opts.needs ?? '').split(',').filter(Boolean);
    for (const tool of tools) if (!(tool in TOOLS)) throw new Error(`README.md:${b.line}: needs=${tool}, which test/tools.ts does not know`);
    const cmds = commandsOf(b);
    const name = `README.md:${b.line}: ${cmds[0]?.text ?? '(empty)'}${cmds.length > 1 ? ` (+${cmds.length - 1})` : ''}`;
    const opts = needs(...(tools as Tool[]));
    if (opts.skip) console.log(`${name}: skipped: ${tools.join(', ')} not installed (${opts.meta?.missingTools?.map((t) => t.pkg).join(', ')})`);
    it(name, { ...opts, timeout: 600_000 }, async () => {
      await runBlock(b, cmds, m);
    });
  }
});

async function runBlock(b: Block, cmds: Command[], m: Marker): Promise<void> {
  const wantExit = Number(m.opts.exit ?? 0);
  const socket = join(tmp(), `xsim-${b.line}.sock`);
  const env: NodeJS.ProcessEnv = { ...process.env, XSIM_SOCKET: socket };
  let server: Server | undefined;
  let shutDown = false;
  const problems: string[] = [];

  const startServer = async (args: string[], line: number) => {
    const a = shorten(args.map(atTmp));
    const sock = opt(a, 'socket') ?? socket;
    // The block's commands (and its shutdown) talk to that socket.
    env.XSIM_SOCKET = sock;
    server = new Server(a, env, `README.md:${line}: xsim ${a.join(' ')}`);
    await server.until((o) => o.includes(`serving on ${sock}`), SERVE_START_MS, '"serving on" line');
    console.log(`README.md:${line}: serving: xsim ${a.join(' ')}`);
  };

  if (m.opts.serve !== undefined) await startServer(['run', '--serve', ...m.opts.serve.split(/\s+/).filter(Boolean)], b.line);

  try {
    for (const c of cmds) {
      const where = `README.md:${c.line}`;
      const expected = c.expected.map(atTmp);
      if (c.text.startsWith('#')) {
        // `$ # meanwhile, in the serving terminal:` and what it printed.
        if (!/serving terminal/.test(c.text)) continue;
        if (!server) throw new Error(`${where}: quotes the serving terminal, but no simulation is serving`);
        const srv = server;
        await srv
          .until((o) => outputProblems(expected, o).length === 0, SERVE_LINE_MS, `output like ${where}'s`)
          .catch((e: Error) => {
            problems.push(`${where}: ${outputProblems(expected, srv.out).join('; ')} (${e.message.split('\n')[0]})`);
          });
        continue;
      }
      if (isSetup(c.text)) {
        console.log(`${where}: setup, not run: ${c.text}`);
        continue;
      }
      const exportVar = /^export ([A-Z_]+)=(\S+)$/.exec(c.text);
      if (exportVar) {
        env[exportVar[1]] = atTmp(exportVar[2]);
        continue;
      }
      const args = xsimArgs(c.text);
      if (args && args[0] === 'run' && args.includes('--serve')) {
        await startServer(args, c.line);
        continue;
      }
      let r: Ran;
      let shown: string;
      if (args) {
        if (args.some((a) => /[|<>;&]/.test(a))) throw new Error(`${where}: an xsim line with shell syntax is not supported here: ${c.text}`);
        const a = shorten(args.map(atTmp));
        shown = `xsim ${a.join(' ')}`;
        r = await run(process.execPath, [XSIM, ...a], env, `${where}: ${shown}`);
        if (a[0] === 'shutdown') shutDown = true;
        // The whole usage, for the synopses' options (one xsim process fewer); `xsim CMD --help` prints only CMD's part.
        if (r.code === 0 && a.length === 1 && (a[0] === 'help' || a[0] === '--help')) helpText ??= r.stdout;
      } else {
        shown = atTmp(c.text);
        r = await run('bash', ['-c', shown], env, `${where}: ${shown}`);
      }
      console.log(`${where}: ${shown} -> exit ${r.code ?? r.signal} in ${(r.ms / 1000).toFixed(1)} s`);
      if (r.code !== wantExit) {
        problems.push(`${where}: ${shown} exited ${r.code ?? r.signal}, the README shows ${wantExit}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
        continue;
      }
      const p = outputProblems(expected, `${r.stdout}\n${r.stderr}`);
      if (p.length) problems.push(`${where}: ${shown}: ${p.join('; ')}\noutput:\n${r.stdout}${r.stderr}`);
    }
  } finally {
    if (server && !server.exited) {
      if (m.opts['known-issue'] !== undefined) {
        // The README says so next to the block: shutdown answers, the process waits on; Ctrl-C again ends it.
        if (!shutDown) await run(process.execPath, [XSIM, 'shutdown'], env, 'xsim shutdown');
        for (let k = 0; k < 20 && !server.exited; k++) {
          server.proc.kill('SIGINT');
          await server.exitWithin(500);
        }
        if (!server.exited) problems.push(`README.md:${b.line}: the serving simulation did not end on Ctrl-C (known issue ${m.opts['known-issue']})`);
      } else {
        if (!shutDown) {
          const r = await run(process.execPath, [XSIM, 'shutdown'], env, 'xsim shutdown');
          if (r.code !== 0) problems.push(`README.md:${b.line}: xsim shutdown exited ${r.code}: ${r.stderr}`);
        }
        if (!(await server.exitWithin(SERVE_EXIT_MS))) {
          problems.push(`README.md:${b.line}: the serving simulation did not exit within ${SERVE_EXIT_MS / 1000} s of xsim shutdown\n${server.out}`);
          server.proc.kill('SIGKILL');
        } else if (server.exited!.code !== 0)
          problems.push(`README.md:${b.line}: the serving simulation exited ${server.exited!.code ?? server.exited!.signal}\n${server.out}`);
      }
    }
  }
  expect(problems, `README.md:${b.line}`).toEqual([]);
}
