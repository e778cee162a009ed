/**
 * The TCB's transitions one by one (RFC 9293 §3.3.2, §3.10), driven by a
 * scripted peer: each test hands in segments and reads back what was sent,
 * delivered and recorded in the history, and which counter took a segment
 * that was not accepted. ACKs go at once here (delAckMs 0); delayed ACKs
 * are tcp-delack.test.ts's.
 */
import { describe, expect, it } from 'vitest';
import {
  HISTORY_MAX,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  Tcb,
  TRANSITIONS,
  emptySegment,
  parseTcp,
  writeTcp,
  type TcbOptions,
  type TcpState,
} from '../src/tcp/index.ts';

const ME = 0x0a000001;
const PEER = 0x0a000002;
const ISS = 1000;
const IRS = 0xfffffff0; // the peer's ISN: its data wraps the sequence space
const A = TCP_ACK;

interface Sent {
  flags: number;
  seq: number;
  ack: number;
  window: number;
  mss: number;
  data: number[];
  dst: number;
}

function harness(o: Partial<TcbOptions> = {}) {
  const sent: Sent[] = [];
  const got: number[] = [];
  const clock = { t: 0 };
  const tcb = new Tcb({
    localIp: ME,
    localPort: 80,
    remoteIp: PEER,
    remotePort: 5555,
    iss: ISS,
    msl: 1000,
    delAckMs: 0,
    emit: (b, len, src, dst) => {
      const s = emptySegment();
      expect(parseTcp(b, 0, len, src, dst, s)).toBeNull();
      sent.push({ flags: s.flags, seq: s.seq, ack: s.ack, window: s.window, mss: s.mss, data: [...b.subarray(s.dataOff, s.dataOff + s.dataLen)], dst });
    },
    onData: (b, off, len) => got.push(...b.subarray(off, off + len)),
    ...o,
  });
  /** The peer sends a segment. */
  function peer(
    flags: number,
    seq: number,
    ack: number,
    data: number[] = [],
    x: { window?: number; mss?: number; srcPort?: number; dstPort?: number } = {},
  ): void {
    const h = { srcPort: x.srcPort ?? 5555, dstPort: x.dstPort ?? 80, seq, ack, flags, window: x.window ?? 65535, mss: x.mss ?? 0 };
    const hl = h.mss ? 24 : 20;
    const b = new Uint8Array(hl + data.length);
    b.set(data, hl);
    const len = writeTcp(b, 0, h, data.length, PEER, ME);
    tcb.input(b, 0, len, PEER, ME, clock.t);
  }
  const last = () => sent[sent.length - 1];
  const states = () => tcb.history.map((h) => h.to);
  return { tcb, sent, got, clock, peer, last, states };
}

/** Established by an active open: our SYN (ISS) answered by the peer's SYN,ACK (IRS). */
function established(o: Partial<TcbOptions> = {}) {
  const h = harness(o);
  h.tcb.connect(0);
  h.peer(TCP_SYN | A, IRS, ISS + 1, [], { mss: 1460 });
  expect(h.tcb.state).toBe('ESTABLISHED');
  h.sent.length = 0;
  return h;
}
const R = (n: number) => (IRS + 1 + n) >>> 0; // the peer's n-th data octet's sequence number
const S = (n: number) => ISS + 1 + n; // ours

describe('opening', () => {
  it('listen: CLOSED → LISTEN, close: LISTEN → CLOSED', () => {
    const h = harness({ remoteIp: undefined, remotePort: undefined });
    h.tcb.listen(0);
    h.tcb.close(1);
    expect(h.tcb.history).toEqual([
      { at: 0, from: 'CLOSED', event: 'listen', to: 'LISTEN' },
      { at: 1, from: 'LISTEN', event: 'close', to: 'CLOSED' },
    ]);
  });

  it('active open: CLOSED → SYN-SENT sends a SYN with ISS and the MSS option', () => {
    const h = harness({ mss: 1400 });
    h.tcb.connect(0);
    expect(h.tcb.state).toBe('SYN-SENT');
    expect(h.sent).toEqual([{ flags: TCP_SYN, seq: ISS, ack: 0, window: 65535, mss: 1400, data: [], dst: PEER }]);
  });

  it('SYN-SENT + SYN,ACK → ESTABLISHED, ACKed; the peer MSS bounds ours', () => {
    const h = harness();
    h.tcb.connect(0);
    h.peer(TCP_SYN | A, IRS, ISS + 1, [], { mss: 1000 });
    expect(h.states()).toEqual(['SYN-SENT', 'ESTABLISHED']);
    expect(h.last()).toMatchObject({ flags: A, seq: ISS + 1, ack: (IRS + 1) >>> 0 });
    expect(h.tcb.sendMss).toBe(1000);
  });

  it('passive open: LISTEN + SYN → SYN-RECEIVED (SYN,ACK) + ACK → ESTABLISHED, the peer learnt from the SYN', () => {
    const h = harness({ remoteIp: undefined, remotePort: undefined });
    h.tcb.listen(0);
    h.peer(TCP_SYN, IRS, 0);
    expect(h.tcb.state).toBe('SYN-RECEIVED');
    expect(h.last()).toMatchObject({ flags: TCP_SYN | A, seq: ISS, ack: R(0), mss: 1460, dst: PEER });
    expect(h.tcb.sendMss).toBe(536); // RFC 9293 §3.7.1: no MSS option, 536
    h.peer(A, R(0), ISS + 1);
    expect(h.states()).toEqual(['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED']);
  });

  it('simultaneous open: SYN-SENT + SYN → SYN-RECEIVED (SYN,ACK again) + SYN,ACK → ESTABLISHED', () => {
    const h = harness();
    h.tcb.connect(0);
    h.peer(TCP_SYN, IRS, 0);
    expect(h.tcb.state).toBe('SYN-RECEIVED');
    expect(h.last()).toMatchObject({ flags: TCP_SYN | A, seq: ISS, ack: R(0) });
    h.peer(TCP_SYN | A, IRS, ISS + 1);
    expect(h.states()).toEqual(['SYN-SENT', 'SYN-RECEIVED', 'ESTABLISHED']);
    expect(h.last()).toMatchObject({ flags: A, seq: ISS + 1, ack: R(0) });
  });

  it('SYN-RECEIVED: the peer SYN again gets our SYN,ACK again', () => {
    const h = harness({ remoteIp: undefined, remotePort: undefined });
    h.tcb.listen(0);
    h.peer(TCP_SYN, IRS, 0);
    h.peer(TCP_SYN, IRS, 0);
    expect(h.sent.map((s) => s.flags)).toEqual([TCP_SYN | A, TCP_SYN | A]);
    expect(h.tcb.state).toBe('SYN-RECEIVED');
  });

  it('SYN-RECEIVED: the SYN,ACK sent twice gives no RTT sample (Karn)', () => {
    const h = harness({ remoteIp: undefined, remotePort: undefined });
    h.tcb.listen(0);
    h.peer(TCP_SYN, IRS, 0);
    h.clock.t = 50;
    h.peer(TCP_SYN, IRS, 0);
    h.clock.t = 60;
    h.peer(A, R(0), ISS + 1);
    expect(h.tcb.state).toBe('ESTABLISHED');
    expect(h.tcb.rto.sampled).toBe(false);
    expect(h.tcb.counters.tcpTxRetransmits).toBe(1);
  });

  it('a listener churned by SYNs and RSTs keeps only the last HISTORY_MAX moves', () => {
    const h = harness({ remoteIp: undefined, remotePort: undefined });
    h.tcb.listen(0);
    for (let i = 0; i < 300; i++) {
      h.peer(TCP_SYN, IRS, 0);
      h.peer(TCP_RST, R(0), 0);
    }
    expect(h.tcb.history).toHaveLength(HISTORY_MAX);
    expect(h.tcb.historyDropped).toBe(601 - HISTORY_MAX);
    expect(h.tcb.history.at(-1)).toMatchObject({ from: 'SYN-RECEIVED', event: 'rcvRstPassive', to: 'LISTEN' });
  });

  it('SYN-RECEIVED: an ACK of something else is answered RST and counted', () => {
    const h = harness({ remoteIp: undefined, remotePort: undefined });
    h.tcb.listen(0);
    h.peer(TCP_SYN, IRS, 0);
    h.peer(A, R(0), ISS + 5);
    expect(h.last()).toMatchObject({ flags: TCP_RST, seq: ISS + 5 });
    expect(h.tcb.counters.tcpRxBadAck).toBe(1);
    expect(h.tcb.state).toBe('SYN-RECEIVED');
  });

  it('SYN-RECEIVED after a passive open: an RST at RCV.NXT returns to LISTEN, and a new SYN is served', () => {
    const h = harness({ remoteIp: undefined, remotePort: undefined });
    h.tcb.listen(0);
    h.peer(TCP_SYN, IRS, 0);
    h.peer(TCP_RST, R(0), 0);
    expect(h.states()).toEqual(['LISTEN', 'SYN-RECEIVED', 'LISTEN']);
    h.peer(TCP_SYN, 5, 0, [], { srcPort: 7777 });
    expect(h.tcb.state).toBe('SYN-RECEIVED');
    expect(h.tcb.remotePort).toBe(7777);
  });

  it('SYN-SENT: an unacceptable ACK is answered RST and counted; no state change', () => {
    const h = harness();
    h.tcb.connect(0);
    h.peer(TCP_SYN | A, IRS, ISS + 7);
    expect(h.last()).toMatchObject({ flags: TCP_RST, seq: ISS + 7 });
    expect(h.tcb.counters.tcpRxBadAck).toBe(1);
    expect(h.tcb.state).toBe('SYN-SENT');
  });

  it('SYN-SENT: RST with an acceptable ACK → CLOSED; RST without ACK ignored; neither SYN nor RST dropped', () => {
    const h = harness();
    h.tcb.connect(0);
    h.peer(TCP_RST, 0, 0);
    h.peer(A, IRS, ISS + 1);
    expect(h.tcb.state).toBe('SYN-SENT');
    expect(h.tcb.counters.tcpRxOutOfWindow).toBe(1);
    expect(h.tcb.counters.tcpRxNoSyn).toBe(1);
    h.peer(TCP_RST | A, 0, ISS + 1);
    expect(h.states()).toEqual(['SYN-SENT', 'CLOSED']);
    expect(h.tcb.counters.tcpRstReceived).toBe(1);
  });

  it('LISTEN: an ACK is answered RST, an RST dropped silently, both counted', () => {
    const h = harness({ remoteIp: undefined, remotePort: undefined });
    h.tcb.listen(0);
    h.peer(A, 1, 4242);
    h.peer(TCP_RST, 1, 0);
    h.peer(0, 1, 0);
    expect(h.sent).toEqual([expect.objectContaining({ flags: TCP_RST, seq: 4242 })]);
    expect(h.tcb.counters.tcpRxListenDrop).toBe(3);
    expect(h.tcb.state).toBe('LISTEN');
  });

  it('CLOSED: a segment is answered RST (ACK: <SEQ=SEG.ACK>; else <ACK=SEG.SEQ+SEG.LEN>), an RST is not', () => {
    const h = harness();
    h.peer(A, 10, 4242, [1, 2]);
    h.peer(TCP_SYN, 10, 0, [1, 2]);
    h.peer(TCP_RST, 10, 0);
    expect(h.sent.map((s) => [s.flags, s.seq, s.ack])).toEqual([
      [TCP_RST, 4242, 0],
      [TCP_RST | A, 0, 13],
    ]);
    expect(h.tcb.counters.tcpRxClosed).toBe(3);
  });
});

describe('data', () => {
  it('delivers in order with cumulative ACKs, across the sequence wrap', () => {
    const h = established();
    h.peer(A, R(0), S(0), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    h.peer(A, R(16), S(0), [17, 18]);
    expect(h.got).toEqual([...Array(18).keys()].map((i) => i + 1));
    expect(h.sent.map((s) => s.ack)).toEqual([R(16), R(18)]);
  });

  it('holds out-of-order segments and delivers them in order once the hole fills, each byte once', () => {
    const h = established();
    h.peer(A, R(4), S(0), [5, 6]);
    h.peer(A, R(2), S(0), [3, 4, 5]); // overlaps the held one
    expect(h.got).toEqual([]);
    expect(h.sent.map((s) => s.ack)).toEqual([R(0), R(0)]); // duplicate ACKs for the hole
    h.peer(A, R(0), S(0), [1, 2]);
    expect(h.got).toEqual([1, 2, 3, 4, 5, 6]);
    expect(h.last().ack).toBe(R(6));
    expect(h.tcb.counters.tcpRxOutOfOrder).toBe(2);
  });

  it('a duplicate is ACKed and not delivered again; a partly old segment gives only its new octets', () => {
    const h = established();
    h.peer(A, R(0), S(0), [1, 2, 3]);
    h.peer(A, R(0), S(0), [1, 2, 3]);
    h.peer(A, R(1), S(0), [2, 3, 4]);
    expect(h.got).toEqual([1, 2, 3, 4]);
    expect(h.tcb.counters.tcpRxOutOfWindow).toBe(1);
    expect(h.last().ack).toBe(R(4));
  });

  it('data beyond the window is ACKed and dropped', () => {
    const h = established({ rcvWnd: 100 });
    h.peer(A, R(100), S(0), [1]);
    expect(h.got).toEqual([]);
    expect(h.tcb.counters.tcpRxOutOfWindow).toBe(1);
    expect(h.last()).toMatchObject({ flags: A, ack: R(0) });
  });

  it('sends within the peer window, frees on ACK, and ignores ACKs of data never sent (ACK in reply)', () => {
    const h = established();
    h.peer(A, R(0), S(0), [], { window: 3 });
    expect(h.tcb.send(new Uint8Array([1, 2, 3, 4, 5]), 0, 5, 0)).toBe(5);
    expect(h.sent.map((s) => s.data)).toEqual([[1, 2, 3]]);
    h.peer(A, R(0), S(9));
    expect(h.tcb.counters.tcpRxBadAck).toBe(1);
    expect(h.tcb.sndUna).toBe(S(0));
    h.peer(A, R(0), S(3), [], { window: 10 });
    expect(h.sent.map((s) => s.data)).toEqual([[1, 2, 3], [], [4, 5]]);
    expect(h.tcb.unacked).toBe(2);
  });

  it('an ACK older than SND.UNA - MAX.SND.WND is answered ACK and dropped (RFC 9293 §3.10.7.4, RFC 5961 §5)', () => {
    const h = established();
    h.tcb.send(new Uint8Array(10), 0, 10, 0);
    h.peer(A, R(0), S(10));
    h.sent.length = 0;
    h.peer(A, R(0), (S(10) - 70_000) >>> 0, [1]);
    expect(h.tcb.counters.tcpRxBadAck).toBe(1);
    expect(h.got).toEqual([]);
    expect(h.sent).toEqual([expect.objectContaining({ flags: A, seq: S(10), ack: R(0) })]);
    h.peer(A, R(0), S(5), [1]); // an old ACK within the bound is fine
    expect(h.got).toEqual([1]);
  });

  it('an out-of-order segment finding the reassembly queue full is ACKed and counted, not held', () => {
    const h = established();
    for (let i = 0; i < 256; i++) h.peer(A, R(2 + 2 * i), S(0), [i & 0xff]);
    expect(h.tcb.counters.tcpRxOutOfOrder).toBe(256);
    h.peer(A, R(1000), S(0), [7]);
    expect(h.tcb.counters.tcpRxReasmFull).toBe(1);
    expect(h.last()).toMatchObject({ flags: A, ack: R(0) });
    h.peer(A, R(0), S(0), [0, 0]);
    expect(h.got.length).toBe(3); // the hole filled: octets 0-1, then the held one at 2 (the next hole is at 3)
  });

  it('a segment without ACK is dropped and counted', () => {
    const h = established();
    h.peer(0, R(0), 0, [1]);
    expect(h.got).toEqual([]);
    expect(h.tcb.counters.tcpRxNoAck).toBe(1);
  });

  it('a segment for other ports or addresses is not ours', () => {
    const h = established();
    h.peer(A, R(0), S(0), [1], { dstPort: 81 });
    h.peer(A, R(0), S(0), [1], { srcPort: 5556 });
    expect(h.tcb.counters.tcpRxNotOurs).toBe(2);
    expect(h.got).toEqual([]);
  });

  it('while a timeout resends from SND.UNA, an ACK still carries the highest sequence number sent (else the peer finds it unacceptable)', () => {
    const h = established();
    h.tcb.send(new Uint8Array(3000), 0, 3000, 0);
    h.tcb.tick(h.tcb.nextTimer());
    expect(h.tcb.sndNxt).toBe(S(1460)); // one segment again
    h.sent.length = 0;
    h.peer(A, R(0), S(0), [1]);
    expect(h.sent.at(-1)).toMatchObject({ flags: A, seq: S(3000), ack: R(1) });
  });

  it("the FIN waits for room in the peer's window, and an ACK's sequence number stays at the window's edge", () => {
    const h = established();
    h.peer(A, R(0), S(0), [], { window: 3 });
    h.tcb.send(new Uint8Array([1, 2, 3]), 0, 3, 0);
    h.tcb.close(0);
    expect(h.sent.map((s) => s.flags)).toEqual([A]);
    h.peer(A, R(0), S(3), [], { window: 10 });
    expect(h.sent.at(-1)).toMatchObject({ flags: TCP_FIN | A, seq: S(3) });
  });

  it('a FIN outstanding when the window closes goes again as a probe on the timeout', () => {
    const h = established();
    h.tcb.close(0);
    h.peer(A, R(0), S(0), [], { window: 0 });
    h.sent.length = 0;
    h.tcb.tick(h.tcb.nextTimer());
    expect(h.sent).toEqual([expect.objectContaining({ flags: TCP_FIN | A, seq: S(0) })]);
  });

  it('a zero window is probed with one octet when the timer runs out', () => {
    const h = established();
    h.peer(A, R(0), S(0), [], { window: 0 });
    h.tcb.send(new Uint8Array([7, 8]), 0, 2, 0);
    expect(h.sent).toEqual([]);
    expect(h.tcb.nextTimer()).toBe(200); // the handshake's 0 ms sample: RTO at its 200 ms floor
    h.tcb.tick(200);
    expect(h.sent.map((s) => s.data)).toEqual([[7]]);
  });
});

describe('closing', () => {
  it('passive close: FIN → CLOSE-WAIT (ACKed), close → LAST-ACK (FIN), ACK → CLOSED', () => {
    const h = established();
    h.peer(TCP_FIN | A, R(0), S(0));
    expect(h.tcb.state).toBe('CLOSE-WAIT');
    expect(h.last()).toMatchObject({ flags: A, ack: R(1) });
    h.tcb.close(0);
    expect(h.last()).toMatchObject({ flags: TCP_FIN | A, seq: S(0) });
    h.peer(A, R(1), S(1));
    expect(h.states()).toEqual(['SYN-SENT', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED']);
  });

  it('active close: FIN-WAIT-1 → FIN-WAIT-2 → TIME-WAIT → CLOSED after 2*MSL on the clock', () => {
    const h = established();
    h.tcb.close(0);
    expect(h.last()).toMatchObject({ flags: TCP_FIN | A, seq: S(0) });
    h.peer(A, R(0), S(1));
    expect(h.tcb.state).toBe('FIN-WAIT-2');
    h.clock.t = 10;
    h.peer(TCP_FIN | A, R(0), S(1));
    expect(h.tcb.state).toBe('TIME-WAIT');
    expect(h.tcb.nextTimer()).toBe(10 + 2000);
    h.tcb.tick(2009);
    expect(h.tcb.state).toBe('TIME-WAIT');
    h.tcb.tick(2010);
    expect(h.states()).toEqual(['SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED']);
    expect(h.tcb.history.at(-1)).toEqual({ at: 2010, from: 'TIME-WAIT', event: 'timeWaitDone', to: 'CLOSED' });
  });

  it('TIME-WAIT: the peer FIN again is ACKed and restarts 2*MSL', () => {
    const h = established();
    h.tcb.close(0);
    h.peer(TCP_FIN | A, R(0), S(1));
    expect(h.tcb.state).toBe('TIME-WAIT'); // FIN-WAIT-1 → FIN-WAIT-2 → TIME-WAIT in one segment
    h.sent.length = 0;
    h.clock.t = 1500;
    h.peer(TCP_FIN | A, R(0), S(1));
    expect(h.sent).toEqual([expect.objectContaining({ flags: A, ack: R(1) })]);
    expect(h.tcb.nextTimer()).toBe(3500);
  });

  it('simultaneous close: FIN-WAIT-1 + FIN → CLOSING, + ACK of our FIN → TIME-WAIT', () => {
    const h = established();
    h.tcb.close(0);
    h.peer(TCP_FIN | A, R(0), S(0));
    expect(h.tcb.state).toBe('CLOSING');
    expect(h.last()).toMatchObject({ flags: A, ack: R(1) });
    h.peer(A, R(1), S(1));
    expect(h.states()).toEqual(['SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'CLOSING', 'TIME-WAIT']);
  });

  it('the FIN follows the queued data; a FIN ahead of missing data waits for it', () => {
    const h = established();
    h.tcb.send(new Uint8Array([1, 2]), 0, 2, 0);
    h.tcb.close(0);
    expect(h.sent.map((s) => [s.flags, s.seq, s.data.length])).toEqual([
      [A, S(0), 2],
      [TCP_FIN | A, S(2), 0],
    ]);
    h.peer(TCP_FIN | A, R(2), S(0));
    expect(h.tcb.state).toBe('FIN-WAIT-1');
    h.peer(A, R(0), S(0), [9, 9]);
    expect(h.tcb.state).toBe('CLOSING');
    expect(h.got).toEqual([9, 9]);
  });

  it('send after close takes nothing', () => {
    const h = established();
    h.tcb.close(0);
    expect(h.tcb.send(new Uint8Array(4), 0, 4, 0)).toBe(0);
  });
});

describe('reset', () => {
  it('an RST exactly at RCV.NXT resets the connection', () => {
    const h = established();
    h.peer(TCP_RST, R(0), 0);
    expect(h.states()).toEqual(['SYN-SENT', 'ESTABLISHED', 'CLOSED']);
    expect(h.tcb.counters.tcpRstReceived).toBe(1);
    expect(h.tcb.nextTimer()).toBe(-1);
  });

  it('an RST in the window but not at RCV.NXT gets a challenge ACK and changes nothing (RFC 5961 §3)', () => {
    const h = established();
    h.peer(TCP_RST, R(10), 0);
    expect(h.tcb.state).toBe('ESTABLISHED');
    expect(h.sent).toEqual([expect.objectContaining({ flags: A, seq: S(0), ack: R(0) })]);
    expect(h.tcb.counters.tcpRxChallenged).toBe(1);
  });

  it('an RST outside the window is dropped silently', () => {
    const h = established({ rcvWnd: 1000 });
    h.peer(TCP_RST, R(5000), 0);
    h.peer(TCP_RST, R(-1), 0);
    expect(h.tcb.state).toBe('ESTABLISHED');
    expect(h.sent).toEqual([]);
    expect(h.tcb.counters.tcpRxOutOfWindow).toBe(2);
  });

  it.each(['FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', 'CLOSING', 'LAST-ACK', 'TIME-WAIT'] as TcpState[])('an RST at RCV.NXT in %s → CLOSED', (target) => {
    const h = established();
    let rcv = 0;
    if (target === 'CLOSE-WAIT' || target === 'LAST-ACK') {
      h.peer(TCP_FIN | A, R(0), S(0));
      rcv = 1;
      if (target === 'LAST-ACK') h.tcb.close(0);
    } else {
      h.tcb.close(0);
      if (target === 'FIN-WAIT-2') h.peer(A, R(0), S(1));
      if (target === 'CLOSING' || target === 'TIME-WAIT') {
        h.peer(TCP_FIN | A, R(0), target === 'CLOSING' ? S(0) : S(1));
        rcv = 1;
      }
    }
    expect(h.tcb.state).toBe(target);
    h.peer(TCP_RST, R(rcv), 0);
    expect(h.tcb.state).toBe('CLOSED');
    expect(h.tcb.history.at(-1)).toMatchObject({ from: target, event: 'rcvRst' });
  });

  it('a SYN in a synchronized state gets a challenge ACK', () => {
    const h = established();
    h.peer(TCP_SYN, R(3), 0);
    expect(h.tcb.state).toBe('ESTABLISHED');
    expect(h.sent).toEqual([expect.objectContaining({ flags: A, ack: R(0) })]);
    expect(h.tcb.counters.tcpRxChallenged).toBe(1);
  });

  it('abort sends an RST at SND.NXT and closes', () => {
    const h = established();
    h.tcb.abort(5);
    expect(h.sent).toEqual([expect.objectContaining({ flags: TCP_RST, seq: S(0) })]);
    expect(h.tcb.history.at(-1)).toEqual({ at: 5, from: 'ESTABLISHED', event: 'abort', to: 'CLOSED' });
  });
});

describe('the transition table', () => {
  it('names all eleven states, and every edge leads to one of them', () => {
    const states = Object.keys(TRANSITIONS);
    expect(states).toHaveLength(11);
    for (const row of Object.values(TRANSITIONS)) for (const to of Object.values(row)) expect(states).toContain(to);
  });

  it('every recorded move is an edge of the table, its from the previous to', () => {
    const h = established();
    h.tcb.close(0);
    h.peer(TCP_FIN | A, R(0), S(1));
    h.tcb.tick(10_000);
    let prev: TcpState = 'CLOSED';
    for (const t of h.tcb.history) {
      expect(t.from).toBe(prev);
      expect(TRANSITIONS[t.from][t.event]).toBe(t.to);
      prev = t.to;
    }
  });
});
