/**
 * Where a result came from, so a kept file says what produced it: xsim's
 * version, the git commit it ran from (and whether the tree had changes), the
 * command line, Node, the CPU and the pCPU threads. Read once per process.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { RunMeta } from './schema/meta.ts';

export type { RunMeta };

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let version: string | undefined;
export function xsimVersion(): string {
  version ??= (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string }).version;
  return version;
}

let git: { commit: string | null; dirty: boolean | null } | undefined;
function gitState(): { commit: string | null; dirty: boolean | null } {
  if (git) return git;
  const run = (args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  try {
    const commit = run(['rev-parse', 'HEAD']);
    let dirty: boolean | null = null;
    try {
      dirty = run(['status', '--porcelain', '--untracked-files=no']).length > 0;
    } catch {
      dirty = null;
    }
    git = { commit, dirty };
  } catch {
    git = { commit: null, dirty: null };
  }
  return git;
}

/** The command line as given to xsim (set by main). */
let command: string[] = [];
export function setCommandLine(argv: string[]): void {
  command = [...argv];
}

/** `deterministic`: leave out the date, so the same seed still gives the same bytes. */
export function runMeta(pcpus: number | null, o: { deterministic?: boolean } = {}): RunMeta {
  const g = gitState();
  return {
    xsim: xsimVersion(),
    commit: g.commit,
    dirty: g.dirty,
    command,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    pcpus,
    date: o.deterministic ? null : new Date().toISOString(),
  };
}

/** `xsim --version`: "xsim 0.1.0 (git 972b45a, Node v20...)". */
export function versionLine(): string {
  const g = gitState();
  return `xsim ${xsimVersion()} (${g.commit ? `git ${g.commit.slice(0, 12)}${g.dirty ? '-dirty' : ''}` : 'no git checkout'}, Node ${process.version})`;
}
