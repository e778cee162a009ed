/**
 * A topology split into partitions (issue 24, item 2): `"partitions": {"p0":
 * {"hosts": [...], "switches": [...], "address": "192.0.2.10", "port": N},
 * ...}` puts every host and switch in exactly one partition, and each
 * partition runs in a process of its own, perhaps on a machine of its own
 * (its tunnels on `address`, default 127.0.0.1). This module checks them
 * (validate.ts calls it); partition-split.ts cuts a topology into the one
 * each partition runs.
 */
import { parseUdpAddr } from '@xsim/nic';
import type { PartitionSpec } from './types.ts';

/** A partition's name: a simple identifier (it names processes, sockets and log lines). */
const PARTITION_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;

type Fail = (path: string, message: string) => void;

/** Where a partition's address is 127.0.0.1 when it names none (every partition on this machine). */
export const DEFAULT_PARTITION_ADDRESS = '127.0.0.1';

/** A DNS name's label (RFC 1123): letters, digits and hyphens, 1 to 63, no hyphen at either end. */
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * Why `s` is not a partition's address, or undefined when it is one: an IPv4
 * unicast address in dotted-quad form, or a DNS name (RFC 1123 labels, at
 * most 253 octets, a trailing dot allowed, the last label not all digits so
 * that a mistyped quad such as 10.0.0.256 is not taken for a name). The
 * others send to it, so not 0.0.0.0, a broadcast or a multicast group.
 */
export function partitionAddressProblem(s: string): string | undefined {
  const name = s.endsWith('.') ? s.slice(0, -1) : s;
  if (/^[0-9.]+$/.test(s)) {
    const a = parseUdpAddr(s);
    if (typeof a === 'string') return `${JSON.stringify(s)} is not an IPv4 address in dotted-quad form without leading zeros`;
    const first = Number(s.split('.')[0]);
    if (s === '0.0.0.0' || s === '255.255.255.255' || (first >= 224 && first <= 239))
      return `${s} is not a unicast address: the other partitions send to it (to bind every interface instead, run with --bind-any)`;
    return undefined;
  }
  const labels = name.split('.');
  if (name.length === 0 || name.length > 253 || !labels.every((l) => LABEL.test(l)) || /^[0-9]+$/.test(labels[labels.length - 1]))
    return `${JSON.stringify(s)} is neither an IPv4 address nor a DNS name (labels of letters, digits and -, at most 63 each and 253 in all)`;
  return undefined;
}

/** Why `v` is not a UDP port for a partition's tunnels, or undefined. */
function portProblem(v: unknown): string | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535
    ? undefined
    : `must be a UDP port, an integer from 1 to 65535, got ${describe(v)}`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** A partition's list of names (hosts or switches), each one known and in no other partition so far. */
function members(
  v: unknown,
  path: string,
  kind: 'host' | 'switch',
  known: ReadonlySet<string>,
  owner: Map<string, string>,
  part: string,
  fail: Fail,
): string[] {
  if (!Array.isArray(v)) {
    fail(path, `must be an array of ${kind} names, got ${describe(v)}`);
    return [];
  }
  const out: string[] = [];
  v.forEach((x, i) => {
    const p = `${path}[${i}]`;
    if (typeof x !== 'string') return fail(p, `must be a ${kind} name, got ${describe(x)}`);
    if (!known.has(x)) return fail(p, `no ${kind} named ${JSON.stringify(x)} (${kind === 'host' ? 'hosts' : 'switches'}: ${[...known].join(', ') || 'none'})`);
    const prev = owner.get(x);
    if (prev !== undefined)
      return fail(p, `${kind} ${x} is already in partition ${prev === part ? `${part} (listed twice)` : prev}: a ${kind} runs in one partition`);
    owner.set(x, part);
    out.push(x);
  });
  return out;
}

/**
 * Check a topology's `partitions` against its (validated) host and switch
 * names, reporting every fault through `fail` with its path; the partitions,
 * normalised (switches: [] when absent), or undefined when there are none.
 */
export function validatePartitions(v: unknown, hosts: readonly string[], switches: readonly string[], fail: Fail): Record<string, PartitionSpec> | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    fail('partitions', `must be an object of partition name -> {"hosts": [...], "switches": [...]}, got ${describe(v)}`);
    return undefined;
  }
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length === 0) fail('partitions', 'names no partition (leave it out to run the topology in one process)');
  const hostSet = new Set(hosts);
  const switchSet = new Set(switches);
  const owner = new Map<string, string>();
  /** "address:port" -> the partition that named both (a default port depends on --vxlan-base-port: checked when the addresses are made). */
  const endpoint = new Map<string, string>();
  const out: Record<string, PartitionSpec> = {};
  for (const [name, spec] of entries) {
    const pp = `partitions.${name}`;
    if (!PARTITION_NAME.test(name)) fail(pp, `${JSON.stringify(name)} is not a partition name (a letter, then letters, digits, _ or -; at most 32)`);
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      fail(pp, `must be an object {"hosts": [...], "switches": [...]}, got ${describe(spec)}`);
      continue;
    }
    const o = spec as Record<string, unknown>;
    for (const k of Object.keys(o))
      if (!['hosts', 'switches', 'address', 'port'].includes(k)) fail(`${pp}.${k}`, 'unknown key (allowed: hosts, switches, address, port)');
    const hs = members(o.hosts ?? [], `${pp}.hosts`, 'host', hostSet, owner, name, fail);
    const ss = members(o.switches ?? [], `${pp}.switches`, 'switch', switchSet, owner, name, fail);
    if (hs.length === 0 && Array.isArray(o.hosts ?? []))
      fail(`${pp}.hosts`, `partition ${name} has no host: every partition runs at least one (a switch alone goes with a host's partition)`);
    const checked: PartitionSpec = { hosts: hs, switches: ss };
    if (o.address !== undefined) {
      const why =
        typeof o.address === 'string' ? partitionAddressProblem(o.address) : `must be a string (an IPv4 address or a DNS name), got ${describe(o.address)}`;
      if (why) fail(`${pp}.address`, why);
      else checked.address = o.address as string;
    }
    if (o.port !== undefined) {
      const why = portProblem(o.port);
      if (why) fail(`${pp}.port`, why);
      else checked.port = o.port as number;
    }
    if (checked.port !== undefined && (o.address === undefined || checked.address !== undefined)) {
      const key = `${(checked.address ?? DEFAULT_PARTITION_ADDRESS).toLowerCase()}:${checked.port}`;
      const prev = endpoint.get(key);
      if (prev !== undefined) fail(`${pp}.port`, `${key} is already partition ${prev}'s: each partition's tunnels need a UDP address of their own`);
      else endpoint.set(key, name);
    }
    out[name] = checked;
  }
  const none = [...hosts.filter((h) => !owner.has(h)).map((h) => `host ${h}`), ...switches.filter((s) => !owner.has(s)).map((s) => `switch ${s}`)];
  if (entries.length > 0 && none.length)
    fail('partitions', `${none.join(', ')} ${none.length === 1 ? 'is' : 'are'} in no partition: every host and switch must be in one`);
  return out;
}
