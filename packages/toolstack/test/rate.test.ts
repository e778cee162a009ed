/**
 * A vif's rate in xl's syntax (libxlu_vif.c's xlu_vif_parse_rate) and the
 * backend node libxl writes from it; a topology's vif rate, checked on load.
 * One test per malformed rate.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TopologyError, describeRateNode, parseXlRate, rateNode, validateTopology } from '../src/topo/index.ts';

describe("xl's rate=", () => {
  it.each([
    ['10Mb/s@20ms', 25000, 20000],
    ['10Mb/s', 62500, 50000], // the default interval: 50 ms
    ['1GB/s@1s', 1_000_000_000, 1_000_000],
    ['100KB/s@10ms', 1000, 10000],
    ['1000000B/s@50us', 50, 50],
    ['8b/s@2', 2, 2_000_000], // bits, an interval in seconds without the s
    ['1Gb/s@20m', 2_500_000, 20000], // "m" alone is milliseconds
    ['010Mb/s@20ms', 20000, 20000], // a leading 0 is octal, as strtoull(.., 0) reads it: 8 Mb/s
    ['3b/s@1s', 0, 1_000_000], // 3 bits a second: 0 whole bytes
  ])('%s: %i bytes every %i us', (rate, bytes, usec) => {
    expect(parseXlRate(rate)).toEqual({ bytesPerInterval: bytes, intervalUsecs: usec });
  });

  it('is written as "BYTES,USEC" and read back in words', () => {
    expect(rateNode(parseXlRate('10Mb/s@20ms'))).toBe('25000,20000');
    expect(describeRateNode('25000,20000')).toBe('25000 bytes every 20000 us (10.0 Mbit/s)');
  });

  it.each([
    ['', /no rate specified/],
    ['@20ms', /no rate specified/],
    ['10Mbit/s', /invalid rate in `10Mbit\/s'/],
    ['10 Mb/s', /invalid rate/],
    ['10Mb', /invalid rate/],
    ['10mb/s', /invalid rate/],
    ['-10Mb/s', /invalid rate/],
    ['0Mb/s', /rate overflow/],
    ['08Mb/s', /rate overflow/], // strtoull reads the octal 0 and stops at 8
    ['4294967296B/s', /rate overflow/],
    ['10Mb/s@', /invalid replenishment interval/],
    ['10Mb/s@20h', /invalid replenishment interval/],
    ['10Mb/s@20ms@5', /invalid replenishment interval/],
    ['10Mb/s@0ms', /replenishment interval overflow/],
    ['10Mb/s@4295s', /replenishment interval overflow/], // over 2^32 - 1 us
  ])('%j is refused: %s', (rate, msg) => {
    expect(() => parseXlRate(rate)).toThrow(msg);
  });
});

describe("a topology's vif rate", () => {
  const base = () => JSON.parse(readFileSync(new URL('../../../topologies/default.json', import.meta.url), 'utf8'));

  it("is kept as given, in xl's syntax", () => {
    const t = base();
    t.hosts[0].domUs[0].vifs[0].rate = '10Mb/s@20ms';
    expect(validateTopology(t).hosts[0].domUs[0].vifs[0].rate).toBe('10Mb/s@20ms');
  });

  it.each([
    ['10Mbit', "invalid rate in `10Mbit'"],
    [10, 'must be a string, got 10'],
  ])('a rate of %j is refused, naming the field', (rate, msg) => {
    const t = base();
    t.hosts[0].domUs[0].vifs[0].rate = rate;
    try {
      validateTopology(t);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(TopologyError);
      expect((e as TopologyError).issues.map((i) => `${i.path}: ${i.message}`).join('; ')).toContain(`hosts[0].domUs[0].vifs[0].rate: ${msg}`);
    }
  });
});
