/** `xsim dev list|show|stats|features|set|add|del`: the guests' vifs, as xl network-list and vdpa dev show them. */
import { STATE_NAMES } from '@xsim/hypervisor';
import { describeRateNode, table, type Dev } from '@xsim/toolstack';
import type { ManageVerb } from './manage-verb.ts';

type Json = Record<string, unknown>;

export function vdpaDevs(list: Dev[]): { dev: Record<string, Json> } {
  const o: Record<string, Json> = {};
  for (const d of list)
    o[d.dev] = {
      domid: d.domid,
      handle: d.handle,
      backend_id: d.backendId,
      mac: d.mac,
      ip: d.ip,
      state: STATE_NAMES[d.state] ?? 'Unknown',
      state_num: d.state,
      backend_state: STATE_NAMES[d.backendState] ?? 'Unknown',
      backend_state_num: d.backendState,
      event_channel: d.evtchn,
      event_channel_rx: d.evtchnRx,
      tx_ring_ref: d.txRingRef,
      rx_ring_ref: d.rxRingRef,
      backend_path: d.backendPath,
      accel: d.accel,
    };
  return { dev: o };
}

function flat(o: Json, prefix = ''): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(o)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) out.push(...flat(v as Json, key));
    else out.push([key, Array.isArray(v) ? JSON.stringify(v) : String(v)]);
  }
  return out;
}

const devList: ManageVerb = async ({ rest, call, out }) => {
  const all = await call('dev.list');
  const list = rest[0] ? all.filter((d) => d.dev === rest[0] || d.dev.startsWith(`${rest[0]}/`)) : all;
  if (rest[0] && list.length === 0) throw new Error(`no device "${rest[0]}" (have: ${all.map((d) => d.dev).join(', ')})`);
  // xl network-list's columns (Idx BE Mac state evt-ch tx-/rx-ring-ref BE-path), with the domain and accelerator.
  const st = (n: number) => STATE_NAMES[n] ?? String(n);
  return out(vdpaDevs(list), () =>
    table(
      ['dev', 'domid', 'Idx', 'BE', 'mac', 'ip', 'state', 'BE state', 'evt-ch', 'tx-/rx-ring-ref', 'BE-path', 'accel'],
      list.map((d) => [
        d.dev,
        d.domid,
        d.handle,
        d.backendId,
        d.mac,
        d.ip,
        `${d.state} ${st(d.state)}`,
        `${d.backendState} ${st(d.backendState)}`,
        // Split event channels: TX/RX.
        d.evtchn === null ? '-' : d.evtchnRx === null ? d.evtchn : `${d.evtchn}/${d.evtchnRx}`,
        `${d.txRingRef ?? '-'}/${d.rxRingRef ?? '-'}`,
        d.backendPath,
        d.accel ?? '-',
      ]),
    ),
  );
};

/** `qidx N` after DEV (dev stats only), as vdpa dev vstats show DEV qidx N. */
function qidxOf(verb: string, kv: string[]): number | undefined {
  if (kv.length === 0) return undefined;
  if (verb !== 'stats' || kv[0] !== 'qidx' || kv.length !== 2 || !/^\d+$/.test(kv[1]))
    throw new Error(`usage: xsim dev ${verb} show DEV${verb === 'stats' ? ' [qidx N]' : ''}`);
  return Number(kv[1]);
}

const devStats: ManageVerb = async ({ rest, verb, call, out }) => {
  if (rest[0] !== 'show' || !rest[1]) throw new Error(`usage: xsim dev ${verb} show DEV${verb === 'stats' ? ' [qidx N]' : ''}`);
  const qidx = qidxOf(verb, rest.slice(2));
  const v =
    verb === 'stats' ? await call('dev.stats', { dev: rest[1], ...(qidx !== undefined ? { qidx } : {}) }) : await call('dev.features', { dev: rest[1] });
  return out(v, () => {
    // The whole vif's table leaves out each queue's (`qidx N` shows one; -j gives them all).
    const side = (o: Json) => flat(Object.fromEntries(Object.entries(o).filter(([k]) => k !== 'queues')));
    const rows = [...side(v.frontend as Json).map(([k, x]) => ['netfront', k, x]), ...side(v.backend as Json).map(([k, x]) => ['netback', k, x])];
    const title = qidx !== undefined ? `${v.dev} qidx ${qidx}` : v.dev;
    return `${title}\n` + table(['end', verb === 'stats' ? 'counter' : 'feature', 'value'], rows);
  });
};

const devAdd: ManageVerb = async ({ rest, call, out }) => {
  // vdpa style: dev add HOST/DOMU [name vifN] [mac M] [ip A] [mtu N]
  const [target, ...kv] = rest;
  if (!target) throw new Error('usage: xsim dev add HOST/DOMU [name vifN] [mac M] [ip A] [mtu N]');
  const args: { dev: string; name?: string; mac?: string; ip?: string; mtu?: number } = { dev: target };
  for (let k = 0; k < kv.length; k += 2) {
    const key = kv[k];
    const value = kv[k + 1];
    if (!['name', 'mac', 'ip', 'mtu'].includes(key)) throw new Error(`dev add: unknown attribute "${key}" (attributes: name, mac, ip, mtu)`);
    if (value === undefined) throw new Error(`dev add: ${key} needs a value`);
    if (key === 'mtu') {
      if (!/^\d+$/.test(value)) throw new Error(`dev add: mtu "${value}" is not a number`);
      args.mtu = Number(value);
    } else args[key as 'name' | 'mac' | 'ip'] = value;
  }
  const v = await call('dev.add', args);
  return out(v, () => `${v.dev} added: mac ${v.mac} ip ${v.ip} mtu ${v.mtu}, connected`);
};

/**
 * vdpa style: dev set DEV [rate RATE] [max-filters N] [max-buf-pages N]: the vif's rate limit (xl's rate=,
 * e.g. 10Mb/s@20ms, or unlimited: the backend's rate node, which netback applies at once) and its
 * accelerator limits (xenstore limits/*, which the plugin applies).
 */
const devSet: ManageVerb = async ({ rest, call, out }) => {
  const usage = 'usage: xsim dev set HOST/DOMU[/vifN] [rate RATE|unlimited] [max-filters N] [max-buf-pages N] [csum on|off] [gso on|off]';
  const [target, ...kv] = rest;
  if (!target || kv.length === 0) throw new Error(usage);
  const args: { dev: string; maxFilters?: number; maxBufPages?: number; rate?: string; csum?: boolean; gso?: boolean } = { dev: target };
  const keys: Record<string, 'maxFilters' | 'maxBufPages'> = { 'max-filters': 'maxFilters', 'max-buf-pages': 'maxBufPages' };
  for (let k = 0; k < kv.length; k += 2) {
    const value = kv[k + 1];
    if (kv[k] === 'rate') {
      if (value === undefined) throw new Error("dev set: rate needs a value (xl's RATE, e.g. 10Mb/s@20ms, or unlimited)");
      args.rate = value;
      continue;
    }
    if (kv[k] === 'csum' || kv[k] === 'gso') {
      // As ethtool -K: on or off.
      if (value !== 'on' && value !== 'off') throw new Error(`dev set: ${kv[k]} needs on or off, got ${value === undefined ? 'nothing' : `"${value}"`}`);
      args[kv[k] as 'csum' | 'gso'] = value === 'on';
      continue;
    }
    const key = keys[kv[k]];
    if (!key) throw new Error(`dev set: unknown attribute "${kv[k]}" (attributes: rate, max-filters, max-buf-pages, csum, gso)`);
    if (value === undefined || !/^\d+$/.test(value)) throw new Error(`dev set: ${kv[k]} needs a number, got ${value === undefined ? 'nothing' : `"${value}"`}`);
    args[key] = Number(value);
  }
  const v = await call('dev.set', args);
  const show = (n: number | undefined) => (n === undefined ? "the plugin's default" : String(n));
  return out(v, () => {
    const lines: string[] = [];
    if (args.rate !== undefined)
      lines.push(`${v.dev}: rate ${v.rate === null ? 'unlimited' : `${args.rate}: ${describeRateNode(v.rate)}`} (${v.backendPath}/rate)`);
    if (args.maxFilters !== undefined || args.maxBufPages !== undefined)
      lines.push(`${v.dev}: max-filters ${show(v.limits.maxFilters)}, max-buf-pages ${show(v.limits.maxBufPages)} (${v.backendPath}/limits)`);
    if (v.offloads)
      lines.push(
        `${v.dev}: csum ${v.offloads.csum ? 'on' : 'off'}, gso ${v.offloads.gso ? 'on' : 'off'}${v.offloads.changed ? ' (the vif reconnects: feature-no-csum-offload, feature-gso-tcpv4)' : ' (unchanged)'}`,
      );
    return lines.join('\n');
  });
};

const devDel: ManageVerb = async ({ rest, call, out }) => {
  if (!rest[0]) throw new Error('usage: xsim dev del HOST/DOMU/vifN');
  const v = await call('dev.del', { dev: rest[0] });
  return out(v, () => `${v.dev} deleted${v.forced ? ' (its frontend did not close in time: forced)' : ''}`);
};

/** dev VERB -> its handler. */
export const DEV_VERBS: Record<string, ManageVerb> = {
  list: devList,
  show: devList,
  stats: devStats,
  features: devStats,
  set: devSet,
  add: devAdd,
  del: devDel,
};
