/**
 * The vdpa plugin (issue 19, item 3) against a real virtio NIC in process
 * (vdpa-rig.ts): the attach handshake maps the guest's area into the
 * function's IOMMU and starts it; frames go out on the transmitq after one
 * zeroed virtio_net_hdr and come in from the receiveq through a private copy;
 * flows learnt from the slow path become steering rules under vnic's quota
 * logic; a detach drains and gives everything back; a function that needs a
 * reset makes the frontend fall back and count what it lost.
 */
import { describe, expect, it } from 'vitest';
import { N_KICKS, VQA_RING, VQD_ADDR, VQU_IDX, VQU_RING, VQ_DESC_SIZE } from '@xsim/nic';
import { LOCALMAC_COUNTERS, VDPA_BACKEND_COUNTERS } from '../src/vdpa/backend.ts';
import { VDPA_FRONTEND_COUNTERS } from '../src/vdpa/frontend.ts';
import { geometry } from '../src/vdpa/layout.ts';
import { GUEST_IP, GUEST_MAC, REMOTE_MAC, udpFrame, vdpaRig } from './vdpa-rig.ts';

const PAGE = 4096;

/** The flow rules on the rig's NIC (the guest's switch-only MAC rule left out). */
const flowRules = (r: { nic: { filters: { list(): { match: { kind: string } }[] } } }) => r.nic.filters.list().filter((e) => e.match.kind === 'ipv4');

describe('vdpa: attach', () => {
  it('maps the whole DMA area into the function IOMMU, starts the function on its queue pages, and answers running', () => {
    const r = vdpaRig();
    const free0 = r.frames.available;
    r.attach();
    const geo = geometry(1500);
    expect(geo).toMatchObject({ bufBytes: 2048, descs: 1, txSlots: 128, rxBufs: 256, pages: 6 + 64 + 128 });
    expect(r.frames.available).toBe(free0 - geo.pages);
    const f = r.nic.fns[r.fn];
    expect(f.running).toBe(true);
    expect(f.domid).toBe(1);
    expect(r.nic.iommu.mapped(r.fn)).toBe(geo.pages);
    const s = r.stats();
    expect(s).toMatchObject({ ready: true, draining: false, faulted: false, freeTxSlots: 128, fastDestinations: 1 });
    expect((r.be.stats() as { vifs: { stage: string }[] }).vifs[0].stage).toBe('ready');
    // Every RX buffer is on the receiveq, none taken yet.
    expect(f.a!.rx.pending()).toBe(256);
  });

  it('has every counter it reports declared, and none in both halves', () => {
    const r = vdpaRig();
    r.attach();
    const fe = Object.keys(r.stats()).filter(
      (k) => typeof r.stats()[k] === 'number' && !['txPosted', 'txDropped', 'fastDestinations', 'freeTxSlots'].includes(k),
    );
    expect(fe.sort()).toEqual(VDPA_FRONTEND_COUNTERS.names().sort());
    const be = Object.keys(r.be.stats()).filter((k) => k !== 'vifs');
    expect(be.sort()).toEqual([...VDPA_BACKEND_COUNTERS.names(), ...LOCALMAC_COUNTERS.names()].sort());
  });
});

describe('vdpa: the data path', () => {
  it('sends a frame once, after a zeroed header, as one descriptor; the remote host gets it byte for byte and the slot comes back', () => {
    const r = vdpaRig();
    r.attach();
    const frame = udpFrame(REMOTE_MAC, GUEST_MAC, '10.0.2.1', 5001, 1514, 0xa7);
    expect(r.fe.startXmit(frame, 0, frame.length)).toBe(true);
    expect(r.stats().freeTxSlots).toBe(127);
    // The chain the device sees: one descriptor, header and frame, in the first TX slot's page.
    const txDesc = r.nic.fns[r.fn].a!.tx.desc;
    const dv = new DataView(r.mem.sab);
    expect(Number(dv.getBigUint64(txDesc + VQD_ADDR, true))).toBe(geometry(1500).txStart);
    r.pump();
    expect(r.remote.received).toHaveLength(1);
    expect([...r.remote.received[0]]).toEqual([...frame]);
    expect(r.stats()).toMatchObject({ vdpaTaken: 1, txPosted: 1, txDropped: 0, freeTxSlots: 128 });
    expect(r.nic.fns[r.fn].c.txFrames).toBe(1);
  });

  it('declines broadcast, ARP and destinations not behind the NIC (the slow path sends them)', () => {
    const r = vdpaRig();
    r.attach();
    const bcast = udpFrame(0xffffffffffff, GUEST_MAC, '10.0.2.255', 9);
    const arp = udpFrame(REMOTE_MAC, GUEST_MAC, '10.0.2.1', 9);
    arp[13] = 0x06;
    const local = udpFrame(0x00163e000999, GUEST_MAC, '10.0.1.9', 9);
    for (const f of [bcast, arp, local]) expect(r.fe.startXmit(f, 0, f.length)).toBe(false);
    expect(r.stats()).toMatchObject({ vdpaDeclinedMulticast: 1, vdpaDeclinedArp: 1, vdpaDeclinedUnknown: 1, vdpaTaken: 0 });
  });

  it('learns a flow from the slow path as a steering rule; its next frames arrive on the receiveq and are delivered from a private copy', () => {
    const r = vdpaRig();
    r.attach();
    const first = udpFrame(GUEST_MAC, REMOTE_MAC, GUEST_IP, 5001, 300, 1);
    r.remote.send(first);
    r.pump();
    // The first frame went to dom0 (function 0): the slow path, where the backend learnt the flow.
    expect(r.dom0.received).toHaveLength(1);
    expect(r.be.stats()).toMatchObject({ vdpaRulesLearnt: 1 });
    const rules = flowRules(r);
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({ vi: r.fn, match: { kind: 'ipv4', proto: 17, port: 5001 } });
    const next = udpFrame(GUEST_MAC, REMOTE_MAC, GUEST_IP, 5001, 300, 2);
    r.remote.send(next);
    r.pump();
    expect(r.dom0.received).toHaveLength(1);
    expect(r.delivered).toHaveLength(1);
    expect([...r.delivered[0].bytes]).toEqual([...next]);
    // Delivered from the frontend's own memory, never from the page the device wrote.
    expect(r.delivered[0].shared).toBe(false);
    expect(r.stats()).toMatchObject({ vdpaRxFrames: 1, vdpaRxMalformed: 0 });
    // The buffer went back at once, and the device was told how far the driver read.
    expect(r.nic.fns[r.fn].a!.rx.pending()).toBe(256);
  });

  it('a used entry longer than its buffer, or one claiming merged buffers, is dropped and counted, and its buffer reposted', () => {
    const r = vdpaRig();
    r.attach();
    const a = r.nic.fns[r.fn].a!;
    const dv = new DataView(r.mem.sab);
    const u16 = new Uint16Array(r.mem.sab);
    // Play a broken device: used entries for the first two chains posted (heads 0 and 1 carry RX buffers 0 and 1).
    dv.setUint32(a.rx.used + VQU_RING, 0, true);
    dv.setUint32(a.rx.used + VQU_RING + 4, 2048 + 1, true); // longer than the buffer
    dv.setUint32(a.rx.used + VQU_RING + 8, 1, true);
    dv.setUint32(a.rx.used + VQU_RING + 12, 100, true); // a sane length, but its header says 2 buffers
    const buf1 = a.rx.desc + geometry(1500).rxStart + 2048; // the area starts at the receiveq's descriptor page
    r.mem.u8[buf1 + 10] = 2;
    Atomics.store(u16, (a.rx.used + VQU_IDX) >> 1, 2);
    a.rx.usedIdx = 2;
    a.rx.lastAvail = 2;
    r.fe.poll(64);
    expect(r.stats()).toMatchObject({ vdpaRxMalformed: 2, vdpaRxFrames: 0 });
    expect(r.delivered).toHaveLength(0);
    // Both buffers are back on the receiveq.
    expect(a.rx.pending()).toBe(256);
  });

  it('carries a 9000-octet MTU frame in and out: chains of one descriptor per page', () => {
    const r = vdpaRig({ mtu: 9000 });
    r.attach();
    const geo = geometry(9000);
    expect(geo).toMatchObject({ bufBytes: 3 * PAGE, descs: 3, txSlots: 32, rxBufs: 64 });
    const out = udpFrame(REMOTE_MAC, GUEST_MAC, '10.0.2.1', 7, 9014, 0x33);
    expect(r.fe.startXmit(out, 0, out.length)).toBe(true);
    r.pump();
    expect(r.remote.received.map((f) => f.length)).toEqual([9014]);
    expect([...r.remote.received[0]]).toEqual([...out]);
    r.remote.send(udpFrame(GUEST_MAC, REMOTE_MAC, GUEST_IP, 9001, 100));
    r.pump();
    const jumbo = udpFrame(GUEST_MAC, REMOTE_MAC, GUEST_IP, 9001, 9014, 0x44);
    r.remote.send(jumbo);
    r.pump();
    expect(r.delivered.map((d) => d.bytes.length)).toEqual([9014]);
    expect([...r.delivered[0].bytes]).toEqual([...jumbo]);
  });
});

describe('vdpa: notifications', () => {
  it('kicks the device only when it asked (avail_event), through the notify area and the platform wake', () => {
    const r = vdpaRig();
    r.attach();
    const f = udpFrame(REMOTE_MAC, GUEST_MAC, '10.0.2.1', 5001);
    const kicksAt = () => new Int32Array(r.nic.fns[r.fn].a!.notify)[N_KICKS];
    const k0 = r.nicKicks();
    const n0 = kicksAt();
    // Each frame a burst of its own, as netfront sends it (startXmit, then flush).
    const send = () => {
      r.fe.startXmit(f, 0, f.length);
      r.fe.flush!();
    };
    // A device that polls leaves avail_event behind: no kick.
    send();
    r.pump();
    send();
    expect(r.nicKicks() - k0).toBe(1); // the first frame only: avail_event was 0
    const polling = r.nicKicks();
    r.pump();
    // About to sleep, the device asks for a kick at the next entry: the next frame kicks.
    r.nic.markAsleep(true);
    send();
    expect(r.nicKicks()).toBe(polling + 1);
    expect(kicksAt() - n0).toBe(r.nicKicks() - k0);
  });

  it('arms the interrupt before sleeping: a frame that arrives then raises it', () => {
    const r = vdpaRig();
    r.attach();
    r.remote.send(udpFrame(GUEST_MAC, REMOTE_MAC, GUEST_IP, 5001));
    r.pump(); // learnt
    r.irqRaised();
    expect(r.fe.poll(64)).toBe(0); // nothing to do: interrupts armed
    r.remote.send(udpFrame(GUEST_MAC, REMOTE_MAC, GUEST_IP, 5001));
    r.remoteNic.poll();
    r.nic.flushAll();
    expect(r.irqRaised()).toBe(true);
    expect(r.fe.poll(64)).toBe(1);
    expect(r.delivered).toHaveLength(1);
  });
});

describe('vdpa: detach and faults', () => {
  it('a detach removes the rules first, drains, stops the function and gives every page and grant back', () => {
    const r = vdpaRig();
    const free0 = r.frames.available;
    r.attach();
    r.remote.send(udpFrame(GUEST_MAC, REMOTE_MAC, GUEST_IP, 5001));
    r.pump();
    // The flow's rule, and the switch-only rule for the guest's MAC (the host's other guests reach it by).
    expect(flowRules(r)).toHaveLength(1);
    expect(r.nic.filters.size).toBe(2);
    const f = udpFrame(REMOTE_MAC, GUEST_MAC, '10.0.2.1', 5001);
    r.fe.startXmit(f, 0, f.length);
    r.be.detachVif!(r.vif);
    // The flow rule goes at once; the switch-only one stays while the function drains, and goes before it stops.
    expect(flowRules(r)).toHaveLength(0);
    expect(r.nic.filters.list()).toMatchObject([{ vi: r.fn, match: { kind: 'mac', mac: GUEST_MAC, local: true } }]);
    r.pump();
    expect(r.nic.filters.size).toBe(0);
    expect(r.detached).toEqual([r.vif.key]);
    expect(r.remote.received).toHaveLength(1); // the frame in flight went out before the drain ended
    expect(r.nic.fns[r.fn].running).toBe(false);
    expect(r.nic.iommu.mapped(r.fn)).toBe(0);
    expect(r.mappedRefs.size).toBe(0);
    expect(r.granted.size).toBe(0);
    expect(r.frames.available).toBe(free0);
    expect(r.nic.fns[r.fn].c).toMatchObject({ txDiscardedAtFini: 0, rxUnreadAtFini: 0 });
  });

  it('a function that needs a reset: the frontend takes what completed, counts what was lost, falls back; the backend stops it', () => {
    const r = vdpaRig();
    const free0 = r.frames.available;
    r.attach();
    const f = udpFrame(REMOTE_MAC, GUEST_MAC, '10.0.2.1', 5001);
    r.fe.startXmit(f, 0, f.length);
    r.pump();
    r.fe.startXmit(f, 0, f.length);
    r.fe.startXmit(f, 0, f.length);
    // A broken driver: the descriptor of the second chain made available points outside the function's IOMMU map.
    const a = r.nic.fns[r.fn].a!;
    const dv = new DataView(r.mem.sab);
    const head = dv.getUint16(a.tx.avail + VQA_RING + 2 * 1, true);
    dv.setBigUint64(a.tx.desc + head * VQ_DESC_SIZE + VQD_ADDR, 1n << 40n, true);
    r.pump();
    expect(r.remote.received).toHaveLength(1);
    expect(r.stats()).toMatchObject({ faulted: true, vdpaTaken: 3, vdpaTxLostOnFault: 2 });
    expect(r.fe.checkReady()).toBe(true);
    expect(r.fe.startXmit(f, 0, f.length)).toBe(false);
    expect(r.be.stats()).toMatchObject({ vdpaFaults: 1 });
    expect(r.logs.some((l) => l.includes('needs a reset (iommu)'))).toBe(true);
    expect(r.detached).toEqual([r.vif.key]);
    expect(r.nic.iommu.mapped(r.fn)).toBe(0);
    expect(r.frames.available).toBe(free0);
  });

  it('a start refused after the pages were mapped unmaps them when the vif goes', () => {
    const r = vdpaRig({ failIn: 'deviceIrq' });
    r.be.attachVif!(r.vif);
    // The offer, the accept, and the backend's accept hook throws (the framework then fails this vif).
    expect(() => r.step()).toThrow('not a device interrupt');
    expect(r.nic.iommu.mapped(r.fn)).toBeGreaterThan(0);
    r.be.vifGone!(r.vif);
    expect(r.nic.iommu.mapped(r.fn)).toBe(0);
    expect(r.mappedRefs.size).toBe(0);
  });
});

describe('vdpa: quotas and migration', () => {
  it('keeps to limits/max-filters by evicting (vnic quota logic over steer_add/steer_hits/steer_del)', () => {
    const r = vdpaRig({ args: { maxFilters: 2 } });
    r.attach();
    for (const port of [6001, 6002, 6003]) {
      r.remote.send(udpFrame(GUEST_MAC, REMOTE_MAC, GUEST_IP, port));
      r.pump();
    }
    expect(flowRules(r)).toHaveLength(2);
    expect(r.be.stats()).toMatchObject({ vdpaRulesLearnt: 3, vdpaFiltersEvicted: 1, localMacs: 1 });
    expect(
      r.nic.filters
        .list()
        .map((e) => (e.match.kind === 'ipv4' ? e.match.port : -1))
        .sort(),
    ).toContain(6003);
  });

  it('a full steering table (ENOSPC) leaves the flow on the slow path, counted', () => {
    // Room for two: the guest's switch-only MAC rule, and one flow.
    const r = vdpaRig({ steering: 2 });
    r.attach();
    for (const port of [6001, 6002]) {
      r.remote.send(udpFrame(GUEST_MAC, REMOTE_MAC, GUEST_IP, port));
      r.pump();
    }
    expect(r.be.stats()).toMatchObject({ vdpaRulesLearnt: 1, vdpaFlowsNicFull: 1 });
    expect(r.logs.some((l) => l.includes('steering table is full'))).toBe(true);
  });

  it('saves the learnt flows and puts them back at once on the destination', () => {
    const src = vdpaRig();
    src.attach();
    for (const port of [7001, 7002]) {
      src.remote.send(udpFrame(GUEST_MAC, REMOTE_MAC, GUEST_IP, port));
      src.pump();
    }
    const state = src.be.saveState!(src.vif);
    expect(state).toEqual({
      flows: [
        [17, 7001],
        [17, 7002],
      ],
    });
    const dst = vdpaRig();
    dst.be.restoreState!(dst.vif, JSON.parse(JSON.stringify(state)));
    dst.attach();
    expect(dst.be.stats()).toMatchObject({ vdpaRulesRestored: 2, vdpaRulesLearnt: 0 });
    expect(flowRules(dst)).toHaveLength(2);
    dst.remote.send(udpFrame(GUEST_MAC, REMOTE_MAC, GUEST_IP, 7002));
    dst.pump();
    expect(dst.delivered).toHaveLength(1);
    expect(dst.dom0.received).toHaveLength(0);
  });
});
