/**
 * What the negotiation, rate and extra-info tests do to a NetbackHarness's
 * guest: publish TX requests, read the responses, post RX buffers, hand the
 * vif a frame from the bridge.
 */
import {
  RXREQ_GREF,
  RXREQ_ID,
  RXRSP_FLAGS,
  RXRSP_STATUS,
  SRING_REQ_PROD,
  TXREQ_FLAGS,
  TXREQ_GREF,
  TXREQ_ID,
  TXREQ_OFFSET,
  TXREQ_SIZE,
  TXRSP_ID,
  TXRSP_STATUS,
  newExtraInfo,
  writeExtraInfo,
  type NetifExtraInfo,
} from '@xsim/hypervisor';
import type { NetbackHarness } from '../../../test/fixtures/netback-harness.ts';

export interface Req {
  gref: number;
  offset?: number;
  flags?: number;
  id?: number;
  size: number;
}

/** Write requests at req_prod and publish them. */
export function publish(h: NetbackHarness, reqs: Req[]): void {
  const prod = h.tx.reqProd;
  reqs.forEach((r, i) => {
    const o = h.tx.slotOffset(prod + i);
    h.tx.dv.setUint32(o + TXREQ_GREF, r.gref, true);
    h.tx.dv.setUint16(o + TXREQ_OFFSET, r.offset ?? 0, true);
    h.tx.dv.setUint16(o + TXREQ_FLAGS, r.flags ?? 0, true);
    h.tx.dv.setUint16(o + TXREQ_ID, r.id ?? (prod + i) & 255, true);
    h.tx.dv.setUint16(o + TXREQ_SIZE, r.size, true);
  });
  Atomics.store(h.tx.idx, SRING_REQ_PROD >> 2, (prod + reqs.length) | 0);
}

/** Raw 8 bytes written at a TX slot (an extra-info slot, say), then published with the requests before it. */
export function publishRaw(h: NetbackHarness, slots: (Req | Uint8Array)[]): void {
  const prod = h.tx.reqProd;
  slots.forEach((r, i) => {
    const o = h.tx.slotOffset(prod + i);
    if (r instanceof Uint8Array) {
      h.tx.page.fill(0, o, o + 12);
      h.tx.page.set(r, o);
      return;
    }
    h.tx.dv.setUint32(o + TXREQ_GREF, r.gref, true);
    h.tx.dv.setUint16(o + TXREQ_OFFSET, r.offset ?? 0, true);
    h.tx.dv.setUint16(o + TXREQ_FLAGS, r.flags ?? 0, true);
    h.tx.dv.setUint16(o + TXREQ_ID, r.id ?? (prod + i) & 255, true);
    h.tx.dv.setUint16(o + TXREQ_SIZE, r.size, true);
  });
  Atomics.store(h.tx.idx, SRING_REQ_PROD >> 2, (prod + slots.length) | 0);
}

/** Every TX response pushed so far. */
export function txResponses(h: NetbackHarness): { id: number; status: number }[] {
  const out = [];
  for (let i = 0; i !== h.tx.rspProd; i++) {
    const o = h.tx.slotOffset(i);
    out.push({ id: h.tx.dv.getUint16(o + TXRSP_ID, true), status: h.tx.dv.getInt16(o + TXRSP_STATUS, true) });
  }
  return out;
}

/** A frame-like page: unicast destination `dst` (default a neighbour's), the vif's MAC as source. */
export function frameIn(h: NetbackHarness, page: number, len: number, dst = [0x00, 0x16, 0x3e, 0x11, 0x22, 0x33]): void {
  const p = h.dataPage(page);
  p.fill(0xab, 0, Math.min(len, p.length));
  p.set([...dst, 0x00, 0x16, 0x3e, 0x00, 0x00, 0x07, 0x08, 0x00], 0);
}

/** The guest posts `n` RX buffers (pages granted writable to dom0, refs 100..). */
export function postBuffers(h: NetbackHarness, n: number): void {
  const prod = h.rx.reqProd;
  for (let i = 0; i < n; i++) {
    const ref = 100 + ((prod + i) % 200);
    h.guestGnttab.grantAccess(ref, 0, 400 + ((prod + i) % 100), false);
    const o = h.rx.slotOffset(prod + i);
    h.rx.dv.setUint16(o + RXREQ_ID, (prod + i) & 0xffff, true);
    h.rx.dv.setUint32(o + RXREQ_GREF, ref, true);
  }
  Atomics.store(h.rx.idx, SRING_REQ_PROD >> 2, prod + n);
}

/** RX responses pushed so far: status (bytes, or an error) and flags of each. */
export function rxResponses(h: NetbackHarness): { status: number; flags: number }[] {
  const out = [];
  for (let i = 0; i !== h.rx.rspProd; i++) {
    const o = h.rx.slotOffset(i);
    out.push({ status: h.rx.dv.getInt16(o + RXRSP_STATUS, true), flags: h.rx.dv.getUint16(o + RXRSP_FLAGS, true) });
  }
  return out;
}

/** A frame in a dom0 skb to `dst`, handed to the vif as the bridge hands one. */
export function deliverFrame(h: NetbackHarness, len: number, dst = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x07]): void {
  const skb = h.skbs.alloc();
  const addr = h.skbs.addr(skb);
  h.dom0Mem.u8.fill(0x5a, addr, addr + len);
  h.dom0Mem.u8.set([...dst, 0x00, 0x16, 0x3e, 0x11, 0x22, 0x33], addr);
  h.vif.deliver(addr, len, -1);
  h.skbs.put(skb);
}

/** An extra-info slot's 8 bytes (the rest of its 12-byte TX slot zero). */
export function extraSlot(e: Partial<Omit<NetifExtraInfo, 'mcastAddr'>> & { mcastAddr?: number[] }): Uint8Array {
  const out = new Uint8Array(8);
  const x = { ...newExtraInfo(), ...e, mcastAddr: Uint8Array.from(e.mcastAddr ?? [0, 0, 0, 0, 0, 0]) };
  writeExtraInfo(new DataView(out.buffer), 0, x);
  return out;
}
