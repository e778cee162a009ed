/**
 * A guest's control op table (@xsim/hypervisor's GUEST_OPS): a handler per
 * op, each given its arguments checked against the op's schema at the
 * boundary. Ops the table does not have go to the kernel's extension, if it
 * has one (a test's misbehaving guest); the stock kernel refuses them.
 */
import {
  ENDPOINT_OPS,
  GUEST_OPS,
  RpcOpServer,
  captureHandlers,
  type EndpointOps,
  type GuestOps,
  type OpCall,
  type OpHandlers,
  type OpName,
  type OpTable,
  type RpcHandler,
  type RpcValue,
  type DEFERRED,
} from '@xsim/hypervisor';
import type { GuestDevice, GuestKernel, GuestParts } from './compose.ts';
import { guestStats } from './stats.ts';
import { suspend } from './suspend.ts';

type Reply = (result: RpcValue, error?: string) => void;
/** Returned by an extension's control handler for an op it does not serve. */
export const NOT_MINE: unique symbol = Symbol('not mine');

export interface GuestExtension {
  /**
   * The extension's ops (name them in GuestExtensionOps too, so their senders
   * are typed): given, each request for one is checked against its schema at
   * the boundary like the kernel's own, and control() gets only those ops.
   */
  ops?: OpTable;
  control?(op: string, args: RpcValue, later: () => Reply, g: GuestKernel): RpcValue | typeof DEFERRED | typeof NOT_MINE;
}

/** The extension's control handler behind its own op table's check (if it has one). */
function extensionHandler(k: GuestParts, ext: GuestExtension): { handle: RpcHandler; refused(): number } | undefined {
  const control = ext.control;
  if (!control) return undefined;
  const kernel: GuestKernel = k;
  const call: RpcHandler = (op, args, later) => {
    const r = control(op, args, later, kernel);
    if (r === NOT_MINE) throw new Error(`unknown request "${op}"`);
    return r;
  };
  if (!ext.ops) return { handle: call, refused: () => 0 };
  const handlers = Object.fromEntries(Object.keys(ext.ops).map((op) => [op, (a: unknown, c: OpCall) => call(op, a, c.later, c.shared)]));
  const server = new RpcOpServer(`${k.env.id.name} extension`, ext.ops, handlers as OpHandlers<OpTable>, { log: k.log });
  return { handle: server.handle, refused: () => server.refused };
}

/** The device a control op names (`vif: N`), else the first. */
function deviceFor(k: GuestParts, want: number | undefined): GuestDevice {
  if (want === undefined) return k.devices[0];
  const d = k.devices.find((x) => x.nf.handle === want);
  if (!d) throw new Error(`no vif${String(want)} (vifs: ${k.devices.map((x) => x.nf.handle).join(', ')})`);
  return d;
}

/** The endpoint ops, each served by the endpoint of the vif it names. */
function endpointHandlers(k: GuestParts): OpHandlers<EndpointOps> {
  const cache = new WeakMap<GuestDevice, OpHandlers<EndpointOps>>();
  const of = (d: GuestDevice): OpHandlers<EndpointOps> => {
    let h = cache.get(d);
    if (!h) cache.set(d, (h = d.ep.handlers()));
    return h;
  };
  const out = {} as Record<OpName<EndpointOps>, unknown>;
  for (const op of Object.keys(ENDPOINT_OPS) as OpName<EndpointOps>[]) {
    out[op] = (a: { vif?: number }, call: Parameters<OpHandlers<EndpointOps>[typeof op]>[1]) =>
      (of(deviceFor(k, a.vif))[op] as (a: unknown, c: typeof call) => unknown)(a, call);
  }
  return out as OpHandlers<EndpointOps>;
}

export function guestControl(k: GuestParts, ext: GuestExtension = {}): RpcOpServer<GuestOps> {
  const { core } = k.env;
  const handlers: OpHandlers<GuestOps> = {
    stats: () => ({ ...guestStats(k), control: { refused: server.refused + (extension?.refused() ?? 0) } }),
    ...captureHandlers(k.capture),
    migrate_arm: () => {
      for (const d of k.devices) d.rx.armed = true;
      return true;
    },
    suspend_quiesce: () => {
      for (const d of k.devices) d.nf.quiesce();
      return true;
    },
    suspend: () => suspend(k),
    shutdown: () => {
      core.stop();
      return guestStats(k);
    },
    vif_close: (a) => {
      deviceFor(k, a.vif).nf.close();
      return true;
    },
    vif_offloads: (a) => {
      const nf = deviceFor(k, a.vif).nf;
      const changed = nf.setOffloads({ csum: a.csum, gso: a.gso });
      return { csum: nf.csumOffload, gso: nf.gsoOffload, changed };
    },
    ...endpointHandlers(k),
  };
  const extension = extensionHandler(k, ext);
  const server = new RpcOpServer<GuestOps>(`${k.env.id.name} control`, GUEST_OPS, handlers, { log: k.log, fallback: extension?.handle });
  return server;
}
