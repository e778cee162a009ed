/** The conformance report as a terminal table: a row per check (its verdict and why), then a summary line. */
import type { ConformanceReport } from './types.ts';

const MARK = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' } as const;

/** Wrap `text` to lines of at most `width` characters, at spaces. */
function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out.length ? out : [''];
}

export function conformanceTable(r: ConformanceReport, width = 160): string {
  const titleW = Math.max(5, ...r.results.map((x) => x.title.length));
  const reasonW = Math.max(40, width - titleW - 4 - 4 - 6);
  const lines = [
    `plugin ${r.plugin}${r.version ? ` ${r.version}` : ''} (${r.features.join(', ') || 'features unknown'})${r.seed === null ? '' : `, deterministic seed ${r.seed}`}`,
    '',
    `${'check'.padEnd(titleW)}  ${'result'}  reason`,
    `${'-'.repeat(titleW)}  ------  ${'-'.repeat(Math.min(reasonW, 40))}`,
  ];
  for (const x of r.results) {
    const [first, ...more] = wrap(x.reason, reasonW);
    lines.push(`${x.title.padEnd(titleW)}  ${MARK[x.status].padEnd(6)}  ${first}`);
    for (const m of more) lines.push(`${' '.repeat(titleW + 10)}${m}`);
  }
  const n = (s: string) => r.results.filter((x) => x.status === s).length;
  lines.push('', `${r.passed ? 'PASSED' : 'FAILED'}: ${n('pass')} passed, ${n('fail')} failed, ${n('skip')} skipped (${(r.ms / 1000).toFixed(1)} s)`);
  return lines.join('\n');
}
