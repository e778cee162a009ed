/**
 * One of netfront's queues (Linux xen-netfront's struct netfront_queue,
 * xennet_init_queue, setup_netfront): its TX and RX rings, its own event
 * channels (split or single), its RX buffers and its own counters. The TX
 * buffers are the device's (TxPool), shared by its queues. A device
 * allocates the buffers of as many queues as it may ask for, once; a
 * connection uses the first N.
 *
 * TX queue selection (xennet_select_queue): queue 0 with one queue, else
 * the frame's flow hash (skb_get_hash) % queues.
 */
import { flowHash, newFlowKeys, type FlowKeys } from '@xsim/hypervisor';
import { NETFRONT_COUNTERS, type NetfrontCounters, type NetfrontDeps, type RingOwner } from './common.ts';
import { releaseRings, setupRings, type FrontRings } from './connect.ts';
import { NetfrontRx } from './rx.ts';
import { NetfrontTx } from './tx.ts';
import type { TxPool } from './tx-pool.ts';

/** What a queue needs of its device. */
export interface QueueHost {
  readonly backendDomid: number;
  broken(reason: string): void;
}

export class NetfrontQueue implements RingOwner {
  readonly c: NetfrontCounters = NETFRONT_COUNTERS.zero();
  readonly tx: NetfrontTx;
  readonly rx: NetfrontRx;
  rings: FrontRings | null = null;

  constructor(
    private readonly d: NetfrontDeps,
    private readonly host: QueueHost,
    readonly queue: number,
    pool: TxPool,
    maxFrameBytes: number,
  ) {
    this.tx = new NetfrontTx(d, this, pool);
    this.rx = new NetfrontRx(d, this, maxFrameBytes);
  }

  get backendDomid(): number {
    return this.host.backendDomid;
  }

  broken(reason: string): void {
    this.host.broken(reason);
  }

  /** setup_netfront: this queue's ring pages granted, its port(s) allocated, both halves attached. */
  connect(split: boolean): FrontRings {
    const r = setupRings(this.d, this.host.backendDomid, split);
    this.rings = r;
    this.tx.attach(r.tx);
    this.rx.attach(r.rx);
    return r;
  }

  /** The rings are going: take what the backend answered (unless it broke them), revoke and release. Returns TX frames it never answered. */
  teardown(gc: boolean): number {
    if (!this.rings) return 0;
    if (gc) this.tx.gc();
    const lost = this.tx.detach();
    this.rx.detach();
    releaseRings(this.d, this.rings);
    this.rings = null;
    return lost;
  }

  notifyTx(): void {
    if (this.rings && this.d.evtchn.send(this.rings.txPort)) this.c.notifiesSent++;
  }

  notifyRx(): void {
    if (this.rings && this.d.evtchn.send(this.rings.rxPort)) this.c.notifiesSent++;
  }

  /** This queue's share of the device's poll: push TX, take TX completions and RX. -1: the backend broke a ring. */
  poll(budget: number): number {
    this.tx.flush();
    const g = this.tx.gc();
    if (g < 0) return -1;
    const r = this.rx.poll(budget);
    if (r < 0) return -1;
    // Reposting buffers is not progress in itself: it must not keep the loop spinning.
    if (this.rx.needsRefill) this.rx.refill();
    return g + r;
  }

  stats() {
    return { id: this.queue, ...this.c, splitEventChannels: this.rings ? this.rings.txPort !== this.rings.rxPort : null };
  }
}

/** xennet_select_queue: the queue of `n` for the frame at `off` in `ram`. */
export function selectTxQueue(ram: Uint8Array, off: number, len: number, n: number, keys: FlowKeys = newFlowKeys()): number {
  return n === 1 ? 0 : flowHash(ram, off, len, keys) % n;
}
