/**
 * A netfront device's queues as a set (Linux xen-netfront's info->queues,
 * xennet_create_queues, xennet_destroy_queues): the TX buffers they share,
 * as many queues as the device may ask for (allocated once), the ones the
 * current connection uses, and the control ring. The stack's TX goes
 * through here: room is reserved before the frame is built, the queue is
 * picked from the built frame (xennet_select_queue), every queue is pushed
 * and polled on its own.
 */
import { PAGE_SIZE, newFlowKeys } from '@xsim/hypervisor';
import { NETFRONT_COUNTERS, addCounters, type NetfrontCounters, type NetfrontDeps, type RxHandler } from './common.ts';
import { publishKeys } from './connect.ts';
import { FrontCtrl, type CtrlHost } from './ctrl.ts';
import { frontendFeatures, queuesToUse, type BackendFeatures } from './features.ts';
import { NetfrontQueue, selectTxQueue, type QueueHost } from './queue.ts';
import { TxPool } from './tx-pool.ts';

/** The largest frame RX gathers: a TCPv4 GSO frame (feature-gso-tcpv4) of a 64 KiB IP datagram and its Ethernet header. */
const RX_GSO_MAX = 65535 + 14;

export class QueueSet {
  /** TX buffers, shared by the queues. */
  readonly pool: TxPool;
  private readonly all: NetfrontQueue[];
  /** The queues of the current connection (none while not connected). */
  active: NetfrontQueue[] = [];
  /** The control ring (a device that may have several queues). */
  readonly ctrl: FrontCtrl | null;
  private readonly keys = newFlowKeys();
  /** This connection sends TCPv4 GSO frames (the backend offers feature-gso-tcpv4, the big TX buffers are there). */
  gso = false;

  constructor(
    private readonly d: NetfrontDeps,
    host: QueueHost & CtrlHost,
  ) {
    const max = Math.max(1, d.params?.maxQueues ?? 1);
    this.pool = new TxPool(d, max);
    this.all = Array.from({ length: max }, (_v, i) => new NetfrontQueue(d, host, i, this.pool, Math.max(this.pool.chunkPages * PAGE_SIZE, RX_GSO_MAX)));
    this.ctrl = max > 1 ? new FrontCtrl(d, host) : null;
  }

  get max(): number {
    return this.all.length;
  }

  set onReceive(h: RxHandler) {
    for (const q of this.all) q.rx.onReceive = h;
  }

  /** The stack's receive handler (the accelerator's frames go to it too). */
  get onReceive(): RxHandler {
    return this.all[0].rx.onReceive;
  }

  /**
   * talk_to_netback and xennet_connect's end: the queues to use, each its
   * rings and ports, the control ring when there are several and the backend
   * takes one, every key in one transaction, RX buffers posted, the hash
   * configuration sent.
   */
  connect(be: BackendFeatures, path: string, beforeRefill: () => void): void {
    const params = this.d.params ?? {};
    const n = queuesToUse(be, params);
    const split = params.splitEventChannels !== false && be.splitEventChannels;
    // TCPv4 GSO when both ends do it and RAM has room for its big buffers (xennet_fix_features).
    this.gso = be.gsoTcpv4 && params.gso !== false && this.pool.enableGso();
    this.pool.reset();
    this.active = this.all.slice(0, n);
    const rings = this.active.map((q) => q.connect(split));
    const ctrl = n > 1 && be.ctrlRing && params.ctrlRing !== false ? this.ctrl : null;
    publishKeys(this.d.xs, path, rings, ctrl ? ctrl.setup(n) : null, frontendFeatures(params));
    beforeRefill();
    for (const q of this.active) q.rx.refill();
    ctrl?.start();
  }

  /** Every queue's rings go (the backend's answers taken unless it broke them), its counters into `own`. Returns TX frames never answered. */
  teardown(gc: boolean, own: NetfrontCounters): number {
    let lost = 0;
    for (const q of this.active) {
      lost += q.teardown(gc);
      addCounters(own, q.c);
      Object.assign(q.c, NETFRONT_COUNTERS.zero());
    }
    this.ctrl?.teardown();
    this.active = [];
    return lost;
  }

  /** A broken backend: every grant revoked that can be. Returns TX frames never answered. */
  detach(): number {
    let lost = 0;
    for (const q of this.active) {
      lost += q.tx.detach();
      q.rx.detach();
    }
    return lost;
  }

  /** Unplugged: every buffer back to the guest. */
  releaseBuffers(): void {
    this.pool.releaseBuffers();
    for (const q of this.all) q.rx.releaseBuffers();
    this.ctrl?.releasePages();
  }

  /** A chunk for a frame of `len` bytes, if every queue has room for it (its queue is known only once it is built), or -1. */
  reserve(len: number): number {
    // A GSO frame (over an MTU chunk) takes one more slot: its extra-info slot.
    const pieces = Math.ceil(len / PAGE_SIZE) + (len > this.pool.chunkPages * PAGE_SIZE ? 1 : 0);
    if (!this.active.every((q) => q.tx.room(pieces))) return -1;
    const chunk = this.pool.reserve(len);
    return chunk < 0 ? -1 : this.pool.chunkAddr(chunk);
  }

  /** The frame built in the reserved chunk, onto the TX ring of the queue its flow hashes to (`flags`: its first slot's NETTXF_*; gsoSize: its MSS, a GSO frame). */
  queue(chunk: number, len: number, ram: Uint8Array, flags = 0, gsoSize = 0): void {
    const at = this.pool.chunkAddr(chunk);
    this.active[selectTxQueue(ram, at, len, this.active.length, this.keys)].tx.queue(chunk, len, flags, gsoSize);
  }

  flush(): void {
    for (const q of this.active) q.tx.flush();
  }

  available(): number {
    let n = this.pool.freeChunks;
    for (const q of this.active) n = Math.min(n, q.tx.available());
    return n;
  }

  /** Each queue's turn, then the control ring's. -1: the backend broke a ring. */
  poll(budget: number): number {
    let work = 0;
    for (const q of this.active) {
      const r = q.poll(budget);
      if (r < 0) return -1;
      work += r;
    }
    const r = this.ctrl ? this.ctrl.poll() : 0;
    return r < 0 ? -1 : work + r;
  }

  /** Suspend: take every answer the backend left, then the frames it never took, oldest first. */
  drain(): { addr: number; len: number }[] {
    for (const q of this.active) {
      q.tx.gc();
      while (q.rx.poll(256) > 0);
      q.tx.gc();
    }
    return this.pool.unanswered();
  }

  /** The counters of the queues connected now, added into `into`. */
  addTo(into: NetfrontCounters): NetfrontCounters {
    for (const q of this.active) addCounters(into, q.c);
    return into;
  }
}
