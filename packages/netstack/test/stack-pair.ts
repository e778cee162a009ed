/** Two GuestStacks back to back through an in-memory wire on a virtual clock (for the TCP socket and app tests). */
import { GuestStack, parseIp, parseMac, type StackTransport } from '../src/net/index.ts';

export interface Frame {
  bytes: Uint8Array;
  partial: boolean;
  /** The driver was asked to cut the frame into segments of this many octets (TSO), or 0. */
  gsoSize: number;
}

/** A transport that collects frames; `room` frames at most until drained (Infinity: always room). */
export function transport(): StackTransport & { out: Frame[]; room: number } {
  let cur = new Uint8Array(0);
  const t = {
    out: [] as Frame[],
    room: Infinity,
    reserve: (len: number) => {
      if (t.out.length >= t.room) return null;
      cur = new Uint8Array(len + 4);
      return { buf: cur, off: 4 };
    },
    commit: (len: number, partial?: boolean, gsoSize?: number) => {
      t.out.push({ bytes: cur.slice(4, 4 + len), partial: partial === true, gsoSize: gsoSize ?? 0 });
    },
  };
  return t;
}

export function pair(o: { mtu?: number } = {}) {
  let now = 1000;
  const clock = () => now;
  const ta = transport();
  const tb = transport();
  const a = new GuestStack({ mac: parseMac('00:16:3e:00:00:0a'), ip: parseIp('10.0.0.10'), transport: ta, mtu: o.mtu ?? 1500, now: clock });
  const b = new GuestStack({ mac: parseMac('00:16:3e:00:00:0b'), ip: parseIp('10.0.0.11'), transport: tb, mtu: o.mtu ?? 1500, now: clock });
  const net = {
    a,
    b,
    ta,
    tb,
    /** Frames dropped on the way (the test's loss), by a predicate on the frame. */
    lose: (_f: Frame, _from: 'a' | 'b'): boolean => false,
    /** Deliver with the NETRXF flags the driver would give (partial frames: csum_blank + validated, as netback does). */
    rxFlags: (f: Frame): number => (f.partial ? 3 : 0),
    now: () => now,
    /** Move frames until both sides are quiet (bounded), flushing the interface queues each round. */
    pump(maxRounds = 10_000) {
      for (let i = 0; i < maxRounds; i++) {
        a.tcp.flush();
        b.tcp.flush();
        const fa = ta.out.splice(0);
        const fb = tb.out.splice(0);
        if (fa.length === 0 && fb.length === 0 && a.tcp.queued === 0 && b.tcp.queued === 0) return i;
        for (const f of fa) if (!net.lose(f, 'a')) b.receive(f.bytes, 0, f.bytes.length, net.rxFlags(f));
        for (const f of fb) if (!net.lose(f, 'b')) a.receive(f.bytes, 0, f.bytes.length, net.rxFlags(f));
      }
      throw new Error('the wire never went quiet');
    },
    /** Let `ms` pass on the clock, ticking both stacks every 10 ms as the endpoint does, pumping between. */
    advance(ms: number) {
      const end = now + ms;
      while (now < end) {
        now = Math.min(end, now + 10);
        a.tick(now);
        b.tick(now);
        net.pump();
      }
    },
  };
  // Neighbours known (the ARP exchange is the stack tests' business).
  a.arp.learn(b.ip, b.mac, now);
  b.arp.learn(a.ip, a.mac, now);
  return net;
}

export function payload(n: number, seed = 7): Uint8Array {
  const p = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) p[i] = x = (x * 1103515245 + 12345) & 0xff;
  return p;
}
