/**
 * A vif's queues, after Linux xen-netback's struct xenvif_queue and
 * connect() / connect_data_rings (xenbus.c): each queue its own TX and RX
 * ring, its own (split or single) event channels, its own TX credit (the
 * vif's rate applies to each queue, as xen_net_rate_changed sets it on each)
 * and its own counters; the vif's totals are the sum of its queues' and its
 * own. Each queue is polled on its own (Linux: a NAPI instance and an RX
 * kthread per queue).
 *
 * How many: the frontend's multi-queue-num-queues (1 when absent, read as
 * xenbus_read_unsigned does), at most max_queues (netback's
 * multi-queue-max-queues) and at least 1, else the frontend is refused with
 * Linux's message. One queue's keys are the flat ones (a frontend that knows
 * nothing of queues, or asked for one); several queues' are under
 * queue-0/ .. queue-(N-1)/, and a queue whose keys are missing refuses the
 * frontend ("reading .../queue-N/ring-ref"), taking back what earlier queues
 * had mapped and bound.
 */
import { VIF_KEY, queueDir, readUnsigned, type Tap } from '@xsim/hypervisor';
import { VIF_COUNTERS, type VifCounters, type VifDeps, type VifPort } from './common.ts';
import { connectDataRings, releaseDataRings, type DataRings } from './connect.ts';
import { TxCredit, type Rate } from './credit.ts';
import type { McastList } from './extras.ts';
import type { ReadKey } from './features.ts';
import { VifRx, type RxOwner } from './rx.ts';
import { VifTx, type TxOwner } from './tx.ts';

/** What a queue needs of its vif. */
export interface QueueOwner extends VifPort {
  readonly name: string;
  readonly tap: Tap;
  readonly portId: number;
  readonly connected: boolean;
  readonly mcast: McastList;
  readonly canSg: boolean;
  readonly ipCsum: boolean;
  fatal(reason: string): void;
}

export class VifQueue implements TxOwner, RxOwner {
  readonly c: VifCounters = VIF_COUNTERS.zero();
  readonly tx: VifTx;
  readonly rx: VifRx;
  readonly credit: TxCredit;

  constructor(
    private readonly d: VifDeps,
    private readonly v: QueueOwner,
    readonly id: number,
    readonly rings: DataRings,
    rate: Rate | null,
  ) {
    this.credit = new TxCredit(d.clock);
    this.credit.start(rate);
    this.tx = new VifTx(rings.tx, d, this, this.credit);
    this.rx = new VifRx(rings.rx, d, this);
  }

  // The vif's identity: logs, captures and drop names are the vif's (its totals carry every queue's counters).
  get name(): string {
    return this.v.name;
  }
  get tap(): Tap {
    return this.v.tap;
  }
  get key(): string {
    return this.v.key;
  }
  get frontendDomid(): number {
    return this.v.frontendDomid;
  }
  get handle(): number {
    return this.v.handle;
  }
  get mac(): number {
    return this.v.mac;
  }
  get ip(): number {
    return this.v.ip;
  }
  get portId(): number {
    return this.v.portId;
  }
  get connected(): boolean {
    return this.v.connected;
  }
  get mcast(): McastList {
    return this.v.mcast;
  }
  get canSg(): boolean {
    return this.v.canSg;
  }
  get ipCsum(): boolean {
    return this.v.ipCsum;
  }

  fatal(reason: string): void {
    this.v.fatal(reason);
  }

  /** TX responses pushed: this queue's TX port (its only one without split channels). */
  notifyTx(): void {
    if (this.d.evtchn.send(this.rings.txPort)) this.c.notifiesSent++;
  }

  /** RX responses pushed: this queue's RX port. */
  notifyRx(): void {
    if (this.d.evtchn.send(this.rings.rxPort)) this.c.notifiesSent++;
  }

  /** This queue's turn: its TX ring (xenvif_poll), then, if the vif is still up, its RX queue (xenvif_kthread_guest_rx). */
  poll(): number {
    let n = this.tx.action();
    if (this.v.connected) n += this.rx.action();
    return n;
  }

  /** xenvif_disconnect_queue: what was queued for the guest is dropped (counted), the rings unmapped, the ports closed. */
  release(): void {
    this.rx.purge();
    releaseDataRings(this.d, this.rings);
  }

  stats() {
    return {
      id: this.id,
      ...this.c,
      rxQueued: this.rx.queued,
      splitEventChannels: this.rings.txPort !== this.rings.rxPort,
      credit: this.credit.timerAt !== Infinity,
    };
  }
}

/**
 * connect()'s first check: the queues the frontend asked for, or the reason
 * to refuse it (xenbus_dev_fatal: "guest requested %u queues, but valid
 * range is 1 - %u.", the message since Linux's 2026 fix that refuses 0 too;
 * before it, "... exceeding the maximum of %u." and 0 was not checked).
 */
export function requestedQueues(read: ReadKey, maxQueues: number): number | string {
  const n = readUnsigned(read(VIF_KEY.multiQueueNumQueues), 1);
  if (n > maxQueues || n === 0) return `guest requested ${n} queues, but valid range is 1 - ${maxQueues}.`;
  return n;
}

/**
 * connect_data_rings for queues 0..n-1: the flat keys for one queue, queue-N/
 * for several. Throws the first reason to refuse, after giving back what the
 * queues before it had taken.
 */
export function connectQueues(d: VifDeps, v: QueueOwner, read: ReadKey, fePath: string, n: number, rate: Rate | null): VifQueue[] {
  const out: VifQueue[] = [];
  try {
    for (let q = 0; q < n; q++) {
      const dir = n === 1 ? '' : `${queueDir(q)}/`;
      const rings = connectDataRings(d, v.frontendDomid, (k) => read(`${dir}${k}`), n === 1 ? fePath : `${fePath}/${queueDir(q)}`);
      out.push(new VifQueue(d, v, q, rings, rate));
    }
    return out;
  } catch (e) {
    for (const q of out) q.release();
    throw e;
  }
}
