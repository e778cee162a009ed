/** What `xsim run` prints: the interval lines (as iperf3 -i) and the tables of every layer's counters. */
import { dropCounters, table, type IntervalSample } from '@xsim/toolstack';

type Json = Record<string, unknown>;

export function intervalHeader(): string {
  return '[ interval s ]     frames   Gbit/s   lost';
}

/** One line per interval, as iperf3 prints them. */
export function intervalLine(x: IntervalSample): string {
  const span = `${x.start.toFixed(2).padStart(6)}-${x.end.toFixed(2).padStart(6)}`;
  return `[${span} ] ${String(x.frames).padStart(10)} ${x.gbps.toFixed(3).padStart(8)} ${String(x.lost).padStart(6)}`;
}

/** Rows a big topology prints: the busy ones (and a line saying how many idle ones were left out). */
const QUIET_ABOVE = 16;
function busyRows(rows: (string | number)[][], busy: (r: (string | number)[]) => boolean): { rows: (string | number)[][]; note: string } {
  if (rows.length <= QUIET_ABOVE) return { rows, note: '' };
  const kept = rows.filter(busy);
  return { rows: kept, note: kept.length < rows.length ? `\n(${rows.length - kept.length} idle rows not shown; -j gives every counter)` : '' };
}

export function domainTable(stats: Json): string {
  const rows: (string | number)[][] = [];
  for (const [key, v] of Object.entries(stats)) {
    if (key === 'fabric') continue;
    const s = v as Json;
    const st = ((s.endpoint as Json)?.stack ?? {}) as Json;
    const core = (s.core ?? {}) as Json;
    rows.push([
      key,
      Number(st.txFrames ?? 0),
      Number(st.rxFrames ?? 0),
      Number(st.rxUdp ?? 0),
      Number(st.rxArp ?? 0),
      core.pcpu === undefined ? '-' : Number(core.pcpu),
      Number(core.busyTurns ?? 0),
      Number(core.runMs ?? 0),
    ]);
  }
  const b = busyRows(rows, (r) => Number(r[1]) > 1 || Number(r[2]) > 1);
  return table(['domain', 'stack tx', 'stack rx', 'rx udp', 'rx arp', 'pCPU', 'busy turns', 'vCPU ms'], b.rows) + b.note;
}

export function vifTable(stats: Json): string {
  const rows: (string | number)[][] = [];
  for (const [key, v] of Object.entries(stats)) {
    if (!key.endsWith('/dom0')) continue;
    const s = v as Json;
    for (const [name, vs] of Object.entries((s.vifs ?? {}) as Json)) {
      const x = vs as Json;
      rows.push([`${key.split('/')[0]}/${name}`, Number(x.state), Number(x.txPackets), Number(x.rxPackets), Number(x.notifiesSent), Number(x.disconnects)]);
    }
    const b = s.bridge as Json;
    rows.push([`${key.split('/')[0]}/bridge`, '', Number(b.forwarded), Number(b.flooded), '', '']);
    const u = s.uplink as Json | null;
    if (u) rows.push([`${key.split('/')[0]}/uplink`, '', Number(u.txPackets), Number(u.rxPackets), '', '']);
  }
  const q = busyRows(rows, (r) => Number(r[2]) > 1 || Number(r[3]) > 1 || (r[1] !== '' && Number(r[1]) !== 4));
  return table(['dom0 port (netback)', 'state', 'from guest / fwd / tx', 'to guest / flood / rx', 'notifies', 'disconnects'], q.rows) + q.note;
}

export function nicTable(stats: Json): string {
  const f = stats.fabric as { nics: Json[] };
  const rows = f.nics.map((n) => [String(n.name), Number(n.wireTx), Number(n.wireRx), Number(n.rxDefault), Number(n.filters)]);
  const q = busyRows(rows, (r) => Number(r[1]) > 1 || Number(r[2]) > 1);
  return table(['NIC', 'wire tx', 'wire rx', 'to VI 0', 'filters'], q.rows) + q.note;
}

export function switchTable(stats: Json): string | null {
  const f = stats.fabric as { switches?: Json[] };
  if (!f.switches?.length) return null;
  const rows = f.switches.map((s) => [
    String(s.name),
    Number(s.swForwarded),
    Number(s.swFlooded),
    Number(s.macs),
    (s.ports as Json[]).filter((x) => x.wired).length,
  ]);
  return table(['switch', 'forwarded', 'flooded', 'MACs learnt', 'ports wired'], rows);
}

/** Non-zero drop counters; in a big topology, one line per counter name with its total and where. */
export function dropLines(stats: Json): string[] {
  const nz = [...dropCounters(stats)].filter(([, v]) => v > 0);
  if (nz.length <= QUIET_ABOVE) return nz.map(([k, v]) => `${k} = ${v}`);
  const by = new Map<string, { total: number; where: string[] }>();
  for (const [k, v] of nz) {
    const [where, ...rest] = k.split('.');
    const name = rest.join('.');
    const e = by.get(name) ?? { total: 0, where: [] };
    e.total += v;
    e.where.push(where);
    by.set(name, e);
  }
  return [...by].map(
    ([name, e]) =>
      `${name} = ${e.total} over ${e.where.length} place${e.where.length === 1 ? '' : 's'}${e.where.length <= 3 ? ` (${e.where.join(', ')})` : ''}`,
  );
}
