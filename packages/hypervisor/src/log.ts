/**
 * Log levels, as the Linux kernel's printk marks them: a line may start with
 * "<N>" (3 error, 4 warning, 6 info, 7 debug). Kernels keep their one-string
 * `log(line)`; the level travels in the line through the worker's console or
 * the runtime's callback, and the toolstack's reader filters and names it.
 * A line with no mark is info.
 */
export const LOG_LEVELS = { error: 3, warn: 4, info: 6, debug: 7 } as const;
export type LogLevel = keyof typeof LOG_LEVELS;

const NAMES: Record<number, LogLevel> = { 3: 'error', 4: 'warn', 6: 'info', 7: 'debug' };
const MARK = /^<([0-7])>/;

/** `line` marked with `level` (info lines need no mark). */
export function leveled(level: LogLevel, line: string): string {
  return level === 'info' ? line : `<${LOG_LEVELS[level]}>${line}`;
}

export const logWarn = (line: string): string => leveled('warn', line);
export const logError = (line: string): string => leveled('error', line);
export const logDebug = (line: string): string => leveled('debug', line);

/** The level of a line and its text without the mark. Unknown marks (0-2, 5) round to the nearest named level. */
export function parseLogLine(line: string): { level: LogLevel; text: string } {
  const m = MARK.exec(line);
  if (!m) return { level: 'info', text: line };
  const n = Number(m[1]);
  return { level: NAMES[n] ?? (n < 3 ? 'error' : n === 5 ? 'warn' : 'info'), text: line.slice(m[0].length) };
}

/** A prefix such as "[host-a/dom0] " goes after the mark, so the mark stays first. */
export function prefixLogLine(prefix: string, line: string): string {
  const m = MARK.exec(line);
  return m ? `${m[0]}${prefix}${line.slice(m[0].length)}` : `${prefix}${line}`;
}

/**
 * A sink that prints lines at `threshold` or more severe to `write`, each as
 * "xsim: warning: text" (info lines without a level word).
 */
export function logPrinter(threshold: LogLevel, write: (s: string) => void, prog = 'xsim'): (line: string) => void {
  const max = LOG_LEVELS[threshold];
  return (line) => {
    const { level, text } = parseLogLine(line);
    if (LOG_LEVELS[level] > max) return;
    const word = level === 'info' ? '' : `${level === 'warn' ? 'warning' : level}: `;
    write(`${prog}: ${word}${text}\n`);
  };
}
