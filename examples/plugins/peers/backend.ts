/**
 * peers, dom0 half: an example `vif` accelerator plugin that puts only the
 * traffic to and from chosen peers on the fast path. Load it with the peers
 * as arguments (IPv4 addresses or MACs):
 *
 *     xsim run --serve &   xsim plugin load examples/plugins/peers --args '{"peers":["10.0.11.1"]}'
 *     sim.loadPlugin('/path/to/examples/plugins/peers', { args: { peers: ['10.0.11.1', '00:16:3e:0b:02:01'] } })
 *     xsim plugin test examples/plugins/peers --args '{"peers":["10.0.11.1"]}'
 *
 * It does not drive a NIC of its own: it wraps the bundled vnic plugin, the
 * only way a plugin outside the repository can reuse vnic's VI handling today
 * (@xsim/accel-plugins exports pluginModules(), which finds vnic's modules to
 * import; their classes are not exported). What it adds is policy, in both halves:
 *
 * - TX (frontend.ts): a frame for a peer goes to vnic's startXmit, anything
 *   else is declined and netfront sends it through netback unchanged.
 * - RX (here): vnic learns a flow filter from each UDP/TCP frame the slow path
 *   delivers to the guest; we pass on only frames that came from a peer, so
 *   only peers' flows are steered to the guest's VI.
 *
 * Limits, said plainly: the NIC's IPv4 filters match the guest's own address,
 * protocol and port, not the sender, so a non-peer sending to a port a peer's
 * flow already opened rides the same filter (RX only; its TX stays slow).
 *
 * The directory name is the plugin's name (`peers`), and package.json says
 * "type": "module": plugins are ES modules, imported by URL in dom0 and in
 * each guest.
 */
import { pluginModules } from '@xsim/accel-plugins';
import { CHANNEL_OP, declareCounters } from '@xsim/hypervisor';
import { Type, type AccelBackend, type AccelBackendContext, type AccelVif, type BackendModule, type PluginManifest } from '@xsim/netback';
import { IPV4_PATTERN, isIpv4, parseIp, parseMac } from '@xsim/netstack';

/** vnic's dom0 half, found through the public export (top-level await: a plugin module may await its imports). */
const vnic = (await import(pluginModules('vnic').backend)) as BackendModule;

const MAC_PATTERN = '^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$';

/** The load arguments, as a JSON Schema: the loader checks them before createBackend is called. */
const ARGS = Type.Object(
  {
    /** Who gets the fast path: IPv4 addresses ("10.0.11.1") and/or MACs ("00:16:3e:0b:01:01"). */
    peers: Type.Array(Type.Union([Type.String({ pattern: IPV4_PATTERN }), Type.String({ pattern: MAC_PATTERN })]), { minItems: 1, maxItems: 256 }),
  },
  { additionalProperties: false },
);

/**
 * vnic's manifest with our name, version and arguments: the same NICs
 * (`matches`), the same feature and the same frontend messages, since vnic's
 * frontend is what talks to vnic's backend underneath.
 */
export const manifest: PluginManifest = { ...vnic.manifest, name: 'peers', version: '0.1.0', args: ARGS };

/** Our own counters, declared so that the toolstack knows their kinds (events and a gauge, no drops: nothing is lost here). */
export const PEERS_BACKEND_COUNTERS = declareCounters('peers backend', {
  notLearnt: { kind: 'event', help: 'frames the slow path delivered from a non-peer: not shown to vnic, so no filter was learnt from them' },
  peers: { kind: 'gauge', help: 'peers given (addresses and MACs)' },
});

/** The peers as numbers, as the frames carry them; this is also what the frontend is sent with each offer. */
export interface PeerSet {
  ips: number[];
  macs: number[];
}

function peerSet(list: readonly string[]): PeerSet {
  const ips = list.filter(isIpv4).map(parseIp);
  const macs = list.filter((s) => !isIpv4(s)).map(parseMac);
  return { ips, macs };
}

/** Whether a frame (at `off` in `ram`) came from a peer: by its source MAC, or its IPv4 source address. */
function fromPeer(p: { ips: Set<number>; macs: Set<number> }, ram: Uint8Array, off: number, len: number): boolean {
  const srcMac = ram.subarray(off + 6, off + 12).reduce((n, b) => n * 256 + b, 0);
  if (p.macs.has(srcMac)) return true;
  if (len < 34 || ram[off + 12] !== 0x08 || ram[off + 13] !== 0x00) return false;
  const ip = off + 14;
  return p.ips.has(((ram[ip + 12] << 24) | (ram[ip + 13] << 16) | (ram[ip + 14] << 8) | ram[ip + 15]) >>> 0);
}

export function createBackend(ctx: AccelBackendContext, args: Record<string, unknown>): AccelBackend {
  // args passed the manifest's schema before we were called: peers is a list of addresses.
  const peers = peerSet(args.peers as string[]);
  const lookup = { ips: new Set(peers.ips), macs: new Set(peers.macs) };
  const counters = PEERS_BACKEND_COUNTERS.zero();
  counters.peers = peers.ips.length + peers.macs.length;
  // vnic gets our context with one change: its offer to a guest carries the peers, which our frontend reads in newDevice.
  const inner = vnic.createBackend({ ...ctx, send: (vif, op, a, shared) => ctx.send(vif, op, op === CHANNEL_OP.offer ? { ...a, peers } : a, shared) }, {});
  // Every hook the loader knows is spelt out (a plain object: no Proxy, no inherited methods), each passed to vnic.
  return {
    name: 'peers',
    probe: (nic) => inner.probe(nic),
    remove: () => inner.remove(),
    linkChange: (up) => inner.linkChange?.(up),
    mtuChangeRequest: (mtu) => inner.mtuChangeRequest?.(mtu) ?? true,
    mtuChanged: (mtu) => inner.mtuChanged?.(mtu),
    mtuChangeFailed: (mtu, reason) => inner.mtuChangeFailed?.(mtu, reason),
    suspend: () => inner.suspend?.(),
    resume: () => inner.resume?.(),
    attachVif: (vif) => inner.attachVif?.(vif),
    // vnic calls ctx.detached(vif) once the frontend has drained: the handshake every vif plugin must finish.
    detachVif: (vif) => inner.detachVif?.(vif),
    vifGone: (vif) => inner.vifGone?.(vif),
    onFrontendMessage: (vif, op, a) => inner.onFrontendMessage?.(vif, op, a),
    onUplinkLearn: (mac) => inner.onUplinkLearn?.(mac),
    saveState: (vif) => inner.saveState?.(vif),
    restoreState: (vif, state) => inner.restoreState?.(vif, state),
    // The policy on RX: only a peer's frames teach vnic a flow.
    onSlowPathRx(vif: AccelVif, ram: Uint8Array, off: number, len: number) {
      if (fromPeer(lookup, ram, off, len)) inner.onSlowPathRx?.(vif, ram, off, len);
      else counters.notLearnt++;
    },
    stats: () => ({ ...inner.stats(), ...counters }),
  };
}
