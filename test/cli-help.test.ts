/** `help` at every level: `xsim help` the whole usage; a command's --help, -h or help (or `xsim help COMMAND`) its part, exit 0 (it used to be "unknown option"). */
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { needs } from './tools.ts';

const root = new URL('..', import.meta.url).pathname;
const xsim = (...args: string[]) => execFileSync('npx', ['xsim', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 }).toString();

describe('xsim help', () => {
  it('xsim help prints the whole usage', () => {
    const out = xsim('help');
    expect(out).toMatch(/^usage: xsim <command> \[options\]/);
    expect(out).toMatch(/domain create HOST NAME/);
    expect(out).toMatch(/dev add HOST\/DOMU/);
    expect(out).toMatch(/plugin test DIR\|NAME/);
  });

  it.each([
    ['scale', '--help', /^ {2}scale +boot time/m, /domain create/],
    ['run', '-h', /--nics M\[,M\]/, /plugin test DIR/],
    ['domain', 'help', /domain create HOST NAME/, /dev add HOST/],
    ['plugin', 'help', /plugin test DIR\|NAME[\s\S]*plugin load NAME/, /domain create/],
  ])("xsim %s %s prints that command's part of the usage", (cmd, flag, has, hasNot) => {
    const out = xsim(cmd, flag);
    expect(out).toMatch(/^usage: xsim <command> \[options\]/);
    expect(out).toMatch(has);
    expect(out).not.toMatch(hasNot);
  });

  it('xsim help COMMAND is the same as xsim COMMAND help', () => {
    expect(xsim('help', 'plugin')).toBe(xsim('plugin', 'help'));
  });
});

const xsimBoth = (...args: string[]) => {
  const r = spawnSync('npx', ['xsim', ...args], { cwd: root, timeout: 60_000 });
  // npm's own warnings about the user's config are not xsim's.
  const stderr = r.stderr
    .toString()
    .split('\n')
    .filter((l) => l && !l.startsWith('npm warn'))
    .join('\n');
  return { status: r.status, stdout: r.stdout.toString(), stderr };
};

describe('xsim version and log levels', () => {
  it('--version names the version and the git commit, anywhere on the line', needs('git'), () => {
    for (const args of [['--version'], ['-V'], ['run', '--version']])
      expect(xsim(...args)).toMatch(/^xsim \d+\.\d+\.\d+ \(git [0-9a-f]{12}(-dirty)?, Node v20\.\d+\.\d+\)\n$/);
  });

  it('-j puts nothing but JSON on stdout; -v adds debug lines (xenbus transitions) on stderr', () => {
    const r = xsimBoth('run', '--deterministic', '--count', '300', '-j', '-v');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { stream: { delivered: number } };
    expect(out.stream.delivered).toBe(300);
    expect(r.stderr).toMatch(/^xsim: debug: \[host-a\/dom0\] vif1\.0: backend InitWait->Connected \(frontend Connected\)$/m);
    expect(r.stderr).toMatch(/^xsim: debug: \[host-a\/a1\] netfront vif0: Initialising->Connected/m);
  });

  it('-q keeps the results and leaves out progress and info lines; -q with -v is refused', () => {
    const q = xsimBoth('run', '--deterministic', '--count', '300', '-q');
    expect(q.status).toBe(0);
    expect(q.stdout).toMatch(/host-a\/a1 -> host-b\/b1 @1500B +300 +300 +0/);
    expect(q.stdout).not.toMatch(/xsim: topology/);
    expect(q.stderr).toBe('');
    const plain = xsimBoth('run', '--deterministic', '--count', '300');
    expect(plain.stdout).toMatch(/^xsim: topology "default"/m);
    expect(plain.stderr).not.toMatch(/debug:/);
    const both = xsimBoth('run', '-q', '-v');
    expect(both.status).toBe(1);
    expect(both.stderr).toMatch(/--quiet and --verbose exclude each other/);
  });
});
