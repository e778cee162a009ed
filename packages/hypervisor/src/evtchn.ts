/**
 * Event channels, 2-level ABI style: per-domain pending and mask bitmaps plus a
 * selector word, all in one SharedArrayBuffer per host (the hypervisor's
 * shared_info pages for every domain of that host). Sending sets the remote
 * pending bit and, when it was newly set and unmasked, kicks the remote
 * domain's wake word so a sleeping worker runs.
 *
 * Every worker of a host constructs an EventChannels over the same buffer with
 * its own domid; ports and bitmaps are addressed through a domid→slot table in
 * the buffer header.
 */
import { WakeWord, kickWord } from './wake.ts';

export const NR_EVTCHN_PORTS = 1024;
export const MAX_HOST_DOMAINS = 32;
const WORDS = NR_EVTCHN_PORTS / 32;

// Slot layout, in 32-bit words.
const SLOT_WAKE = 0; // and SLOT_WAKE + 1: the wake word's asleep flag
const SLOT_SEL = 2;
const SLOT_PENDING = 16;
const SLOT_MASK = SLOT_PENDING + WORDS;
const SLOT_STATE = SLOT_MASK + WORDS;
const SLOT_PEER = SLOT_STATE + NR_EVTCHN_PORTS;
const SLOT_WORDS = SLOT_PEER + NR_EVTCHN_PORTS;
const HEADER_WORDS = MAX_HOST_DOMAINS; // domid + 1 per slot, 0 = free

export const ECS_FREE = 0;
export const ECS_UNBOUND = 1;
export const ECS_INTERDOMAIN = 2;
/** Bound to a hardware interrupt source (a NIC VI): raised by the device, not by a domain. */
export const ECS_PIRQ = 3;

export type EvtchnHandler = (port: number) => void;

export class EvtchnError extends Error {
  constructor(
    message: string,
    readonly errno: 'EINVAL' | 'ENOSPC' | 'ESRCH' | 'EBUSY',
  ) {
    super(message);
    this.name = 'EvtchnError';
  }
}

export class EventChannelBus {
  /** Allocate the shared state of one host. Done by the toolstack before domains start. */
  static create(): SharedArrayBuffer {
    return new SharedArrayBuffer((HEADER_WORDS + MAX_HOST_DOMAINS * SLOT_WORDS) * 4);
  }

  /** Register a domain; returns its slot. Idempotent per domid. */
  static addDomain(sab: SharedArrayBuffer, domid: number): number {
    const i32 = new Int32Array(sab);
    for (let s = 0; s < MAX_HOST_DOMAINS; s++) if (i32[s] === domid + 1) return s;
    for (let s = 0; s < MAX_HOST_DOMAINS; s++) {
      if (Atomics.compareExchange(i32, s, 0, domid + 1) === 0) return s;
    }
    throw new EvtchnError(`no event-channel slot left for domain ${domid} (max ${MAX_HOST_DOMAINS} per host)`, 'ENOSPC');
  }

  /** Byte offset of a registered domain's wake word (what its worker sleeps on). */
  static wakeOffset(sab: SharedArrayBuffer, domid: number): number {
    const base = slotBase(new Int32Array(sab), domid);
    if (base < 0) throw new EvtchnError(`domain ${domid} has no event-channel slot on this host`, 'ESRCH');
    return (base + SLOT_WAKE) * 4;
  }

  static wakeOf(sab: SharedArrayBuffer, domid: number): WakeWord {
    return new WakeWord(sab, EventChannelBus.wakeOffset(sab, domid));
  }
}

function slotBase(i32: Int32Array, domid: number): number {
  for (let s = 0; s < MAX_HOST_DOMAINS; s++) if (Atomics.load(i32, s) === domid + 1) return HEADER_WORDS + s * SLOT_WORDS;
  return -1;
}

/** Raise `port` of domain `domid`: the one primitive behind send and device interrupts. */
function raise(i32: Int32Array, base: number, port: number): void {
  const w = port >>> 5;
  const bit = 1 << (port & 31);
  const old = Atomics.or(i32, base + SLOT_PENDING + w, bit);
  if (old & bit) return;
  if (Atomics.load(i32, base + SLOT_MASK + w) & bit) return;
  Atomics.or(i32, base + SLOT_SEL, 1 << w);
  kickWord(i32, base + SLOT_WAKE);
}

export class EventChannels {
  readonly domid: number;
  readonly wake: WakeWord;
  private readonly i32: Int32Array;
  private readonly base: number;
  private readonly handlers: (EvtchnHandler | undefined)[] = new Array(NR_EVTCHN_PORTS);
  /** Remote slot base and port of interdomain ports, cached so send() does no lookup. */
  private readonly peerBase = new Int32Array(NR_EVTCHN_PORTS).fill(-1);

  constructor(sab: SharedArrayBuffer, domid: number) {
    this.i32 = new Int32Array(sab);
    this.domid = domid;
    this.base = slotBase(this.i32, domid);
    if (this.base < 0) throw new EvtchnError(`domain ${domid} has no event-channel slot on this host`, 'ESRCH');
    this.wake = new WakeWord(sab, (this.base + SLOT_WAKE) * 4);
  }

  /** EVTCHNOP_alloc_unbound: a port that `remoteDomid` may bind to. */
  allocUnbound(remoteDomid: number): number {
    return this.allocPort(ECS_UNBOUND, remoteDomid << 16);
  }

  /** A port raised by a device (NIC VI interrupts); hand (domid, port) to the device. */
  allocPirq(): number {
    return this.allocPort(ECS_PIRQ, 0);
  }

  private allocPort(state: number, peer: number): number {
    for (let p = 1; p < NR_EVTCHN_PORTS; p++) {
      const idx = this.base + SLOT_STATE + p;
      if (Atomics.load(this.i32, idx) !== ECS_FREE) continue;
      Atomics.store(this.i32, this.base + SLOT_PEER + p, peer);
      if (Atomics.compareExchange(this.i32, idx, ECS_FREE, state) === ECS_FREE) {
        this.clearBits(p);
        return p;
      }
    }
    throw new EvtchnError(`domain ${this.domid}: all ${NR_EVTCHN_PORTS} event-channel ports in use`, 'ENOSPC');
  }

  /** EVTCHNOP_bind_interdomain. */
  bindInterdomain(remoteDomid: number, remotePort: number): number {
    const rbase = slotBase(this.i32, remoteDomid);
    if (rbase < 0) throw new EvtchnError(`bind_interdomain: no domain ${remoteDomid} on this host`, 'ESRCH');
    if (!(remotePort > 0 && remotePort < NR_EVTCHN_PORTS)) throw new EvtchnError(`bind_interdomain: bad port ${remotePort}`, 'EINVAL');
    const ridx = rbase + SLOT_STATE + remotePort;
    const rpeer = Atomics.load(this.i32, rbase + SLOT_PEER + remotePort);
    if (Atomics.load(this.i32, ridx) !== ECS_UNBOUND || rpeer >>> 16 !== this.domid) {
      throw new EvtchnError(`bind_interdomain: port ${remotePort} of domain ${remoteDomid} is not unbound for domain ${this.domid}`, 'EINVAL');
    }
    const local = this.allocPort(ECS_INTERDOMAIN, (remoteDomid << 16) | remotePort);
    Atomics.store(this.i32, rbase + SLOT_PEER + remotePort, (this.domid << 16) | local);
    if (Atomics.compareExchange(this.i32, ridx, ECS_UNBOUND, ECS_INTERDOMAIN) !== ECS_UNBOUND) {
      Atomics.store(this.i32, this.base + SLOT_STATE + local, ECS_FREE);
      throw new EvtchnError(`bind_interdomain: port ${remotePort} of domain ${remoteDomid} was bound concurrently`, 'EBUSY');
    }
    this.peerBase[local] = rbase;
    return local;
  }

  /** Local port's state and, for interdomain ports, the peer. */
  status(port: number): { state: number; remoteDomid: number; remotePort: number } {
    this.checkPort(port);
    const peer = Atomics.load(this.i32, this.base + SLOT_PEER + port);
    return { state: Atomics.load(this.i32, this.base + SLOT_STATE + port), remoteDomid: peer >>> 16, remotePort: peer & 0xffff };
  }

  /** EVTCHNOP_send. Sending on an unbound or closed port is a silent no-op in Xen; we report it. */
  send(port: number): boolean {
    let rbase = this.peerBase[port];
    if (rbase < 0) {
      if (!(port > 0 && port < NR_EVTCHN_PORTS)) return false;
      if (Atomics.load(this.i32, this.base + SLOT_STATE + port) !== ECS_INTERDOMAIN) return false;
      const peer = Atomics.load(this.i32, this.base + SLOT_PEER + port);
      rbase = slotBase(this.i32, peer >>> 16);
      if (rbase < 0) return false;
      this.peerBase[port] = rbase;
    }
    const peer = Atomics.load(this.i32, this.base + SLOT_PEER + port);
    // The peer may have closed: it then no longer points back at us.
    if (Atomics.load(this.i32, this.base + SLOT_STATE + port) !== ECS_INTERDOMAIN) {
      this.peerBase[port] = -1;
      return false;
    }
    raise(this.i32, rbase, peer & 0xffff);
    return true;
  }

  /** Raise one of our own ports (used for self-kicks and tests). */
  raiseLocal(port: number): void {
    this.checkPort(port);
    raise(this.i32, this.base, port);
  }

  /** EVTCHNOP_close. The interdomain peer reverts to unbound, as in Xen. */
  close(port: number): void {
    this.checkPort(port);
    const idx = this.base + SLOT_STATE + port;
    const state = Atomics.load(this.i32, idx);
    if (state === ECS_INTERDOMAIN) {
      const peer = Atomics.load(this.i32, this.base + SLOT_PEER + port);
      const rbase = slotBase(this.i32, peer >>> 16);
      if (rbase >= 0) {
        const rp = peer & 0xffff;
        if (Atomics.load(this.i32, rbase + SLOT_PEER + rp) === ((this.domid << 16) | port)) {
          Atomics.store(this.i32, rbase + SLOT_PEER + rp, this.domid << 16);
          Atomics.compareExchange(this.i32, rbase + SLOT_STATE + rp, ECS_INTERDOMAIN, ECS_UNBOUND);
        }
      }
    }
    this.handlers[port] = undefined;
    this.peerBase[port] = -1;
    Atomics.store(this.i32, idx, ECS_FREE);
    this.clearBits(port);
  }

  mask(port: number): void {
    this.checkPort(port);
    Atomics.or(this.i32, this.base + SLOT_MASK + (port >>> 5), 1 << (port & 31));
  }

  /** Unmasking a port with an event pending delivers it, as in Xen. */
  unmask(port: number): void {
    this.checkPort(port);
    const w = port >>> 5;
    const bit = 1 << (port & 31);
    Atomics.and(this.i32, this.base + SLOT_MASK + w, ~bit);
    if (Atomics.load(this.i32, this.base + SLOT_PENDING + w) & bit) {
      Atomics.or(this.i32, this.base + SLOT_SEL, 1 << w);
      this.wake.kick();
    }
  }

  isPending(port: number): boolean {
    return (Atomics.load(this.i32, this.base + SLOT_PENDING + (port >>> 5)) & (1 << (port & 31))) !== 0;
  }

  bindHandler(port: number, handler: EvtchnHandler): void {
    this.checkPort(port);
    this.handlers[port] = handler;
  }

  /**
   * The upcall: clear and dispatch every pending unmasked port. Pending bits
   * are cleared before the handler runs so an event raised meanwhile is seen
   * on the next call, never lost. Returns the number of ports dispatched.
   */
  dispatch(): number {
    let sel = Atomics.exchange(this.i32, this.base + SLOT_SEL, 0);
    let n = 0;
    while (sel !== 0) {
      const w = 31 - Math.clz32(sel);
      sel &= ~(1 << w);
      const maskw = Atomics.load(this.i32, this.base + SLOT_MASK + w);
      const fired = Atomics.and(this.i32, this.base + SLOT_PENDING + w, maskw) & ~maskw;
      let bits = fired;
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits);
        bits &= ~(1 << b);
        const port = (w << 5) | b;
        n++;
        this.handlers[port]?.(port);
      }
    }
    return n;
  }

  private clearBits(port: number): void {
    const w = port >>> 5;
    const bit = 1 << (port & 31);
    Atomics.and(this.i32, this.base + SLOT_PENDING + w, ~bit);
    Atomics.and(this.i32, this.base + SLOT_MASK + w, ~bit);
  }

  private checkPort(port: number): void {
    if (!(Number.isInteger(port) && port > 0 && port < NR_EVTCHN_PORTS)) {
      throw new EvtchnError(`domain ${this.domid}: bad event-channel port ${port}`, 'EINVAL');
    }
  }
}

/**
 * A device's view of a host's event channels: it can only raise ports that a
 * domain bound as PIRQ (hardware interrupt) ports, nothing else.
 */
export class DeviceInterrupts {
  private readonly i32: Int32Array;

  constructor(sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab);
  }

  /** Returns false (and raises nothing) if that port is not a PIRQ port of that domain. */
  raise(domid: number, port: number): boolean {
    if (!(port > 0 && port < NR_EVTCHN_PORTS)) return false;
    const base = slotBase(this.i32, domid);
    if (base < 0 || Atomics.load(this.i32, base + SLOT_STATE + port) !== ECS_PIRQ) return false;
    raise(this.i32, base, port);
    return true;
  }
}
