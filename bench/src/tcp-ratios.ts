/**
 * The TCP section's paired ratios (per repetition, a / b measured moments
 * apart in the same repetition; median and min..max over repetitions; null
 * with the reason when a cell it pairs is not valid), and the notes that say
 * what the offload switch reaches.
 */
import { median } from './ratios.ts';
import type { Placement } from './schema.ts';
import type { OffloadMode, TcpCell, TcpPath, TcpRatio, TcpRep } from './tcp-schema.ts';

type Of = (r: TcpRep) => number;
const stream: Of = (r) => r.stream.gbps;
const tps: Of = (r) => r.rr.tps;
const udp: Of = (r) => r.udp.gbps;
const label = (c: TcpCell, what: string) => `${c.path} ${c.placement} offloads ${c.offloads} ${what}`;

/** a / b per repetition; null (and why) when either cell is not valid. */
function paired(name: string, placement: Placement, offloads: OffloadMode | null, a: [TcpCell, Of, string], b: [TcpCell, Of, string]): TcpRatio {
  const [ca, fa, wa] = a;
  const [cb, fb, wb] = b;
  const head = { name, placement, offloads, a: label(ca, wa), b: label(cb, wb) };
  const bad = [...new Set([ca, cb])].filter((c) => !c.valid);
  if (bad.length)
    return { ...head, median: null, min: null, max: null, values: [], invalid: bad.map((c) => `${label(c, '')}is INVALID (${c.invalid ?? ''})`).join('; ') };
  const n = Math.min(ca.reps.length, cb.reps.length);
  const values: number[] = [];
  for (let i = 0; i < n; i++) if (fb(cb.reps[i]) > 0) values.push(fa(ca.reps[i]) / fb(cb.reps[i]));
  if (!values.length) return { ...head, median: null, min: null, max: null, values, invalid: `${label(cb, wb)} was 0 in every repetition` };
  return { ...head, median: median(values), min: Math.min(...values), max: Math.max(...values), values };
}

export function tcpRatios(cells: TcpCell[], o: { placements: Placement[]; offloads: OffloadMode[] }): TcpRatio[] {
  const get = (path: TcpPath, placement: Placement, offloads: OffloadMode) =>
    cells.find((c) => c.path === path && c.placement === placement && c.offloads === offloads);
  const out: TcpRatio[] = [];
  for (const placement of o.placements) {
    for (const m of o.offloads) {
      const [u, v, d] = [get('unaccel', placement, m), get('vnic', placement, m), get('dom0', 'cross', m)];
      if (v && u) out.push(paired('tcp-stream vnic/unaccel', placement, m, [v, stream, 'tcp-stream'], [u, stream, 'tcp-stream']));
      if (v && d && placement === 'cross') out.push(paired('tcp-stream vnic/dom0', placement, m, [v, stream, 'tcp-stream'], [d, stream, 'tcp-stream']));
      if (v && u) out.push(paired('tcp-rr vnic/unaccel', placement, m, [v, tps, 'tcp-rr tps'], [u, tps, 'tcp-rr tps']));
    }
    for (const path of ['unaccel', 'vnic'] as const) {
      const [on, off] = [get(path, placement, 'on'), get(path, placement, 'off')];
      if (on && off) {
        out.push(paired(`offloads on/off ${path}`, placement, null, [on, stream, 'tcp-stream'], [off, stream, 'tcp-stream']));
        out.push(paired(`offloads on/off ${path} tcp-rr`, placement, null, [on, tps, 'tcp-rr tps'], [off, tps, 'tcp-rr tps']));
      }
    }
    const d = get('dom0', 'cross', 'on');
    if (d && placement === 'cross' && o.offloads.includes('off'))
      out.push({
        name: 'offloads on/off dom0',
        placement,
        offloads: null,
        a: label(d, 'tcp-stream'),
        b: 'dom0 cross offloads off tcp-stream (not measured)',
        median: null,
        min: null,
        max: null,
        values: [],
        invalid:
          "not measurable: a vif's offloads do not reach dom0's stack (netback's composeDom0 sets its txCsum on, always), so dom0 is measured with offloads on only",
      });
    for (const c of cells.filter((x) => x.placement === placement))
      out.push(paired(`tcp/udp ${c.path}`, placement, c.offloads, [c, stream, 'tcp-stream'], [c, udp, 'udp-stream']));
  }
  return out;
}

/** What the offload switch reaches and what the figures leave out. */
export function tcpNotes(o: { verify: boolean; offloads: OffloadMode[] }, placement: string): string[] {
  return [
    'offloads on: a1 -> b1 (cross), a1 -> a2 (same), the vifs as booted; offloads off: a3 -> b3, a3 -> a4, whose vifs (both ends) have "offloads": {"csum": false, "gso": false}; one simulation, so on and off are paired per repetition',
    "gso: with \"gso\" on, a guest's stack hands netfront TCP frames of up to 64 KiB (TSO, feature-gso-tcpv4) while no accelerator is attached, and netback cuts them (the unaccel cells); on vnic the VI NIC cuts them (vnic's tso argument, on by default), so there offloads on/off is TSO and checksum offload together; csumPartialShare says whether the sender's stack handed down partial checksums (about 1 on, 0 off)",
    "dom0: dom0's stack sits on its own bridge port, not behind a vif; netback's composeDom0 sets its offloads once (txCsum on), so no topology switch reaches it and dom0 is measured with offloads on only",
    `each repetition: a udp-stream (runStream, ${'1500'} B frames, the matrix's window) on the cell's ends, then the tcp-stream, then tcp-rr; the sink ${o.verify ? 'verifies every octet against the stream pattern (a corrupt octet makes the cell INVALID; the compare costs the receiver some goodput)' : 'does not verify octets (--no-tcp-verify): a corrupt octet would not show'}`,
    `placement: ${placement}`,
  ];
}
