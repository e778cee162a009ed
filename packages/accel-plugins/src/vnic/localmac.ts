/**
 * The same-host fast path (issue 21), shared by vnic and vdpa: guests of one
 * host reach each other through the NIC's internal switch, as SR-IOV NICs do
 * for their VFs. dom0 decides everything, as the 2007 accelerator's netback
 * did with its LOCALMAC message:
 *
 * - **join**: when a vif's VI (or function) runs and its RX buffers are
 *   posted (the guest said `running`), the backend inserts a switch-only MAC
 *   filter (`{kind: 'mac', mac, local: true}`) steering the vif's MAC to its
 *   VI for frames the NIC's own functions send (never for frames from the
 *   wire: those keep their flow filters, else VI 0, so learning and quotas
 *   are unchanged), and tells every other vif whose VI is up `localmac
 *   {mac}`; a vif attaching later finds the MACs already joined in its
 *   `ready` (`localMacs`, beside the uplink's `macs`). The frontend only
 *   learns MACs: no guest steers anything, and none is told its own MAC.
 * - **leave**: when a vif leaves the fast path for any reason, every other
 *   vif whose VI is up is told `slowpath {mac}` at once, so none takes
 *   another frame for it. The filter stays while the leaving VI still runs
 *   and drains (a detach: its frontend still takes what reaches it), and is
 *   removed just before the VI is finalised (`unsteer`): frames the others
 *   had already put on their rings are then delivered to the VI rather than
 *   sent to the wire. A frame that reaches the NIC after that misses every
 *   filter and goes to the wire like any other miss: delivered where the
 *   guest now lives (after a migration), else counted in a drop counter on
 *   the far side (a bridge's dropSamePort, say). Never uncounted.
 *
 * The filter counts in no vif's flow quota: `localMacs` (a gauge) counts
 * them. A filter the NIC refuses (its table full, a MAC filter of another
 * plugin for the MAC) leaves the vif reachable by the slow path only
 * (`localMacFailures`, logged); the vif itself keeps its fast path.
 */
import { declareCounters, logWarn } from '@xsim/hypervisor';
import type { AccelVif } from '@xsim/netback';

export const LOCALMAC_COUNTERS = declareCounters('same-host fast path', {
  localMacs: {
    kind: 'gauge',
    help: "switch-only MAC filters a plugin has on the NIC now: one per vif whose VI runs, which the host's other accelerated guests reach through the NIC's internal switch",
  },
  localMacJoins: { kind: 'event', help: "vifs made a fast-path destination of the host's other accelerated vifs (localmac sent to each)" },
  localMacLeaves: { kind: 'event', help: "vifs taken off the other vifs' fast path as they left theirs (slowpath sent to each)" },
  localMacFailures: {
    kind: 'event',
    help: 'switch-only MAC filters the NIC refused (table full, another MAC filter for the MAC): that vif stays reachable from the others by the slow path only',
  },
});

/** What the same-host logic needs of the NIC: a switch-only MAC filter to a VI, and its removal (MCDI or the vDPA commands). */
export interface LocalMacNic {
  /** Steer frames the NIC's functions send to `mac` to VI (or function) `vi`; the filter's id. Throws the NIC's refusal. */
  insert(vi: number, mac: number): number;
  remove(id: number): void;
}

interface Joined {
  vif: AccelVif;
  id: number;
  /** The others have been told slowpath: it is no destination any more, though its filter may still drain frames to it. */
  left: boolean;
}

export class LocalMacs {
  readonly c = LOCALMAC_COUNTERS.zero();
  private readonly joined = new Map<string, Joined>();

  constructor(
    private readonly plugin: string,
    private readonly nic: LocalMacNic,
    /** Tell a vif's frontend (ctx.send). */
    private readonly send: (vif: AccelVif, op: 'localmac' | 'slowpath', args: { mac: number }) => void,
    /** The vifs whose VI is up now (their frontends take news of destinations). */
    private readonly up: () => Iterable<AccelVif>,
    private readonly log: (msg: string) => void,
  ) {}

  /** The MACs the host's other guests are reached at through the switch now: what `vif`'s ready carries. */
  macsFor(vif: AccelVif): number[] {
    const out: number[] = [];
    for (const j of this.joined.values()) if (!j.left && j.vif.key !== vif.key && j.vif.mac !== vif.mac) out.push(j.vif.mac);
    return out;
  }

  /** Is the vif a same-host destination now? */
  has(vif: AccelVif): boolean {
    const j = this.joined.get(vif.key);
    return j !== undefined && !j.left;
  }

  private tell(vif: AccelVif, op: 'localmac' | 'slowpath'): void {
    for (const p of this.up()) if (p.key !== vif.key && p.mac !== vif.mac) this.send(p, op, { mac: vif.mac });
  }

  /** The vif's VI runs with its RX buffers posted: steer its MAC to `vi` on the switch, and tell the others. */
  join(vif: AccelVif, vi: number): void {
    if (this.joined.has(vif.key)) return;
    let id: number;
    try {
      id = this.nic.insert(vi, vif.mac);
    } catch (e) {
      this.c.localMacFailures++;
      this.log(
        logWarn(`${this.plugin}: ${vif.key}: no switch-only filter for its MAC (${(e as Error).message}); the host's other guests reach it by the slow path`),
      );
      return;
    }
    this.joined.set(vif.key, { vif, id, left: false });
    this.c.localMacs = this.joined.size;
    this.c.localMacJoins++;
    this.tell(vif, 'localmac');
  }

  /** The vif leaves the fast path: every other vif stops taking frames for it, at once. Its filter stays until unsteer. */
  leave(vif: AccelVif): void {
    const j = this.joined.get(vif.key);
    if (!j || j.left) return;
    j.left = true;
    this.c.localMacLeaves++;
    this.tell(vif, 'slowpath');
  }

  /** The vif's VI is about to be finalised: the others are told (if not yet), then its filter goes. */
  unsteer(vif: AccelVif): void {
    this.leave(vif);
    const j = this.joined.get(vif.key);
    if (!j) return;
    this.joined.delete(vif.key);
    this.c.localMacs = this.joined.size;
    this.nic.remove(j.id);
  }
}
