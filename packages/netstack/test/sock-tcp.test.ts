/**
 * TCP sockets in the guest stack (net/tcp-sock.ts): two GuestStacks back to
 * back through an in-memory wire on a virtual clock. Connect, accept,
 * transfer, close into TIME-WAIT and out of the table; an RST for a port
 * nobody listens on; data that comes with the handshake's last ACK; the
 * interface queue when the ring is full; partial checksums (offload) only
 * accepted with the driver's word; timers through the stack's tick.
 */
import { describe, expect, it } from 'vitest';
import { TCP_TXQUEUE_LEN, type TcpCloseReason, type TcpSocket } from '../src/net/tcp-sock.ts';
import { pair, payload } from './stack-pair.ts';

/** Accept on b:port, collecting what each accepted socket receives. */
function server(net: ReturnType<typeof pair>, port = 80) {
  const got: { sock: TcpSocket; data: number[]; closed: TcpCloseReason | null; peerClosed: boolean }[] = [];
  net.b.tcp.listen(port, (sock) => {
    const rec = { sock, data: [] as number[], closed: null as TcpCloseReason | null, peerClosed: false };
    got.push(rec);
    sock.onData = (buf, off, len) => {
      for (let i = 0; i < len; i++) rec.data.push(buf[off + i]);
    };
    sock.onPeerClosed = () => {
      rec.peerClosed = true;
      sock.close();
    };
    sock.onClosed = (why) => (rec.closed = why);
  });
  return got;
}

describe('TCP sockets in the guest stack', () => {
  it('connects, carries 200 kB in order, closes both ways and leaves the table after TIME-WAIT', () => {
    const net = pair();
    const got = server(net);
    const c = net.a.tcp.connect(net.b.ip, 80);
    let est = 0;
    let closed: TcpCloseReason | null = null;
    c.onEstablished = () => est++;
    c.onClosed = (why) => (closed = why);
    net.pump();
    expect(c.state).toBe('ESTABLISHED');
    expect(est).toBe(1);
    expect(got).toHaveLength(1);
    const data = payload(200_000);
    let sent = 0;
    for (let i = 0; i < 1000 && sent < data.length; i++) {
      sent += c.send(data, sent, data.length - sent);
      net.pump();
    }
    expect(sent).toBe(data.length);
    expect(Uint8Array.from(got[0].data)).toEqual(data);
    c.close();
    net.pump();
    expect(got[0].peerClosed).toBe(true);
    expect(got[0].closed).toBe('closed'); // LAST-ACK -> CLOSED on the ACK of its FIN
    expect(c.state).toBe('TIME-WAIT');
    expect(net.a.tcp.size).toBe(1);
    expect(net.b.tcp.size).toBe(0);
    net.advance(61_000);
    expect(closed).toBe('closed');
    expect(net.a.tcp.size).toBe(0);
    const ta = net.a.tcp.totals();
    const tb = net.b.tcp.totals();
    expect(tb.tcpRxAccepted).toBe(tb.tcpRxSegments);
    expect(ta.tcpRxAccepted).toBe(ta.tcpRxSegments);
    expect(net.a.counters.txTcp).toBe(ta.tcpTxSegments);
    expect(net.b.counters.rxTcp).toBe(tb.tcpRxSegments);
    expect(net.a.tcp.counters.tcpActiveOpens).toBe(1);
    expect(net.b.tcp.counters.tcpPassiveOpens).toBe(1);
  });

  it('answers a SYN to a port nobody listens on with an RST: the connect is refused', () => {
    const net = pair();
    const c = net.a.tcp.connect(net.b.ip, 81);
    let why: TcpCloseReason | null = null;
    c.onClosed = (w) => (why = w);
    net.pump();
    expect(why).toBe('refused');
    expect(net.b.tcp.counters.tcpRxNoSocket).toBe(1);
    expect(net.b.tcp.totals().tcpTxRst).toBe(1);
    expect(net.a.tcp.size).toBe(0);
  });

  it('does not answer a malformed segment nobody owns (too short, bad checksum): counted', () => {
    const net = pair();
    const c = net.a.tcp.connect(net.b.ip, 82);
    // Corrupt the SYN's checksum on the way.
    net.lose = (f) => {
      f.bytes[14 + 20 + 16] ^= 0xff;
      return false;
    };
    net.pump();
    expect(net.b.tcp.counters.tcpRxMalformed).toBe(1);
    expect(net.b.tcp.counters.tcpRxNoSocket).toBe(0);
    expect(c.state).toBe('SYN-SENT');
  });

  it('hands the app data that came with the handshake, before accept ran', () => {
    const net = pair();
    const got = server(net);
    // a's frames: the SYN, the ACK of the SYN,ACK (lost here), then the data: its ACK completes b's handshake.
    let n = 0;
    net.lose = (_f, from) => from === 'a' && n++ === 1;
    const c = net.a.tcp.connect(net.b.ip, 80);
    // Queued in SYN-SENT: it goes right after the ACK that completes the handshake.
    expect(c.send(Uint8Array.from([1, 2, 3, 4]), 0, 4)).toBe(4);
    net.pump();
    expect(got[0].data).toEqual([1, 2, 3, 4]);
    // A close in SYN-SENT deletes the TCB (RFC 9293 §3.10.4), so the close waits for ESTABLISHED.
    c.close();
    net.pump();
    expect(got[0].peerClosed).toBe(true);
  });

  it('holds segments the interface has no room for and sends them in order; drops past the queue are counted', () => {
    const net = pair();
    const got = server(net);
    const c = net.a.tcp.connect(net.b.ip, 80);
    net.pump();
    net.ta.room = 2; // two frames a round
    const data = payload(60_000, 3);
    const busy = net.a.counters.txBusy;
    const n = c.send(data, 0, data.length);
    expect(n).toBe(data.length);
    expect(net.a.tcp.queued).toBeGreaterThan(0);
    // Built in the frame while there was room; the first the interface refused is counted once (not
    // again when it is written aside and queued), and the ones after it queue without asking.
    expect(net.ta.out).toHaveLength(2);
    expect(net.a.counters.txBusy - busy).toBe(1);
    net.pump();
    expect(Uint8Array.from(got[0].data)).toEqual(data);
    expect(net.a.tcp.counters.tcpTxQueued).toBeGreaterThan(0);
    expect(net.a.tcp.counters.tcpTxQueueDrops).toBe(0);
    // No room at all: the queue fills to its bound, the rest is counted dropped.
    net.ta.room = 0;
    const big = payload(4_000_000, 5);
    let sent = 0;
    for (let i = 0; i < 200; i++) sent += c.send(big, sent, Math.min(big.length - sent, 64_000));
    // TCP sends no more than the peer's window, so the queue does not overflow from one connection's data alone.
    expect(net.a.tcp.queued).toBeLessThanOrEqual(TCP_TXQUEUE_LEN);
    net.ta.room = Infinity;
    net.advance(5000);
    expect(got[0].data.length).toBe(data.length + sent);
  });

  it('hands down partial checksums only with offload on; the receiver takes them only with the driver’s word', () => {
    const net = pair();
    const got = server(net);
    net.a.setOffloads({ txCsum: true });
    const c = net.a.tcp.connect(net.b.ip, 80);
    net.pump();
    c.send(payload(3000), 0, 3000);
    const partial: boolean[] = [];
    const lose = net.lose;
    net.lose = (f, from) => {
      if (from === 'a') partial.push(f.partial);
      return lose(f, from);
    };
    net.pump();
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.every((p) => p)).toBe(true);
    expect(got[0].data.length).toBe(3000);
    // Without the driver's flag, a partial checksum is a bad one.
    net.rxFlags = () => 0;
    c.send(payload(100), 0, 100);
    net.pump(20);
    expect(net.b.tcp.totals().tcpRxBadChecksum).toBeGreaterThan(0);
    expect(got[0].data.length).toBe(3000);
    // Offload off: complete checksums again, accepted without any flag.
    net.a.setOffloads({ txCsum: false });
    net.advance(2000); // the retransmission carries a full checksum now
    expect(got[0].data.length).toBe(3100);
  });

  it('hands the driver TCP frames over the MTU with their segment size once it offers TSO (with checksum offload only)', () => {
    const net = pair();
    const got = server(net);
    const sizes: number[] = [];
    const lose = net.lose;
    net.lose = (f, from) => {
      if (from === 'a' && f.gsoSize > 0) sizes.push(f.gsoSize, f.bytes.length);
      return lose(f, from);
    };
    // TSO without checksum offload is no TSO (Linux's netdev feature dependencies).
    net.a.setOffloads({ txCsum: false, tsoMax: 65536 });
    const c = net.a.tcp.connect(net.b.ip, 80);
    net.pump();
    c.send(payload(100_000), 0, 100_000);
    net.pump();
    expect(net.a.counters.txTso).toBe(0);
    net.a.setOffloads({ txCsum: true, tsoMax: 65536 });
    const data = payload(400_000, 9);
    let sent = 0;
    for (let i = 0; i < 100 && sent < data.length; i++) {
      sent += c.send(data, sent, data.length - sent);
      net.pump();
    }
    expect(got[0].data.length).toBe(500_000);
    expect(Uint8Array.from(got[0].data.slice(100_000))).toEqual(data);
    expect(net.a.counters.txTso).toBeGreaterThan(0);
    // Every TSO frame names the connection's MSS and stays within the largest IPv4 datagram.
    for (let i = 0; i < sizes.length; i += 2) {
      expect(sizes[i]).toBe(c.tcb.sendMss);
      expect(sizes[i + 1]).toBeGreaterThan(1514);
      expect(sizes[i + 1]).toBeLessThanOrEqual(14 + 65535);
    }
  });

  it('retransmits a lost SYN on the stack tick (RTO 1 s) and connects', () => {
    const net = pair();
    server(net);
    let lost = 0;
    net.lose = (_f, from) => from === 'a' && lost++ === 0;
    const c = net.a.tcp.connect(net.b.ip, 80);
    net.pump();
    expect(c.state).toBe('SYN-SENT');
    expect(net.a.tcp.nextTimer()).toBe(net.now() + 1000);
    net.advance(1000);
    expect(c.state).toBe('ESTABLISHED');
    expect(net.a.tcp.totals().tcpTxRetransmits).toBe(1);
  });

  it('refuses what a bad caller asks: a port out of range, a second listener, a connection that exists', () => {
    const net = pair();
    expect(() => net.a.tcp.connect(net.b.ip, 0)).toThrow(/TCP port must be an integer 1..65535, got 0/);
    expect(() => net.a.tcp.listen(70_000, () => {})).toThrow(/got 70000/);
    net.a.tcp.listen(90, () => {});
    expect(() => net.a.tcp.listen(90, () => {})).toThrow(/already listening/);
    net.a.tcp.connect(net.b.ip, 80, { srcPort: 5000 });
    expect(() => net.a.tcp.connect(net.b.ip, 80, { srcPort: 5000 })).toThrow(/already exists/);
  });

  it('drops SYNs past a listener’s backlog without answering', () => {
    const net = pair();
    net.b.tcp.listen(80, () => {}, { backlog: 2 });
    // The SYN,ACKs are lost, so the first two stay half-open.
    net.lose = (_f, from) => from === 'b';
    for (let i = 0; i < 3; i++) net.a.tcp.connect(net.b.ip, 80);
    net.pump();
    expect(net.b.tcp.counters.tcpListenOverflow).toBe(1);
    expect(net.b.tcp.size).toBe(2);
  });
});

describe('neighbours (ARP) under a long flow', () => {
  it('confirms a stale neighbour in use with a unicast request, never a broadcast, and keeps sending meanwhile', () => {
    const net = pair();
    const got = server(net);
    const c = net.a.tcp.connect(net.b.ip, 80);
    net.pump();
    const broadcasts: number[] = [];
    const lose = net.lose;
    net.lose = (f, from) => {
      // An ARP frame to ff:ff:ff:ff:ff:ff from a.
      if (from === 'a' && f.bytes[12] === 0x08 && f.bytes[13] === 0x06 && f.bytes[0] === 0xff) broadcasts.push(net.now());
      return lose(f, from);
    };
    // Three minutes of a trickle: the entry goes stale after 60 s and is confirmed by unicast (a's probe, or
    // b's own probe for a, which refreshes a's entry for b on the way).
    for (let t = 0; t < 180; t++) {
      c.send(payload(100), 0, 100);
      net.advance(1000);
    }
    expect(got[0].data.length).toBe(18_000);
    expect(broadcasts).toEqual([]);
    expect(net.a.counters.txArpProbe + net.b.counters.txArpProbe).toBeGreaterThanOrEqual(2);
    expect(net.a.counters.txArpProbe).toBeGreaterThanOrEqual(1);
    expect(net.a.arp.lookup(net.b.ip)).toBe(net.b.mac);
  });

  it('drops a neighbour that answers no confirmation for three TTLs; the next send asks everyone', () => {
    const net = pair();
    net.lose = (f, from) => from === 'b' && f.bytes[12] === 0x08 && f.bytes[13] === 0x06; // b's ARP replies lost
    net.a.tick(net.now() + 181_000);
    expect(net.a.arp.lookup(net.b.ip)).toBeUndefined();
  });
});
