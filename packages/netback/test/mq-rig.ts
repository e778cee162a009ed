/**
 * A scripted multi-queue frontend for a NetbackHarness: queue 0 is the
 * harness's own ring pair (refs 8 and 9), queues 1.. get ring pages of their
 * own (frames 300.., refs 500..), a control ring (frame 350, ref 600) and
 * pages for a key and a mapping table (frames 351-352, refs 601-602), all
 * granted to dom0 as netfront grants them.
 */
import {
  CTRLRSP_DATA,
  CTRLRSP_ID,
  CTRLRSP_STATUS,
  NETIF_CTRL_SLOT_SIZE,
  NETIF_RX_SLOT_SIZE,
  NETIF_TX_SLOT_SIZE,
  RXREQ_GREF,
  RXREQ_ID,
  RXRSP_FLAGS,
  RXRSP_STATUS,
  SRING_REQ_PROD,
  SharedRing,
  TXREQ_GREF,
  TXREQ_ID,
  TXREQ_SIZE,
  VIF_KEY,
  flowHash,
  newFlowKeys,
  queueDir,
  writeCtrlRequest,
} from '@xsim/hypervisor';
import { NetbackHarness, type HarnessOptions } from '../../../test/fixtures/netback-harness.ts';
import { frameIn } from './rig.ts';

export interface QueueRings {
  tx: SharedRing;
  rx: SharedRing;
}

export const CTRL_REF = 600;
export const KEY_REF = 601;
export const MAP_REF = 602;

/** A harness whose frontend asks for `n` queues with split channels (ports 10+2q, 11+2q) and, with `ctrl`, a control ring (port 40). */
export class MqHarness {
  readonly h: NetbackHarness;
  readonly rings: QueueRings[] = [];
  ctrl: SharedRing | null = null;
  keyPage!: Uint8Array;
  mapPage!: Uint8Array;

  constructor(n: number, o: HarnessOptions & { ctrl?: boolean; keys?: (q: number) => Record<string, string | null | undefined> } = {}) {
    const flat = { [VIF_KEY.txRingRef]: null, [VIF_KEY.rxRingRef]: null, [VIF_KEY.eventChannel]: null };
    this.h = new NetbackHarness({ ...o, noConnect: true, frontend: { ...flat, [VIF_KEY.multiQueueNumQueues]: String(n), ...o.frontend } });
    const h = this.h;
    const g = h.guestMem;
    const grant = (ref: number, frame: number, ro = false) => h.guestGnttab.grantAccess(ref, 0, frame, ro);
    for (let q = 0; q < n; q++) {
      let refs = [8, 9];
      if (q === 0) this.rings.push({ tx: h.tx, rx: h.rx });
      else {
        const tx = new SharedRing(g.page(300 + 2 * q), NETIF_TX_SLOT_SIZE);
        const rx = new SharedRing(g.page(301 + 2 * q), NETIF_RX_SLOT_SIZE);
        tx.init();
        rx.init();
        refs = [500 + 2 * q, 501 + 2 * q];
        grant(refs[0], 300 + 2 * q);
        grant(refs[1], 301 + 2 * q);
        this.rings.push({ tx, rx });
      }
      const keys = {
        'tx-ring-ref': String(refs[0]),
        'rx-ring-ref': String(refs[1]),
        'event-channel-tx': String(10 + 2 * q),
        'event-channel-rx': String(11 + 2 * q),
        ...o.keys?.(q),
      };
      for (const [k, v] of Object.entries(keys)) if (v !== null && v !== undefined) h.store.write(0, `${h.fe}/${queueDir(q)}/${k}`, v);
    }
    if (o.ctrl) {
      this.ctrl = new SharedRing(g.page(350), NETIF_CTRL_SLOT_SIZE);
      this.ctrl.init();
      grant(CTRL_REF, 350);
      grant(KEY_REF, 351, true);
      grant(MAP_REF, 352, true);
      this.keyPage = g.page(351);
      this.mapPage = g.page(352);
      if (o.frontend?.[VIF_KEY.ctrlRingRef] === undefined) h.store.write(0, `${h.fe}/${VIF_KEY.ctrlRingRef}`, String(CTRL_REF));
      if (o.frontend?.[VIF_KEY.eventChannelCtrl] === undefined) h.store.write(0, `${h.fe}/${VIF_KEY.eventChannelCtrl}`, '40');
    }
    h.connectFrontend();
  }

  /** A frame of `len` bytes (written into data page `page`, the vif's MAC as source) on queue `q`'s TX ring, published. */
  send(q: number, page: number, len: number): void {
    frameIn(this.h, page, len);
    const tx = this.rings[q].tx;
    const o = tx.slotOffset(tx.reqProd);
    tx.dv.setUint32(o + TXREQ_GREF, this.h.dataRefs[page], true);
    tx.dv.setUint16(o + TXREQ_ID, tx.reqProd & 255, true);
    tx.dv.setUint16(o + TXREQ_SIZE, len, true);
    Atomics.store(tx.idx, SRING_REQ_PROD >> 2, (tx.reqProd + 1) | 0);
  }

  /** Queue `q` posts `n` RX buffers (frames 400.., refs 100.. shared by every queue's buffers: 100 + 25q + i). */
  post(q: number, n: number): void {
    const rx = this.rings[q].rx;
    const prod = rx.reqProd;
    for (let i = 0; i < n; i++) {
      const ref = 100 + 25 * q + ((prod + i) % 25);
      this.h.guestGnttab.grantAccess(ref, 0, 400 + 25 * q + ((prod + i) % 25), false);
      const o = rx.slotOffset(prod + i);
      rx.dv.setUint16(o + RXREQ_ID, (prod + i) & 0xffff, true);
      rx.dv.setUint32(o + RXREQ_GREF, ref, true);
    }
    Atomics.store(rx.idx, SRING_REQ_PROD >> 2, prod + n);
  }

  /** Queue `q`'s RX responses: status and flags. */
  rxResponses(q: number): { status: number; flags: number; raw: DataView; o: number }[] {
    const rx = this.rings[q].rx;
    const out = [];
    for (let i = 0; i !== rx.rspProd; i++) {
      const o = rx.slotOffset(i);
      out.push({ status: rx.dv.getInt16(o + RXRSP_STATUS, true), flags: rx.dv.getUint16(o + RXRSP_FLAGS, true), raw: rx.dv, o });
    }
    return out;
  }

  /** Control requests at req_prod, published; then dom0 polls; returns the responses to them (status, data). */
  ctrlCall(...reqs: { type: number; data?: number[] }[]): { id: number; status: number; data: number }[] {
    const ring = this.ctrl!;
    const start = ring.reqProd;
    reqs.forEach((r, i) => {
      const d = r.data ?? [];
      writeCtrlRequest(ring.dv, ring.slotOffset(start + i), { id: start + i, type: r.type, data: [d[0] ?? 0, d[1] ?? 0, d[2] ?? 0] });
    });
    Atomics.store(ring.idx, SRING_REQ_PROD >> 2, (start + reqs.length) | 0);
    this.h.vif.poll();
    const out = [];
    for (let i = start; i !== ring.rspProd; i++) {
      const o = ring.slotOffset(i);
      out.push({
        id: ring.dv.getUint16(o + CTRLRSP_ID, true),
        status: ring.dv.getUint32(o + CTRLRSP_STATUS, true),
        data: ring.dv.getUint32(o + CTRLRSP_DATA, true),
      });
    }
    return out;
  }

  /** Write u32 entries at the start of the mapping page. */
  writeMapping(entries: number[]): void {
    const dv = new DataView(this.mapPage.buffer, this.mapPage.byteOffset, this.mapPage.byteLength);
    entries.forEach((e, i) => dv.setUint32(i * 4, e, true));
  }
}

/** A UDP frame for the guest (its MAC), from 10.0.10.1:sport to 10.0.11.1:5001, handed to the vif as the bridge hands one. */
export function deliverUdp(h: NetbackHarness, sport: number, len = 200, proto = 17, src = [10, 0, 10, 1]): number {
  const skb = h.skbs.alloc();
  const at = h.skbs.addr(skb);
  const u8 = h.dom0Mem.u8;
  u8.fill(0, at, at + len);
  u8.set([0x00, 0x16, 0x3e, 0x00, 0x00, 0x07, 0x00, 0x16, 0x3e, 0x11, 0x22, 0x33, 0x08, 0x00], at);
  u8.set([0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0, ...src, 10, 0, 11, 1, sport >> 8, sport & 255, 0x13, 0x89], at + 14);
  const hash = flowHash(u8, at, len, newFlowKeys());
  h.vif.deliver(at, len, -1);
  h.skbs.put(skb);
  return hash;
}
