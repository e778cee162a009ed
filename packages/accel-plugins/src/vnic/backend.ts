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
 */
import { Type, pluginMessage, type AccelBackend, type AccelBackendContext, type AccelVif, type PluginManifest } from '@xsim/netback';
import type { NicInfo } from '@xsim/nic';
import { CHANNEL_OP, logWarn, declareCounters } from '@xsim/hypervisor';

export const manifest: PluginManifest = {
  name: 'vnic',
  version: '1.0.0',
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

/** Frames up to this MTU fit the guest's scatter buffers (3 pages per TX slot, RX scatter). */
const MAX_MTU = 9000;
const MAX_FILTERS_PER_VIF = 64;

interface VifState {
  vif: AccelVif;
  vi: number;
  /** offered -> starting (VI up, guest posting its RX buffers) -> ready (learning filters) -> detaching. */
  stage: 'offered' | 'starting' | 'ready' | 'detaching';
  handles: number[];
  bufBase: number;
  filters: Map<number, number>;
  /** The vif hit MAX_FILTERS_PER_VIF and it was logged (once per attachment). */
  capLogged?: boolean;
}

/** The VI is up and the guest drives it (link and fast-path news go to it). */
const viUp = (st: VifState) => st.stage === 'starting' || st.stage === 'ready';

export const VNIC_BACKEND_COUNTERS = declareCounters('vnic backend', {
  attached: { kind: 'event', help: 'vifs given a running VI' },
  filtersInserted: { kind: 'event', help: 'IPv4 flow filters learnt onto a VI' },
  filterFailures: { kind: 'event', help: 'flow filters the NIC refused (table full, a duplicate)' },
  noFreeVi: { kind: 'event', help: 'vifs left on the slow path: no VI free' },
  faults: { kind: 'event', help: 'VIs that faulted (a bad descriptor from the guest)' },
  declined: { kind: 'event', help: "offers the guest's frontend declined" },
  filtersRestored: { kind: 'event', help: "flow filters put back at once from a migrated vif's saved state (not relearnt)" },
  filterCapReached: {
    kind: 'event',
    help: `frames of a new flow that stayed on the slow path (through dom0) because its vif already had ${MAX_FILTERS_PER_VIF} flow filters`,
  },
});

/** What vnic carries across a migration for one vif: the flows it had learnt, as [proto, port]. */
interface SavedVnicState {
  flows: [number, number][];
}

function savedFlows(state: unknown): [number, number][] {
  const f = (state as Partial<SavedVnicState> | null)?.flows;
  if (!Array.isArray(f)) return [];
  // A saved state is data from another host: only well-formed flows are taken, at most a VI's worth.
  return f
    .filter((x): x is [number, number] => Array.isArray(x) && (x[0] === 17 || x[0] === 6) && Number.isInteger(x[1]) && x[1] >= 0 && x[1] <= 65535)
    .slice(0, MAX_FILTERS_PER_VIF);
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

  constructor(private readonly ctx: AccelBackendContext) {}

  private insertFilter(st: VifState, proto: number, port: number): boolean {
    const key = proto * 65536 + port;
    if (st.filters.has(key)) return false;
    if (st.filters.size >= MAX_FILTERS_PER_VIF) {
      this.s.filterCapReached++;
      if (!st.capLogged) {
        st.capLogged = true;
        this.ctx.log(logWarn(`vnic: ${st.vif.key}: ${MAX_FILTERS_PER_VIF} flow filters in use; new flows stay on the slow path (counted in filterCapReached)`));
      }
      return false;
    }
    try {
      st.filters.set(key, this.ctx.mcdi('filter_insert', { vi: st.vi, match: { kind: 'ipv4', proto, addr: st.vif.ip, port } }) as number);
      return true;
    } catch (e) {
      this.s.filterFailures++;
      st.filters.set(key, -1);
      this.ctx.log(logWarn(`vnic: ${st.vif.key}: filter for ${proto}/${port} not inserted: ${(e as Error).message}`));
      return false;
    }
  }

  private removeFilters(st: VifState): void {
    for (const id of st.filters.values()) this.ctx.mcdi('filter_remove', { id });
    st.filters.clear();
  }

  private teardown(st: VifState): void {
    this.removeFilters(st);
    if (st.stage !== 'offered') this.ctx.mcdi('vi_fini', { vi: st.vi });
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
    this.vifs.set(vif.key, { vif, vi: v, stage: 'offered', handles: [], bufBase: -1, filters: new Map() });
    this.ctx.send(vif, CHANNEL_OP.offer, { vi: v, mtu: this.ctx.nic().mtu });
  }

  /** The guest accepted the offer: map its buffers, register them, start the VI, tell the guest it is ready. */
  private accept(st: VifState, vif: AccelVif, args: Record<string, unknown>): void {
    const ctx = this.ctx;
    const m = ctx.mapGrants(vif.domid, args.grefs as number[]);
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
    const r = ctx.mcdiShared('vi_init', { vi: st.vi, domid: vif.domid, rings: st.bufBase, irq: true, macs: [vif.mac] }, [irq.binding, irq.doorbell]);
    // No filter steers anything to the VI until the guest says its RX buffers are posted:
    // a frame arriving before that would find none.
    st.stage = 'starting';
    this.s.attached++;
    // The attachment's doorbell only: the guest wakes a sleeping NIC through the platform. The link as it is
    // now: later changes reach a VI that is up (linkChange), but this attachment may start while it is down.
    ctx.send(vif, 'ready', { bufBase: st.bufBase, macs: ctx.uplinkMacs(), linkUp: ctx.nic().linkUp }, [r.shared[0]]);
  }

  onFrontendMessage(vif: AccelVif, op: string, args: Record<string, unknown>): void {
    const st = this.vifs.get(vif.key);
    if (!st) return;
    if (op === 'accept' && st.stage === 'offered') {
      this.accept(st, vif, args);
    } else if (op === 'running' && st.stage === 'starting') {
      st.stage = 'ready';
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
    if (!st || st.stage !== 'ready' || len < 38 || ram[off + 12] !== 8 || ram[off + 13] !== 0) return;
    const ip = off + 14;
    const proto = ram[ip + 9];
    if (proto !== 17 && proto !== 6) return;
    const dst = ((ram[ip + 16] << 24) | (ram[ip + 17] << 16) | (ram[ip + 18] << 8) | ram[ip + 19]) >>> 0;
    if (dst !== vif.ip) return;
    const l4 = ip + (ram[ip] & 15) * 4;
    const port = (ram[l4 + 2] << 8) | ram[l4 + 3];
    if (this.insertFilter(st, proto, port)) this.s.filtersInserted++;
  }

  saveState(vif: AccelVif): SavedVnicState {
    const st = this.vifs.get(vif.key);
    const flows: [number, number][] = [];
    for (const [key, id] of st?.filters ?? []) if (id >= 0) flows.push([Math.floor(key / 65536), key % 65536]);
    return { flows };
  }

  restoreState(vif: AccelVif, state: unknown): void {
    this.restored.set(vif.key, savedFlows(state));
  }

  onUplinkLearn(mac: number): void {
    for (const st of this.vifs.values()) if (viUp(st)) this.ctx.send(st.vif, 'fastpath', { mac });
  }

  stats(): Record<string, unknown> {
    return { ...this.s, vifs: [...this.vifs.values()].map((v) => ({ vif: v.vif.key, vi: v.vi, stage: v.stage, filters: v.filters.size })) };
  }
}

export function createBackend(ctx: AccelBackendContext): AccelBackend {
  return new VnicBackend(ctx);
}
