/** `xsim mgmtdev list|show|set`: the NICs, as vdpa mgmtdev and ip link show them. */
import { table, type MgmtDev } from '@xsim/toolstack';
import type { ManageVerb } from './manage-verb.ts';

type Json = Record<string, unknown>;

/**
 * JSON as iproute2's vdpa prints it: one object keyed by the object type, each
 * device keyed by its name, snake_case attributes, states by name and number.
 */
export function vdpaMgmtdevs(list: MgmtDev[]): { mgmtdev: Record<string, Json> } {
  const o: Record<string, Json> = {};
  for (const m of list)
    o[m.name] = {
      host: m.host,
      alias: m.alias,
      mac: m.mac,
      mtu: m.mtu,
      link: m.link,
      max_vis: m.vis,
      vis_in_use: m.visInUse,
      vifs: m.vifs,
      vifs_free: m.vifsFree,
      filters: m.filters,
    };
  return { mgmtdev: o };
}

const mgmtdevList: ManageVerb = async ({ rest, call, out }) => {
  const all = await call('mgmtdev.list');
  const list = rest[0] ? all.filter((m) => m.name === rest[0] || m.host === rest[0]) : all;
  if (rest[0] && list.length === 0) throw new Error(`no management device "${rest[0]}" (have: ${all.map((m) => m.name).join(', ')})`);
  return out(vdpaMgmtdevs(list), () =>
    table(
      ['mgmtdev', 'host', 'alias', 'mac', 'mtu', 'link', 'VIs used', 'vifs', 'vifs free', 'filters'],
      list.map((m) => [m.name, m.host, m.alias, m.mac, m.mtu, m.link, `${m.visInUse}/${m.vis}`, m.vifs, m.vifsFree, m.filters]),
    ),
  );
};

const mgmtdevSet: ManageVerb = async ({ rest, call, out }) => {
  // vdpa dev set / ip link set style: mgmtdev set DEV link up|down | mtu N | reset
  const [name, attr, value, ...extra] = rest;
  const usage = 'usage: xsim mgmtdev set DEV link up|down | mtu N | reset';
  if (!name || !attr || extra.length > 0) throw new Error(usage);
  let args: { dev: string; link?: 'up' | 'down'; mtu?: number; reset?: true };
  if (attr === 'link') {
    if (value !== 'up' && value !== 'down') throw new Error(`mgmtdev set: link is "up" or "down", got ${value === undefined ? 'nothing' : `"${value}"`}`);
    args = { dev: name, link: value };
  } else if (attr === 'mtu') {
    if (value === undefined || !/^\d+$/.test(value)) throw new Error(`mgmtdev set: mtu needs a number, got ${value === undefined ? 'nothing' : `"${value}"`}`);
    args = { dev: name, mtu: Number(value) };
  } else if (attr === 'reset') {
    if (value !== undefined) throw new Error(usage);
    args = { dev: name, reset: true };
  } else throw new Error(`mgmtdev set: unknown attribute "${attr}" (attributes: link, mtu, reset)`);
  const v = await call('mgmtdev.set', args);
  return out(v, () => `${v.mgmtdev} (${v.host}): ${v.done}`);
};

/** mgmtdev VERB -> its handler. */
export const MGMTDEV_VERBS: Record<string, ManageVerb> = {
  list: mgmtdevList,
  show: mgmtdevList,
  set: mgmtdevSet,
};
