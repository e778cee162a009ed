/**
 * Concurrent guest pairs: the topology (four domUs a host, each its own MAC
 * and address) and a short real run of two pairs at once on both paths. No
 * speed is asserted (the machines are shared).
 */
import { describe, expect, it } from 'vitest';
import { pairsTopology, runPairBench, report, type BenchJson } from '../src/index.ts';

describe('concurrent pairs', () => {
  it('host-a and host-b each get four domUs, every MAC and address distinct; a line rate reaches the wire', () => {
    const t = pairsTopology(1500);
    expect(t.hosts.map((h) => h.domUs.map((d) => d.name))).toEqual([
      ['a1', 'a2', 'a3', 'a4'],
      ['b1', 'b2', 'b3', 'b4'],
    ]);
    const vifs = t.hosts.flatMap((h) => h.domUs.map((d) => d.vifs[0]));
    expect(new Set(vifs.map((v) => v.mac)).size).toBe(8);
    expect(new Set(vifs.map((v) => v.ip)).size).toBe(8);
    expect(pairsTopology(1500, 10).wires).toEqual([{ a: 'host-a', b: 'host-b', gbps: 10 }]);
  });

  it('two pairs at once: both paths, each pair delivers, conserved, a paired ratio (or why not)', { timeout: 120_000 }, async () => {
    const r = await runPairBench({ pairs: [2], reps: 1, frames: 300, repSeconds: 0 });
    expect(r.cells.map((c) => `${c.pairs} ${c.path}`)).toEqual(['2 unaccel', '2 vnic']);
    for (const c of r.cells) {
      const [rep] = c.reps;
      expect(
        rep.perPair.map((p) => `${p.from} -> ${p.to}`),
        c.path,
      ).toEqual(['host-a/a1 -> host-b/b1', 'host-a/a2 -> host-b/b2']);
      for (const p of rep.perPair) expect(p.delivered, `${c.path} ${p.from}`).toBeGreaterThan(0);
      expect(rep.conserved, c.path).toBe(true);
      expect(rep.delivered, c.path).toBe(rep.perPair.reduce((n, p) => n + p.delivered, 0));
      expect(c.median.aggregateGbps, c.path).toBeGreaterThan(0);
    }
    expect(r.cells[0].fastPathShare).toBe(0);
    const [x] = r.ratios;
    if (r.cells[1].valid) expect(x.vnicOverUnaccel).toBeGreaterThan(0);
    else expect(x.invalid?.[0]).toMatch(/^vnic with 2 pair\(s\)/);
    const text = report({ machine: { cores: 2 }, threads: {}, cells: [], ratios: [], pairs: r } as unknown as BenchJson);
    expect(text).toMatch(/concurrent guest pairs/);
    expect(text).toMatch(/\n2 +1500 +/);
  });
});
