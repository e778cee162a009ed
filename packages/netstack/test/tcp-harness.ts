/**
 * Two TCBs back to back through an in-memory channel on a virtual clock, for
 * the tcp-*.test.ts files: each segment takes `delay` ms (plus jitter, so
 * they may reorder), may be dropped or duplicated as the test decides, and
 * `tap` sees every segment sent (before its fate is decided).
 */
import { expect } from 'vitest';
import { readU32, writeU16, writeU32 } from '../src/net/index.ts';
import {
  TCP_ACK,
  TCP_COUNTERS,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  Tcb,
  emptySegment,
  parseTcp,
  seqDiff,
  tcpChecksum,
  writeTcp,
  type TcbOptions,
} from '../src/tcp/index.ts';

export const A_IP = 0x0a00000a;
export const B_IP = 0x0a00000b;

interface Pkt {
  at: number;
  to: 'a' | 'b';
  data: Uint8Array;
  src: number;
  dst: number;
}

/** A pair of TCBs and the channel between them: each segment takes `delay` ms; `drop(n)` decides the nth segment's fate. */
export function pair(
  o: {
    delay?: number;
    jitter?: (n: number) => number;
    dup?: (n: number) => boolean;
    drop?: (n: number, seg: Uint8Array, len: number) => boolean;
    tap?: (from: 'a' | 'b', seg: Uint8Array, len: number, gsoSize: number) => void;
    /** Cut segments emitted with a gsoSize into MSS-sized ones before the channel, as a NIC would (each then meets its own fate). */
    gsoSplit?: boolean;
    a?: Partial<TcbOptions>;
    b?: Partial<TcbOptions>;
  } = {},
) {
  const delay = o.delay ?? 5;
  const clock = { t: 0 };
  const wire: Pkt[] = [];
  let sent = 0;
  const chunksB: Uint8Array[] = [];
  const chunksA: Uint8Array[] = [];
  const emitTo = (to: 'a' | 'b') => (seg: Uint8Array, len: number, src: number, dst: number, gsoSize: number) => {
    o.tap?.(to === 'a' ? 'b' : 'a', seg, len, gsoSize);
    if (gsoSize > 0 && o.gsoSplit) {
      for (const piece of gsoSplit(seg, len, src, dst, gsoSize)) wireOne(to, piece, piece.length, src, dst);
      return;
    }
    wireOne(to, seg, len, src, dst);
  };
  const wireOne = (to: 'a' | 'b', seg: Uint8Array, len: number, src: number, dst: number) => {
    const n = sent++;
    if (o.drop?.(n, seg, len)) return;
    const p = { at: clock.t + delay + (o.jitter?.(n) ?? 0), to, data: seg.slice(0, len), src, dst };
    insert(p);
    if (o.dup?.(n)) insert({ ...p, at: p.at + 1 });
  };
  /** Keep the wire sorted by arrival time (stable: equal times keep their order). */
  const insert = (p: Pkt) => {
    let i = wire.length;
    while (i > 0 && wire[i - 1].at > p.at) i--;
    wire.splice(i, 0, p);
  };
  const a = new Tcb({
    localIp: A_IP,
    localPort: 40000,
    remoteIp: B_IP,
    remotePort: 80,
    iss: 0xfffff000,
    emit: emitTo('b'),
    onData: (buf, off, len) => {
      chunksA.push(buf.slice(off, off + len));
    },
    ...o.a,
  });
  const b = new Tcb({
    localIp: B_IP,
    localPort: 80,
    iss: 0x12345678,
    emit: emitTo('a'),
    onData: (buf, off, len) => {
      chunksB.push(buf.slice(off, off + len));
    },
    ...o.b,
  });
  /** Run the channel and the timers until nothing is left or `until` ms pass; bounded. */
  function run(until = clock.t + 600_000, maxSteps = 1_000_000, onIdle?: () => void): void {
    for (let i = 0; i < maxSteps; i++) {
      onIdle?.();
      const timers = [a.nextTimer(), b.nextTimer()].filter((t) => t >= 0);
      const nextPkt = wire.length ? wire[0].at : Infinity;
      const next = Math.min(nextPkt, ...timers);
      if (next === Infinity || next > until) return;
      clock.t = Math.max(clock.t, next);
      if (nextPkt <= clock.t) {
        const p = wire.shift() as Pkt;
        (p.to === 'a' ? a : b).input(p.data, 0, p.data.length, p.src, p.dst, clock.t);
      } else {
        a.tick(clock.t);
        b.tick(clock.t);
      }
    }
    throw new Error('channel did not settle');
  }
  /** What b received (or, `ofA`, what a received), in order. */
  function received(ofA = false): Uint8Array {
    const chunks = ofA ? chunksA : chunksB;
    const total = chunks.reduce((s, c) => s + c.length, 0);
    const out = new Uint8Array(total);
    let o2 = 0;
    for (const c of chunks) {
      out.set(c, o2);
      o2 += c.length;
    }
    return out;
  }
  return { a, b, clock, wire, run, received, sentCount: () => sent };
}

/**
 * What a NIC does with a TSO segment: cut its payload into `gso`-sized
 * pieces, each with a copy of the header (the sequence number advanced, FIN
 * and PSH on the last only) and its own checksum.
 */
export function gsoSplit(seg: Uint8Array, len: number, src: number, dst: number, gso: number): Uint8Array[] {
  const hlen = (seg[12] >>> 4) * 4;
  const seq0 = readU32(seg, 4);
  const out: Uint8Array[] = [];
  for (let off = hlen; off < len; off += gso) {
    const n = Math.min(gso, len - off);
    const p = new Uint8Array(hlen + n);
    p.set(seg.subarray(0, hlen));
    p.set(seg.subarray(off, off + n), hlen);
    writeU32(p, 4, (seq0 + off - hlen) >>> 0);
    if (off + n < len) p[13] &= ~(TCP_FIN | 0x08);
    writeU16(p, 16, 0);
    writeU16(p, 16, tcpChecksum(p, 0, p.length, src, dst));
    out.push(p);
  }
  return out;
}

/** Byte-for-byte equality (toEqual on a megabyte is slow). */
export function same(x: Uint8Array, y: Uint8Array): boolean {
  return Buffer.from(x.buffer, x.byteOffset, x.length).equals(Buffer.from(y.buffer, y.byteOffset, y.length));
}

export function pattern(n: number): Uint8Array {
  const d = new Uint8Array(n);
  for (let i = 0; i < n; i++) d[i] = (i * 31 + (i >>> 8)) & 0xff;
  return d;
}

/** Send `data` from a to b, feeding the send buffer as it frees, then close both ends. */
export function transfer(p: ReturnType<typeof pair>, data: Uint8Array, within = 600_000): void {
  let off = 0;
  p.b.listen(0);
  p.a.connect(0);
  p.run(p.clock.t + within, 2_000_000, () => {
    if (off < data.length && p.a.state === 'ESTABLISHED') off += p.a.send(data, off, Math.min(data.length - off, p.a.sendSpace), p.clock.t);
    if (off === data.length && p.a.state === 'ESTABLISHED') p.a.close(p.clock.t);
    if (p.b.state === 'CLOSE-WAIT') p.b.close(p.clock.t);
  });
}

/** A channel that drops, delays and duplicates by a hash of (seed, the segment's number): no period for a TCB to fall in step with. */
export function lossy(seed: number, lossPct: number, maxJitter: number, dupPct: number) {
  const h = (n: number, salt: number) => (Math.imul(n ^ seed, 0x9e3779b1) ^ Math.imul(salt, 0x85ebca6b)) >>> 0;
  return {
    drop: (n: number) => h(n, 1) % 100 < lossPct,
    jitter: (n: number) => h(n, 2) % (maxJitter + 1),
    dup: (n: number) => h(n, 3) % 100 < dupPct,
  };
}

/**
 * A tap checking every segment either side sends: well formed, and its ACK
 * never beyond what the other side has sent (SND.MAX), never behind what
 * that side already had ACKed (SND.UNA less the window's reach).
 */
export function ackChecker(get: () => { a: Tcb; b: Tcb }) {
  const s = emptySegment();
  return (from: 'a' | 'b', seg: Uint8Array, len: number) => {
    const { a, b } = get();
    const me = from === 'a' ? a : b;
    const peer = from === 'a' ? b : a;
    expect(parseTcp(seg, 0, len, me.localIp, peer.localIp, s, me.csumOffload)).toBeNull();
    if (!(s.flags & TCP_ACK) || s.flags & TCP_RST) return;
    if (peer.state === 'CLOSED' || peer.state === 'LISTEN' || (s.flags & TCP_SYN && peer.state === 'SYN-SENT')) return;
    expect(seqDiff(s.ack, peer.sndMax)).toBeLessThanOrEqual(0);
  };
}

/** Every segment handed to the TCB was accepted or dropped for exactly one counted reason. */
export function countsAddUp(tcb: Tcb): void {
  const c = tcb.counters;
  let drops = 0;
  for (const [name, d] of Object.entries(TCP_COUNTERS.decls)) if (d.kind === 'drop') drops += c[name as keyof typeof c];
  expect(c.tcpRxSegments).toBe(c.tcpRxAccepted + drops);
}

interface Sent {
  flags: number;
  seq: number;
  ack: number;
  window: number;
  mss: number;
  len: number;
  gso: number;
}

/** One TCB and a scripted peer: the test hands in the peer's segments and reads what the TCB sent. */
export function scripted(o: Partial<TcbOptions> = {}, iss = 1000, irs = 5000) {
  const sent: Sent[] = [];
  const clock = { t: 0 };
  let delivered = 0;
  const tcb = new Tcb({
    localIp: A_IP,
    localPort: 80,
    remoteIp: B_IP,
    remotePort: 5555,
    iss,
    emit: (b, len, src, dst, gso) => {
      const s = emptySegment();
      expect(parseTcp(b, 0, len, src, dst, s)).toBeNull();
      sent.push({ flags: s.flags, seq: s.seq, ack: s.ack, window: s.window, mss: s.mss, len: s.dataLen, gso });
    },
    onData: (_b, _off, len) => {
      delivered += len;
    },
    ...o,
  });
  function peer(flags: number, seq: number, ack: number, dataLen = 0, x: { window?: number; mss?: number } = {}): void {
    const h = { srcPort: 5555, dstPort: 80, seq, ack, flags, window: x.window ?? 65535, mss: x.mss ?? 0 };
    const hl = h.mss ? 24 : 20;
    const b = new Uint8Array(hl + dataLen);
    const len = writeTcp(b, 0, h, dataLen, B_IP, A_IP);
    tcb.input(b, 0, len, B_IP, A_IP, clock.t);
  }
  /** Connect and take the peer's SYN,ACK (MSS 1460). */
  function establish(x: { window?: number; mss?: number } = {}): void {
    tcb.connect(clock.t);
    peer(TCP_SYN | TCP_ACK, irs, iss + 1, 0, { mss: 1460, ...x });
    expect(tcb.state).toBe('ESTABLISHED');
    sent.length = 0;
  }
  /** Our n-th data octet's sequence number, and the peer's. */
  const S = (n: number) => (iss + 1 + n) >>> 0;
  const R = (n: number) => (irs + 1 + n) >>> 0;
  return { tcb, sent, clock, peer, establish, S, R, delivered: () => delivered };
}
