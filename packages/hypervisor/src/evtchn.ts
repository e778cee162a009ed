/**
 * Event channels, after Xen's 2-level ABI, with the hypervisor's part made
 * explicit so that no domain holds another's event state.
 *
 * A domain's shared_info is Xen's x86_64 struct shared_info (public/xen.h),
 * in a page that domain alone holds, beside its RAM (a Xen guest maps the
 * page; an xsim guest reaches it through mask, unmask, isPending and
 * sharedInfo's copy, the page itself in a private field):
 *
 *        0  vcpu_info[XEN_LEGACY_MAX_VCPUS = 32], 64 octets each:
 *             +0 u8 evtchn_upcall_pending, +1 u8 evtchn_upcall_mask,
 *             +8 u64 evtchn_pending_sel, +16 arch_vcpu_info, +32 vcpu_time_info
 *     2048  u64 evtchn_pending[64]   (bit p%64 of word p/64: port p)
 *     2560  u64 evtchn_mask[64]
 *     3072  u32 wc_version, 3076 wc_sec, 3080 wc_nsec, 3084 wc_sec_hi
 *     3088  arch_shared_info (48 octets)
 *     3136  end (sizeof(struct shared_info)); the rest of the page unused
 *
 * The 64-bit words are reached as 32-bit halves (Int32Array Atomics): in
 * little-endian order bit p of the u64 array is bit p%32 of 32-bit word p/32
 * at the same offset. A port sets its evtchn_pending bit; if it is not
 * masked, the bit of its 64-bit word in vCPU 0's evtchn_pending_sel (an xsim
 * domain has one vCPU, and Xen binds every port to vCPU 0 until told
 * otherwise), and with a new selector bit evtchn_upcall_pending, as Xen's
 * evtchn_2l_set_pending does; unmasking a pending port does the same. The
 * upcall (dispatch) clears evtchn_upcall_pending, takes the selector and runs
 * each pending unmasked port's handler, as Linux's 2-level upcall does.
 * What xsim leaves unused: the other 31 vcpu_info slots, evtchn_upcall_mask
 * (the upcall runs in the domain's own turn, where nothing can interrupt
 * it), the time fields and the arch part (zeros).
 *
 * Xen's hypervisor sets the bits of a receiver's shared_info itself on a
 * send; here each domain's shared_info is reachable by that domain only, and
 * a binding (one interdomain channel, or one device interrupt) is 8 bytes
 * shared by its two ends and no one else:
 *
 *     +0  u32  pending for end 0   (set by end 1's send)
 *     +4  u32  pending for end 1   (set by end 0's send)
 *
 * send(port) sets the peer's word and rings the peer's pCPU doorbell (which
 * can only wake that pCPU: it changes nothing of the peer's). The receiver's
 * upcall (dispatch) pulls its words into its own pending bitmap and runs the
 * unmasked ports' handlers. Closing a port drops the binding from the
 * receiver's scan: whatever the old peer still writes is never read again.
 *
 * The hypervisor side, EvtchnService (one per host, where the toolstack
 * runs), is the authority on every domain's port table: alloc_unbound,
 * bind_interdomain (it makes the binding and hands it to both ends, with each
 * end's doorbell), close (the peer reverts to unbound and is told), and
 * device interrupts (a binding between a domain and the NIC, which only dom0
 * may hand to the hardware).
 */
import { tracer } from './trace/tracer.ts';
import { ANY, CH, type Addr, type Bus, type Envelope } from './bus/bus.ts';
import { PAGE_SIZE } from './memory.ts';
import { RpcEndpoint, WithShared, type RpcValue } from './rpc.ts';
import { WakeWord } from './wake.ts';

/** Ports per domain: NR_EVENT_CHANNELS of the 2-level ABI for a 64-bit guest, 64 × 64 (EVTCHN_2L_NR_CHANNELS). */
export const NR_EVTCHN_PORTS = 4096;

// struct vcpu_info (x86), octets from its start.
export const VCPU_INFO_SIZE = 64;
export const VCPU_INFO_EVTCHN_UPCALL_PENDING = 0;
export const VCPU_INFO_EVTCHN_UPCALL_MASK = 1;
export const VCPU_INFO_EVTCHN_PENDING_SEL = 8;
export const VCPU_INFO_ARCH = 16;
export const VCPU_INFO_TIME = 32;
// struct shared_info (x86_64), octets from its start.
export const XEN_LEGACY_MAX_VCPUS = 32;
export const SHARED_INFO_VCPU_INFO = 0;
export const SHARED_INFO_EVTCHN_PENDING = SHARED_INFO_VCPU_INFO + XEN_LEGACY_MAX_VCPUS * VCPU_INFO_SIZE;
/** xen_ulong_t words of the pending (and of the mask) bitmap: one per bit of a selector. */
export const EVTCHN_WORDS = NR_EVTCHN_PORTS / 64;
export const SHARED_INFO_EVTCHN_MASK = SHARED_INFO_EVTCHN_PENDING + EVTCHN_WORDS * 8;
export const SHARED_INFO_WC_VERSION = SHARED_INFO_EVTCHN_MASK + EVTCHN_WORDS * 8;
export const SHARED_INFO_WC_SEC = SHARED_INFO_WC_VERSION + 4;
export const SHARED_INFO_WC_NSEC = SHARED_INFO_WC_SEC + 4;
export const SHARED_INFO_WC_SEC_HI = SHARED_INFO_WC_NSEC + 4;
export const SHARED_INFO_ARCH = SHARED_INFO_WC_SEC_HI + 4;
export const ARCH_SHARED_INFO_SIZE = 48;
/** sizeof(struct shared_info) on x86_64: 3136. */
export const SHARED_INFO_SIZE = SHARED_INFO_ARCH + ARCH_SHARED_INFO_SIZE;

// The same places in 32-bit words (vCPU 0's vcpu_info), and bytes for the upcall flag.
const SI_PENDING = SHARED_INFO_EVTCHN_PENDING / 4;
const SI_MASK = SHARED_INFO_EVTCHN_MASK / 4;
const SI_SEL = (SHARED_INFO_VCPU_INFO + VCPU_INFO_EVTCHN_PENDING_SEL) / 4;
/** 32-bit halves of the 64-bit selector. */
const SEL_HALVES = EVTCHN_WORDS / 32;
const SI_UPCALL_PENDING = SHARED_INFO_VCPU_INFO + VCPU_INFO_EVTCHN_UPCALL_PENDING;
export const BINDING_BYTES = 8;

export const ECS_FREE = 0;
export const ECS_UNBOUND = 1;
export const ECS_INTERDOMAIN = 2;
/** Bound to a hardware interrupt source (a NIC VI): raised by the device, not by a domain. */
export const ECS_PIRQ = 3;
export const ECS_NAMES = ['free', 'unbound', 'interdomain', 'pirq'];

export type EvtchnHandler = (port: number) => void;

export class EvtchnError extends Error {
  constructor(
    message: string,
    readonly errno: 'EINVAL' | 'ENOSPC' | 'ESRCH' | 'EBUSY' | 'EPERM',
  ) {
    super(message);
    this.name = 'EvtchnError';
  }
}

/** A bound port's private record: the binding words and how to ring the peer. */
interface Bound {
  words: Int32Array;
  /** Our end: we read words[end] and write words[1 - end]. */
  end: number;
  /** The peer's pCPU doorbell (null for a device: it polls). */
  kick: WakeWord | null;
}

/**
 * A domain's event channels. Built by the hypervisor layer with the domain's
 * hypercall endpoint; the domain's code uses the methods and never sees the
 * bindings' or doorbells' memory (private fields).
 */
export class EventChannels {
  readonly domid: number;
  /** The shared_info page, as 32-bit words (the bitmaps and selector) and as octets (evtchn_upcall_pending). */
  readonly #si: Int32Array;
  readonly #si8: Uint8Array;
  readonly #hv: RpcEndpoint;
  readonly #bound = new Map<number, Bound>();
  /** Ports in the order the scan visits them (kept in step with #bound). */
  #scan: { port: number; b: Bound }[] = [];
  readonly #handlers = new Map<number, EvtchnHandler>();
  /** Ports allocated and in what state, as this domain knows them. */
  readonly #state = new Map<number, number>();

  constructor(domid: number, hv: RpcEndpoint) {
    this.domid = domid;
    const page = new SharedArrayBuffer(PAGE_SIZE);
    this.#si = new Int32Array(page);
    this.#si8 = new Uint8Array(page);
    this.#hv = hv;
    hv.onEvent((op, args, shared) => this.fromHypervisor(op, args, shared));
  }

  /** The hypervisor told us of a change to one of our ports. */
  private fromHypervisor(op: string, args: RpcValue, shared: readonly SharedArrayBuffer[]): void {
    const a = (args ?? {}) as { port?: unknown; end?: unknown };
    const port = Number(a.port);
    if (!(port > 0 && port < NR_EVTCHN_PORTS)) return;
    if (op === 'bound' && shared[0]) {
      // Our unbound port was bound by its remote end: from now on it carries events.
      this.attach(
        port,
        { words: new Int32Array(shared[0], 0, 2), end: Number(a.end) & 1, kick: shared[1] ? new WakeWord(shared[1], 0) : null },
        ECS_INTERDOMAIN,
      );
    } else if (op === 'unbound') {
      // The remote end closed: the port reverts to unbound, and its binding is never read again.
      this.detach(port);
      this.#state.set(port, ECS_UNBOUND);
    }
  }

  private attach(port: number, b: Bound, state: number): void {
    this.#bound.set(port, b);
    this.#state.set(port, state);
    this.#scan = [...this.#bound].map(([p, x]) => ({ port: p, b: x }));
  }

  private detach(port: number): void {
    if (this.#bound.delete(port)) this.#scan = [...this.#bound].map(([p, x]) => ({ port: p, b: x }));
  }

  /** Handle the hypervisor's notices (from the domain's turn). */
  poll(): number {
    return this.#hv.poll();
  }

  /** EVTCHNOP_alloc_unbound: a port that `remoteDomid` may bind to. */
  allocUnbound(remoteDomid: number): number {
    const port = Number(this.#hv.requestSync('alloc_unbound', { remote: remoteDomid }));
    this.#state.set(port, ECS_UNBOUND);
    this.clearBits(port);
    return port;
  }

  /** EVTCHNOP_bind_interdomain. */
  bindInterdomain(remoteDomid: number, remotePort: number): number {
    const r = this.#hv.requestSyncShared('bind_interdomain', { remote: remoteDomid, port: remotePort });
    const port = Number(r.value);
    this.clearBits(port);
    this.attach(port, { words: new Int32Array(r.shared[0], 0, 2), end: 0, kick: r.shared[1] ? new WakeWord(r.shared[1], 0) : null }, ECS_INTERDOMAIN);
    return port;
  }

  /** A port a device raises (a NIC VI's interrupt); dom0 hands the device its half through device_irq. */
  allocPirq(): number {
    const r = this.#hv.requestSyncShared('alloc_pirq', {});
    const port = Number(r.value);
    this.clearBits(port);
    // The device is end 1: it sets words[0]; we never ring it.
    this.attach(port, { words: new Int32Array(r.shared[0], 0, 2), end: 0, kick: null }, ECS_PIRQ);
    return port;
  }

  /** The binding of `domid`'s PIRQ port and that domain's doorbell, for its device (dom0 only). */
  deviceIrq(domid: number, port: number): { binding: SharedArrayBuffer; doorbell: SharedArrayBuffer } {
    const r = this.#hv.requestSyncShared('device_irq', { domid, port });
    return { binding: r.shared[0], doorbell: r.shared[1] };
  }

  status(port: number): { state: number } {
    this.checkPort(port);
    return { state: this.#state.get(port) ?? ECS_FREE };
  }

  /** EVTCHNOP_send. False (as Xen's silent no-op) if the port carries no interdomain binding. */
  send(port: number): boolean {
    const b = this.#bound.get(port);
    if (!b || !b.kick) return false;
    if (tracer.on) tracer.instant('evtchn send', { port });
    if (Atomics.exchange(b.words, 1 - b.end, 1) === 0) b.kick.kick();
    return true;
  }

  /** Raise one of our own ports (self-kicks, tests). */
  raiseLocal(port: number): void {
    this.checkPort(port);
    this.setPending(port);
  }

  /** EVTCHNOP_close. An interdomain peer reverts to unbound, as in Xen. */
  close(port: number): void {
    this.checkPort(port);
    this.detach(port);
    this.#handlers.delete(port);
    this.#state.delete(port);
    this.clearBits(port);
    try {
      this.#hv.requestSync('close', { port });
    } catch {
      // The hypervisor may already be gone (shutdown): nothing of ours is left to undo.
    }
  }

  /** Close every port (the domain is going). */
  closeAll(): void {
    for (const port of [...this.#state.keys()]) this.close(port);
  }

  mask(port: number): void {
    this.checkPort(port);
    Atomics.or(this.#si, SI_MASK + (port >>> 5), 1 << (port & 31));
  }

  /** Unmasking a port with an event pending delivers it, as Xen's evtchn_2l_unmask does. */
  unmask(port: number): void {
    this.checkPort(port);
    const bit = 1 << (port & 31);
    if ((Atomics.and(this.#si, SI_MASK + (port >>> 5), ~bit) & bit) !== 0 && this.isPending(port)) this.select(port);
  }

  isPending(port: number): boolean {
    return (Atomics.load(this.#si, SI_PENDING + (port >>> 5)) & (1 << (port & 31))) !== 0;
  }

  /** A copy of this domain's struct shared_info (SHARED_INFO_SIZE octets), as a guest may read its own. */
  sharedInfo(): Uint8Array {
    return this.#si8.slice(0, SHARED_INFO_SIZE);
  }

  bindHandler(port: number, handler: EvtchnHandler): void {
    this.checkPort(port);
    this.#handlers.set(port, handler);
  }

  /** Xen's evtchn_2l_set_pending: the pending bit; unless masked, the selector bit and the upcall flag. */
  private setPending(port: number): void {
    const bit = 1 << (port & 31);
    if ((Atomics.or(this.#si, SI_PENDING + (port >>> 5), bit) & bit) !== 0) return;
    if ((Atomics.load(this.#si, SI_MASK + (port >>> 5)) & bit) === 0) this.select(port);
  }

  /** Set the bit of the port's 64-bit pending word in vCPU 0's evtchn_pending_sel; a new one raises evtchn_upcall_pending. */
  private select(port: number): void {
    const w = port >>> 6;
    const sel = 1 << (w & 31);
    if ((Atomics.or(this.#si, SI_SEL + (w >>> 5), sel) & sel) === 0) Atomics.store(this.#si8, SI_UPCALL_PENDING, 1);
  }

  /** Anything to deliver? A binding word set, or evtchn_upcall_pending (cheap: the scheduler asks every round). */
  hasPending(): boolean {
    const scan = this.#scan;
    for (let i = 0; i < scan.length; i++) if (Atomics.load(scan[i].b.words, scan[i].b.end) !== 0) return true;
    return Atomics.load(this.#si8, SI_UPCALL_PENDING) !== 0;
  }

  /**
   * The upcall: take every binding's word into our pending bitmap, then, as
   * Linux's 2-level upcall, clear evtchn_upcall_pending, take the selector,
   * and clear and dispatch every pending unmasked port of each word it names.
   * A bit is taken before its handler runs, so an event raised meanwhile is
   * seen next time, never lost. Returns the number of ports dispatched.
   */
  dispatch(): number {
    const scan = this.#scan;
    for (let i = 0; i < scan.length; i++) {
      const { port, b } = scan[i];
      if (Atomics.load(b.words, b.end) !== 0 && Atomics.exchange(b.words, b.end, 0) !== 0) this.setPending(port);
    }
    Atomics.store(this.#si8, SI_UPCALL_PENDING, 0);
    let n = 0;
    for (let s = 0; s < SEL_HALVES; s++) {
      let sel = Atomics.exchange(this.#si, SI_SEL + s, 0);
      while (sel !== 0) {
        const wb = 31 - Math.clz32(sel);
        sel &= ~(1 << wb);
        // 64-bit word w of the bitmaps: its high half, then its low half.
        const w = (s << 5) | wb;
        for (let h = 1; h >= 0; h--) n += this.fire((w << 1) | h);
      }
    }
    return n;
  }

  /** Clear and run the pending unmasked ports of 32-bit bitmap word `w`. */
  private fire(w: number): number {
    const maskw = Atomics.load(this.#si, SI_MASK + w);
    let bits = Atomics.and(this.#si, SI_PENDING + w, maskw) & ~maskw;
    let n = 0;
    while (bits !== 0) {
      const bit = 31 - Math.clz32(bits);
      bits &= ~(1 << bit);
      const port = (w << 5) | bit;
      n++;
      this.#handlers.get(port)?.(port);
    }
    return n;
  }

  private clearBits(port: number): void {
    const bit = 1 << (port & 31);
    Atomics.and(this.#si, SI_PENDING + (port >>> 5), ~bit);
    Atomics.and(this.#si, SI_MASK + (port >>> 5), ~bit);
  }

  private checkPort(port: number): void {
    if (!(Number.isInteger(port) && port > 0 && port < NR_EVTCHN_PORTS))
      throw new EvtchnError(`domain ${this.domid}: bad event-channel port ${port}`, 'EINVAL');
  }
}

/**
 * A device's half of a PIRQ binding (the NIC raising a VI's interrupt): it
 * can set the domain's word of that one binding and ring its doorbell, nothing else.
 */
export class DeviceIrq {
  readonly #words: Int32Array;
  readonly #kick: WakeWord;

  constructor(binding: SharedArrayBuffer, doorbell: SharedArrayBuffer) {
    this.#words = new Int32Array(binding, 0, 2);
    this.#kick = new WakeWord(doorbell, 0);
  }

  raise(): void {
    if (Atomics.exchange(this.#words, 0, 1) === 0) this.#kick.kick();
  }
}

// ---------------------------------------------------------------------------
// The hypervisor side.

interface SvcPort {
  state: number;
  /** Interdomain/unbound: the remote domid; interdomain: the remote port. */
  remote: number;
  remotePort: number;
  binding?: SharedArrayBuffer;
}

interface SvcDomain {
  uid: Addr;
  domid: number;
  doorbell: SharedArrayBuffer;
  ports: Map<number, SvcPort>;
  privileged: boolean;
}

export interface EvtchnServiceStats {
  calls: number;
  refused: number;
  bindings: number;
}

export class EvtchnService {
  private readonly byUid = new Map<Addr, SvcDomain>();
  private readonly byDomid = new Map<number, SvcDomain>();
  private readonly rpc = new Map<Addr, RpcEndpoint>();
  readonly stats: EvtchnServiceStats = { calls: 0, refused: 0, bindings: 0 };

  constructor(
    private readonly bus: Bus,
    readonly addr: Addr,
  ) {
    // One endpoint per domain, made at introduce(); a stranger's request reaches none.
    const inbox = bus.register(addr, CH.hv, ANY);
    inbox.immediate = true;
    inbox.onArrive = (e: Envelope) => {
      this.stats.refused++;
      void e;
    };
  }

  /** A new domain: it speaks from `uid` and is woken through `doorbell` (its pCPU's). */
  introduce(uid: Addr, domid: number, doorbell: SharedArrayBuffer, privileged = domid === 0): void {
    const d: SvcDomain = { uid, domid, doorbell, ports: new Map(), privileged };
    this.byUid.set(uid, d);
    this.byDomid.set(domid, d);
    const ep = new RpcEndpoint(this.bus, this.addr, uid, CH.hv).listen();
    ep.onRequest((op, args) => this.call(d, op, (args ?? {}) as Record<string, unknown>));
    this.rpc.set(uid, ep);
  }

  /** The domain is gone: every port closes (its peers revert to unbound and are told). */
  release(uid: Addr): number {
    const d = this.byUid.get(uid);
    if (!d) return 0;
    let n = 0;
    for (const port of [...d.ports.keys()]) {
      this.closePort(d, port);
      n++;
    }
    this.byUid.delete(uid);
    if (this.byDomid.get(d.domid) === d) this.byDomid.delete(d.domid);
    this.rpc.get(uid)?.close();
    this.rpc.delete(uid);
    return n;
  }

  /** Domains introduced and ports held by all of them (for leak checks). */
  usage(): { domains: number; ports: number } {
    let ports = 0;
    for (const d of this.byUid.values()) ports += d.ports.size;
    return { domains: this.byUid.size, ports };
  }

  /** Ports a domain holds (for leak checks). */
  portsOf(domid: number): number {
    return this.byDomid.get(domid)?.ports.size ?? 0;
  }

  private call(d: SvcDomain, op: string, a: Record<string, unknown>): RpcValue {
    this.stats.calls++;
    const int = (k: string): number => {
      const v = a[k];
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new EvtchnError(`${op}: ${k} must be an integer, got ${JSON.stringify(v)}`, 'EINVAL');
      return v;
    };
    switch (op) {
      case 'alloc_unbound': {
        const remote = int('remote');
        return this.alloc(d, { state: ECS_UNBOUND, remote, remotePort: 0 });
      }
      case 'bind_interdomain':
        return this.bind(d, int('remote'), int('port'));
      case 'close': {
        const port = int('port');
        if (!d.ports.has(port)) throw new EvtchnError(`close: domain ${d.domid} has no port ${port}`, 'EINVAL');
        this.closePort(d, port);
        return true;
      }
      case 'alloc_pirq': {
        const binding = new SharedArrayBuffer(BINDING_BYTES);
        const port = this.alloc(d, { state: ECS_PIRQ, remote: -1, remotePort: 0, binding });
        return withShared(port, [binding]);
      }
      case 'device_irq': {
        if (!d.privileged) throw new EvtchnError(`device_irq: domain ${d.domid} may not hand interrupts to devices`, 'EPERM');
        const t = this.byDomid.get(int('domid'));
        const p = t?.ports.get(int('port'));
        if (!t || !p || p.state !== ECS_PIRQ || !p.binding)
          throw new EvtchnError(`device_irq: port ${String(a.port)} of domain ${String(a.domid)} is not a device interrupt`, 'EINVAL');
        return withShared(true, [p.binding, t.doorbell]);
      }
      case 'status': {
        const p = d.ports.get(int('port'));
        return { state: p?.state ?? ECS_FREE, remote: p?.remote, remotePort: p?.remotePort };
      }
      default:
        throw new EvtchnError(`unknown event-channel operation ${op}`, 'EINVAL');
    }
  }

  private alloc(d: SvcDomain, p: SvcPort): number {
    for (let port = 1; port < NR_EVTCHN_PORTS; port++) {
      if (!d.ports.has(port)) {
        d.ports.set(port, p);
        return port;
      }
    }
    throw new EvtchnError(`domain ${d.domid}: all ${NR_EVTCHN_PORTS} event-channel ports in use`, 'ENOSPC');
  }

  private bind(d: SvcDomain, remoteDomid: number, remotePort: number): RpcValue {
    const r = this.byDomid.get(remoteDomid);
    if (!r) throw new EvtchnError(`bind_interdomain: no domain ${remoteDomid} on this host`, 'ESRCH');
    const rp = r.ports.get(remotePort);
    if (!rp || rp.state !== ECS_UNBOUND || rp.remote !== d.domid) {
      throw new EvtchnError(`bind_interdomain: port ${remotePort} of domain ${remoteDomid} is not unbound for domain ${d.domid}`, 'EINVAL');
    }
    const binding = new SharedArrayBuffer(BINDING_BYTES);
    const port = this.alloc(d, { state: ECS_INTERDOMAIN, remote: remoteDomid, remotePort, binding });
    rp.state = ECS_INTERDOMAIN;
    rp.remotePort = port;
    rp.binding = binding;
    this.stats.bindings++;
    // The remote end learns of it (end 1) with our doorbell; we get end 0 with theirs.
    this.rpc.get(r.uid)?.event('bound', { port: remotePort, end: 1 }, [binding, d.doorbell]);
    return withShared(port, [binding, r.doorbell]);
  }

  private closePort(d: SvcDomain, port: number): void {
    const p = d.ports.get(port);
    if (!p) return;
    d.ports.delete(port);
    if (p.state !== ECS_INTERDOMAIN) return;
    const r = this.byDomid.get(p.remote);
    const rp = r?.ports.get(p.remotePort);
    if (r && rp && rp.state === ECS_INTERDOMAIN && rp.remotePort === port && rp.remote === d.domid) {
      // As in Xen: the peer's port reverts to unbound (for us), and it stops reading the binding.
      rp.state = ECS_UNBOUND;
      rp.remotePort = 0;
      rp.binding = undefined;
      this.rpc.get(r.uid)?.event('unbound', { port: p.remotePort });
    }
  }
}

/** A reply value with shared memory beside it (see RpcEndpoint's WithShared). */
function withShared(v: RpcValue, s: SharedArrayBuffer[]): WithShared {
  return new WithShared(v, s);
}
