/**
 * Extra-info slots in RX responses, netfront's side (Linux xen-netfront's
 * xennet_get_extras, xennet_set_skb_gso), against a scripted backend in
 * process (xsim's netback sends GSO and HASH ones): each extra slot sits in
 * the slot of a buffer posted there, which goes back unused, and a
 * malformed one drops its frame, counted by its reason, never the device.
 * One test per malformed slot.
 */
import { describe, expect, it } from 'vitest';
import { NETRXF_extra_info, XEN_NETIF_EXTRA_FLAG_MORE, XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_EXTRA_TYPE_XDP, XEN_NETIF_GSO_TYPE_TCPV4 } from '@xsim/hypervisor';
import { respond, rig, type Slot } from './rx-rig.ts';

const GSO = { type: XEN_NETIF_EXTRA_TYPE_GSO, gsoSize: 1448, gsoType: XEN_NETIF_GSO_TYPE_TCPV4 };

describe('extra-info slots in RX responses', () => {
  it('a frame with a GSO slot after its first response: delivered, the extra slot’s buffer back unused and reposted', () => {
    const r = rig();
    const grantsBefore = r.grefs.available;
    respond(r.rx, [{ id: 0, flags: NETRXF_extra_info, status: 600 }, GSO, { id: 2, flags: 0, status: 300 }]);
    r.nf.poll();
    expect(r.received).toEqual([600, 300]);
    expect(r.nf.c.rxGso).toBe(1);
    expect(r.nf.c.rxExtraInfo).toBe(1);
    expect(r.nf.brokenReason).toBe('');
    expect(r.grefs.available).toBe(grantsBefore); // all three buffers reposted
  });

  it('two chained (XDP, then GSO): both taken, the frame delivered', () => {
    const r = rig();
    respond(r.rx, [{ id: 0, flags: NETRXF_extra_info, status: 600 }, { type: XEN_NETIF_EXTRA_TYPE_XDP, flags: XEN_NETIF_EXTRA_FLAG_MORE }, GSO]);
    r.nf.poll();
    expect(r.received).toEqual([600]);
    expect(r.nf.c.rxExtraInfo).toBe(2);
  });

  it.each([
    ['of type 0', [{ type: 0 }], 'rxErrExtraType'],
    ['of type 6 (past XEN_NETIF_EXTRA_TYPE_MAX)', [{ type: 6 }], 'rxErrExtraType'],
    ['GSO of size 0', [{ ...GSO, gsoSize: 0 }], 'rxErrGsoSize'],
    ['GSO of type 3', [{ ...GSO, gsoType: 3 }], 'rxErrGsoType'],
    ['GSO of type TCPv6 (xsim has no IPv6)', [{ ...GSO, gsoType: 2 }], 'rxErrGsoType'],
    ['missing: flagged MORE, none after', [{ ...GSO, flags: XEN_NETIF_EXTRA_FLAG_MORE }], 'rxErrExtraMissing'],
  ] as const)('an extra slot %s: that frame dropped and counted, the device stays, the next frame arrives', (_what, extras, counter) => {
    const r = rig();
    respond(r.rx, [{ id: 0, flags: NETRXF_extra_info, status: 600 }, ...(extras as readonly Slot[])]);
    r.nf.poll();
    respond(r.rx, [{ id: 1 + extras.length, flags: 0, status: 200 }]);
    r.nf.poll();
    expect(r.nf.c[counter]).toBe(1);
    expect(r.received).toEqual([200]);
    expect(r.nf.brokenReason).toBe('');
  });
});
