/**
 * SACK (RFC 2018) and SACK-based loss recovery (RFC 6675, simplified): the
 * receiver's blocks (most recent first, merged, 3 with timestamps, 4
 * without, none once the holes fill or when not permitted), the sender's
 * scoreboard, recovery that retransmits the holes first and never what was
 * SACKed, go-back-N after a timeout skipping SACKed data, and blocks outside
 * SEG.ACK..SND.MAX ignored.
 */
import { describe, expect, it } from 'vitest';
import { Scoreboard, TCP_ACK, TCP_SYN, Tcb, emptySegment, parseTcp, tcpHeaderLen, writeTcp, type TcbOptions, type TcpHeaderFields } from '../src/tcp/index.ts';
import { A_IP, B_IP, pair, pattern, same, transfer } from './tcp-harness.ts';

const A = TCP_ACK;

describe('the scoreboard', () => {
  it('merges overlapping and adjacent blocks, forgets what SND.UNA passes, finds holes and SACKed ends', () => {
    const sb = new Scoreboard();
    expect(sb.add(200, 300)).toBe(true);
    expect(sb.add(500, 600)).toBe(true);
    expect(sb.add(250, 300)).toBe(false); // nothing new
    expect(sb.add(300, 350)).toBe(true); // adjacent: merged
    expect(sb.ranges).toBe(2);
    expect(sb.sacked).toBe(250);
    expect(sb.highest(100)).toBe(600);
    const h: [number, number] = [0, 0];
    expect(sb.hole(100, h)).toBe(true);
    expect(h).toEqual([100, 200]);
    expect(sb.hole(200, h)).toBe(true);
    expect(h).toEqual([350, 500]);
    expect(sb.hole(600, h)).toBe(false);
    expect(sb.sackedEnd(220)).toBe(350);
    expect(sb.sackedEnd(400)).toBe(-1);
    expect(sb.nextSacked(360)).toBe(500);
    expect(sb.unsackedIn(100, 600)).toBe(250);
    sb.ackTo(250);
    expect(sb.sacked).toBe(200);
    sb.ackTo(700);
    expect(sb.ranges).toBe(0);
  });

  it('works across the sequence wrap', () => {
    const sb = new Scoreboard();
    sb.add(0xffffff00, 0x10);
    sb.add(0x20, 0x30);
    expect(sb.sacked).toBe(0x110 + 0x10);
    const h: [number, number] = [0, 0];
    expect(sb.hole(0xfffffe00, h)).toBe(true);
    expect(h).toEqual([0xfffffe00, 0xffffff00]);
  });
});

interface Seen {
  flags: number;
  seq: number;
  ack: number;
  len: number;
  sack: number[];
}

/** A TCB and a scripted peer that permitted SACK (and timestamps unless told). */
function sacking(o: Partial<TcbOptions> = {}, peerTs = true) {
  const sent: Seen[] = [];
  const clock = { t: 0 };
  const tcb = new Tcb({
    localIp: A_IP,
    localPort: 80,
    remoteIp: B_IP,
    remotePort: 5555,
    iss: 1000,
    delAckMs: 0,
    cc: 'newreno',
    sndBuf: 1 << 20,
    emit: (b, len, src, dst) => {
      const s = emptySegment();
      expect(parseTcp(b, 0, len, src, dst, s)).toBeNull();
      sent.push({ flags: s.flags, seq: s.seq, ack: s.ack, len: s.dataLen, sack: s.sack.slice(0, 2 * s.sackCount) });
      expect(len).toBeLessThanOrEqual(20 + 1460); // SACK blocks come off the payload
    },
    ...o,
  });
  let tsVal = 1;
  function peer(h: Partial<TcpHeaderFields>, data = 0): void {
    const f = { srcPort: 5555, dstPort: 80, seq: 5001, ack: 1001, flags: A, window: 65535, mss: 0, ts: peerTs, tsVal: tsVal++, ...h };
    const b = new Uint8Array(tcpHeaderLen(f) + data);
    writeTcp(b, 0, f, data, B_IP, A_IP);
    tcb.input(b, 0, b.length, B_IP, A_IP, clock.t);
  }
  tcb.connect(0);
  peer({ flags: TCP_SYN | A, seq: 5000, mss: 1460, sackOk: true, wscale: 0 });
  expect(tcb.nego.sack).toBe(o.sack !== false);
  sent.length = 0;
  const MSS = tcb.sendMss;
  /** Our n-th segment's first sequence number. */
  const S = (n: number) => 1001 + n * MSS;
  return { tcb, sent, clock, peer, MSS, S };
}

describe('SACK blocks sent (RFC 2018 §3, §4)', () => {
  it('out-of-order data is ACKed with its block; the most recent block first; merged when adjacent; none once the hole fills', () => {
    const h = sacking();
    h.peer({ seq: 5101 }, 100);
    expect(h.sent.at(-1)).toMatchObject({ ack: 5001, sack: [5101, 5201] });
    h.peer({ seq: 5401 }, 100);
    expect(h.sent.at(-1)?.sack).toEqual([5401, 5501, 5101, 5201]);
    h.peer({ seq: 5201 }, 100); // joins the first block
    expect(h.sent.at(-1)?.sack).toEqual([5101, 5301, 5401, 5501]);
    h.peer({ seq: 5001 }, 100);
    expect(h.sent.at(-1)).toMatchObject({ ack: 5301, sack: [5401, 5501] });
    h.peer({ seq: 5301 }, 100);
    expect(h.sent.at(-1)).toMatchObject({ ack: 5501, sack: [] });
  });

  it('at most 3 blocks with timestamps, 4 without', () => {
    for (const [ts, max] of [
      [true, 3],
      [false, 4],
    ] as const) {
      const h = sacking({}, ts);
      for (let i = 0; i < 6; i++) h.peer({ seq: 5101 + 200 * i }, 100);
      expect(h.sent.at(-1)?.sack.length).toBe(2 * max);
      expect(h.sent.at(-1)?.sack.slice(0, 2)).toEqual([6101, 6201]);
    }
  });

  it('no blocks when SACK was not permitted', () => {
    const h = sacking({ sack: false });
    h.peer({ seq: 5101 }, 100);
    expect(h.sent.at(-1)?.sack).toEqual([]);
  });
});

describe('SACK recovery (RFC 6675)', () => {
  it('one duplicate ACK SACKing more than 2 SMSS starts recovery: cwnd = ssthresh, the first segment again', () => {
    const h = sacking();
    h.tcb.send(new Uint8Array(100_000), 0, 100_000, 0);
    expect(h.sent).toHaveLength(10);
    h.sent.length = 0;
    h.peer({ sack: [h.S(1), h.S(4)], sackCount: 1 });
    expect(h.tcb.inRecovery).toBe(true);
    expect(h.tcb.cwnd).toBe(h.tcb.ssthresh);
    expect(h.sent[0]).toMatchObject({ seq: h.S(0), len: h.MSS });
    expect(h.tcb.counters.tcpRxSackBlocks).toBe(1);
    expect(h.tcb.counters.tcpTxFastRetransmits).toBe(1);
  });

  it('retransmits every hole below the highest SACK once, first, and never a SACKed segment', () => {
    const h = sacking({ cc: 'newreno' });
    h.tcb.send(new Uint8Array(100_000), 0, 100_000, 0);
    h.sent.length = 0;
    // Segments 0, 3, 4 and 7 lost: 1-2, 5-6 and 8-9 arrived.
    h.peer({ sack: [h.S(1), h.S(3)], sackCount: 1 });
    h.peer({ sack: [h.S(5), h.S(7), h.S(1), h.S(3)], sackCount: 2 });
    h.peer({ sack: [h.S(8), h.S(10), h.S(5), h.S(7), h.S(1), h.S(3)], sackCount: 3 });
    const rtx = h.sent.filter((s) => s.seq < h.S(10)).map((s) => (s.seq - 1001) / h.MSS);
    expect(rtx).toEqual([0, 3, 4, 7]);
    expect(h.tcb.counters.tcpTxSackRetransmits).toBe(3);
    // Partial ACK up to the next hole: nothing SACKed goes again.
    h.sent.length = 0;
    h.peer({ ack: h.S(3), sack: [h.S(8), h.S(10), h.S(5), h.S(7)], sackCount: 2 });
    expect(h.sent.every((s) => s.seq >= h.S(10))).toBe(true);
    h.peer({ ack: h.tcb.sndMax }); // the full ACK (limited transmit and recovery sent new data past S(10))
    expect(h.tcb.inRecovery).toBe(false);
  });

  it('a timeout goes back to SND.UNA but skips what is SACKed', () => {
    const h = sacking();
    h.tcb.send(new Uint8Array(10 * 1448), 0, 10 * 1448, 0);
    h.peer({ sack: [h.S(2), h.S(8)], sackCount: 1 });
    h.sent.length = 0;
    h.clock.t = h.tcb.nextTimer();
    h.tcb.tick(h.clock.t);
    h.peer({ ack: h.S(1), sack: [h.S(2), h.S(8)], sackCount: 1 });
    h.peer({ ack: h.S(2), sack: [h.S(2), h.S(8)], sackCount: 1 }); // grows cwnd
    const seqs = h.sent.map((s) => (s.seq - 1001) / h.MSS);
    expect(seqs).not.toContain(2);
    expect(seqs).not.toContain(5);
    expect(seqs).toContain(0);
  });

  it('blocks outside SEG.ACK..SND.MAX are ignored', () => {
    const h = sacking();
    h.tcb.send(new Uint8Array(5000), 0, 5000, 0);
    h.peer({ sack: [h.S(0) - 100, h.S(0), h.S(3), h.S(3) + 99999], sackCount: 2 });
    expect(h.tcb.counters.tcpRxSackBlocks).toBe(2);
    expect(h.tcb.inRecovery).toBe(false);
  });

  it('several losses in one window: recovered in one recovery without a timeout', () => {
    const drops = new Set([30, 33, 36, 39]);
    let n = 0;
    const p = pair({
      delay: 20,
      a: { sndBuf: 1 << 20 },
      drop: (_k, seg, len) => len > 100 && seg[13] === A && drops.has(n++),
    });
    const d = pattern(300_000);
    transfer(p, d);
    expect(same(p.received(), d)).toBe(true);
    expect(p.a.counters.tcpTimeouts).toBe(0);
    expect(p.a.counters.tcpFastRecoveries).toBe(1);
    expect(p.a.counters.tcpTxRetransmits).toBe(4);
  });
});
