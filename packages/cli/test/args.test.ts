/** The command line as its users know it from other tools: --opt=value, -jp, options anywhere, clear errors. */
import { describe, expect, it } from 'vitest';
import { intFlag, parseArgs } from '../src/args.ts';

const VALUED = ['count', 'socket', 'seed'];
const BOOLS = ['j', 'json', 'p', 'pretty', 'serve'];

describe('xsim argument parsing', () => {
  it('reads --opt value, --opt=value, -jp and positionals in any order', () => {
    const p = parseArgs(['--count=5', 'topo.json', '-jp', '--socket', '/tmp/s', '--serve'], VALUED, BOOLS);
    expect(p.positional).toEqual(['topo.json']);
    expect(Object.fromEntries(p.flags)).toEqual({ count: '5', j: true, p: true, socket: '/tmp/s', serve: true });
    expect(intFlag(p, 'count', 1, 1, 10)).toBe(5);
  });

  it('-- ends the options', () => {
    expect(parseArgs(['--', '--serve'], VALUED, BOOLS).positional).toEqual(['--serve']);
  });

  it('an unknown option is refused, listing the known ones', () => {
    expect(() => parseArgs(['--cuont', '5'], VALUED, BOOLS)).toThrow(
      /^unknown option --cuont \(options: --count V, --socket V, --seed V, -j, --json, -p, --pretty, --serve\)$/,
    );
    expect(() => parseArgs(['-x'], VALUED, BOOLS)).toThrow(/^unknown option -x /);
  });

  it('a value that is missing, or that looks like an option, is asked for clearly', () => {
    expect(() => parseArgs(['--count'], VALUED, BOOLS)).toThrow(/^option --count needs a value$/);
    expect(() => parseArgs(['--seed', '-1'], VALUED, BOOLS)).toThrow(/^option --seed needs a value; to give one that starts with "-", write --seed=VALUE$/);
    expect(Object.fromEntries(parseArgs(['--seed=-1'], VALUED, BOOLS).flags)).toEqual({ seed: '-1' });
  });

  it('a flag given a value is refused', () => {
    expect(() => parseArgs(['--serve=yes'], VALUED, BOOLS)).toThrow(/--serve/);
  });
});
