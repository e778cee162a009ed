/**
 * The fabric's side of the topology's tunnel wires: one UDP socket per local
 * address (tunnels to several remotes, or of several VNIs, may share one, as
 * Linux's vxlan devices share a port), one tunnel per wire, the rings between
 * them and the I/O thread (io-thread.ts), which this starts, waits for (every
 * socket bound, every tunnel connected) and ends.
 */
import { Worker } from 'node:worker_threads';
import type { CaptureSink } from '@xsim/hypervisor';
import { parseUdpAddr, type UdpAddr } from './codec.ts';
import { WORDS_BYTES, type IoConfig, type IoStartMessage } from './io-layout.ts';
import { DatagramRing, ringBuffer } from './ring.ts';
import { VxlanSocket, VxlanTunnel, type VxlanEnd } from './tunnel.ts';

/** Octets of each ring (a socket's arrivals, a tunnel's departures): 1 MiB, some 690 frames of 1514. */
export const VXLAN_RING_BYTES = 1 << 20;
/** Sends per tunnel handed to its socket and not yet completed, before the I/O thread leaves frames on the ring. */
export const VXLAN_MAX_IN_FLIGHT = 256;
/** How long the I/O thread may take to bind and connect its sockets. */
const START_MS = 10_000;

const IO_BOOT = new URL('./io-boot.mjs', import.meta.url);

function addr(s: string, path: string): UdpAddr {
  const a = parseUdpAddr(s);
  if (typeof a === 'string') throw new Error(`${path}: ${a}`);
  return a;
}

export class VxlanIo {
  readonly sockets: VxlanSocket[] = [];
  /** By the index of the wire in the fabric's config. */
  readonly tunnels = new Map<number, VxlanTunnel>();
  private readonly cfg: IoConfig;
  private readonly ioWake: Int32Array;
  private worker: Worker | null = null;
  /** Frames queued for the I/O thread since its wake word was last rung. */
  private txQueued = false;

  /** Sockets and tunnels for the tunnel ends of `wires` (index, end); `fabricWake`: the fabric thread's doorbell. */
  constructor(ends: { wire: number; end: VxlanEnd }[], fabricWake: SharedArrayBuffer) {
    const ioWake = new SharedArrayBuffer(8);
    this.ioWake = new Int32Array(ioWake);
    this.cfg = { sockets: [], tunnels: [], fabricWake, ioWake, maxInFlight: VXLAN_MAX_IN_FLIGHT };
    const byLocal = new Map<string, number>();
    // A frame queued only notes that the I/O thread has work: poll() rings its wake word once, after the whole turn.
    const kick = () => {
      this.txQueued = true;
    };
    for (const { wire, end } of ends) {
      const local = addr(end.local, `${end.path}.local`);
      const key = `${local.addr}:${local.port}`;
      let si = byLocal.get(key);
      if (si === undefined) {
        const rx = ringBuffer(VXLAN_RING_BYTES);
        const words = new SharedArrayBuffer(WORDS_BYTES);
        si = this.cfg.sockets.push({ local, rx, words, what: `${end.path}.local` }) - 1;
        byLocal.set(key, si);
        this.sockets.push(new VxlanSocket(key, local, new DatagramRing(rx), new Int32Array(words)));
      }
      const sock = this.sockets[si];
      if (sock.tunnels.has(end.vni)) throw new Error(`${end.path}.vni: VNI ${end.vni} is already carried on ${key}`);
      const tx = ringBuffer(VXLAN_RING_BYTES);
      const words = new SharedArrayBuffer(WORDS_BYTES);
      this.cfg.tunnels.push({ socket: si, remote: addr(end.remote, `${end.path}.remote`), tx, words, what: `${end.path}.remote` });
      const t = new VxlanTunnel(wire, end, new DatagramRing(tx), new Int32Array(words), sock.words, kick);
      sock.tunnels.set(end.vni, t);
      this.tunnels.set(wire, t);
    }
  }

  /** Start the I/O thread; resolves once every socket is bound and every tunnel connected. */
  start(): Promise<void> {
    const w = new Worker(IO_BOOT, { workerData: this.cfg, name: 'vxlan-io' });
    this.worker = w;
    return new Promise<void>((resolve, reject) => {
      const fail = (e: Error) => {
        clearTimeout(timer);
        void w.terminate();
        reject(new Error(`VXLAN I/O thread: ${e.message}`));
      };
      const timer = setTimeout(() => fail(new Error(`did not bind its sockets within ${START_MS} ms`)), START_MS);
      w.once('message', (m: IoStartMessage) => {
        if (!m.ready) return fail(new Error(m.error));
        clearTimeout(timer);
        w.removeAllListeners('error');
        w.removeAllListeners('exit');
        // It lives as long as the fabric; the fabric's thread must not be held open by it alone.
        w.unref();
        resolve();
      });
      w.once('error', fail);
      w.once('exit', (code) => fail(new Error(`exited (code ${code}) before its sockets were bound`)));
    });
  }

  tapInto(sink: CaptureSink): void {
    for (const t of this.tunnels.values()) t.tapInto(sink);
  }

  /** Datagrams waiting for the fabric? */
  pending(): boolean {
    for (let i = 0; i < this.sockets.length; i++) if (this.sockets[i].pending()) return true;
    return false;
  }

  /**
   * Take what arrived on every socket, then ring the I/O thread's wake word
   * if frames were queued for it this turn (by the NICs and switches, whose
   * poller runs before this one, or by this poll: a tunnel's frame switched
   * onto another tunnel): once per turn, not once per frame, and the I/O
   * thread then finds the whole turn's frames at once. Returns datagrams taken.
   */
  poll(): number {
    let n = 0;
    for (let i = 0; i < this.sockets.length; i++) n += this.sockets[i].poll();
    if (this.txQueued) {
      this.txQueued = false;
      Atomics.add(this.ioWake, 0, 1);
      if (Atomics.load(this.ioWake, 1) !== 0) Atomics.notify(this.ioWake, 0);
    }
    return n;
  }

  stats() {
    return {
      ioThread: this.worker !== null,
      sockets: this.sockets.map((s) => s.stats()),
      tunnels: [...this.tunnels.values()].map((t) => t.stats()),
    };
  }

  /** End the I/O thread (its sockets close with it). */
  close(): void {
    void this.worker?.terminate();
    this.worker = null;
  }
}
