/**
 * vnic, dom0 side: gives each guest vif its own VI on the NIC. On attach it
 * offers the VI to the guest; when the guest answers with the grants of its
 * DMA pages (the VI's rings first, then its buffers) and its interrupt port,
 * it maps them, registers the frames in the NIC's buffer table for that VI
 * (the guest can DMA nowhere else), and attaches the VI to them with the
 * guest's MAC as the only source it may send from; the NIC's answer is a
 * doorbell made for this attachment, which goes to the guest. Flows the slow
 * path delivers to an attached guest are learnt as IPv4 filters so later
 * frames of the flow reach the guest's VI straight from the wire.
 *
 * Quotas (issue 19, item 4), as the 2007 accelerator had them: each vif may
 * hold at most limits/max-filters learnt filters and register at most
 * limits/max-buf-pages DMA pages, keys the toolstack writes under the vif's
 * backend directory (`xsim dev set DEV max-filters N` changes them at run
 * time: vnic watches them and evicts down to a lowered limit at once). A new
 * flow on a full vif evicts a learnt filter (quota.ts: CLOCK by default, and
 * why); filters are inserted with an idle age the NIC enforces, so idle flows
 * give their place back; a NIC whose whole table is full refuses (ENOSPC) and
 * the flow stays on the slow path. All counted, each first time logged.
 *
 * Same host (issue 21, localmac.ts): once a vif's VI runs, a switch-only
 * filter steers its MAC to the VI for frames the host's other VIs send, and
 * the other frontends are told `localmac {mac}` (a vif's `ready` carries the
 * MACs already there in `localMacs`); a vif leaving the fast path is
 * `slowpath {mac}` to the others at once, and its filter goes before its VI.
 */
import { Type, pluginMessage, type AccelBackend, type AccelBackendContext, type AccelVif, type PluginManifest } from '@xsim/netback';
import type { NicInfo } from '@xsim/nic';
import { CHANNEL_OP, VIF_KEY, logWarn } from '@xsim/hypervisor';
import { LIMIT_MAX, VifFilters, learnableFlow, parseLimit, savedFlows } from './quota.ts';
import { MAX_MTU, VNIC_BACKEND_COUNTERS, vnicArgs, type Limits, type VifConfigFacility, type VnicArgs } from './config.ts';
import { LocalMacs } from './localmac.ts';

export {
  DEFAULT_FILTER_IDLE_MS,
  DEFAULT_MAX_BUF_PAGES,
  DEFAULT_MAX_FILTERS,
  VNIC_ARGS,
  VNIC_BACKEND_COUNTERS,
  VNIC_VIF_GAUGES,
  type VifConfigFacility,
  type VnicArgs,
} from './config.ts';
export { LOCALMAC_COUNTERS } from './localmac.ts';

export const manifest: PluginManifest = {
  name: 'vnic',
  version: '1.0.0',
  api: '1.5',
  matches: ['nic:1924-0803', 'nic:1924-0903'],
  features: ['vif'],
  messages: {
    // The guest's DMA pages (as grants) and the event-channel port its VI interrupts on.
    accept: pluginMessage({
      grefs: Type.Array(Type.Integer({ minimum: 0, maximum: 2 ** 32 - 1 }), { minItems: 1, maxItems: 2048 }),
      irqPort: Type.Integer({ minimum: 1, maximum: 65535 }),
    }),
    running: pluginMessage({}),
    fault: pluginMessage({ reason: Type.Optional(Type.String({ maxLength: 256 })) }),
  },
};

interface VifState {
  vif: AccelVif;
  vi: number;
  /** offered -> starting (VI up, guest posting its RX buffers) -> ready (learning filters) -> detaching. */
  stage: 'offered' | 'starting' | 'ready' | 'detaching';
  handles: number[];
  bufBase: number;
  filters: VifFilters;
  limits: Limits;
  /** Each logged once per attachment: the quota was first full, the NIC's table was first full. */
  capLogged?: boolean;
  nicFullLogged?: boolean;
  unwatch?: () => void;
}

/** The VI is up and the guest drives it (link and fast-path news go to it). */
const viUp = (st: VifState) => st.stage === 'starting' || st.stage === 'ready';

/** What vnic carries across a migration for one vif: the flows it had learnt, as [proto, port]. */
interface SavedVnicState {
  flows: [number, number][];
}

/**
 * vnic's dom0 half: one VI per accelerated vif, the guest's buffers mapped and
 * registered in the NIC's buffer table, and a filter per flow learnt from the
 * slow path so later frames reach the guest's VI directly.
 */
class VnicBackend implements AccelBackend {
  readonly name = 'vnic';
  private readonly vifs = new Map<string, VifState>();
  private readonly s = VNIC_BACKEND_COUNTERS.zero();
  /** Flows a migrated vif brought with it, inserted as soon as its VI runs. */
  private readonly restored = new Map<string, [number, number][]>();

  private readonly args: Required<VnicArgs>;
  private readonly config: VifConfigFacility | undefined;
  /** The same-host fast path: each running VI's MAC steered on the NIC's switch, and the news of it to the others. */
  private readonly local: LocalMacs;

  constructor(
    private readonly ctx: AccelBackendContext,
    args: Record<string, unknown> = {},
  ) {
    this.args = vnicArgs(args);
    const facility = (ctx as AccelBackendContext & { vifConfig?: VifConfigFacility }).vifConfig;
    this.config = facility && typeof facility.read === 'function' && typeof facility.watch === 'function' ? facility : undefined;
    this.local = new LocalMacs(
      'vnic',
      {
        insert: (vi, mac) => ctx.mcdi('filter_insert', { vi, match: { kind: 'mac', mac, local: true } }),
        remove: (id) => void ctx.mcdi('filter_remove', { id }),
      },
      (vif, op, args) => ctx.send(vif, op, args),
      () => [...this.vifs.values()].filter(viUp).map((v) => v.vif),
      (m) => ctx.log(m),
    );
  }

  /** The vif's limits: its backend directory's limits/* keys where there are some, else the arguments'. */
  private readLimits(vif: AccelVif): Limits {
    const read = (key: string) => {
      const raw = this.config?.read(vif, key);
      const n = parseLimit(raw);
      if (raw !== undefined && n === undefined) this.ctx.log(logWarn(`vnic: ${vif.key}: ${key} "${raw}" is not a limit (0..${LIMIT_MAX}); ignored`));
      return n;
    };
    return { maxFilters: read(VIF_KEY.maxFilters) ?? this.args.maxFilters, maxBufPages: read(VIF_KEY.maxBufPages) ?? this.args.maxBufPages };
  }

  /** The vif's limits changed in xenstore: a lowered max-filters evicts down to it at once; max-buf-pages applies from the next attachment. */
  private limitsChanged(st: VifState): void {
    if (this.vifs.get(st.vif.key) !== st) return;
    const now = this.readLimits(st.vif);
    if (now.maxFilters === st.limits.maxFilters && now.maxBufPages === st.limits.maxBufPages) return;
    this.s.limitChanges++;
    const evicted = st.filters.makeRoom(now.maxFilters);
    this.s.filtersEvicted += evicted;
    st.filters.limit = now.maxFilters;
    this.ctx.log(
      `vnic: ${st.vif.key}: limits now max-filters ${now.maxFilters}, max-buf-pages ${now.maxBufPages}` +
        (evicted ? `; ${evicted} filters evicted to meet it` : '') +
        (now.maxBufPages !== st.limits.maxBufPages ? ' (max-buf-pages applies from the next attachment)' : ''),
    );
    st.limits = now;
  }

  /** The quota logic's view of the NIC for one vif: MCDI through the context. */
  private filterOps(vif: AccelVif, vi: number, limit: number): VifFilters {
    const ageMs = this.args.filterIdleMs;
    return new VifFilters(
      {
        insert: (key) =>
          this.ctx.mcdi('filter_insert', {
            vi,
            match: { kind: 'ipv4', proto: Math.floor(key / 65536), addr: vif.ip, port: key % 65536 },
            ...(ageMs ? { ageMs } : {}),
          }),
        remove: (id) => void this.ctx.mcdi('filter_remove', { id }),
        // filter_hits takes at most 4096 ids a command (a vif's quota may be larger).
        hits: (ids) => {
          const out: (number | null)[] = [];
          for (let k = 0; k < ids.length || k === 0; k += 4096) out.push(...this.ctx.mcdi('filter_hits', { ids: ids.slice(k, k + 4096) }));
          return out;
        },
      },
      limit,
      this.args.eviction,
    );
  }

  /** Learn flow (proto, port) of an attached vif onto its VI; true if a filter was inserted. */
  private insertFilter(st: VifState, proto: number, port: number): boolean {
    const before = st.filters.evicted;
    const agedBefore = st.filters.agedOut;
    let r: ReturnType<VifFilters['learn']>;
    try {
      r = st.filters.learn(proto * 65536 + port);
    } catch (e) {
      this.s.filterFailures++;
      this.ctx.log(logWarn(`vnic: ${st.vif.key}: filter for ${proto}/${port} not inserted: ${(e as Error).message}`));
      return false;
    }
    this.s.filtersAgedOut += st.filters.agedOut - agedBefore;
    const evicted = st.filters.evicted - before;
    this.s.filtersEvicted += evicted;
    if ((evicted > 0 || r === 'capped') && !st.capLogged) {
      st.capLogged = true;
      const what =
        r === 'capped'
          ? `new flows stay on the slow path (eviction ${this.args.eviction}; counted in filterCapReached)`
          : `new flows evict a learnt filter (${this.args.eviction === 'clock' ? 'CLOCK: one not hit since the hand last passed' : 'FIFO: the oldest'}; counted in filtersEvicted)`;
      this.ctx.log(logWarn(`vnic: ${st.vif.key}: its ${st.limits.maxFilters} flow filters (limits/max-filters) are in use; ${what}`));
    }
    if (r === 'capped') this.s.filterCapReached++;
    if (r === 'nicFull') {
      this.s.flowsNicFull++;
      if (!st.nicFullLogged) {
        st.nicFullLogged = true;
        this.ctx.log(
          logWarn(`vnic: ${st.vif.key}: the NIC's filter table is full (ENOSPC); flow ${proto}/${port} stays on the slow path (counted in flowsNicFull)`),
        );
      }
    }
    return r === 'inserted';
  }

  private removeFilters(st: VifState): void {
    st.filters.clear();
  }

  private teardown(st: VifState): void {
    // The others stop taking frames for it (if not told yet), and its switch filter goes before the VI does.
    this.local.unsteer(st.vif);
    this.removeFilters(st);
    st.unwatch?.();
    // A VI started, or one whose pages were registered before its start failed: the NIC forgets both.
    if (st.stage !== 'offered' || st.bufBase >= 0) this.ctx.mcdi('vi_fini', { vi: st.vi });
    this.ctx.unmapGrants(st.handles);
    st.handles = [];
    this.ctx.freeVi(st.vi);
    this.vifs.delete(st.vif.key);
  }

  probe(nic: NicInfo): string | undefined {
    if (nic.vis < 2) return `NIC ${nic.alias} has no VI to spare for guests`;
    return undefined;
  }

  remove(): void {
    for (const st of [...this.vifs.values()]) this.teardown(st);
  }

  linkChange(up: boolean): void {
    for (const st of this.vifs.values()) if (viUp(st)) this.ctx.send(st.vif, 'link', { up });
  }

  mtuChangeRequest(mtu: number): true | string {
    return mtu <= MAX_MTU ? true : `guest buffers carry at most MTU ${MAX_MTU}`;
  }

  attachVif(vif: AccelVif): void {
    const v = this.ctx.allocVi();
    if (v === null) {
      this.s.noFreeVi++;
      this.ctx.log(logWarn(`vnic: no free VI for ${vif.key}; it stays on the slow path`));
      this.ctx.detached(vif);
      return;
    }
    const limits = this.readLimits(vif);
    const filters = this.filterOps(vif, v, limits.maxFilters);
    const st: VifState = { vif, vi: v, stage: 'offered', handles: [], bufBase: -1, filters, limits };
    this.vifs.set(vif.key, st);
    if (this.config) {
      const cfg = this.config;
      st.unwatch = cfg.watch(vif, VIF_KEY.limits, () => {
        // A watch runs outside the framework's hook guard: a failure here is logged, never dom0's.
        try {
          this.limitsChanged(st);
        } catch (e) {
          this.ctx.log(logWarn(`vnic: ${vif.key}: applying its new limits failed: ${(e as Error).message}`));
        }
      });
    }
    this.ctx.send(vif, CHANNEL_OP.offer, { vi: v, mtu: this.ctx.nic().mtu, tso: this.args.tso });
  }

  /** The guest accepted the offer: map its buffers, register them, start the VI, tell the guest it is ready. */
  private accept(st: VifState, vif: AccelVif, args: Record<string, unknown>): void {
    const ctx = this.ctx;
    const grefs = args.grefs as number[];
    if (grefs.length > st.limits.maxBufPages) {
      this.s.bufPagesRefused++;
      ctx.log(
        logWarn(`vnic: ${vif.key}: its DMA area is ${grefs.length} pages, over its limits/max-buf-pages ${st.limits.maxBufPages}; it stays on the slow path`),
      );
      ctx.send(vif, CHANNEL_OP.detach, {});
      st.stage = 'detaching';
      return;
    }
    const m = ctx.mapGrants(vif.domid, grefs);
    if (typeof m === 'string') {
      ctx.log(logWarn(`vnic: ${vif.key}: ${m}`));
      ctx.send(vif, CHANNEL_OP.detach, {});
      st.stage = 'detaching';
      return;
    }
    st.handles = m.handles;
    st.bufBase = ctx.mcdi('buffer_table_alloc', { vi: st.vi, domid: vif.domid, frames: m.frames }) as number;
    // The VI's interrupt is the guest's port; only dom0 may hand its binding to the NIC.
    const irq = ctx.deviceIrq(vif.domid, Number(args.irqPort));
    // Checksum offload on the VI (plugin API 1.4): the NIC completes the guest's partial checksums and checks received ones;
    // TSO (1.5, the tso argument): it cuts the guest's TCP frames of up to 64 KiB (the guest offers them only while netback takes them too).
    const r = ctx.mcdiShared('vi_init', { vi: st.vi, domid: vif.domid, rings: st.bufBase, irq: true, macs: [vif.mac], csum: true, tso: this.args.tso }, [
      irq.binding,
      irq.doorbell,
    ]);
    // No filter steers anything to the VI until the guest says its RX buffers are posted:
    // a frame arriving before that would find none.
    st.stage = 'starting';
    this.s.attached++;
    // The attachment's doorbell only: the guest wakes a sleeping NIC through the platform. The link as it is
    // now: later changes reach a VI that is up (linkChange), but this attachment may start while it is down.
    // The destinations it may take: MACs behind the uplink, and the host's other guests whose VIs run (the NIC switches those).
    ctx.send(
      vif,
      'ready',
      { bufBase: st.bufBase, macs: ctx.uplinkMacs(), localMacs: this.local.macsFor(vif), linkUp: ctx.nic().linkUp, csum: true, tso: this.args.tso },
      [r.shared[0]],
    );
  }

  onFrontendMessage(vif: AccelVif, op: string, args: Record<string, unknown>): void {
    const st = this.vifs.get(vif.key);
    if (!st) return;
    if (op === 'accept' && st.stage === 'offered') {
      this.accept(st, vif, args);
    } else if (op === 'running' && st.stage === 'starting') {
      st.stage = 'ready';
      // Its RX buffers are posted: the host's other guests may send to it through the NIC's switch.
      this.local.join(vif, st.vi);
      for (const [proto, port] of this.restored.get(vif.key) ?? []) if (this.insertFilter(st, proto, port)) this.s.filtersRestored++;
      this.restored.delete(vif.key);
    } else if (op === CHANNEL_OP.decline) {
      // Whatever stage it is in: a VI already up is finalised, its grants unmapped, its filters removed.
      this.s.declined++;
      this.teardown(st);
      this.ctx.detached(vif);
    } else if (op === 'fault') {
      // The VI faulted (a bad descriptor): the guest already fell back; take the VI away.
      this.s.faults++;
      this.ctx.log(logWarn(`vnic: ${vif.key}: VI ${st.vi} faulted (${String(args.reason)}); back to the slow path`));
      this.teardown(st);
      this.ctx.detached(vif);
    } else if (op === CHANNEL_OP.drained) {
      this.teardown(st);
      this.ctx.detached(vif);
    }
  }

  detachVif(vif: AccelVif): void {
    const st = this.vifs.get(vif.key);
    if (!st) return this.ctx.detached(vif);
    // The others stop taking frames for it at once; its switch filter stays while its VI drains what is on the way.
    this.local.leave(vif);
    // Filters first: from now on the NIC steers the guest's flows to dom0 again.
    this.removeFilters(st);
    st.stage = viUp(st) ? 'detaching' : st.stage;
    this.ctx.send(vif, CHANNEL_OP.detach, {});
  }

  vifGone(vif: AccelVif): void {
    this.restored.delete(vif.key);
    const st = this.vifs.get(vif.key);
    if (st) this.teardown(st);
  }

  /** A frame for an accelerated guest came the slow way: learn its flow and steer the next ones to the VI. */
  onSlowPathRx(vif: AccelVif, ram: Uint8Array, off: number, len: number): void {
    const st = this.vifs.get(vif.key);
    if (!st || st.stage !== 'ready') return;
    const key = learnableFlow(ram, off, len, vif.ip);
    if (key >= 0 && this.insertFilter(st, Math.floor(key / 65536), key % 65536)) this.s.filtersInserted++;
  }

  saveState(vif: AccelVif): SavedVnicState {
    const st = this.vifs.get(vif.key);
    const flows: [number, number][] = [];
    for (const key of st?.filters.keys() ?? []) flows.push([Math.floor(key / 65536), key % 65536]);
    return { flows };
  }

  restoreState(vif: AccelVif, state: unknown): void {
    this.restored.set(vif.key, savedFlows(state));
  }

  onUplinkLearn(mac: number): void {
    for (const st of this.vifs.values()) if (viUp(st)) this.ctx.send(st.vif, 'fastpath', { mac });
  }

  /** A destination that is no longer behind the uplink (it migrated here, or left): every frontend stops taking frames for it. */
  onUplinkForget(mac: number): void {
    for (const st of this.vifs.values()) if (viUp(st)) this.ctx.send(st.vif, 'slowpath', { mac });
  }

  stats(): Record<string, unknown> {
    return {
      ...this.s,
      ...this.local.c,
      vifs: [...this.vifs.values()].map((v) => ({
        vif: v.vif.key,
        vi: v.vi,
        stage: v.stage,
        filters: v.filters.size,
        maxFilters: v.limits.maxFilters,
        maxBufPages: v.limits.maxBufPages,
      })),
    };
  }
}

export function createBackend(ctx: AccelBackendContext, args: Record<string, unknown> = {}): AccelBackend {
  return new VnicBackend(ctx, args);
}
