/** The TCP section as text: one row per cell, then the paired ratios, then what was left out and why. */
import { fmtNum, table } from '@xsim/toolstack';
import { median as med } from './ratios.ts';
import type { TcpSection } from './tcp-schema.ts';

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(x >= 0.995 && x < 1 ? 2 : 0)}%`);

export function tcpLines(t: TcpSection): string[] {
  const rows = t.cells.map((c) => [
    c.path,
    c.placement,
    c.offloads,
    c.median.gbps,
    `${fmtNum(c.spread.minGbps)}..${fmtNum(c.spread.maxGbps)}`,
    c.median.udpGbps,
    c.reps.reduce((n, r) => n + r.stream.retransmits, 0),
    Math.round(c.median.tps),
    `${Math.round(c.spread.minTps)}..${Math.round(c.spread.maxTps)}`,
    Math.round(c.median.p50Us),
    Math.round(c.median.p99Us),
    pct(c.reps.some((r) => r.csumPartialShare === null) ? null : med(c.reps.map((r) => r.csumPartialShare ?? 0))),
    c.reps.every((r) => r.ok) ? 'yes' : 'NO',
    c.path === 'vnic' ? pct(med(c.reps.map((r) => r.ackFastPathShare))) : '-',
    `${c.path === 'vnic' ? pct(c.fastPathShare) : '-'}${c.valid ? '' : ' INVALID'}`,
  ]);
  const invalid = t.cells.filter((c) => !c.valid);
  const left = t.ratios.filter((r) => r.median === null);
  const o = t.options;
  return [
    '',
    `TCP at ${o.size} B (MTU 1500), ${o.reps} repetition(s); tcp-stream ${o.bytes ? `${o.bytes} octets per repetition` : 'sized per cell from the warm-up'}, writes of ${o.writeSize}, sink ${o.verify ? 'verifying every octet' : 'not verifying'}; tcp-rr ${o.reqSize}/${o.rspSize} octets; medians, spread min..max:`,
    table(
      [
        'path',
        'placement',
        'offloads',
        'tcp Gbit/s',
        'spread',
        'udp Gbit/s',
        'retrans',
        'rr tps',
        'rr spread',
        'rr p50 us',
        'rr p99 us',
        'csum partial',
        'complete',
        'ACKs fast path',
        'fast path',
      ],
      rows,
    ),
    ...(invalid.length
      ? ['', 'INVALID TCP cells (their ratios are left out):', ...invalid.map((c) => `  ${c.path} ${c.placement} offloads ${c.offloads}: ${c.invalid ?? ''}`)]
      : []),
    '',
    'TCP ratios, paired per repetition (a / b measured moments apart in the same repetition):',
    table(
      ['ratio', 'placement', 'offloads', 'median', 'min..max', 'per repetition'],
      t.ratios.map((r) => [
        r.name,
        r.placement,
        r.offloads ?? '-',
        r.median ?? '-',
        r.min !== null && r.max !== null ? `${fmtNum(r.min)}..${fmtNum(r.max)}` : '-',
        r.values.map((v) => fmtNum(v)).join(' ') || '-',
      ]),
    ),
    ...(left.length
      ? [
          '',
          'TCP ratios left out ("-" above):',
          ...left.map((r) => `  ${r.name} ${r.placement}${r.offloads ? ` offloads ${r.offloads}` : ''}: ${r.invalid ?? ''}`),
        ]
      : []),
    '',
    'TCP threads (the domains each cell keeps busy):',
    ...t.cells.map((c) => `  ${`${c.path} ${c.placement} ${c.offloads}`.padEnd(20)} ${c.from} -> ${c.to}: ${c.busy.join(', ')}`),
    ...t.notes.map((n) => `  note: ${n}`),
  ];
}
