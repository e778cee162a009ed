/**
 * MCDI at the NIC: each command is checked against @xsim/hypervisor's
 * MCDI_OPS once, before it reaches the hardware. A malformed one (from a
 * broken backend or plugin) is refused, counted and logged, and changes
 * nothing; a well-formed one is served as before.
 */
import { describe, expect, it } from 'vitest';
import { HwNic, mcdiServer, VI_RING_PAGES } from '../src/index.ts';

describe('MCDI commands are checked at the NIC', () => {
  it('a malformed filter_insert or buffer_table_alloc is refused, counted, logged; the tables are untouched', () => {
    const rams = new Map([
      [0, new Uint8Array(new SharedArrayBuffer(16 * 4096))],
      [1, new Uint8Array(new SharedArrayBuffer(16 * 4096))],
    ]);
    const nic = new HwNic({ name: 'nic-a', host: 'host-a', mac: 0x000f53000000, mtu: 1500, vendor: '1924', device: '0803', vis: 3 }, rams);
    const log: string[] = [];
    const mcdi = mcdiServer(nic, (l) => log.push(l));
    expect(() => mcdi.call('filter_insert', { vi: 1, match: { kind: 'mac', mac: '00:16:3e:00:00:01' } })).toThrow(
      /MCDI: filter_insert refused: argument \/match/,
    );
    expect(() => mcdi.call('buffer_table_alloc', { vi: 1, domid: 1, frames: [-1] })).toThrow(/MCDI: buffer_table_alloc refused: argument \/frames\/0/);
    expect(() => mcdi.call('vi_init', { vi: 1, domid: 1 })).toThrow(/MCDI: vi_init refused: argument \/rings/);
    expect(() => mcdi.call('reset_everything', {})).toThrow(/MCDI: reset_everything refused: unknown op/);
    expect(mcdi.refused).toBe(4);
    expect(log).toHaveLength(4);
    expect(nic.filters.list()).toEqual([]);
    // A good command is served.
    expect(mcdi.call('buffer_table_alloc', { vi: 1, domid: 1, frames: [2, 3] })).toBeTypeOf('number');
    expect(mcdi.refused).toBe(4);
  });

  it('link_set must say up or down; vi_init must say which MACs the VI may send from (null: any); a filter needs a running VI', () => {
    const rams = new Map([[1, new Uint8Array(new SharedArrayBuffer(16 * 4096))]]);
    const nic = new HwNic({ name: 'nic-a', host: 'host-a', mac: 0x000f53000000, mtu: 1500, vendor: '1924', device: '0803', vis: 3 }, rams);
    const mcdi = mcdiServer(nic);
    // Before, an empty link_set took the link down, and a vi_init without macs made a VI with no anti-spoofing.
    expect(() => mcdi.call('link_set', {})).toThrow(/MCDI: link_set refused: argument \/up/);
    expect(nic.linkUp).toBe(true);
    const base = mcdi.call('buffer_table_alloc', { vi: 1, domid: 1, frames: Array.from({ length: VI_RING_PAGES }, (_, i) => i) }) as number;
    expect(() => mcdi.call('vi_init', { vi: 1, domid: 1, rings: base })).toThrow(/MCDI: vi_init refused: argument \/macs/);
    expect(nic.vi(1).running).toBe(false);
    // A filter to a VI nobody drives would only drop what it steers.
    expect(() => mcdi.call('filter_insert', { vi: 1, match: { kind: 'mac', mac: 0x00163e000001 } })).toThrow(
      'VI 1 is not running (vi_init it first; a faulted or finalised VI takes no filter)',
    );
    mcdi.call('vi_init', { vi: 1, domid: 1, rings: base, macs: [0x00163e000001] });
    expect(mcdi.call('filter_insert', { vi: 1, match: { kind: 'mac', mac: 0x00163e000001 } })).toBe(1);
    mcdi.call('vi_fini', { vi: 1 });
    expect(() => mcdi.call('filter_insert', { vi: 1, match: { kind: 'mac', mac: 0x00163e000001 } })).toThrow(/VI 1 is not running/);
  });
});
