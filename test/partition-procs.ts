/**
 * The partition tests' processes: `xsim` run as a child of the test (node
 * with tsx's loader, no shell, so its pid is the simulation's own), its
 * output gathered, a line waited for with a bound, its exit awaited with a
 * bound, and every process still alive at the end ended by its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const MAIN = 'packages/cli/src/main.ts';

export interface XsimProc {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  out(): string;
  err(): string;
  /** Until a line of stdout or stderr matches, or reject after `ms` naming what was awaited and what came. */
  line(re: RegExp, ms: number): Promise<string>;
  /** Its exit code (a signal: the negative... null), or reject after `ms`. */
  exit(ms: number): Promise<number | null>;
}

const live = new Set<ChildProcess>();

export function xsim(args: string[], env: Record<string, string> = {}): XsimProc {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => (live.delete(child), r(code))));
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const bounded = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${what} within ${ms} ms (stdout: ${out.slice(-2000)}; stderr: ${err.slice(-2000)})`)), ms);
      p.then(resolve, reject).finally(() => clearTimeout(t));
    });
  return {
    child,
    out: () => out,
    err: () => err,
    line: (re, ms) =>
      bounded(
        new Promise<string>((resolve) => {
          const check = () => {
            const m = (out + '\n' + err).split('\n').find((l) => re.test(l));
            if (m === undefined) return false;
            child.stdout!.off('data', check);
            child.stderr!.off('data', check);
            resolve(m);
            return true;
          };
          if (!check()) {
            child.stdout!.on('data', check);
            child.stderr!.on('data', check);
          }
        }),
        ms,
        `no line matching ${re}`,
      ),
    exit: (ms) => bounded(exited, ms, `xsim ${args.join(' ')} did not exit`),
  };
}

/** Is process `pid` alive (signal 0 probes without signalling)? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** End every xsim this module started that is still running (SIGKILL, by pid). */
export function killAll(): void {
  for (const c of live) if (c.pid !== undefined && c.exitCode === null) c.kill('SIGKILL');
}

/** A base port for one test's tunnels, away from 4789/14789 and from other runs. */
export function freshBasePort(): number {
  return 30_000 + 10 * Math.floor(Math.random() * 2000);
}
