/**
 * What the socket layer uses of a TCB besides segments: checksum offload
 * both ways (a partial checksum out, a driver-validated one in), and the
 * notifications (state moves, send space freed), told once the public call
 * returns so that they may call back into the TCB.
 */
import { describe, expect, it } from 'vitest';
import { onesSum, readU16, writeU16 } from '../src/net/index.ts';
import { TCP_ACK, TCP_SYN, Tcb, emptySegment, parseTcp, tcpPseudoSum, writeTcp, type TcbOptions, type TcpState } from '../src/tcp/index.ts';

const ME = 0x0a000001;
const PEER = 0x0a000002;
const ISS = 1000;
const IRS = 5000;
const A = TCP_ACK;

function harness(o: Partial<TcbOptions> = {}) {
  const sent: { flags: number; seq: number; ack: number; len: number; field: number; bytes: Uint8Array }[] = [];
  const tcb = new Tcb({
    localIp: ME,
    localPort: 80,
    remoteIp: PEER,
    remotePort: 5555,
    iss: ISS,
    emit: (b, len) => {
      const s = emptySegment();
      expect(parseTcp(b, 0, len, ME, PEER, s, true)).toBeNull();
      sent.push({ flags: s.flags, seq: s.seq, ack: s.ack, len: s.dataLen, field: readU16(b, 16), bytes: b.slice(0, len) });
    },
    ...o,
  });
  function peer(flags: number, seq: number, ack: number, data: number[] = [], x: { window?: number; corrupt?: boolean; validated?: boolean } = {}): void {
    const b = new Uint8Array(20 + data.length);
    b.set(data, 20);
    writeTcp(b, 0, { srcPort: 5555, dstPort: 80, seq, ack, flags, window: x.window ?? 65535, mss: 0 }, data.length, PEER, ME);
    if (x.corrupt) b[16] ^= 0x55;
    tcb.input(b, 0, b.length, PEER, ME, 0, x.validated);
  }
  return { tcb, sent, peer };
}

describe('checksum offload', () => {
  it('csumOffload: every segment carries the pseudo-header sum, and completing it gives a valid checksum', () => {
    const h = harness();
    h.tcb.csumOffload = true;
    h.tcb.connect(0);
    h.peer(TCP_SYN | A, IRS, ISS + 1);
    h.tcb.send(new Uint8Array(3000).fill(7), 0, 3000, 0);
    expect(h.sent.length).toBeGreaterThanOrEqual(3);
    for (const s of h.sent) {
      expect(s.field).toBe(tcpPseudoSum(ME, PEER, s.bytes.length));
      writeU16(s.bytes, 16, ~onesSum(s.bytes, 0, s.bytes.length) & 0xffff);
      expect(parseTcp(s.bytes, 0, s.bytes.length, ME, PEER, emptySegment())).toBeNull();
    }
  });

  it('off by default: a full checksum', () => {
    const h = harness();
    h.tcb.connect(0);
    expect(parseTcp(h.sent[0].bytes, 0, h.sent[0].bytes.length, ME, PEER, emptySegment())).toBeNull();
  });

  it('input(..., csumValidated): a segment the driver vouches for is taken without its checksum checked; otherwise counted bad', () => {
    const h = harness();
    h.tcb.connect(0);
    h.peer(TCP_SYN | A, IRS, ISS + 1, [], { corrupt: true });
    expect(h.tcb.counters.tcpRxBadChecksum).toBe(1);
    expect(h.tcb.state).toBe('SYN-SENT');
    h.peer(TCP_SYN | A, IRS, ISS + 1, [], { corrupt: true, validated: true });
    expect(h.tcb.state).toBe('ESTABLISHED');
    expect(h.tcb.counters.tcpRxAccepted).toBe(1);
  });
});

describe('notifications', () => {
  it('onState reports each move (from, to, event) in order, after the call that made it', () => {
    const moves: [TcpState, TcpState, string][] = [];
    let stateSeen: TcpState | undefined;
    const h = harness({
      onState: (from, to, ev) => {
        moves.push([from, to, ev]);
        stateSeen = h.tcb.state;
      },
    });
    h.tcb.connect(0);
    expect(moves).toEqual([['CLOSED', 'SYN-SENT', 'connect']]);
    h.peer(TCP_SYN | A, IRS, ISS + 1);
    h.tcb.close(0);
    h.peer(A, IRS + 1, ISS + 2);
    expect(moves.map((m) => m[1])).toEqual(['SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2']);
    expect(stateSeen).toBe('FIN-WAIT-2');
  });

  it('several moves in one call are all told, in order (FIN-WAIT-1 → FIN-WAIT-2 → TIME-WAIT on one segment)', () => {
    const moves: string[] = [];
    const h = harness({ onState: (from, to) => moves.push(`${from}>${to}`) });
    h.tcb.connect(0);
    h.peer(TCP_SYN | A, IRS, ISS + 1);
    h.tcb.close(0);
    moves.length = 0;
    h.peer(A | 0x01, IRS + 1, ISS + 2);
    expect(moves).toEqual(['FIN-WAIT-1>FIN-WAIT-2', 'FIN-WAIT-2>TIME-WAIT']);
  });

  it('onSendSpace: called when an ACK frees send-buffer space; the application may send from it', () => {
    let calls = 0;
    const data = new Uint8Array(10_000);
    let given = 0;
    const h = harness({
      sndBuf: 4000,
      onSendSpace: () => {
        calls++;
        given += h.tcb.send(data, given, data.length - given, 0);
      },
    });
    h.tcb.connect(0);
    h.peer(TCP_SYN | A, IRS, ISS + 1);
    expect(calls).toBe(0); // the SYN's ACK frees no buffer space
    given += h.tcb.send(data, 0, data.length, 0);
    expect(given).toBe(4000);
    h.peer(A, IRS + 1, ISS + 1 + 1000);
    expect(calls).toBe(1);
    expect(given).toBe(5000);
    h.peer(A, IRS + 1, ISS + 1 + 1000); // a duplicate ACK frees nothing
    expect(calls).toBe(1);
    expect(h.tcb.sendSpace).toBe(0);
  });

  it('onSendSpace is not called once closing (send() would take nothing)', () => {
    let calls = 0;
    const h = harness({ onSendSpace: () => calls++ });
    h.tcb.connect(0);
    h.peer(TCP_SYN | A, IRS, ISS + 1);
    h.tcb.send(new Uint8Array(100), 0, 100, 0);
    h.tcb.close(0);
    h.peer(A, IRS + 1, ISS + 1 + 100);
    expect(calls).toBe(0);
  });

  it('onState may call back into the TCB: a close on ESTABLISHED sends the FIN and its move is told next', () => {
    const moves: string[] = [];
    const h = harness({
      onState: (_from, to) => {
        moves.push(to);
        if (to === 'ESTABLISHED') h.tcb.close(0);
      },
    });
    h.tcb.connect(0);
    h.peer(TCP_SYN | A, IRS, ISS + 1);
    expect(moves).toEqual(['SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1']);
    expect(h.sent.at(-1)?.flags).toBe(A | 0x01);
  });

  it('receiveWindow is the window offered', () => {
    const h = harness({ rcvWnd: 30_000 });
    expect(h.tcb.receiveWindow).toBe(30_000);
  });
});
