/**
 * setup_netfront and write_queue_xenstore_keys (Linux xen-netfront): for each
 * queue a TX and an RX shared-ring page granted to the backend, and event
 * channels: a TX and an RX port when the backend offers split event channels
 * (setup_netfront_split), one port for both otherwise or when the second
 * cannot be had (setup_netfront_single); then every key of the handshake in
 * one transaction.
 */
import { FrontRing, NETIF_RX_SLOT_SIZE, NETIF_TX_SLOT_SIZE, SharedRing, VIF_KEY, queueDir, type XsLike } from '@xsim/hypervisor';
import type { NetfrontDeps } from './common.ts';

/** A connected device's rings, their pages and grants, and its ports (txPort === rxPort: one channel). */
export interface FrontRings {
  tx: FrontRing;
  rx: FrontRing;
  txFrame: number;
  rxFrame: number;
  txRef: number;
  rxRef: number;
  txPort: number;
  rxPort: number;
}

export function setupRings(d: NetfrontDeps, backendDomid: number, split: boolean): FrontRings {
  const { frames, gnttab, grefs, mem, evtchn } = d;
  const txFrame = frames.alloc();
  const rxFrame = frames.alloc();
  const txs = new SharedRing(mem.page(txFrame), NETIF_TX_SLOT_SIZE);
  const rxs = new SharedRing(mem.page(rxFrame), NETIF_RX_SLOT_SIZE);
  txs.init();
  rxs.init();
  const txRef = grefs.alloc();
  const rxRef = grefs.alloc();
  gnttab.grantAccess(txRef, backendDomid, txFrame, false);
  gnttab.grantAccess(rxRef, backendDomid, rxFrame, false);
  const txPort = evtchn.allocUnbound(backendDomid);
  let rxPort = txPort;
  if (split) {
    try {
      rxPort = evtchn.allocUnbound(backendDomid);
    } catch (e) {
      // "setup single event channel if feature-split-event-channels == 1 but failed to setup"
      d.log?.(`netfront vif${d.handle}: a second event channel could not be had (${e instanceof Error ? e.message : String(e)}): one for both directions`);
    }
  }
  // Responses are polled by the domain loop; the upcalls only have to wake us.
  evtchn.bindHandler(txPort, () => {});
  if (rxPort !== txPort) evtchn.bindHandler(rxPort, () => {});
  return { tx: new FrontRing(txs), rx: new FrontRing(rxs), txFrame, rxFrame, txRef, rxRef, txPort, rxPort };
}

/** The rings are gone: revoke the ring grants the backend no longer holds, give the pages back, close the ports. */
export function releaseRings(d: NetfrontDeps, r: FrontRings): void {
  const { gnttab, grefs, frames, evtchn } = d;
  for (const ref of [r.txRef, r.rxRef]) if (gnttab.endAccess(ref)) grefs.release(ref);
  frames.release(r.txFrame);
  frames.release(r.rxFrame);
  evtchn.close(r.txPort);
  if (r.rxPort !== r.txPort) evtchn.close(r.rxPort);
}

/** The control ring's keys, when the device has one. */
export interface CtrlKeys {
  ref: number;
  port: number;
}

/**
 * talk_to_netback's transaction, retried on EAGAIN: one queue's ring refs and
 * event channel(s) as the flat keys, or multi-queue-num-queues and each
 * queue's under queue-N/ (write_queue_xenstore_keys); the control ring's;
 * request-rx-copy and `features`. Keys a device connected before with
 * another layout left behind (the other kind of event channel, queue
 * directories or flat keys, a control ring it no longer has) are removed in
 * the same transaction, so the backend finds nothing it could take for this
 * connection.
 */
export function publishKeys(xs: XsLike, path: string, queues: FrontRings[], ctrl: CtrlKeys | null, features: Record<string, string>): void {
  for (;;) {
    const t = xs.transactionStart();
    const rm = (k: string) => {
      if (xs.tryRead(`${path}/${k}`, t) !== undefined) xs.rm(`${path}/${k}`, t);
    };
    const stale = (xs.directory(path, t) ?? []).filter((k) => /^queue-\d+$/.test(k) && (queues.length === 1 || Number(k.slice(6)) >= queues.length));
    for (const k of stale) rm(k);
    if (queues.length === 1) {
      rm(VIF_KEY.multiQueueNumQueues);
      writeQueueKeys(xs, path, queues[0], t);
    } else {
      for (const k of [VIF_KEY.txRingRef, VIF_KEY.rxRingRef, VIF_KEY.eventChannel, VIF_KEY.eventChannelTx, VIF_KEY.eventChannelRx]) rm(k);
      xs.write(`${path}/${VIF_KEY.multiQueueNumQueues}`, String(queues.length), t);
      queues.forEach((r, q) => writeQueueKeys(xs, `${path}/${queueDir(q)}`, r, t));
    }
    if (ctrl) {
      xs.write(`${path}/${VIF_KEY.ctrlRingRef}`, String(ctrl.ref), t);
      xs.write(`${path}/${VIF_KEY.eventChannelCtrl}`, String(ctrl.port), t);
    } else for (const k of [VIF_KEY.ctrlRingRef, VIF_KEY.eventChannelCtrl]) rm(k);
    xs.write(`${path}/${VIF_KEY.requestRxCopy}`, '1', t);
    // A key this connection leaves out (checksum offload switched back on) must not linger from the last one.
    if (!(VIF_KEY.featureNoCsumOffload in features)) rm(VIF_KEY.featureNoCsumOffload);
    for (const [k, v] of Object.entries(features)) xs.write(`${path}/${k}`, v, t);
    if (xs.transactionEnd(t, true)) return;
  }
}

/** write_queue_xenstore_keys: one queue's ring refs and its event channel(s) in `dir`. */
function writeQueueKeys(xs: XsLike, dir: string, r: FrontRings, t: number): void {
  xs.write(`${dir}/${VIF_KEY.txRingRef}`, String(r.txRef), t);
  xs.write(`${dir}/${VIF_KEY.rxRingRef}`, String(r.rxRef), t);
  const single = r.txPort === r.rxPort;
  // A device connected before with the other kind of channel leaves no key the backend could take for this one.
  for (const k of single ? [VIF_KEY.eventChannelTx, VIF_KEY.eventChannelRx] : [VIF_KEY.eventChannel])
    if (xs.tryRead(`${dir}/${k}`, t) !== undefined) xs.rm(`${dir}/${k}`, t);
  if (single) xs.write(`${dir}/${VIF_KEY.eventChannel}`, String(r.txPort), t);
  else {
    xs.write(`${dir}/${VIF_KEY.eventChannelTx}`, String(r.txPort), t);
    xs.write(`${dir}/${VIF_KEY.eventChannelRx}`, String(r.rxPort), t);
  }
}
