import { describe, expect, it } from 'vitest';
import { leveled, logPrinter, parseLogLine, prefixLogLine } from '../src/log.ts';

describe('log levels (printk-style marks)', () => {
  it('marks, parses and prefixes lines, keeping the mark first', () => {
    expect(leveled('info', 'up')).toBe('up');
    expect(parseLogLine(leveled('warn', 'x'))).toEqual({ level: 'warn', text: 'x' });
    expect(parseLogLine('<7>y')).toEqual({ level: 'debug', text: 'y' });
    expect(parseLogLine('plain')).toEqual({ level: 'info', text: 'plain' });
    // Marks with no name of their own round to the nearest named level.
    expect(parseLogLine('<0>z').level).toBe('error');
    expect(parseLogLine('<5>z').level).toBe('warn');
    // Not a mark: left as text.
    expect(parseLogLine('<9>z')).toEqual({ level: 'info', text: '<9>z' });
    expect(prefixLogLine('[host-a/dom0] ', '<4>vif1.0: bad')).toBe('<4>[host-a/dom0] vif1.0: bad');
    expect(prefixLogLine('[d] ', 'ok')).toBe('[d] ok');
  });

  it('prints what is at the threshold or more severe, naming the level', () => {
    const out: string[] = [];
    const lines = ['<3>boom', '<4>careful', 'hello', '<7>detail'];
    for (const [t, n] of [
      ['error', 1],
      ['warn', 2],
      ['info', 3],
      ['debug', 4],
    ] as const) {
      out.length = 0;
      const p = logPrinter(t, (s) => out.push(s));
      lines.forEach(p);
      expect(out.length, t).toBe(n);
    }
    expect(out).toEqual(['xsim: error: boom\n', 'xsim: warning: careful\n', 'xsim: hello\n', 'xsim: debug: detail\n']);
  });
});
