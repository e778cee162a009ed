/**
 * The control-plane bus: how every control message travels between domains,
 * the toolstack, each host's xenstored and hypervisor service, and the NIC.
 * Data never travels here (that is rings and DMA in shared memory).
 *
 * Each thread has one Bus. An endpoint is registered for (own address,
 * channel, peer address); the bus stamps the sender's address on everything
 * it sends for that endpoint, and delivers an envelope only to the endpoint
 * made for exactly that sender. So a domain, which is only ever handed its
 * own endpoints (never the bus), cannot speak as another, and a message from
 * anyone but a channel's peer never reaches it (counted as misdirected).
 * Services that talk to every domain (xenstored, the hypervisor) register a
 * wildcard endpoint and learn who is speaking from the stamp.
 *
 * Envelopes between threads go over MessagePorts (Links), after which the
 * receiving thread's doorbell is kicked; on one thread they are queued
 * directly. The body is msgpack-encoded always, so no object is ever shared
 * between two domains, in one thread or not. Shared memory (SharedArrayBuffer)
 * travels beside the body, never inside it.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { WakeWord } from '../wake.ts';

/** A bus address: a domain's uid (>= 1, unique in the simulation), or a service. */
export type Addr = number;

export const ADDR_TOOLSTACK: Addr = 0;
export const ADDR_FABRIC: Addr = -1;
/** Each host's xenstored and hypervisor (event-channel) service. */
export function hostServiceAddr(hostIndex: number): Addr {
  return -100 - hostIndex;
}
/** Each pCPU's scheduler (domain create/destroy, routes). */
export function pcpuAddr(pcpu: number): Addr {
  return -1000 - pcpu;
}
/** Matches any sender: for services that serve every domain. */
export const ANY: Addr = Number.NaN;

/** Channels. A vif's plugin channel is CH.accel + its handle. */
export const CH = {
  control: 1,
  xenstore: 2,
  hv: 3,
  mcdi: 4,
  sched: 5,
  /**
   * A domain rings a device's doorbell (what an MMIO write to a doorbell page
   * is on real hardware): the platform carries it to the device's thread and
   * wakes it. The domain never holds the device's wake word, so it cannot
   * suppress anyone else's wake-up.
   */
  kick: 6,
  accel: 64,
} as const;

export interface Envelope {
  to: Addr;
  from: Addr;
  ch: number;
  /** msgpack body */
  b: Uint8Array;
  /** Shared memory travelling beside the body. */
  s?: SharedArrayBuffer[];
}

/** Where envelopes for another thread go. */
export interface Link {
  post(e: Envelope): void;
  /**
   * Wake the thread at the other end without a message, if this link holds its
   * wake word (a doorbell ring: the rings say what there is to do). False if it cannot.
   */
  kick?(): boolean;
}

/**
 * A MessagePort to another thread, whose doorbell is kicked after each post
 * (it may be asleep). With `batchKicks` (the main thread's links, driven by
 * its event loop) the kick waits for the end of the loop's turn, one for
 * every post of the turn: the toolstack answers a burst of xenstore requests
 * in one turn, and a kick per answer was a futex wake each (6 s of the main
 * thread in a 1024-domU boot). A pCPU's own loop never yields to an event
 * loop, so its links kick at once.
 */
export class PortLink implements Link {
  private kickPending = false;

  constructor(
    readonly port: MessagePort,
    private readonly wake: WakeWord | null,
    private readonly batchKicks = false,
  ) {}

  post(e: Envelope): void {
    this.port.postMessage(ownBuffer(e));
    if (!this.wake) return;
    if (!this.batchKicks) return this.wake.kick();
    if (this.kickPending) return;
    this.kickPending = true;
    setImmediate(() => {
      this.kickPending = false;
      this.wake!.kick();
    });
  }

  kick(): boolean {
    if (!this.wake) return false;
    this.wake.kick();
    return true;
  }
}

/**
 * msgpackr packs into a buffer it reuses and hands back a view of it, and
 * postMessage clones a view's whole buffer: 8 KiB for an 8-octet message, and
 * after one large message (a capture batch, a saved domain's pages) as much as
 * that for every message after it, on both threads. A message crosses threads
 * in a buffer of its own size.
 */
function ownBuffer(e: Envelope): Envelope {
  const b = e.b;
  if (!b || (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength)) return e;
  const own = new Uint8Array(b.byteLength);
  own.set(b);
  return { ...e, b: own };
}

export type Arrival = (e: Envelope) => void;

/** One endpoint's queue of arrived envelopes. */
export class Inbox {
  private readonly q: Envelope[] = [];
  private head = 0;
  /** Called on every arrival (a domain's core marks itself runnable; a main-thread service handles it at once). */
  onArrive: Arrival | null = null;

  push(e: Envelope): void {
    if (this.onArrive && this.immediate) return this.onArrive(e);
    this.q.push(e);
    this.onArrive?.(e);
  }

  /** Handle arrivals at once in onArrive rather than queueing them (main-thread listeners, in-process services). */
  immediate = false;

  take(): Envelope | undefined {
    if (this.head === this.q.length) return undefined;
    const e = this.q[this.head++];
    if (this.head === this.q.length) {
      this.q.length = 0;
      this.head = 0;
    }
    return e;
  }

  get size(): number {
    return this.q.length - this.head;
  }
}

export interface BusStats {
  sent: number;
  delivered: number;
  /** Envelopes for an address this bus has no route to (a domain that is gone). */
  undeliverable: number;
  /** Envelopes from a sender the addressed endpoint does not talk to. */
  misdirected: number;
  /** Device doorbells rung on another thread's wake word directly, with no envelope (kick()). */
  kicks: number;
}

export class Bus {
  private readonly inboxes = new Map<string, Inbox>();
  private readonly routes = new Map<Addr, Link>();
  private readonly inbound: MessagePort[] = [];
  /** Where envelopes for an address with no route of its own go (a worker's link to the hub). */
  defaultLink: Link | null = null;
  readonly stats: BusStats = { sent: 0, delivered: 0, undeliverable: 0, misdirected: 0, kicks: 0 };
  /** Told of an envelope no endpoint here was made for (for logs). */
  onUndeliverable: (e: Envelope, why: string) => void = () => {};

  private key(addr: Addr, ch: number, peer: Addr): string {
    return `${addr}:${ch}:${Number.isNaN(peer) ? '*' : peer}`;
  }

  /** An endpoint at (addr, ch) that receives from `peer` only (or from anyone: ANY). */
  register(addr: Addr, ch: number, peer: Addr): Inbox {
    const k = this.key(addr, ch, peer);
    if (this.inboxes.has(k)) throw new Error(`bus: an endpoint ${k} exists already`);
    const box = new Inbox();
    this.inboxes.set(k, box);
    return box;
  }

  unregister(addr: Addr, ch: number, peer: Addr): void {
    this.inboxes.delete(this.key(addr, ch, peer));
  }

  /** Is anything registered here for this address (a domain living on this thread)? */
  hosts(addr: Addr): boolean {
    for (const k of this.inboxes.keys()) if (k.startsWith(`${addr}:`)) return true;
    return false;
  }

  route(addr: Addr, link: Link | null): void {
    if (link) this.routes.set(addr, link);
    else this.routes.delete(addr);
  }

  /** A MessagePort whose envelopes this bus delivers when pumped. */
  addInbound(port: MessagePort): void {
    this.inbound.push(port);
  }

  /** Listen on a port (main thread): deliver each envelope as it arrives. */
  listen(port: MessagePort): void {
    port.on('message', (e: Envelope) => this.deliver(e));
  }

  send(e: Envelope): void {
    this.stats.sent++;
    if (this.deliverLocal(e)) return;
    const link = this.routes.get(e.to) ?? this.defaultLink;
    if (!link) {
      this.stats.undeliverable++;
      this.onUndeliverable(e, 'no route');
      return;
    }
    link.post(e);
  }

  /**
   * Ring the doorbell of a device on another thread: its wake word is bumped
   * (and the thread woken if it sleeps), no envelope travels; a device that
   * sleeps looks at its rings when it wakes. This bus's thread is the
   * platform (the pCPU), which holds the link; the guest that asked never
   * holds the wake word. False when no direct link can (the device lives on
   * this thread, or only the hub reaches it): then the caller sends a message.
   */
  kick(to: Addr): boolean {
    const link = this.routes.get(to);
    if (!link?.kick || !link.kick()) return false;
    this.stats.kicks++;
    return true;
  }

  /** An envelope from another thread (or sent here): to its endpoint, or on towards its address. */
  deliver(e: Envelope): void {
    if (this.deliverLocal(e)) return;
    const link = this.routes.get(e.to);
    if (link) return link.post(e);
    this.stats.undeliverable++;
    this.onUndeliverable(e, 'no endpoint or route');
  }

  private deliverLocal(e: Envelope): boolean {
    const exact = this.inboxes.get(this.key(e.to, e.ch, e.from)) ?? this.inboxes.get(this.key(e.to, e.ch, ANY));
    if (exact) {
      this.stats.delivered++;
      exact.push(e);
      return true;
    }
    // An endpoint at that address and channel exists, but not for this sender: refused.
    for (const k of this.inboxes.keys()) {
      if (k.startsWith(`${e.to}:${e.ch}:`)) {
        this.stats.misdirected++;
        this.onUndeliverable(e, 'misdirected');
        return true;
      }
    }
    return false;
  }

  /** Deliver everything that arrived on the inbound ports. Returns envelopes handled. */
  pump(): number {
    let n = 0;
    for (let i = 0; i < this.inbound.length; i++) {
      const port = this.inbound[i];
      for (;;) {
        const m = receiveMessageOnPort(port);
        if (!m) break;
        n++;
        this.deliver(m.message as Envelope);
      }
    }
    return n;
  }

  close(): void {
    for (const p of this.inbound) p.close();
    this.inbound.length = 0;
  }
}
