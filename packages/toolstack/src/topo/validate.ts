/**
 * Topology validation: every problem is reported with the path of the field
 * at fault (hosts[1].domUs[0].vifs[0].mac), all of them at once, and unknown
 * keys are errors so a typo never passes silently. The result is normalised:
 * defaults filled in, MACs lower-cased.
 */
import { DOMID_FIRST_RESERVED, DOMID_MAX } from '@xsim/hypervisor';
import { netfrontPages } from '@xsim/netfront';
import { dom0MinPages } from '@xsim/netback';
import { nicModel } from '@xsim/nic';
import { IPV4_PATTERN, parseIp } from '@xsim/netstack';
import { offloadsOf } from './offloads.ts';
import { validatePartitions } from './partitions.ts';
import { parseXlRate } from './rate.ts';
import type { DomUSpec, HostSpec, Pinning, SwitchSpec, Topology, VifLimits, VifSpec, WireSpec } from './types.ts';
import { TunnelEnds, isTunnelNode, tunnelNode } from './vxlan.ts';

export interface TopologyIssue {
  path: string;
  message: string;
}

export class TopologyError extends Error {
  constructor(readonly issues: TopologyIssue[]) {
    super(`invalid topology:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`);
    this.name = 'TopologyError';
  }
}

/**
 * What the code really does (measured by xsim scale): hosts and switches are
 * objects in the NIC worker, domains vCPUs on pCPU workers, a host's guests
 * limited by its NIC's VIs and dom0's skbs rather than by threads.
 */
export const LIMITS = { hosts: 64, domUsPerHost: 256, vifsPerDomU: 8, switches: 64, switchPorts: 256 };

type Obj = Record<string, unknown>;

class Checker {
  readonly issues: TopologyIssue[] = [];

  fail(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  obj(v: unknown, path: string, allowed: string[]): Obj | undefined {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      this.fail(path, `must be an object, got ${describe(v)}`);
      return undefined;
    }
    for (const k of Object.keys(v)) if (!allowed.includes(k)) this.fail(`${path ? path + '.' : ''}${k}`, `unknown key (allowed: ${allowed.join(', ')})`);
    return v as Obj;
  }

  arr(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) {
      this.fail(path, `must be an array, got ${describe(v)}`);
      return [];
    }
    return v;
  }

  str(v: unknown, path: string, re?: RegExp, what?: string): string | undefined {
    if (typeof v !== 'string') {
      this.fail(path, `must be a string, got ${describe(v)}`);
      return undefined;
    }
    if (re && !re.test(v)) {
      this.fail(path, `${JSON.stringify(v)} is not ${what}`);
      return undefined;
    }
    return v;
  }

  int(v: unknown, path: string, dflt: number | undefined, min: number, max: number, why = ''): number | undefined {
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(path, `must be an integer from ${min} to ${max}${why}, got ${describe(v)}`);
      return undefined;
    }
    return v;
  }

  /** A line rate in Gbit/s: a number from 0.001 (1 Mbit/s) to 400. */
  gbps(v: unknown, path: string): number | undefined {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0.001 || v > 400) {
      this.fail(path, `must be a line rate in Gbit/s from 0.001 to 400, got ${describe(v)}`);
      return undefined;
    }
    return v;
  }

  mac(v: unknown, path: string): string | undefined {
    const s = this.str(v, path, /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, 'a MAC address (aa:bb:cc:dd:ee:ff)');
    if (s === undefined) return undefined;
    if (Number.parseInt(s.slice(0, 2), 16) & 1) {
      this.fail(path, `${JSON.stringify(s)} is not a unicast MAC address`);
      return undefined;
    }
    if (/^00(:00){5}$/.test(s)) {
      this.fail(path, `${JSON.stringify(s)}: the all-zero MAC is no station's address`);
      return undefined;
    }
    return s.toLowerCase();
  }

  /** A dotted quad in canonical form (no leading zeros: "10.0.010.1" would be a second spelling of 10.0.10.1). */
  ip(v: unknown, path: string): string | undefined {
    const s = this.str(v, path, IPV4_RE, 'an IPv4 address in dotted-quad form without leading zeros');
    if (s === undefined) return undefined;
    const host = parseIp(s) % 65536;
    if (host === 0 || host === 65535) {
      this.fail(path, `${s} is the ${host === 0 ? 'network' : 'broadcast'} address of the /16 every domain shares, not a host's`);
      return undefined;
    }
    return s;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

const IPV4_RE = new RegExp(IPV4_PATTERN);
const NAME_RE = /^[a-z0-9][a-z0-9-]*$/;
/** Names a domU may not take: they name dom0 (in `xsim` refs and in xenstore). */
const RESERVED = new Set(['dom0', 'domain-0']);
/** Guest pages beyond netfront's buffers: rings, the odd allocation. */
const DOMU_SLACK_PAGES = 16;

/**
 * RAM (4 KiB pages) a guest with `vifs` vifs at `mtu` needs: netfront's
 * buffers for each (for as many queues as `queues[i]` says vif i may ask
 * for; absent, 1), and a little for the kernel.
 */
export function guestPagesNeeded(vifs: number, mtu: number, queues: readonly number[] = []): { need: number; perVif: number; slack: number } {
  const perVif = netfrontPages(mtu);
  let need = DOMU_SLACK_PAGES;
  for (let i = 0; i < Math.max(1, vifs); i++) need += netfrontPages(mtu, queues[i] ?? 1);
  return { need, perVif, slack: DOMU_SLACK_PAGES };
}

/** The most queues a vif or a host may be given. */
export const MAX_QUEUES_LIMIT = 64;
const HEX4 = /^[0-9a-fA-F]{4}$/;

/** Addresses claimed so far: each MAC and IP once, every IP in the one /16 all domains share. */
class Claims {
  private readonly macs = new Map<string, string>();
  private readonly ips = new Map<string, string>();
  private subnet: number | undefined;

  constructor(private readonly c: Checker) {}

  mac(mac: string | undefined, path: string): void {
    if (!mac) return;
    const prev = this.macs.get(mac);
    if (prev) this.c.fail(path, `MAC ${mac} is already used by ${prev}`);
    else this.macs.set(mac, path);
  }

  ip(ip: string | undefined, path: string): void {
    if (!ip) return;
    const prev = this.ips.get(ip);
    if (prev) this.c.fail(path, `IP ${ip} is already used by ${prev}`);
    else this.ips.set(ip, path);
    const net = Math.floor(parseIp(ip) / 65536);
    if (this.subnet === undefined) this.subnet = net;
    else if (net !== this.subnet) this.c.fail(path, `${ip} is outside the /16 shared by every domain (all sit on one bridged segment)`);
  }
}

/** What a host's and its domains' checks share. */
interface HostScope {
  c: Checker;
  claims: Claims;
  cpupools: Record<string, number[]> | undefined;
  /** The host being checked's limits, for its vifs. */
  limits?: VifLimits;
}

/** A vif's (or a host's) accelerator limits: known keys, each a bounded integer. */
function limitsOf(c: Checker, v: unknown, path: string): VifLimits | undefined {
  if (v === undefined) return undefined;
  const o = c.obj(v, path, ['maxFilters', 'maxBufPages']) ?? {};
  const out: VifLimits = {};
  if (o.maxFilters !== undefined) out.maxFilters = c.int(o.maxFilters, `${path}.maxFilters`, undefined, 0, 65536);
  if (o.maxBufPages !== undefined) out.maxBufPages = c.int(o.maxBufPages, `${path}.maxBufPages`, undefined, 0, 65536);
  return out;
}

/** A domain's placement: pinned to a pCPU or in a cpupool (one that exists), not both. */
function pinningOf(s: HostScope, x: Record<string, unknown>, path: string): Pinning {
  const { c, cpupools } = s;
  const out: Pinning = {};
  if (x.pcpu !== undefined) out.pcpu = c.int(x.pcpu, `${path}.pcpu`, undefined, 0, 1023);
  if (x.cpupool !== undefined) {
    const pool = c.str(x.cpupool, `${path}.cpupool`);
    if (pool !== undefined && !(cpupools && Object.hasOwn(cpupools, pool)))
      c.fail(`${path}.cpupool`, `no cpupool named "${pool}" (cpupools: ${Object.keys(cpupools ?? {}).join(', ') || 'none'})`);
    out.cpupool = pool;
  }
  if (out.pcpu !== undefined && out.cpupool !== undefined) c.fail(path, 'pin to a pcpu or place in a cpupool, not both');
  return out;
}

/** One domU of host `hname`: its name and domid unique on the host, memory enough for its vifs' buffers. */
function validateDomU(
  s: HostScope,
  d: unknown,
  dp: string,
  di: number,
  hname: string,
  mtu: number,
  seen: { names: Set<string>; domids: Set<number> },
): DomUSpec {
  const { c, claims } = s;
  const x = c.obj(d, dp, ['name', 'domid', 'memPages', 'vifs', 'pcpu', 'cpupool']) ?? {};
  const dname = c.str(x.name, `${dp}.name`, NAME_RE, 'a domain name ([a-z0-9-])') ?? `d${di}`;
  if (RESERVED.has(dname)) c.fail(`${dp}.name`, `"${dname}" is reserved: it names the host's dom0`);
  if (seen.names.has(dname)) c.fail(`${dp}.name`, `domU name "${dname}" is used twice on ${hname}`);
  seen.names.add(dname);
  // Xen reserves DOMID_FIRST_RESERVED (0x7FF0 = 32752) and up for DOMID_SELF, DOMID_IO, DOMID_XEN, ...
  const domid =
    c.int(x.domid, `${dp}.domid`, di + 1, 1, DOMID_MAX, ` (Xen reserves ${DOMID_FIRST_RESERVED} and up: DOMID_SELF, DOMID_IO, DOMID_XEN, ...)`) ?? di + 1;
  if (seen.domids.has(domid)) c.fail(`${dp}.domid`, `domid ${domid} is used twice on ${hname}`);
  seen.domids.add(domid);
  const vsIn = c.arr(x.vifs, `${dp}.vifs`);
  // netfront's buffers for every vif (each queue its own), and a little for the kernel: what the guest really needs.
  // (A queues value out of range is refused below; it counts as 1 here.)
  const queuesIn = vsIn.map((v) => {
    const q = v && typeof v === 'object' ? (v as Obj).queues : undefined;
    return typeof q === 'number' && Number.isInteger(q) && q >= 1 && q <= MAX_QUEUES_LIMIT ? q : 1;
  });
  const { need } = guestPagesNeeded(vsIn.length, mtu, queuesIn);
  // The default: 1024 pages (or what one queue per vif needs, if more), and each further queue's pages on
  // top, so a multi-queue guest keeps the free RAM a one-queue guest has (a plugin's DMA area lives there).
  const oneQueue = guestPagesNeeded(vsIn.length, mtu).need;
  const memPages =
    c.int(
      x.memPages,
      `${dp}.memPages`,
      Math.max(1024, oneQueue) + need - oneQueue,
      need,
      65536,
      need === oneQueue
        ? ` (4 KiB pages: ${Math.max(1, vsIn.length)} vif(s) at MTU ${mtu} take ${netfrontPages(mtu)} pages each, plus ${DOMU_SLACK_PAGES})`
        : ` (4 KiB pages: ${vsIn.length} vif(s) with ${queuesIn.reduce((a, b) => a + b, 0)} queues at MTU ${mtu} take ${need - DOMU_SLACK_PAGES}, plus ${DOMU_SLACK_PAGES})`,
    ) ?? need;
  if (Array.isArray(x.vifs) && (vsIn.length < 1 || vsIn.length > LIMITS.vifsPerDomU)) c.fail(`${dp}.vifs`, `must have 1 to ${LIMITS.vifsPerDomU} vifs`);
  const vifs: VifSpec[] = vsIn.map((v, vi) => {
    const vp = `${dp}.vifs[${vi}]`;
    const y = c.obj(v, vp, ['mac', 'ip', 'limits', 'rate', 'queues', 'offloads']) ?? {};
    const vif: VifSpec = { mac: c.mac(y.mac, `${vp}.mac`) ?? '', ip: c.ip(y.ip, `${vp}.ip`) ?? '' };
    if (y.queues !== undefined) vif.queues = c.int(y.queues, `${vp}.queues`, undefined, 1, MAX_QUEUES_LIMIT, " (the most queues this vif's netfront asks for)");
    const offloads = offloadsOf(y.offloads, `${vp}.offloads`, (p, m) => c.fail(p, m));
    if (offloads) vif.offloads = offloads;
    const rate = y.rate === undefined ? undefined : c.str(y.rate, `${vp}.rate`);
    if (rate !== undefined) {
      try {
        parseXlRate(rate);
        vif.rate = rate;
      } catch (e) {
        c.fail(`${vp}.rate`, `${(e as Error).message} (xl's rate: AMOUNT[@INTERVAL], e.g. 10Mb/s@20ms)`);
      }
    }
    const limits = { ...s.limits, ...limitsOf(c, y.limits, `${vp}.limits`) };
    if (Object.keys(limits).length) vif.limits = limits;
    claims.mac(vif.mac, `${vp}.mac`);
    claims.ip(vif.ip, `${vp}.ip`);
    return vif;
  });
  return { name: dname, domid, memPages, vifs, ...pinningOf(s, x, dp) };
}

/** One host: its name unique, its NIC, its dom0 (memory enough for the NIC driver), its domUs, VIs enough for its vifs. */
function validateHost(s: HostScope, h: unknown, hi: number, hostNames: Set<string>): HostSpec {
  const { c, claims } = s;
  const hp = `hosts[${hi}]`;
  const o = c.obj(h, hp, ['name', 'nic', 'dom0', 'domUs', 'limits']) ?? {};
  const hname = c.str(o.name, `${hp}.name`, NAME_RE, 'a host name ([a-z0-9-])') ?? `host${hi}`;
  if (hostNames.has(hname)) c.fail(`${hp}.name`, `host name "${hname}" is used twice`);
  hostNames.add(hname);
  const n = c.obj(o.nic, `${hp}.nic`, ['vendor', 'device', 'mac', 'vis', 'mtu', 'filters']) ?? {};
  const nic = {
    vendor: (c.str(n.vendor, `${hp}.nic.vendor`, HEX4, '4 hex digits') ?? '0000').toLowerCase(),
    device: (c.str(n.device, `${hp}.nic.device`, HEX4, '4 hex digits') ?? '0000').toLowerCase(),
    mac: c.mac(n.mac, `${hp}.nic.mac`) ?? '',
    vis: c.int(n.vis, `${hp}.nic.vis`, 64, 1, 1024) ?? 64,
    mtu: c.int(n.mtu, `${hp}.nic.mtu`, 1500, 68, 9000) ?? 1500,
    // Absent: the NIC's own default (DEFAULT_FILTER_TABLE_SIZE).
    ...(n.filters !== undefined ? { filters: c.int(n.filters, `${hp}.nic.filters`, undefined, 1, 1 << 20) } : {}),
  };
  claims.mac(nic.mac, `${hp}.nic.mac`);
  const d0 = c.obj(o.dom0, `${hp}.dom0`, ['ip', 'memPages', 'maxQueues', 'pcpu', 'cpupool']) ?? {};
  const dom0Min = dom0MinPages(nic.mtu, nicModel(nic.vendor, nic.device));
  const dom0 = {
    ip: c.ip(d0.ip, `${hp}.dom0.ip`) ?? '',
    memPages:
      c.int(
        d0.memPages,
        `${hp}.dom0.memPages`,
        Math.max(4096, dom0Min),
        dom0Min,
        262144,
        ` (4 KiB pages: the NIC driver's RX ring and skbs need ${dom0Min} at MTU ${nic.mtu})`,
      ) ?? 4096,
    ...(d0.maxQueues !== undefined
      ? { maxQueues: c.int(d0.maxQueues, `${hp}.dom0.maxQueues`, undefined, 1, MAX_QUEUES_LIMIT, " (netback's max_queues)") }
      : {}),
    ...pinningOf(s, d0, `${hp}.dom0`),
  };
  claims.ip(dom0.ip, `${hp}.dom0.ip`);
  const dsIn = c.arr(o.domUs, `${hp}.domUs`);
  if (dsIn.length > LIMITS.domUsPerHost) c.fail(`${hp}.domUs`, `at most ${LIMITS.domUsPerHost} domUs per host`);
  const vifsHere = dsIn.reduce((k: number, d) => k + (Array.isArray((d as Obj)?.vifs) ? ((d as Obj).vifs as unknown[]).length : 0), 0);
  const seen = { names: new Set<string>(), domids: new Set<number>() };
  const limits = limitsOf(c, o.limits, `${hp}.limits`);
  const domUs = dsIn.map((d, di) => validateDomU({ ...s, limits }, d, `${hp}.domUs[${di}]`, di, hname, nic.mtu, seen));
  // Each guest vif may be given a VI (VI 0 is dom0's): more vifs than VIs would leave some unaccelerated.
  if (vifsHere > nic.vis - 1 && nic.vis > 1)
    c.fail(`${hp}.nic.vis`, `${nic.vis} VIs (one is dom0's) cannot give each of the host's ${vifsHere} vifs one: at least ${vifsHere + 1}`);
  return { name: hname, nic, dom0, domUs, ...(limits ? { limits } : {}) };
}

export function validateTopology(input: unknown): Topology {
  const c = new Checker();
  const top = c.obj(input, '', ['name', 'hosts', 'switches', 'wires', 'cpupools', 'partitions']);
  if (!top) throw new TopologyError(c.issues);
  const name = c.str(top.name, 'name', /^.+$/, 'a non-empty name') ?? '';
  const hostsIn = c.arr(top.hosts, 'hosts');
  if (Array.isArray(top.hosts) && hostsIn.length === 0) c.fail('hosts', 'at least one host is needed');
  if (hostsIn.length > LIMITS.hosts) c.fail('hosts', `at most ${LIMITS.hosts} hosts`);
  const scope: HostScope = { c, claims: new Claims(c), cpupools: validatePools(c, top.cpupools) };
  const hostNames = new Set<string>();
  const hosts = hostsIn.map((h, hi) => validateHost(scope, h, hi, hostNames));
  const switches = validateSwitches(c, top.switches, hostNames);
  const wires = validateWires(c, top.wires, hosts, switches);
  const partitions = validatePartitions(
    top.partitions,
    [...hostNames],
    switches.map((s) => s.name),
    (p, m) => c.fail(p, m),
  );
  if (c.issues.length) throw new TopologyError(c.issues);
  return { name, hosts, switches, wires, ...(scope.cpupools ? { cpupools: scope.cpupools } : {}), ...(partitions ? { partitions } : {}) };
}

function validatePools(c: Checker, v: unknown): Record<string, number[]> | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    c.fail('cpupools', `must be an object of pool name -> pCPU list, got ${describe(v)}`);
    return undefined;
  }
  const out: Record<string, number[]> = {};
  for (const [name, cpus] of Object.entries(v)) {
    const p = `cpupools.${name}`;
    if (!NAME_RE.test(name)) {
      c.fail(p, 'a pool name is [a-z0-9-]');
      continue;
    }
    const list = c.arr(cpus, p);
    if (Array.isArray(cpus) && list.length === 0) c.fail(p, 'a cpupool needs at least one pCPU');
    out[name] = list.map((x, i) => c.int(x, `${p}[${i}]`, undefined, 0, 1023) ?? 0);
    if (new Set(out[name]).size !== out[name].length) c.fail(p, 'names a pCPU twice');
  }
  return out;
}

function validateSwitches(c: Checker, v: unknown, hostNames: Set<string>): SwitchSpec[] {
  const list = v === undefined ? [] : c.arr(v, 'switches');
  if (list.length > LIMITS.switches) c.fail('switches', `at most ${LIMITS.switches} switches`);
  const names = new Set<string>();
  return list.map((s, si) => {
    const sp = `switches[${si}]`;
    const o = c.obj(s, sp, ['name', 'ports']) ?? {};
    const name = c.str(o.name, `${sp}.name`, NAME_RE, 'a switch name ([a-z0-9-])') ?? `sw${si}`;
    if (names.has(name)) c.fail(`${sp}.name`, `switch name "${name}" is used twice`);
    if (hostNames.has(name)) c.fail(`${sp}.name`, `"${name}" is a host's name too: a wire end must name one thing`);
    names.add(name);
    const ports = c.int(o.ports, `${sp}.ports`, 48, 2, LIMITS.switchPorts) ?? 48;
    return { name, ports };
  });
}

/**
 * Wires join NICs (one port each) and switch ports into a tree: a loop, a NIC
 * wired twice, a switch out of ports, an end that names nothing, and a host
 * no wire leads to are errors naming the wire (or host) at fault. One end of
 * a wire may be a VXLAN tunnel (topo/vxlan.ts): a host beyond one is reached.
 */
function validateWires(c: Checker, v: unknown, hosts: HostSpec[], switches: SwitchSpec[]): WireSpec[] {
  const list = v === undefined ? [] : c.arr(v, 'wires');
  const hostNames = new Set(hosts.map((h) => h.name));
  const sw = new Map(switches.map((s) => [s.name, s]));
  const nicWired = new Map<string, string>();
  const portsUsed = new Map<string, number>();
  // Union-find over hosts and switches: a wire between two already-joined ends closes a loop.
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let r = x;
    while (parent.has(r) && parent.get(r) !== r) r = parent.get(r)!;
    parent.set(x, r);
    return r;
  };
  const tunnels = new TunnelEnds((p, m) => c.fail(p, m));
  const tunnelRoots = (): Set<string> => new Set([...parent.keys()].filter(isTunnelNode).map(find));
  const wires: WireSpec[] = list.map((w, wi) => {
    const wp = `wires[${wi}]`;
    const o = c.obj(w, wp, ['a', 'b', 'gbps']) ?? {};
    // An object end is a VXLAN tunnel (topo/vxlan.ts checks it); it goes by a name of its own below.
    const ta = tunnels.end(o.a, `${wp}.a`);
    const tb = tunnels.end(o.b, `${wp}.b`);
    if (ta !== undefined && tb !== undefined) c.fail(wp, 'both ends are VXLAN tunnels: a tunnel wire joins a host or switch of this topology to the tunnel');
    const a = ta !== undefined ? tunnelNode(wp) : (c.str(o.a, `${wp}.a`) ?? '');
    const b = tb !== undefined ? tunnelNode(wp) : (c.str(o.b, `${wp}.b`) ?? '');
    const rate = o.gbps === undefined ? {} : { gbps: c.gbps(o.gbps, `${wp}.gbps`) ?? 0 };
    const spec = (): WireSpec => ({ a: ta ?? a, b: tb ?? b, ...rate });
    let ok = ta === undefined || tb === undefined;
    for (const [k, end] of [
      ['a', a],
      ['b', b],
    ] as const) {
      if (end && !isTunnelNode(end) && !hostNames.has(end) && !sw.has(end)) {
        c.fail(`${wp}.${k}`, `no host or switch named "${end}"`);
        ok = false;
      }
    }
    if (!ok || !a || !b) return spec();
    if (a === b) {
      c.fail(wp, `a wire from ${a} to itself`);
      return spec();
    }
    for (const end of [a, b]) {
      if (hostNames.has(end)) {
        // A NIC has one port: a host wired to two others needs a switch between them.
        const prev = nicWired.get(end);
        if (prev !== undefined) c.fail(wp, `${end}'s NIC is already wired by ${prev}: a NIC has one port (join three or more hosts through a switch)`);
        else nicWired.set(end, wp);
      } else if (sw.has(end)) {
        const used = (portsUsed.get(end) ?? 0) + 1;
        portsUsed.set(end, used);
        if (used > sw.get(end)!.ports) c.fail(wp, `switch ${end} has ${sw.get(end)!.ports} ports, all wired already`);
      }
    }
    const ra = find(a);
    const rb = find(b);
    if (ra === rb) c.fail(wp, `wiring ${a} to ${b} closes a loop: they are already connected (a tree of hosts and switches has no loops)`);
    else parent.set(ra, rb);
    return spec();
  });
  if (hosts.length > 1 && c.issues.length === 0) {
    // A host is reached from the first, or through a tunnel (what lies beyond it is not this topology's to check).
    const root = find(hosts[0].name);
    const beyond = tunnelRoots();
    const cut = hosts.filter((h) => find(h.name) !== root && !beyond.has(find(h.name))).map((h) => h.name);
    if (cut.length) c.fail('wires', `host(s) ${cut.join(', ')} cannot be reached from ${hosts[0].name}: no wire path leads there`);
  }
  for (const s of switches) if (!portsUsed.has(s.name)) c.fail('switches', `switch ${s.name} is wired to nothing`);
  return wires;
}
