/**
 * The VXLAN I/O thread: every UDP socket of the topology's tunnel wires,
 * serviced by this thread's event loop, never by a pCPU or the fabric thread
 * (which sleeps in Atomics.wait, where no socket callback would run).
 *
 * RX: each socket bound to its `local` address; a datagram that arrives is
 * copied into that socket's ring to the fabric (or counted rxRingFull when
 * the ring has no room) and the fabric's doorbell rung. The fabric parses it.
 *
 * TX: the fabric queues each frame, VXLAN header in front, on the tunnel's
 * ring and, once per turn of its own, rings this thread's wake word; here an
 * Atomics.waitAsync on that word wakes the event loop, and each datagram is
 * sent to the tunnel's remote from a socket connected to it (bound to the
 * local address, so the datagrams come from it: one lookup-free send each)
 * straight from the ring's shared memory, where the fabric wrote header and
 * frame: no copy and no buffer of its own. A record goes back to the fabric
 * (the ring's head moves past it) once its send has completed: a socket
 * completes its sends in the order they were made (libuv queues a send that
 * cannot go at once, and sends nothing at once while one is queued), so each
 * completion releases the oldest record in flight. At most maxInFlight sends
 * per tunnel are outstanding; beyond that the frames stay on the ring, and a
 * ring that fills is the fabric's counted drop. With the rings empty the
 * thread looks again for a few turns of its event loop (each also reads the
 * sockets) before it sleeps: a wake costs the fabric an Atomics.notify and
 * this thread a task.
 */
import { createSocket, type Socket } from 'node:dgram';
import { parentPort, workerData } from 'node:worker_threads';
import { DatagramRing, type RingRecord } from './ring.ts';
import { SOCKET_WORDS, TUNNEL_WORDS, type IoConfig, type IoStartMessage } from './io-layout.ts';

/** Frames taken off one tunnel's ring per pass before the event loop gets a turn (RX callbacks, send completions). */
const BATCH = 64;
/** Turns of the event loop with nothing to send before the thread sleeps on its wake word (bounded: never a busy-wait). */
const IDLE_TURNS = 4;
/** Kernel socket buffers asked for (Linux caps them at net.core.rmem_max / wmem_max). */
const SOCKET_BUFFER = 4 << 20;

/** Atomics.waitAsync (Node 16+; ES2024, newer than the lib this repo compiles against). */
type WaitAsync = (a: Int32Array, index: number, value: number) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

interface Tunnel {
  ring: DatagramRing;
  words: Int32Array;
  sock: Socket;
  inFlight: number;
  /** Where the next record to send lies on the ring (past the head by the records in flight). */
  cursor: number;
  /** The cursor after each record in flight, oldest first (a circle of maxInFlight). */
  ends: Int32Array;
  oldest: number;
  /** The one completion callback of this tunnel's sends. */
  done: (err: Error | null) => void;
}

function bump(words: Int32Array, i: number): void {
  Atomics.add(words, i, 1);
}

function ringFabric(wake: Int32Array): void {
  Atomics.add(wake, 0, 1);
  if (Atomics.load(wake, 1) !== 0) Atomics.notify(wake, 0);
}

function open(type: 'udp4', bindTo: { address: string; port: number }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type, recvBufferSize: SOCKET_BUFFER, sendBufferSize: SOCKET_BUFFER });
    s.once('error', reject);
    s.bind(bindTo, () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

function connect(s: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.connect(port, address, () => {
      s.off('error', reject);
      resolve();
    });
  });
}

async function start(cfg: IoConfig): Promise<void> {
  const fabricWake = new Int32Array(cfg.fabricWake, 0, 2);
  // One ring of the fabric's doorbell per turn of this event loop, after every datagram libuv read in it (up to 32
  // a socket per poll), not one per datagram: a futex wake of a sleeping fabric costs microseconds of its own.
  let ringing = false;
  const ringNow = (): void => {
    ringing = false;
    ringFabric(fabricWake);
  };
  const wakeFabric = (): void => {
    if (ringing) return;
    ringing = true;
    setImmediate(ringNow);
  };
  const ioWake = new Int32Array(cfg.ioWake, 0, 2);
  const rxSockets: Socket[] = [];
  for (const sc of cfg.sockets) {
    const ring = new DatagramRing(sc.rx);
    const words = new Int32Array(sc.words);
    let s: Socket;
    try {
      s = await open('udp4', { address: sc.local.addr, port: sc.local.port });
    } catch (e) {
      throw new Error(`${sc.what}: cannot bind UDP ${sc.local.addr}:${sc.local.port}: ${(e as Error).message}`);
    }
    s.on('message', (msg) => {
      bump(words, SOCKET_WORDS.rxDatagrams);
      if (!ring.push(msg, 0, msg.length)) bump(words, SOCKET_WORDS.rxRingFull);
      else wakeFabric();
    });
    s.on('error', () => bump(words, SOCKET_WORDS.errors));
    s.on('close', () => Atomics.store(words, SOCKET_WORDS.bound, 0));
    Atomics.store(words, SOCKET_WORDS.bound, 1);
    rxSockets.push(s);
  }
  const tunnels: Tunnel[] = [];
  for (const tc of cfg.tunnels) {
    const local = cfg.sockets[tc.socket].local;
    let sock: Socket;
    try {
      sock = await open('udp4', { address: local.addr, port: 0 });
      await connect(sock, tc.remote.port, tc.remote.addr);
    } catch (e) {
      throw new Error(`${tc.what}: cannot send from ${local.addr} to ${tc.remote.addr}:${tc.remote.port}: ${(e as Error).message}`);
    }
    const words = new Int32Array(tc.words);
    // An error on a connected UDP socket (an ICMP port unreachable from the remote) fails a later send: counted there.
    sock.on('error', () => {});
    sock.on('close', () => Atomics.store(words, TUNNEL_WORDS.ready, 0));
    Atomics.store(words, TUNNEL_WORDS.ready, 1);
    const ring = new DatagramRing(tc.tx);
    const t: Tunnel = { ring, words, sock, inFlight: 0, cursor: ring.head, ends: new Int32Array(cfg.maxInFlight), oldest: 0, done: () => {} };
    tunnels.push(t);
  }
  serveTx(tunnels, ioWake, cfg.maxInFlight);
}

/** Send the frames on the tunnels' rings, for as long as the thread lives. */
function serveTx(tunnels: Tunnel[], wake: Int32Array, maxInFlight: number): void {
  const rec: RingRecord = { at: 0, len: 0, next: 0 };
  const sendable = (t: Tunnel): boolean => t.inFlight < maxInFlight && t.ring.hasAt(t.cursor);
  for (const t of tunnels) {
    t.done = (err) => {
      // The oldest send in flight has completed (a socket completes them in order): its record goes back to the fabric.
      t.ring.release(t.ends[t.oldest]);
      t.oldest = t.oldest + 1 === maxInFlight ? 0 : t.oldest + 1;
      t.inFlight--;
      Atomics.store(t.words, TUNNEL_WORDS.inFlight, t.inFlight);
      bump(t.words, err ? TUNNEL_WORDS.sendErrors : TUNNEL_WORDS.sent);
      // Room again under the bound: frames left on the ring go out.
      if (t.inFlight === maxInFlight - 1 && t.ring.hasAt(t.cursor)) schedule();
    };
  }
  let pumping = false;
  let idle = 0;
  const pump = (): void => {
    pumping = false;
    let more = false;
    let sent = 0;
    for (const t of tunnels) {
      for (let n = 0; n < BATCH && t.inFlight < maxInFlight; n++) {
        if (!t.ring.peek(t.cursor, rec)) break;
        t.ends[(t.oldest + t.inFlight) % maxInFlight] = rec.next;
        t.cursor = rec.next;
        t.inFlight++;
        sent++;
        // From the ring's memory: the record is not released (written over) until this send completes.
        t.sock.send(t.ring.bytes(rec.at, rec.len), t.done);
      }
      if (sent) Atomics.store(t.words, TUNNEL_WORDS.inFlight, t.inFlight);
      if (sendable(t)) more = true;
    }
    if (sent > 0 || more) {
      idle = 0;
      schedule();
    } else if (++idle < IDLE_TURNS) schedule();
    else void sleep();
  };
  const schedule = (): void => {
    if (pumping) return;
    pumping = true;
    setImmediate(pump);
  };
  // The wake word: take the count, say we sleep, look once more, then wait (asynchronously) for a kick.
  let sleeping = false;
  const sleep = async (): Promise<void> => {
    if (sleeping) return;
    sleeping = true;
    idle = 0;
    const seen = Atomics.load(wake, 0);
    Atomics.store(wake, 1, 1);
    if (tunnels.some(sendable)) {
      Atomics.store(wake, 1, 0);
      sleeping = false;
      schedule();
      return;
    }
    const r = waitAsync(wake, 0, seen);
    if (r.async) await r.value;
    Atomics.store(wake, 1, 0);
    sleeping = false;
    schedule();
  };
  schedule();
}

const cfg = workerData as IoConfig;
// A fault of this thread's own: every tunnel reads down from then on (the fabric counts their frames vxlanTxDown).
process.on('uncaughtException', (e) => {
  for (const s of cfg.sockets) Atomics.store(new Int32Array(s.words), SOCKET_WORDS.bound, 0);
  for (const t of cfg.tunnels) Atomics.store(new Int32Array(t.words), TUNNEL_WORDS.ready, 0);
  process.stderr.write(`xsim: error: VXLAN I/O thread: ${e.stack ?? e.message}\n`);
});
start(cfg).then(
  () => parentPort?.postMessage({ ready: true } satisfies IoStartMessage),
  (e: unknown) => parentPort?.postMessage({ ready: false, error: e instanceof Error ? e.message : String(e) } satisfies IoStartMessage),
);
