/**
 * The control ring, the frontend's side: xsim's own, after io/netif.h's
 * "Control ring" and "Control messages" (Linux's netfront has none; the
 * Windows PV drivers configure RSS over one). With several queues and a
 * backend offering feature-ctrl-ring, netfront grants a ring page
 * (ctrl-ring-ref) with one event channel (event-channel-ctrl), published
 * with the queues' keys, and configures a Toeplitz hash in two rounds:
 *
 *   1  SET_HASH_ALGORITHM(TOEPLITZ), GET_HASH_FLAGS, GET_HASH_MAPPING_SIZE
 *   2  SET_HASH_FLAGS(the types the backend computes), SET_HASH_KEY(a granted
 *      page, 40 octets), SET_HASH_MAPPING_SIZE(min(its size, 128)),
 *      SET_HASH_MAPPING(a granted page: entry i -> queue i % queues)
 *
 * The key is the RSS verification suite's (Microsoft's published key, also
 * DPDK's default_rss_key). A status other than SUCCESS stops the
 * configuration (the backend then steers by its own flow hash, or by what
 * was set). Responses are not trusted: an impossible producer or a response
 * to no request sent marks the device broken.
 */
import {
  FrontRing,
  NETIF_CTRL_SLOT_SIZE,
  PAGE_SIZE,
  SharedRing,
  XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP,
  XEN_NETIF_CTRL_HASH_TYPE_IPV6,
  XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP,
  XEN_NETIF_CTRL_STATUS_SUCCESS,
  XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS,
  XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE,
  XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM,
  XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS,
  XEN_NETIF_CTRL_TYPE_SET_HASH_KEY,
  XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING,
  XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE,
  readCtrlResponse,
  writeCtrlRequest,
  type NetifCtrlResponse,
} from '@xsim/hypervisor';
import type { NetfrontCounters, NetfrontDeps } from './common.ts';

/** The RSS verification key (40 octets). */
export const RSS_KEY = Uint8Array.from([
  0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb,
  0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
]);
/** The hash types xsim's netfront asks for (of those the backend computes). */
const WANTED_TYPES = XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP | XEN_NETIF_CTRL_HASH_TYPE_IPV6 | XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP;
/** The largest table it sets (Linux's netback takes up to 128). */
const MAPPING_MAX = 128;

/** What the control ring needs of its device. */
export interface CtrlHost {
  /** The device's own counters. */
  readonly own: NetfrontCounters;
  readonly backendDomid: number;
  broken(reason: string): void;
}

export class FrontCtrl {
  /** The ring page, and the pages of the key and of the mapping table (allocated once, with the device). */
  private readonly frames: [number, number, number];
  private ring: FrontRing | null = null;
  private refs: number[] = [];
  port = -1;
  private numQueues = 1;
  /** Requests sent and not answered: id -> type. */
  private readonly pending = new Map<number, number>();
  private nextId = 0;
  private round = 0;
  private readonly rsp: NetifCtrlResponse = { id: 0, type: 0, status: 0, data: 0 };
  /** Answers of round 1: the backend's hash types and table size. */
  private flags = 0;
  private mapSize = 0;
  /** 'configuring', 'configured', or why it stopped. */
  state = 'off';

  constructor(
    private readonly d: NetfrontDeps,
    private readonly host: CtrlHost,
  ) {
    const f = d.frames;
    this.frames = [f.alloc(), f.alloc(), f.alloc()];
  }

  /** The pages go back to the guest (unplug; detached first). */
  releasePages(): void {
    for (const f of this.frames) this.d.frames.release(f);
  }

  /** setup: the ring page granted read-write, an unbound port for the backend. Returns ctrl-ring-ref and event-channel-ctrl. */
  setup(numQueues: number): { ref: number; port: number } {
    const { mem, gnttab, grefs, evtchn } = this.d;
    const s = new SharedRing(mem.page(this.frames[0]), NETIF_CTRL_SLOT_SIZE);
    s.init();
    this.ring = new FrontRing(s);
    const ref = grefs.alloc();
    gnttab.grantAccess(ref, this.host.backendDomid, this.frames[0], false);
    this.refs = [ref];
    this.port = evtchn.allocUnbound(this.host.backendDomid);
    evtchn.bindHandler(this.port, () => {});
    this.numQueues = numQueues;
    this.pending.clear();
    this.round = 0;
    this.state = 'configuring';
    return { ref, port: this.port };
  }

  /** Round 1, once the keys are published. */
  start(): void {
    this.round = 1;
    this.send([
      [XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM, XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ],
      [XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS],
      [XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE],
    ]);
  }

  /** Round 2: the key and the table written into their pages, granted read-only, and the setters sent. */
  private configure(): void {
    const { mem, gnttab, grefs } = this.d;
    const size = Math.min(this.mapSize, MAPPING_MAX);
    mem.page(this.frames[1]).set(RSS_KEY);
    const table = new DataView(mem.u8.buffer, mem.frameOffset(this.frames[2]), PAGE_SIZE);
    for (let i = 0; i < size; i++) table.setUint32(i * 4, i % this.numQueues, true);
    const keyRef = grefs.alloc();
    const mapRef = grefs.alloc();
    gnttab.grantAccess(keyRef, this.host.backendDomid, this.frames[1], true);
    gnttab.grantAccess(mapRef, this.host.backendDomid, this.frames[2], true);
    this.refs.push(keyRef, mapRef);
    this.round = 2;
    const reqs: number[][] = [
      [XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, this.flags & WANTED_TYPES],
      [XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, keyRef, RSS_KEY.length],
    ];
    if (size > 0) reqs.push([XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, size], [XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, mapRef, size, 0]);
    this.send(reqs);
  }

  private send(reqs: number[][]): void {
    const ring = this.ring!;
    for (const [type, ...data] of reqs) {
      const id = this.nextId++ & 0xffff;
      this.pending.set(id, type);
      writeCtrlRequest(ring.sring.dv, ring.nextRequestOffset(), { id, type, data: [data[0] ?? 0, data[1] ?? 0, data[2] ?? 0] });
      ring.reqProdPvt = (ring.reqProdPvt + 1) >>> 0;
    }
    if (ring.pushRequestsAndCheckNotify() && this.d.evtchn.send(this.port)) this.host.own.notifiesSent++;
  }

  /** Take the backend's answers. Returns answers taken, or -1 if it broke the ring (the device is broken). */
  poll(): number {
    const ring = this.ring;
    if (!ring || this.pending.size === 0) return 0;
    let n = 0;
    const prod = ring.responseProducer();
    if (prod < 0) return this.fail(`Illegal number of control responses: rsp_prod ${ring.sring.rspProd}, req_prod_pvt ${ring.reqProdPvt}`);
    while (ring.rspCons !== prod) {
      const r = readCtrlResponse(ring.sring.dv, ring.responseOffset(ring.rspCons), this.rsp);
      ring.rspCons = (ring.rspCons + 1) >>> 0;
      n++;
      const type = this.pending.get(r.id);
      if (type === undefined || type !== r.type) return this.fail(`control response for a request not sent (id ${r.id}, type ${r.type})`);
      this.pending.delete(r.id);
      this.answer(type, r);
    }
    if (this.pending.size === 0 && this.round === 1 && this.state === 'configuring') this.configure();
    else if (this.pending.size === 0 && this.round === 2 && this.state === 'configuring') this.state = 'configured';
    return n;
  }

  private answer(type: number, r: NetifCtrlResponse): void {
    this.host.own.ctrlRequests++;
    if (r.status !== XEN_NETIF_CTRL_STATUS_SUCCESS) {
      this.host.own.ctrlErrors++;
      if (this.state === 'configuring') this.state = `stopped: request type ${type} answered status ${r.status}`;
      return;
    }
    if (type === XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS) this.flags = r.data;
    if (type === XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE) this.mapSize = r.data;
  }

  private fail(reason: string): number {
    this.host.broken(reason);
    return -1;
  }

  /** The ring is going: revoke what the backend no longer holds, close the port. */
  teardown(): void {
    if (!this.ring) return;
    const { gnttab, grefs, evtchn } = this.d;
    for (const ref of this.refs) if (gnttab.endAccess(ref)) grefs.release(ref);
    this.refs = [];
    evtchn.close(this.port);
    this.port = -1;
    this.ring = null;
    this.pending.clear();
    if (this.state === 'configuring') this.state = 'off';
  }
}
