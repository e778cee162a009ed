/**
 * A topology split into partitions (issue 24, item 2): `"partitions": {"p0":
 * {"hosts": [...], "switches": [...]}, ...}` puts every host and switch in
 * exactly one partition, and each partition runs in a process of its own.
 * This module checks them (validate.ts calls it); partition-split.ts cuts a
 * topology into the one each partition runs.
 */
import type { PartitionSpec } from './types.ts';

/** A partition's name: a simple identifier (it names processes, sockets and log lines). */
const PARTITION_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;

type Fail = (path: string, message: string) => void;

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
  const out: Record<string, PartitionSpec> = {};
  for (const [name, spec] of entries) {
    const pp = `partitions.${name}`;
    if (!PARTITION_NAME.test(name)) fail(pp, `${JSON.stringify(name)} is not a partition name (a letter, then letters, digits, _ or -; at most 32)`);
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      fail(pp, `must be an object {"hosts": [...], "switches": [...]}, got ${describe(spec)}`);
      continue;
    }
    const o = spec as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== 'hosts' && k !== 'switches') fail(`${pp}.${k}`, 'unknown key (allowed: hosts, switches)');
    const hs = members(o.hosts ?? [], `${pp}.hosts`, 'host', hostSet, owner, name, fail);
    const ss = members(o.switches ?? [], `${pp}.switches`, 'switch', switchSet, owner, name, fail);
    if (hs.length === 0 && Array.isArray(o.hosts ?? []))
      fail(`${pp}.hosts`, `partition ${name} has no host: every partition runs at least one (a switch alone goes with a host's partition)`);
    out[name] = { hosts: hs, switches: ss };
  }
  const none = [...hosts.filter((h) => !owner.has(h)).map((h) => `host ${h}`), ...switches.filter((s) => !owner.has(s)).map((s) => `switch ${s}`)];
  if (entries.length > 0 && none.length)
    fail('partitions', `${none.join(', ')} ${none.length === 1 ? 'is' : 'are'} in no partition: every host and switch must be in one`);
  return out;
}
