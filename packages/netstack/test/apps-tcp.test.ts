/**
 * The TCP workloads (traffic/tcp-apps.ts) between two stacks back to back on
 * a virtual clock: a stream of several flows into a verifying sink, with and
 * without loss; request/response transactions timed on the client's clock.
 */
import { describe, expect, it } from 'vitest';
import { TcpRrClient, TcpRrServer, TcpSink, TcpStreamClient, streamOctet } from '../src/traffic/tcp-apps.ts';
import { pair } from './stack-pair.ts';

/** Poll the apps and move frames until `done` (bounded in rounds and in virtual time). */
function run(net: ReturnType<typeof pair>, apps: { poll(): number }[], done: () => boolean, maxMs = 120_000): void {
  const end = net.now() + maxMs;
  while (!done() && net.now() < end) {
    for (let i = 0; i < 100 && !done(); i++) {
      let work = 0;
      for (const a of apps) work += a.poll();
      net.pump();
      if (work === 0) break;
    }
    if (!done()) net.advance(1);
  }
}

describe('TCP workloads', () => {
  it('streams 1 MB over 4 flows into a verifying sink: every octet once, in order, and every flow closed', () => {
    const net = pair();
    const sink = new TcpSink(net.b.tcp, { port: 5201, flows: 4, verify: true }, net.now);
    const client = new TcpStreamClient(net.a.tcp, { dstIp: net.b.ip, dstPort: 5201, bytes: 1_000_001, flows: 4, writeSize: 1448 }, net.now);
    run(net, [client], () => client.done && sink.done);
    expect(client.done).toBe(true);
    expect(client.result()).toMatchObject({ flows: 4, bytes: 1_000_001, failed: {} });
    expect(sink.result()).toMatchObject({ flows: 4, bytes: 1_000_001, corrupt: 0, failed: {} });
  });

  it('a verifying sink notices a corrupted octet (the check can fail)', () => {
    const net = pair();
    const sink = new TcpSink(net.b.tcp, { port: 5201, flows: 1, verify: true }, net.now);
    const client = new TcpStreamClient(net.a.tcp, { dstIp: net.b.ip, dstPort: 5201, bytes: 20_000, flows: 1, writeSize: 1000 }, net.now);
    // Flip an octet of the 5th frame's payload and hand the driver's word (validated) so the checksum does not catch it.
    let n = 0;
    net.lose = (f, from) => {
      if (from === 'a' && f.bytes.length > 200 && n++ === 4) f.bytes[100] ^= 0x01;
      return false;
    };
    net.rxFlags = () => 1;
    run(net, [client], () => client.done && sink.done);
    expect(sink.result().corrupt).toBe(1);
    expect(streamOctet(65536 + 5)).toBe(streamOctet(5));
  });

  it('delivers every octet through a wire that loses every 13th frame (retransmission)', () => {
    const net = pair();
    let n = 0;
    net.lose = () => ++n % 13 === 0;
    const sink = new TcpSink(net.b.tcp, { port: 5201, flows: 2, verify: true }, net.now);
    const client = new TcpStreamClient(net.a.tcp, { dstIp: net.b.ip, dstPort: 5201, bytes: 300_000, flows: 2, writeSize: 4096 }, net.now);
    run(net, [client], () => client.done && sink.done);
    expect(sink.result()).toMatchObject({ bytes: 300_000, corrupt: 0, failed: {} });
    expect(net.a.tcp.totals().tcpTxRetransmits).toBeGreaterThan(0);
  });

  it('times request/response transactions, one in flight, on the client clock', () => {
    const net = pair();
    const server = new TcpRrServer(net.b.tcp, { port: 5202, reqSize: 100, rspSize: 2000, conns: 1 });
    const client = new TcpRrClient(net.a.tcp, { dstIp: net.b.ip, dstPort: 5202, count: 50, reqSize: 100, rspSize: 2000 }, net.now);
    run(net, [client, server], () => client.done && server.done);
    const r = client.result();
    expect(r.transactions).toBe(50);
    expect(r.count).toBe(50);
    expect(server.transactions).toBe(50);
    expect(r.failed).toEqual({});
    expect(server.done).toBe(true);
  });

  it('reports a refused stream as failed, not as done with data', () => {
    const net = pair();
    const client = new TcpStreamClient(net.a.tcp, { dstIp: net.b.ip, dstPort: 5999, bytes: 1000, flows: 2, writeSize: 1000 }, net.now);
    run(net, [client], () => client.done);
    expect(client.result()).toMatchObject({ bytes: 0, failed: { refused: 2 } });
  });
});
