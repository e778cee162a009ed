/**
 * A fast-check property (issue 23, item 5): one TCB driven by arbitrary
 * segment sequences (any flags, sequence and acknowledgment numbers near the
 * connection's or anywhere, payloads, windows, MSS options, wrong ports,
 * garbage bytes) mixed with user calls and clock steps. It must never throw,
 * never acknowledge data it was not sent, never deliver a byte twice or out
 * of order, send only well-formed segments, count every segment handed to
 * it exactly once (accepted or one drop reason), and move only along the
 * transition table.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  TCP_COUNTERS,
  Tcb,
  TRANSITIONS,
  emptySegment,
  parseTcp,
  seqAdd,
  seqDiff,
  tcpHeaderLen,
  writeTcp,
  type TcpState,
} from '../src/tcp/index.ts';

const ME = 0x0a000001;
const PEER = 0x0a000002;
const ISS = 0xffffff00;
const IRS = 0x7ffffff0;
/** Runs of the property (each up to 60 steps); the report in the README quotes this number. */
const RUNS = 400;

/** The peer's SYN,ACK when the run starts established: every option on. */
const fullOpts: PeerOpts = { ts: 0, wscale: 7, sackOk: true, sack: [] };

/** The octet the peer puts at sequence number s: a function of s, so any octet delivered can be checked. */
const octet = (s: number) => (Math.imul(s, 2654435761) >>> 24) & 0xff;

/** Options a peer segment may carry: timestamps (mostly rising), Window Scale and SACK-Permitted (meant for SYNs, sent on any), SACK blocks. */
interface PeerOpts {
  ts: number | null;
  wscale: number;
  sackOk: boolean;
  sack: number[];
}

type Step =
  | { k: 'seg'; flags: number; seq: number; ack: number; len: number; window: number; mss: number; wrongPort: boolean; o: PeerOpts }
  | { k: 'junk'; bytes: Uint8Array }
  | { k: 'time'; ms: number }
  | { k: 'send'; n: number }
  | { k: 'close' }
  | { k: 'abort' };

const near = (base: number, span: number) => fc.integer({ min: -span, max: span }).map((d) => seqAdd(base, d));
const anySeq = fc.integer({ min: 0, max: 0xffffffff });

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 40,
    arbitrary: fc.record({
      k: fc.constant('seg' as const),
      flags: fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(TCP_ACK, TCP_ACK | 0x08, TCP_ACK | TCP_FIN) },
        { weight: 1, arbitrary: fc.constantFrom(TCP_SYN, TCP_SYN | TCP_ACK, TCP_RST, TCP_RST | TCP_ACK) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 63 }) },
      ),
      // Mostly a tiling of the stream in 500-octet steps (so holes fill and data flows), else near it or anywhere.
      seq: fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min: 0, max: 8 }).map((k) => seqAdd(IRS, 1 + 500 * k)) },
        { weight: 2, arbitrary: near(seqAdd(IRS, 1), 3000) },
        { weight: 1, arbitrary: near(seqAdd(IRS, 1), 70_000) },
        { weight: 1, arbitrary: fc.constant(IRS) },
        { weight: 1, arbitrary: anySeq },
      ),
      ack: fc.oneof(
        { weight: 3, arbitrary: fc.constant(seqAdd(ISS, 1)) },
        { weight: 3, arbitrary: fc.integer({ min: 0, max: 6000 }).map((d) => seqAdd(ISS, 1 + d)) },
        { weight: 1, arbitrary: near(seqAdd(ISS, 1), 3000) },
        { weight: 1, arbitrary: anySeq },
      ),
      len: fc.oneof(fc.constant(0), fc.constantFrom(500, 1000, 1500), fc.integer({ min: 1, max: 1500 })),
      window: fc.oneof(fc.constant(65535), fc.integer({ min: 0, max: 65535 })),
      mss: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 65535 })),
      wrongPort: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      o: fc.record({
        ts: fc.oneof(
          { weight: 3, arbitrary: fc.constant(null) },
          { weight: 4, arbitrary: fc.integer({ min: 0, max: 50 }) },
          { weight: 1, arbitrary: fc.integer({ min: -20, max: -1 }) },
          { weight: 1, arbitrary: anySeq },
        ),
        wscale: fc.oneof({ weight: 4, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 20 }) }),
        sackOk: fc.boolean(),
        sack: fc.oneof(
          { weight: 3, arbitrary: fc.constant<number[]>([]) },
          {
            weight: 1,
            arbitrary: fc.array(
              fc.integer({ min: 0, max: 8000 }).map((d) => seqAdd(ISS, 1 + d)),
              { maxLength: 6 },
            ),
          },
          { weight: 1, arbitrary: fc.array(anySeq, { maxLength: 6 }) },
        ),
      }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('junk' as const), bytes: fc.uint8Array({ maxLength: 64 }) }) },
  {
    weight: 6,
    arbitrary: fc.record({ k: fc.constant('time' as const), ms: fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 130_000 })) }),
  },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('send' as const), n: fc.integer({ min: 1, max: 5000 }) }) },
  { weight: 2, arbitrary: fc.constant({ k: 'close' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'abort' as const }) },
);

/** Drive one TCB through `steps` after `start`, checking the invariants on the way. */
function drive(start: 'listen' | 'connect' | 'established', steps: Step[]): void {
  const clock = { t: 0 };
  const covered = new Set<number>(); // sequence numbers of every data octet the peer sent
  const fins = new Set<number>(); // sequence numbers of the peer's FINs
  let delivered = 0;
  const tcb: Tcb = new Tcb({
    localIp: ME,
    localPort: 80,
    remoteIp: start === 'listen' ? undefined : PEER,
    remotePort: start === 'listen' ? undefined : 5555,
    iss: ISS,
    sndBuf: 16 * 1024,
    emit: (b, len, src, dst) => {
      const s = emptySegment();
      expect(parseTcp(b, 0, len, src, dst, s)).toBeNull();
      if (!(s.flags & TCP_ACK) || s.flags & TCP_RST) return;
      // An ACK covers only what was delivered, plus a FIN the peer sent right after it.
      const rel = seqDiff(s.ack, seqAdd(tcb.irs, 1));
      expect(rel === delivered || (rel === delivered + 1 && fins.has(seqAdd(tcb.irs, 1 + delivered)))).toBe(true);
      // A SACK block names only octets the peer sent, above the ACK.
      for (let i = 0; i < s.sackCount; i++) {
        const l = s.sack[2 * i];
        const r = s.sack[2 * i + 1];
        expect(seqDiff(l, s.ack)).toBeGreaterThan(0);
        expect(seqDiff(r, l)).toBeGreaterThan(0);
        for (const q of [l, seqAdd(l, seqDiff(r, l) >> 1), seqAdd(r, -1)]) expect(covered.has(q)).toBe(true);
        STATS.sackBlocks++;
      }
    },
    onData: (b, off, len) => {
      for (let i = 0; i < len; i++) {
        const s = seqAdd(tcb.irs, 1 + delivered + i);
        expect(covered.has(s)).toBe(true);
        expect(b[off + i]).toBe(octet(s));
      }
      delivered += len;
    },
  });
  if (start === 'listen') tcb.listen(0);
  else tcb.connect(0);
  let tsClock = 1000; // the peer's timestamp clock: each segment's TSval is near it, mostly ahead
  if (start === 'established') peerSeg(TCP_SYN | TCP_ACK, IRS, seqAdd(ISS, 1), 0, 65535, 1460, false, fullOpts);

  function peerSeg(flags: number, seq: number, ack: number, len: number, window: number, mss: number, wrongPort: boolean, o: PeerOpts): void {
    if (o.ts !== null && o.ts >= -20 && o.ts <= 50) tsClock = (tsClock + o.ts) >>> 0;
    const n = Math.min(Math.floor(o.sack.length / 2), o.ts === null ? 4 : 3);
    const h = {
      srcPort: wrongPort ? 5556 : 5555,
      dstPort: 80,
      seq,
      ack,
      flags,
      window,
      mss,
      ts: o.ts !== null,
      tsVal: o.ts !== null && (o.ts < -20 || o.ts > 50) ? o.ts : tsClock,
      tsEcr: 0,
      wscale: mss ? o.wscale : -1,
      sackOk: mss ? o.sackOk : false,
      sack: o.sack,
      sackCount: n,
    };
    if (h.wscale > 14) h.wscale = 14;
    const hl = tcpHeaderLen(h);
    const b = new Uint8Array(hl + len);
    for (let i = 0; i < len; i++) {
      const s = seqAdd(seq, i + (flags & TCP_SYN ? 1 : 0));
      b[hl + i] = octet(s);
      covered.add(s);
    }
    if (flags & TCP_FIN) fins.add(seqAdd(seq, len + (flags & TCP_SYN ? 1 : 0)));
    writeTcp(b, 0, h, len, PEER, ME);
    tcb.input(b, 0, b.length, PEER, ME, clock.t);
  }

  const data = new Uint8Array(5000);
  let given = 0; // octets the application gave
  for (const st of steps) {
    if (st.k === 'seg') peerSeg(st.flags, st.seq, st.ack, st.len, st.window, st.mss, st.wrongPort, st.o);
    else if (st.k === 'junk') tcb.input(st.bytes, 0, st.bytes.length, PEER, ME, clock.t);
    else if (st.k === 'time') {
      clock.t += st.ms;
      // Timers run in order, as a scheduler would fire them; bounded.
      for (let i = 0; i < 100 && tcb.nextTimer() >= 0 && tcb.nextTimer() <= clock.t; i++) tcb.tick(Math.max(tcb.nextTimer(), 0));
      tcb.tick(clock.t);
    } else if (st.k === 'send') given += tcb.send(data, 0, st.n, clock.t);
    else if (st.k === 'close') tcb.close(clock.t);
    else tcb.abort(clock.t);
    invariants(tcb);
    // Our sequence space covers the SYN, what the application gave, and a FIN; no ACK moves SND.UNA past it.
    expect(seqDiff(tcb.sndMax, ISS)).toBeLessThanOrEqual(1 + given + 1);
  }
  STATS.runs++;
  if (delivered > 0) STATS.delivered++;
  for (const t of tcb.history) STATS.states.add(t.to);
  STATS.outOfOrder += tcb.counters.tcpRxOutOfOrder;
  STATS.paws += tcb.counters.tcpRxPaws;
}

/** What the runs reached, so a generator that stops exercising the TCB shows. */
const STATS = { runs: 0, delivered: 0, outOfOrder: 0, paws: 0, sackBlocks: 0, states: new Set<string>() };

function invariants(tcb: Tcb): void {
  const c = tcb.counters;
  let drops = 0;
  for (const [name, d] of Object.entries(TCP_COUNTERS.decls)) if (d.kind === 'drop') drops += c[name as keyof typeof c];
  expect(c.tcpRxSegments).toBe(c.tcpRxAccepted + drops);
  expect(seqDiff(tcb.sndMax, tcb.sndUna)).toBeGreaterThanOrEqual(0);
  expect(seqDiff(tcb.sndNxt, tcb.sndUna)).toBeGreaterThanOrEqual(0);
  expect(seqDiff(tcb.sndMax, tcb.sndNxt)).toBeGreaterThanOrEqual(0);
  let prev: TcpState = tcb.historyDropped ? tcb.history[0].from : 'CLOSED';
  for (const t of tcb.history) {
    expect(t.from).toBe(prev);
    expect(TRANSITIONS[t.from][t.event]).toBe(t.to);
    prev = t.to;
  }
  expect(prev).toBe(tcb.state);
}

describe('TCB under arbitrary segments (property)', () => {
  it(`never throws, never ACKs what it was not sent, delivers each octet once and in order (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(
        fc.constantFrom('listen' as const, 'connect' as const, 'established' as const, 'established' as const, 'established' as const),
        fc.array(stepArb, { minLength: 5, maxLength: 60, size: 'max' }),
        (start, steps) => drive(start, steps),
      ),
      { numRuns: RUNS },
    );
    // The generator must keep reaching data transfer, reordering and the closing states, or the property says little.
    expect(STATS.delivered).toBeGreaterThan(RUNS / 10);
    expect(STATS.outOfOrder).toBeGreaterThan(RUNS / 10);
    expect(STATS.states.size).toBeGreaterThanOrEqual(8);
    console.log(
      `tcp property: ${STATS.runs} runs, ${STATS.delivered} delivered data, ${STATS.outOfOrder} segments held out of order, ${STATS.paws} PAWS drops, ${STATS.sackBlocks} SACK blocks sent, states ${[...STATS.states].sort().join(' ')}`,
    );
  });
});
