/**
 * A message crosses threads in a buffer of its own size: msgpackr hands back
 * views of a buffer it reuses, and postMessage clones a view's whole buffer,
 * so without this every message after one large one would carry that much.
 */
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { PortLink, type Envelope } from '@xsim/hypervisor';

describe('PortLink', () => {
  it('posts a view of a large buffer as its own bytes only', () => {
    const ch = new MessageChannel();
    const big = new Uint8Array(1 << 20);
    big.set([1, 2, 3, 4, 5, 6, 7, 8], 4096);
    new PortLink(ch.port1, null).post({ to: 1, from: 2, ch: 3, b: big.subarray(4096, 4104) });
    const got = receiveMessageOnPort(ch.port2)?.message as Envelope;
    expect([...got.b]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(got.b.buffer.byteLength).toBe(8);
    // The sender's view is left as it was.
    expect(big[4096]).toBe(1);
    ch.port1.close();
  });

  it('posts a message that owns its buffer as it is', () => {
    const ch = new MessageChannel();
    const own = Uint8Array.of(9, 9);
    new PortLink(ch.port1, null).post({ to: 1, from: 2, ch: 3, b: own });
    expect([...(receiveMessageOnPort(ch.port2)?.message as Envelope).b]).toEqual([9, 9]);
    ch.port1.close();
  });
});
