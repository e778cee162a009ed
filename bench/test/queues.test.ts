/**
 * The benchmark's multi-queue cells (`xsim bench --queues`): the flows it
 * picks land one per TX queue, the topology gives a1 and b1 the queues, and
 * a short real run spreads a1's frames over its queues, conserved, with
 * every frame of the pair on one of b1's RX queues (Toeplitz over UDP
 * covers the addresses alone).
 */
import { describe, expect, it } from 'vitest';
import { flowHash, newFlowKeys } from '@xsim/hypervisor';
import { parseIp } from '@xsim/netstack';
import { flowsOverQueues, queueTopology, report, runQueueBench, validateBenchJson, type BenchJson } from '@xsim/bench';

function queueOf(src: string, dst: string, f: { srcPort: number; port: number }, n: number): number {
  const b = new Uint8Array(42);
  const dv = new DataView(b.buffer);
  b.set([0x08, 0x00], 12);
  b.set([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17], 14);
  dv.setUint32(26, parseIp(src));
  dv.setUint32(30, parseIp(dst));
  dv.setUint16(34, f.srcPort);
  dv.setUint16(36, f.port);
  return flowHash(b, 0, 42, newFlowKeys()) % n;
}

describe('multi-queue cells', () => {
  it.each([1, 2, 4])('%i queues: one flow per TX queue, each to a receiver port of its own', (n) => {
    const flows = flowsOverQueues('10.0.10.1', '10.0.11.1', n);
    expect(flows.map((f) => queueOf('10.0.10.1', '10.0.11.1', f, n))).toEqual(Array.from({ length: n }, (_v, i) => i));
    expect(new Set(flows.map((f) => f.port)).size).toBe(n);
  });

  it("the topology: a1's and b1's vifs ask for N queues, their RAM sized for them; a2 and b2 as before", () => {
    const t = queueTopology(1500, 4);
    const d = (name: string) => t.hosts.flatMap((h) => h.domUs).find((x) => x.name === name)!;
    expect([d('a1').vifs[0].queues, d('b1').vifs[0].queues, d('a2').vifs[0].queues]).toEqual([4, 4, undefined]);
    expect(d('a1').memPages).toBeGreaterThan(d('a2').memPages);
  });

  it('a short run with 2 queues: both of a1 TX queues carry frames, b1 receives the pair on one queue, conserved; the report shows it', async () => {
    const [c] = await runQueueBench({ sizes: [1500], queues: [2], reps: 1, frames: 600, repSeconds: 0, pcpus: 2 });
    expect(c.reps.every((r) => r.conserved)).toBe(true);
    expect(c.perQueue.tx.every((x) => x > 0)).toBe(true);
    expect(c.perQueue.rx.filter((x) => x > 0)).toHaveLength(1);
    expect(c.perQueue.rx.reduce((a, b) => a + b, 0)).toBe(c.reps[0].delivered);
    const text = report({ cells: [], ratios: [], threads: {}, machine: { cores: 2, node: 'v20', cpu: 'x' }, queues: [c] } as unknown as BenchJson);
    expect(text).toMatch(/^ *2 +2 +1500 .* yes *$/m);
    expect(validateBenchJson({ queues: [c] }).some((p) => p.startsWith('/queues'))).toBe(false);
  }, 120_000);
});
