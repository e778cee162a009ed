/** `help` at every level: a command's --help, -h or help prints the usage and exits 0 (it used to be "unknown option"). */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const xsim = (...args: string[]) => execFileSync('npx', ['xsim', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 }).toString();

describe('xsim help', () => {
  it.each([['scale', '--help'], ['run', '-h'], ['domain', 'help']])('xsim %s %s prints the usage', (cmd, flag) => {
    const out = xsim(cmd, flag);
    expect(out).toMatch(/^usage: xsim <command> \[options\]/);
    expect(out).toMatch(/domain create HOST NAME/);
    expect(out).toMatch(/dev add HOST\/DOMU/);
  });
});
