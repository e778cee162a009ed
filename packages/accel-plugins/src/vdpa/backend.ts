/**
 * vdpa, dom0 side: gives each guest vif its own function of the virtio (vDPA)
 * NIC, `nic:1af4-1041`, whose functions present virtio-net split virtqueues.
 * vnic's counterpart for the second NIC model; the protocol with the guest is
 * vnic's (offer, accept, ready, running; detach, drained; fault), the device
 * commands are the vDPA ones (VDPA_OPS in @xsim/hypervisor).
 *
 * On accept (the grants of the guest's DMA area and its interrupt port) the
 * backend maps the grants and has the function's IOMMU map them, page i of
 * the area at IOVA i × 4096 (the guest knows each page's IOVA from its order),
 * then starts the function on the first VQ_PAIR_PAGES pages, which hold its
 * two queues (receiveq1: descriptor table, available ring, used ring; then
 * transmitq1 the same), with the guest's MAC as the only source it may send
 * from. The device's answer is a notify area made for this start, which goes
 * to the guest. Flows the slow path delivers to an attached guest are learnt
 * as steering rules under the vif's quota, by vnic's quota logic (quota.ts:
 * limits/max-filters, eviction, idle aging, ENOSPC), and carried across a
 * migration as vnic's are. Guests of one host reach each other through the
 * device's switch as vnic's do (../vnic/localmac.ts: a switch-only steering
 * rule per running function, `localmac` and `slowpath` to the others).
 */
import { CHANNEL_OP, VIF_KEY, logWarn } from '@xsim/hypervisor';
import { Type, pluginMessage, type AccelBackend, type AccelBackendContext, type AccelVif, type PluginManifest } from '@xsim/netback';
import { VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM, VQ_PAIR_PAGES, VQ_SIZE, type NicInfo } from '@xsim/nic';
import { LIMIT_MAX, VifFilters, learnableFlow, parseLimit, savedFlows } from '../vnic/quota.ts';
import { LocalMacs } from '../vnic/localmac.ts';
import { HITS_PER_COMMAND, MAX_MTU, VDPA_ARGS, VDPA_BACKEND_COUNTERS, vdpaArgs, type Args } from './config.ts';
import { vdpaChannel, type VdpaChannel } from './channel.ts';
import { IOVA_BASE, PAGE, QUEUE_PAGES } from './layout.ts';

export { DEFAULT_FILTER_IDLE_MS, DEFAULT_MAX_BUF_PAGES, DEFAULT_MAX_FILTERS, VDPA_ARGS, VDPA_BACKEND_COUNTERS } from './config.ts';
export { LOCALMAC_COUNTERS } from '../vnic/localmac.ts';

export const manifest: PluginManifest = {
  name: 'vdpa',
  version: '1.0.0',
  api: '1.4',
  matches: ['nic:1af4-1041'],
  features: ['vif'],
  messages: {
    // The guest's DMA area as grants (its first VQ_PAIR_PAGES pages the queues) and the port the function interrupts on.
    accept: pluginMessage({
      grefs: Type.Array(Type.Integer({ minimum: 0, maximum: 2 ** 32 - 1 }), { minItems: VQ_PAIR_PAGES + 1, maxItems: 2048 }),
      irqPort: Type.Integer({ minimum: 1, maximum: 65535 }),
    }),
    running: pluginMessage({}),
    fault: pluginMessage({ reason: Type.Optional(Type.String({ maxLength: 256 })) }),
  },
  args: VDPA_ARGS,
};

interface Limits {
  maxFilters: number;
  maxBufPages: number;
}

interface VifState {
  vif: AccelVif;
  fn: number;
  /** offered -> starting (function up, guest posting its RX buffers) -> ready (learning flows) -> detaching. */
  stage: 'offered' | 'starting' | 'ready' | 'detaching';
  handles: number[];
  /** Pages the function's IOMMU maps for it (0: none, nothing to stop). */
  mapped: number;
  started: boolean;
  filters: VifFilters;
  limits: Limits;
  capLogged?: boolean;
  nicFullLogged?: boolean;
  unwatch?: () => void;
}

/** The function is up and the guest drives it (link and fast-path news go to it). */
const fnUp = (st: VifState) => st.stage === 'starting' || st.stage === 'ready';

/** The queue areas of a function as fn_start takes them: IOVAs of the area's queue pages (layout.ts). */
export function queueAreas(size = VQ_SIZE): Record<'rx' | 'tx', { size: number; desc: number; avail: number; used: number }> {
  const iova = (page: number) => IOVA_BASE + page * PAGE;
  const q = (p: { desc: number; avail: number; used: number }) => ({ size, desc: iova(p.desc), avail: iova(p.avail), used: iova(p.used) });
  return { rx: q(QUEUE_PAGES.rx), tx: q(QUEUE_PAGES.tx) };
}

class VdpaBackend implements AccelBackend {
  readonly name = 'vdpa';
  private readonly vifs = new Map<string, VifState>();
  private readonly s = VDPA_BACKEND_COUNTERS.zero();
  /** Flows a migrated vif brought with it, inserted as soon as its function runs. */
  private readonly restored = new Map<string, [number, number][]>();
  private readonly args: Args;
  private readonly dev: VdpaChannel | null;
  /** The same-host fast path: each running function's MAC steered on the device's switch, and the news of it to the others. */
  private readonly local: LocalMacs;

  constructor(
    private readonly ctx: AccelBackendContext,
    args: Record<string, unknown>,
  ) {
    this.args = vdpaArgs(args);
    const dev = (this.dev = vdpaChannel(ctx));
    this.local = new LocalMacs(
      'vdpa',
      {
        insert: (fn, mac) => dev!.call('steer_add', { fn, match: { kind: 'mac', mac, local: true } }),
        remove: (id) => void dev!.call('steer_del', { id }),
      },
      (vif, op, a) => ctx.send(vif, op, a),
      () => [...this.vifs.values()].filter(fnUp).map((v) => v.vif),
      (m) => ctx.log(m),
    );
  }

  private readLimits(vif: AccelVif): Limits {
    const read = (key: string): number | undefined => {
      const raw = this.ctx.vifConfig?.read(vif, key);
      const n = parseLimit(raw);
      if (raw !== undefined && n === undefined) this.ctx.log(logWarn(`vdpa: ${vif.key}: ${key} "${raw}" is not a limit (0..${LIMIT_MAX}); ignored`));
      return n;
    };
    return { maxFilters: read(VIF_KEY.maxFilters) ?? this.args.maxFilters, maxBufPages: read(VIF_KEY.maxBufPages) ?? this.args.maxBufPages };
  }

  /** The vif's limits changed in xenstore: a lowered max-filters evicts down to it at once; max-buf-pages applies from the next attachment. */
  private limitsChanged(st: VifState): void {
    if (this.vifs.get(st.vif.key) !== st) return;
    const now = this.readLimits(st.vif);
    if (now.maxFilters === st.limits.maxFilters && now.maxBufPages === st.limits.maxBufPages) return;
    this.s.vdpaLimitChanges++;
    const evicted = st.filters.makeRoom(now.maxFilters);
    this.s.vdpaFiltersEvicted += evicted;
    st.filters.limit = now.maxFilters;
    st.limits = now;
    this.ctx.log(
      `vdpa: ${st.vif.key}: limits now max-filters ${now.maxFilters}, max-buf-pages ${now.maxBufPages}${evicted ? `; ${evicted} rules evicted` : ''}`,
    );
  }

  /** The quota logic's view of the NIC for one function: steering rules through the vDPA channel. */
  private filterOps(dev: VdpaChannel, vif: AccelVif, fn: number, limit: number): VifFilters {
    const ageMs = this.args.filterIdleMs;
    return new VifFilters(
      {
        insert: (key) =>
          dev.call('steer_add', { fn, match: { kind: 'ipv4', proto: Math.floor(key / 65536), addr: vif.ip, port: key % 65536 }, ...(ageMs ? { ageMs } : {}) }),
        remove: (id) => void dev.call('steer_del', { id }),
        hits: (ids) => {
          const out: (number | null)[] = [];
          for (let k = 0; k < ids.length || k === 0; k += HITS_PER_COMMAND) out.push(...dev.call('steer_hits', { ids: ids.slice(k, k + HITS_PER_COMMAND) }));
          return out;
        },
      },
      limit,
      this.args.eviction,
    );
  }

  /** Learn flow `key` of an attached vif onto its function; true if a rule went in. */
  private learn(st: VifState, key: number): boolean {
    const f = st.filters;
    const [evicted0, aged0] = [f.evicted, f.agedOut];
    let r: ReturnType<VifFilters['learn']>;
    try {
      r = f.learn(key);
    } catch (e) {
      this.s.vdpaRuleFailures++;
      this.ctx.log(logWarn(`vdpa: ${st.vif.key}: rule for ${Math.floor(key / 65536)}/${key % 65536} not added: ${(e as Error).message}`));
      return false;
    }
    this.s.vdpaFiltersAgedOut += f.agedOut - aged0;
    this.s.vdpaFiltersEvicted += f.evicted - evicted0;
    if ((f.evicted > evicted0 || r === 'capped') && !st.capLogged) {
      st.capLogged = true;
      const what = r === 'capped' ? 'new flows stay on the slow path (vdpaFilterCapReached)' : `new flows evict a learnt rule (${this.args.eviction})`;
      this.ctx.log(logWarn(`vdpa: ${st.vif.key}: its ${st.limits.maxFilters} steering rules (limits/max-filters) are in use; ${what}`));
    }
    if (r === 'capped') this.s.vdpaFilterCapReached++;
    if (r === 'nicFull') {
      this.s.vdpaFlowsNicFull++;
      if (!st.nicFullLogged) this.ctx.log(logWarn(`vdpa: ${st.vif.key}: the NIC's steering table is full (ENOSPC); new flows stay on the slow path`));
      st.nicFullLogged = true;
    }
    return r === 'inserted';
  }

  /** Everything the vif holds on the NIC and in dom0 goes: rules, the function (its queues and IOMMU mappings), the grant mappings. */
  private teardown(st: VifState): void {
    // The others stop taking frames for it (if not told yet), and its switch rule goes before the function stops.
    this.local.unsteer(st.vif);
    st.filters.clear();
    st.unwatch?.();
    // fn_stop removes a started function's rules and IOMMU pages; pages mapped for a start that failed are unmapped.
    if (st.started) this.dev?.call('fn_stop', { fn: st.fn });
    else if (st.mapped > 0) this.dev?.call('iotlb_unmap', { fn: st.fn, iova: IOVA_BASE, count: st.mapped });
    st.started = false;
    st.mapped = 0;
    this.ctx.unmapGrants(st.handles);
    st.handles = [];
    this.ctx.freeVi(st.fn);
    this.vifs.delete(st.vif.key);
  }

  probe(nic: NicInfo): string | undefined {
    if (!this.dev) return "this host's netback gives plugins no vDPA channel (ctx.vdpa)";
    if (nic.vis < 2) return `NIC ${nic.alias} has no function to spare for guests`;
    return undefined;
  }

  remove(): void {
    for (const st of [...this.vifs.values()]) this.teardown(st);
  }

  linkChange(up: boolean): void {
    for (const st of this.vifs.values()) if (fnUp(st)) this.ctx.send(st.vif, 'link', { up });
  }

  mtuChangeRequest(mtu: number): true | string {
    return mtu <= MAX_MTU ? true : `guest buffers carry at most MTU ${MAX_MTU}`;
  }

  attachVif(vif: AccelVif): void {
    const fn = this.dev ? this.ctx.allocVi() : null;
    if (fn === null || !this.dev) {
      this.s.vdpaNoFunction++;
      this.ctx.log(logWarn(`vdpa: no free function for ${vif.key}; it stays on the slow path`));
      return this.ctx.detached(vif);
    }
    const limits = this.readLimits(vif);
    const filters = this.filterOps(this.dev, vif, fn, limits.maxFilters);
    const st: VifState = { vif, fn, stage: 'offered', handles: [], mapped: 0, started: false, filters, limits };
    this.vifs.set(vif.key, st);
    st.unwatch = this.ctx.vifConfig?.watch(vif, VIF_KEY.limits, () => {
      // A watch runs outside the framework's hook guard: a failure here is logged, never dom0's.
      try {
        this.limitsChanged(st);
      } catch (e) {
        this.ctx.log(logWarn(`vdpa: ${vif.key}: applying its new limits failed: ${(e as Error).message}`));
      }
    });
    this.ctx.send(vif, CHANNEL_OP.offer, { fn, mtu: this.ctx.nic().mtu });
  }

  /** The guest accepted: map its area into the function's IOMMU, start the function, tell the guest it is ready. */
  private accept(st: VifState, dev: VdpaChannel, args: Record<string, unknown>): void {
    const { ctx } = this;
    const { vif } = st;
    const grefs = args.grefs as number[];
    const refuse = (why: string, counter: 'vdpaBufPagesRefused' | 'vdpaStartFailures'): void => {
      this.s[counter]++;
      ctx.log(logWarn(`vdpa: ${vif.key}: ${why}; it stays on the slow path`));
      st.stage = 'detaching';
      ctx.send(vif, CHANNEL_OP.detach, {});
    };
    if (grefs.length > st.limits.maxBufPages)
      return refuse(`its DMA area is ${grefs.length} pages, over its limits/max-buf-pages ${st.limits.maxBufPages}`, 'vdpaBufPagesRefused');
    const m = ctx.mapGrants(vif.domid, grefs);
    if (typeof m === 'string') return refuse(m, 'vdpaStartFailures');
    st.handles = m.handles;
    st.mapped = dev.call('iotlb_map', { fn: st.fn, domid: vif.domid, iova: IOVA_BASE, frames: m.frames });
    // The function's interrupt is the guest's port; only dom0 may hand its binding to the NIC.
    const irq = ctx.deviceIrq(vif.domid, Number(args.irqPort));
    // Checksum offload negotiated both ways (plugin API 1.4): the device completes NEEDS_CSUM and flags DATA_VALID.
    const features = VIRTIO_NET_F_CSUM | VIRTIO_NET_F_GUEST_CSUM;
    const r = dev.callShared('fn_start', { fn: st.fn, domid: vif.domid, ...queueAreas(), irq: true, macs: [vif.mac], features }, [irq.binding, irq.doorbell]);
    st.started = true;
    if (!(r.shared[0] instanceof SharedArrayBuffer)) throw new Error(`fn_start of function ${st.fn} answered without a notify area`);
    // No rule steers anything to the function until the guest says its RX buffers are posted.
    st.stage = 'starting';
    this.s.vdpaAttached++;
    const localMacs = this.local.macsFor(vif);
    ctx.send(vif, 'ready', { iovaBase: IOVA_BASE, queueSize: VQ_SIZE, macs: ctx.uplinkMacs(), localMacs, linkUp: ctx.nic().linkUp, features }, [r.shared[0]]);
  }

  onFrontendMessage(vif: AccelVif, op: string, args: Record<string, unknown>): void {
    const st = this.vifs.get(vif.key);
    if (!st) return;
    if (op === 'accept' && st.stage === 'offered' && this.dev) {
      this.accept(st, this.dev, args);
    } else if (op === 'running' && st.stage === 'starting') {
      st.stage = 'ready';
      // Its RX buffers are posted: the host's other guests may send to it through the device's switch.
      this.local.join(vif, st.fn);
      for (const [proto, port] of this.restored.get(vif.key) ?? []) if (this.learn(st, proto * 65536 + port)) this.s.vdpaRulesRestored++;
      this.restored.delete(vif.key);
    } else if (op === CHANNEL_OP.decline || op === 'fault' || op === CHANNEL_OP.drained) {
      if (op === CHANNEL_OP.decline) this.s.vdpaDeclined++;
      if (op === 'fault') {
        this.s.vdpaFaults++;
        this.ctx.log(logWarn(`vdpa: ${vif.key}: function ${st.fn} needs a reset (${String(args.reason)}); back to the slow path`));
      }
      this.teardown(st);
      this.ctx.detached(vif);
    }
  }

  detachVif(vif: AccelVif): void {
    const st = this.vifs.get(vif.key);
    if (!st) return this.ctx.detached(vif);
    // The others stop taking frames for it at once; its switch rule stays while its function drains what is on the way.
    this.local.leave(vif);
    // Rules first: from now on the NIC steers the guest's flows to dom0 again.
    st.filters.clear();
    if (fnUp(st)) st.stage = 'detaching';
    this.ctx.send(vif, CHANNEL_OP.detach, {});
  }

  vifGone(vif: AccelVif): void {
    this.restored.delete(vif.key);
    const st = this.vifs.get(vif.key);
    if (st) this.teardown(st);
  }

  /** A frame for an accelerated guest came the slow way: learn its flow so the next ones are steered to the function. */
  onSlowPathRx(vif: AccelVif, ram: Uint8Array, off: number, len: number): void {
    const st = this.vifs.get(vif.key);
    if (!st || st.stage !== 'ready') return;
    const key = learnableFlow(ram, off, len, vif.ip);
    if (key >= 0 && this.learn(st, key)) this.s.vdpaRulesLearnt++;
  }

  /** Migration: the flows learnt, as [proto, port] (vnic's format, so either plugin can take the other's). */
  saveState(vif: AccelVif): { flows: [number, number][] } {
    const keys = this.vifs.get(vif.key)?.filters.keys() ?? [];
    return { flows: keys.map((k): [number, number] => [Math.floor(k / 65536), k % 65536]) };
  }

  restoreState(vif: AccelVif, state: unknown): void {
    this.restored.set(vif.key, savedFlows(state));
  }

  onUplinkLearn(mac: number): void {
    for (const st of this.vifs.values()) if (fnUp(st)) this.ctx.send(st.vif, 'fastpath', { mac });
  }

  /** A destination that is no longer behind the uplink (it migrated here, or left): every frontend stops taking frames for it. */
  onUplinkForget(mac: number): void {
    for (const st of this.vifs.values()) if (fnUp(st)) this.ctx.send(st.vif, 'slowpath', { mac });
  }

  stats(): Record<string, unknown> {
    return {
      ...this.s,
      ...this.local.c,
      vifs: [...this.vifs.values()].map((v) => ({
        vif: v.vif.key,
        fn: v.fn,
        stage: v.stage,
        filters: v.filters.size,
        maxFilters: v.limits.maxFilters,
        maxBufPages: v.limits.maxBufPages,
      })),
    };
  }
}

export function createBackend(ctx: AccelBackendContext, args: Record<string, unknown> = {}): AccelBackend {
  return new VdpaBackend(ctx, args);
}
