/**
 * peers, guest half: vnic's frontend, asked only about frames for a peer.
 * netfront offers every outgoing frame to startXmit; answering false
 * (declined) sends it down the slow path unchanged, so a frame for anyone else
 * never reaches vnic. Everything else is vnic's: its VI, its DMA pages, its
 * drain on detach.
 *
 * The peers come from our backend, inside its offer (newDevice's arguments).
 * Accounting stays exact: netfront's accel host compares the frames we take
 * (startXmit true) with vnic's txPosted; declined frames are not taken, so
 * they need no counting of ours to be conserved (declinedNotPeer is for
 * whoever reads the stats).
 */
import { pluginModules } from '@xsim/accel-plugins';
import { declareCounters, readMac } from '@xsim/hypervisor';
import type { AccelFrontend, AccelFrontendContext, FrontendModule } from '@xsim/netfront';

const vnic = (await import(pluginModules('vnic').frontend!)) as FrontendModule;

export const PEERS_FRONTEND_COUNTERS = declareCounters('peers frontend', {
  declinedNotPeer: { kind: 'event', help: 'frames for a destination that is not a peer (broadcasts included): left to the slow path' },
  peers: { kind: 'gauge', help: 'peers the backend named in its offer' },
});

/** The offer's peers, checked: the backend is dom0's, but a frontend reads what it is sent with care. */
function peersOf(v: unknown): { ips: Set<number>; macs: Set<number> } {
  const p = (v ?? {}) as { ips?: unknown; macs?: unknown };
  const nums = (x: unknown) => (Array.isArray(x) ? x.filter((n): n is number => typeof n === 'number') : []);
  return { ips: new Set(nums(p.ips)), macs: new Set(nums(p.macs)) };
}

export function createFrontend(ctx: AccelFrontendContext): AccelFrontend {
  const inner = vnic.createFrontend(ctx);
  const counters = PEERS_FRONTEND_COUNTERS.zero();
  let peers = peersOf(undefined);
  /** A frame for a peer: by its destination MAC, or its IPv4 destination address. */
  const toPeer = (ram: Uint8Array, off: number, len: number): boolean => {
    if (peers.macs.has(readMac(ram, off))) return true;
    if (len < 34 || ram[off + 12] !== 0x08 || ram[off + 13] !== 0x00) return false;
    const ip = off + 14;
    return peers.ips.has(((ram[ip + 16] << 24) | (ram[ip + 17] << 16) | (ram[ip + 18] << 8) | ram[ip + 19]) >>> 0);
  };
  return {
    newDevice(args, shared) {
      peers = peersOf(args.peers);
      counters.peers = peers.ips.size + peers.macs.size;
      inner.newDevice(args, shared);
    },
    onMessage: (op, args, shared) => inner.onMessage(op, args, shared),
    startXmit(ram, off, len) {
      if (!toPeer(ram, off, len)) {
        counters.declinedNotPeer++;
        return false;
      }
      return inner.startXmit(ram, off, len);
    },
    poll: (budget) => inner.poll(budget),
    checkReady: () => inner.checkReady(),
    remove: () => inner.remove(),
    release: () => inner.release?.(),
    // vnic's counters (txPosted and txDropped among them, which the framework's accounting reads) and ours.
    getStats: () => ({ ...inner.getStats(), ...counters }),
  };
}
