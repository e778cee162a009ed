/**
 * connect_data_rings and xenvif_connect_data (Linux xen-netback): map the two
 * ring pages the frontend granted and bind its event channels: one port for
 * both directions (the legacy event-channel), or a TX port and an RX port
 * (event-channel-tx, event-channel-rx) so TX completions and RX deliveries
 * notify the frontend separately. Whatever is taken is given back on failure.
 */
import { BackRing, GNTST_okay, NETIF_RX_SLOT_SIZE, NETIF_TX_SLOT_SIZE, SharedRing, grantStatusName } from '@xsim/hypervisor';
import type { VifDeps } from './common.ts';
import { readFrontendPorts, readRingRefs, type ReadKey } from './features.ts';

/** A connected vif's rings, grant mappings and local ports (txPort === rxPort: one channel). */
export interface DataRings {
  tx: BackRing;
  rx: BackRing;
  txMap: number;
  rxMap: number;
  txPort: number;
  rxPort: number;
}

/** What a failed connect had taken so far, to give back. */
interface Taken {
  txMap: number;
  rxMap: number;
  ports: number[];
}

/** Map and bind what the frontend published, or throw the reason (after giving back what was taken). */
export function connectDataRings(d: VifDeps, domid: number, read: ReadKey, fePath: string): DataRings {
  const taken: Taken = { txMap: -1, rxMap: -1, ports: [] };
  try {
    const refs = readRingRefs(read, fePath);
    if (typeof refs === 'string') throw new Error(refs);
    const remote = readFrontendPorts(read, fePath);
    if (typeof remote === 'string') throw new Error(remote);
    const txm = d.ops.map(domid, refs.tx, false);
    if (txm.status !== GNTST_okay) throw new Error(`cannot map tx-ring-ref ${refs.tx}: ${grantStatusName(txm.status)}`);
    taken.txMap = txm.handle;
    const rxm = d.ops.map(domid, refs.rx, false);
    if (rxm.status !== GNTST_okay) throw new Error(`cannot map rx-ring-ref ${refs.rx}: ${grantStatusName(rxm.status)}`);
    taken.rxMap = rxm.handle;
    const bind = (port: number, which: string): number => {
      let local: number;
      try {
        local = d.evtchn.bindInterdomain(domid, port);
      } catch (e) {
        throw new Error(`cannot bind ${which} port ${port} of domain ${domid}: ${e instanceof Error ? e.message : String(e)}`);
      }
      taken.ports.push(local);
      // Work is found by polling the rings; the upcall only has to wake dom0.
      d.evtchn.bindHandler(local, () => {});
      return local;
    };
    const txPort = bind(remote.tx, remote.tx === remote.rx ? 'event-channel' : 'event-channel-tx');
    const rxPort = remote.rx === remote.tx ? txPort : bind(remote.rx, 'event-channel-rx');
    return {
      tx: new BackRing(new SharedRing(txm.page, NETIF_TX_SLOT_SIZE)),
      rx: new BackRing(new SharedRing(rxm.page, NETIF_RX_SLOT_SIZE)),
      txMap: taken.txMap,
      rxMap: taken.rxMap,
      txPort,
      rxPort,
    };
  } catch (e) {
    release(d, taken);
    throw e;
  }
}

/** xenvif_disconnect_data: close the ports, unmap the rings. */
export function releaseDataRings(d: VifDeps, r: DataRings): void {
  release(d, { txMap: r.txMap, rxMap: r.rxMap, ports: r.txPort === r.rxPort ? [r.txPort] : [r.txPort, r.rxPort] });
}

function release(d: VifDeps, t: Taken): void {
  for (const p of t.ports) d.evtchn.close(p);
  if (t.txMap >= 0) d.ops.unmap(t.txMap);
  if (t.rxMap >= 0) d.ops.unmap(t.rxMap);
}
