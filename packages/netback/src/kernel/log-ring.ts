/** dom0's log: every line goes out; the last 200 worth keeping (not debug) stay for stats. */
import { parseLogLine } from '@xsim/hypervisor';

export interface LogRing {
  /** Log a line (it may carry a printk-style level mark). */
  say(msg: string): void;
  readonly lines: string[];
}

export function logRing(out: (msg: string) => void, keep = 200): LogRing {
  const lines: string[] = [];
  return {
    lines,
    say: (msg) => {
      // The last `keep` lines worth keeping (debug lines, such as each xenbus transition, only go out).
      const { level, text } = parseLogLine(msg);
      if (level !== 'debug') {
        lines.push(level === 'info' ? text : `${level}: ${text}`);
        if (lines.length > keep) lines.shift();
      }
      out(msg);
    },
  };
}
