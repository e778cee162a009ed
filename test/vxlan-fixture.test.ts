/**
 * test/fixtures/vxlan-loopback.json, the topology README's VXLAN section
 * measures against the in-process wire: the default topology with its one
 * wire cut in two tunnels pointing at each other on 127.0.0.1 (underlay MTU
 * 9000, so a 1500-octet frame fits), everything else the default's, so the
 * two runs compare the wire alone.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultTopology, validateTopology } from '@xsim/toolstack';

const fixture = JSON.parse(readFileSync(new URL('./fixtures/vxlan-loopback.json', import.meta.url), 'utf8')) as Record<string, unknown>;

describe('the VXLAN loopback fixture', () => {
  it('is valid, and is the default topology but for its wire', () => {
    const t = validateTopology(fixture);
    const d = structuredClone(defaultTopology()) as unknown as Record<string, unknown>;
    const { name: _n, wires: _w, ...rest } = fixture;
    const { name: _dn, wires: dw, ...drest } = d;
    expect(rest).toEqual(drest);
    expect(dw).toEqual([{ a: 'host-a', b: 'host-b' }]);
    expect(t.wires).toEqual([
      { a: 'host-a', b: { vxlan: { local: '127.0.0.1:24701', remote: '127.0.0.1:24702', vni: 4242, mtu: 9000 } } },
      { a: { vxlan: { local: '127.0.0.1:24702', remote: '127.0.0.1:24701', vni: 4242, mtu: 9000 } }, b: 'host-b' },
    ]);
  });
});
