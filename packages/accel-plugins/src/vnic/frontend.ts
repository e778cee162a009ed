/**
 * vnic, guest side: drives the guest's own VI. TX: a frame for a destination
 * the NIC reaches directly (a unicast MAC learnt behind the uplink) is copied
 * into one of our registered DMA buffers and posted on the VI; everything else
 * (broadcast, multicast, ARP, unknown or local destinations) is declined and
 * netfront sends it on the slow path. RX: frames the NIC steered to our VI are
 * handed to the stack from the DMA page itself.
 *
 * DMA pages are allocated and granted at newDevice and given back at
 * release (after the backend has unmapped them), so a plugin that is no
 * longer attached holds no guest memory.
 */
import { readMac } from '@xsim/hypervisor';
import type { AccelFrontend, AccelFrontendContext } from '@xsim/netfront';
import {
  EV_FLAGS,
  EV_INDEX,
  EV_LEN,
  EV_RX,
  EV_RX_CONT,
  EV_TX,
  EV_TYPE,
  FAULT_NAMES,
  VI_EVQ_SIZE,
  VI_RXQ_SIZE,
  VI_STATE_FAULTED,
  VI_STATE_RUNNING,
  VI_TXQ_SIZE,
  ViQueues,
} from '@xsim/nic';

const PAGE = 4096;
const TX_PAGES = 128;
const RX_PAGES = 256;

export function createFrontend(ctx: AccelFrontendContext): AccelFrontend {
  const slotPages = Math.ceil((ctx.mtu + 18) / PAGE);
  // RX buffers: half pages for a standard MTU, as sfc's are, so RX_PAGES fill the 512-slot ring
  // (room for a sender's 256-frame window and whatever lands before we repost); a whole frame's
  // worth of contiguous pages for a jumbo MTU, so a jumbo frame needs neither scatter nor gather.
  const RX_BUF = ctx.mtu + 18 <= PAGE / 2 ? PAGE / 2 : slotPages * PAGE;
  const RX_BUFS = Math.min(VI_RXQ_SIZE, Math.floor((RX_PAGES * PAGE) / RX_BUF));
  const TX_SLOTS = Math.max(16, Math.floor(TX_PAGES / slotPages));
  const totalPages = TX_SLOTS * slotPages + RX_PAGES;
  let firstFrame = -1;
  let grefs: number[] = [];
  let irqPort = 0;
  let viSab: SharedArrayBuffer | null = null;
  let fabric: { sab: SharedArrayBuffer; offset: number } | null = null;
  let q: ViQueues | null = null;
  let bufBase = 0;
  let ready = false;
  let draining = false;
  let faulted = false;
  let linkUp = true;
  const fast = new Set<number>();
  const freeTx: number[] = [];
  const txSlotOf = new Int32Array(VI_TXQ_SIZE);
  const rxBufOf = new Int32Array(VI_RXQ_SIZE);
  let txDone = 0;
  const scratch = new Uint8Array(slotPages * PAGE);
  let scratchLen = 0;
  let chainBroken = false;
  const s = { taken: 0, declinedMulticast: 0, declinedArp: 0, declinedUnknown: 0, declinedBusy: 0, declinedNotReady: 0, rxFrames: 0, rxGathered: 0, rxTooLong: 0, txLostOnFault: 0, spoofAttempts: 0, badDescAttempts: 0, releaseLeaks: 0 };
  const ram = ctx.mem.u8;

  const slotAddr = (slot: number) => (firstFrame + slot * slotPages) * PAGE;
  const rxPages = TX_SLOTS * slotPages;
  const rxAddr = (i: number) => (firstFrame + rxPages) * PAGE + i * RX_BUF;

  const postRx = (i: number) => {
    const at = i * RX_BUF;
    const idx = q!.postRx(bufBase + rxPages + Math.floor(at / PAGE), at % PAGE, RX_BUF);
    rxBufOf[idx & (VI_RXQ_SIZE - 1)] = i;
  };

  const fe: AccelFrontend = {
    newDevice(args, shared) {
      if (firstFrame < 0) {
        firstFrame = ctx.frames.allocRange(totalPages);
        for (let p = 0; p < totalPages; p++) {
          const g = ctx.grefs.alloc();
          ctx.gnttab.grantAccess(g, ctx.backendDomid, firstFrame + p, false);
          grefs.push(g);
        }
        irqPort = ctx.evtchn.allocPirq();
        ctx.evtchn.bindHandler(irqPort, () => {});
      }
      viSab = shared[0];
      fabric = { sab: shared[1], offset: Number(args.fabricWakeOffset) };
      ready = draining = faulted = false;
      ctx.send('accept', { grefs, irqPort });
    },
    onMessage(op, args) {
      if (op === 'ready') {
        bufBase = Number(args.bufBase);
        q = new ViQueues(viSab!, fabric!);
        txDone = q.txProdPvt;
        freeTx.length = 0;
        for (let i = TX_SLOTS - 1; i >= 0; i--) freeTx.push(i);
        for (let i = 0; i < RX_BUFS; i++) postRx(i);
        q.pushRx();
        fast.clear();
        for (const m of args.macs as number[]) fast.add(m);
        ready = true;
        // Our RX buffers are on the ring: the backend may now steer flows to the VI.
        ctx.send('running', {});
      } else if (op === 'fastpath') fast.add(Number(args.mac));
      else if (op === 'link') linkUp = args.up === true;
      else if (op === 'detach') draining = true;
    },
    startXmit(src, off, len) {
      if (!ready || draining || faulted) {
        s.declinedNotReady++;
        return false;
      }
      if (src[off] & 1) {
        s.declinedMulticast++;
        return false;
      }
      if (src[off + 12] === 0x08 && src[off + 13] === 0x06) {
        s.declinedArp++;
        return false;
      }
      const dst = readMac(src, off);
      if (!fast.has(dst)) {
        s.declinedUnknown++;
        return false;
      }
      const slot = freeTx.pop();
      if (slot === undefined || len > slotPages * PAGE) {
        if (slot !== undefined) freeTx.push(slot);
        s.declinedBusy++;
        return false;
      }
      const a = slotAddr(slot);
      if (src === ram) ram.copyWithin(a, off, off + len);
      else ram.set(src.subarray(off, off + len), a);
      const idx = q!.postTx(bufBase + slot * slotPages, 0, len, 0);
      txSlotOf[idx & (VI_TXQ_SIZE - 1)] = slot;
      q!.pushTx();
      s.taken++;
      return true;
    },
    poll(budget) {
      if (!ready || !q || faulted) return 0;
      // A VI that faulted, or was reset under us (its backend failed), still posted valid events
      // for all it did before: take them all, then stop and count what never went out.
      const state = q.state;
      const faulting = state !== VI_STATE_RUNNING;
      if (faulting) budget = VI_EVQ_SIZE;
      const dv = q.dv;
      let n = 0;
      let pending = q.evPending();
      while (pending > 0 && n < budget) {
        const o = q.evOffset(q.evCons);
        const type = dv.getUint16(o + EV_TYPE, true);
        const index = dv.getUint32(o + EV_INDEX, true);
        q.evCons = (q.evCons + 1) >>> 0;
        pending--;
        n++;
        if (type === EV_TX) {
          while (txDone !== index) {
            freeTx.push(txSlotOf[txDone & (VI_TXQ_SIZE - 1)]);
            txDone = (txDone + 1) >>> 0;
          }
        } else if (type === EV_RX) {
          const buf = rxBufOf[index & (VI_RXQ_SIZE - 1)];
          const len = dv.getUint16(o + EV_LEN, true);
          const more = (dv.getUint16(o + EV_FLAGS, true) & EV_RX_CONT) !== 0;
          const at = rxAddr(buf);
          if (!more && scratchLen === 0 && !chainBroken) {
            s.rxFrames++;
            ctx.deliver(ram, at, len);
          } else {
            if (!chainBroken && scratchLen + len <= scratch.length) {
              scratch.set(ram.subarray(at, at + len), scratchLen);
              scratchLen += len;
            } else chainBroken = true;
            if (!more) {
              if (chainBroken) s.rxTooLong++;
              else {
                s.rxFrames++;
                s.rxGathered++;
                ctx.deliver(scratch, 0, scratchLen);
              }
              scratchLen = 0;
              chainBroken = false;
            }
          }
          // Repost at once, not at the end of the batch: the stack may already have
          // credited the sender for this frame, and its successor needs the slot.
          postRx(buf);
          q.pushRx();
        }
      }
      q.publishEvCons();
      if (faulting) {
        faulted = true;
        s.txLostOnFault += (q.txProdPvt - txDone) >>> 0;
        if (state === VI_STATE_FAULTED) ctx.send('fault', { reason: FAULT_NAMES[q.fault] ?? String(q.fault) });
        return n + 1;
      }
      if (n === 0 && q.armIrq()) return 1;
      return n;
    },
    /** False only while the fast path is up and out of TX slots (a fast path not in use never holds netfront up). */
    checkReady() {
      return !ready || draining || faulted || freeTx.length > 0;
    },
    remove() {
      draining = true;
      if (!q || faulted) return true;
      fe.poll(VI_RXQ_SIZE);
      // Drained once every TX descriptor has completed and every event is consumed.
      return txDone === q.txProdPvt && q.evPending() === 0;
    },
    release() {
      if (firstFrame < 0) return;
      let stillMapped = 0;
      for (const g of grefs) {
        if (ctx.gnttab.endAccess(g)) ctx.grefs.release(g);
        else stillMapped++;
      }
      if (stillMapped > 0) {
        // dom0 still maps some: those pages must never be reused, so none are freed (counted, logged).
        ctx.log(`vnic: ${stillMapped} DMA grants still mapped by dom0 at release; their pages stay allocated`);
        s.releaseLeaks += stillMapped;
      } else {
        for (let p = 0; p < totalPages; p++) ctx.frames.release(firstFrame + p);
      }
      ctx.evtchn.close(irqPort);
      firstFrame = -1;
      grefs = [];
      irqPort = 0;
      q = null;
      ready = false;
    },
    getStats() {
      return { ...s, ready, draining, faulted, linkUp, fastDestinations: fast.size, freeTxSlots: freeTx.length };
    },
  };
  // Test hooks: misbehave on purpose, to check the NIC holds the line.
  (fe as AccelFrontend & { inject(kind: string): void }).inject = (kind: string) => {
    if (!q || !ready) throw new Error('vnic: not attached');
    const slot = freeTx.pop();
    if (slot === undefined) throw new Error('vnic: no TX slot');
    const a = slotAddr(slot);
    ram.fill(0, a, a + 60);
    ram.set([0x00, 0x16, 0x3e, 0x0b, 0x01, 0x01], a); // any unicast destination
    if (kind === 'spoof') {
      s.spoofAttempts++;
      ram.set([0x00, 0x16, 0x3e, 0xde, 0xad, 0x01], a + 6); // a source MAC we do not own
      const idx = q.postTx(bufBase + slot * slotPages, 0, 60, 0);
      txSlotOf[idx & (VI_TXQ_SIZE - 1)] = slot;
    } else if (kind === 'bad-desc') {
      s.badDescAttempts++;
      // A buffer id far outside what dom0 registered for this VI.
      const idx = q.postTx(bufBase + totalPages + 1000, 0, 60, 0);
      txSlotOf[idx & (VI_TXQ_SIZE - 1)] = slot;
    } else throw new Error(`vnic: unknown fault ${kind}`);
    q.pushTx();
  };
  return fe;
}
