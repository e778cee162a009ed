/**
 * What a domain's kernel is handed: its identity and config, its vCPU core
 * (to register pollers, timers and deferred work on), and its endpoints — the
 * toolstack's control channel, its xenstore connection, its event channels,
 * and further channels it may open (dom0 to its NIC, a vif's plugin channel).
 * Never the bus itself: every endpoint is bound to the domain's own address,
 * so nothing it sends can claim to come from someone else.
 *
 * A kernel module exports boot(env). It answers 'stats' and 'shutdown' on its
 * control channel; on 'shutdown' it stops its core and answers with its final
 * stats.
 */
import { ANY, CH, hostServiceAddr, type Addr, type Bus } from '../bus/bus.ts';
import { EventChannels } from '../evtchn.ts';
import { RpcEndpoint, type SetTimer, type SyncWait } from '../rpc.ts';
import type { AnyOps, OpTable } from '../abi/ops.ts';
import { XenstoreClient } from '../xs/client.ts';
import type { Clock } from './clock.ts';
import { DomainCore } from './core.ts';
import { prefixLogLine } from '../log.ts';

const NO_BYTES = new Uint8Array(0);

export interface DomainIdentity {
  name: string;
  host: string;
  hostIndex: number;
  domid: number;
  /** Bus address, unique in the simulation. */
  uid: Addr;
}

export interface DomainSpec<C = unknown> extends DomainIdentity {
  /** Module URL exporting boot(env). */
  kernel: string;
  config: C;
}

export interface DomainEnv<C = unknown> {
  readonly id: DomainIdentity;
  readonly config: C;
  readonly clock: Clock;
  readonly core: DomainCore;
  readonly control: RpcEndpoint;
  readonly xs: XenstoreClient;
  readonly evtchn: EventChannels;
  /** Open another control channel of this domain's (to the NIC for dom0's MCDI, a vif's plugin channel); `Out`: the ops this end sends on it. */
  channel<Out extends OpTable = AnyOps>(ch: number, peer: Addr): RpcEndpoint<Out>;
  /** Ring a device's doorbell (CH.kick): wakes the device if it sleeps, nothing else. */
  kickDevice(device: Addr): void;
  log(msg: string): void;
}

/** A device's environment (the NIC hardware): no xenstore, no event channels of its own. */
export interface DeviceEnv<C = unknown> {
  readonly id: DomainIdentity;
  readonly config: C;
  readonly clock: Clock;
  readonly core: DomainCore;
  readonly control: RpcEndpoint;
  channel<Out extends OpTable = AnyOps>(ch: number, peer: Addr): RpcEndpoint<Out>;
  /** A channel open to every sender (the NIC's MCDI: it learns who speaks from the bus). */
  anyChannel(ch: number): { onMessage(f: (from: Addr, b: Uint8Array, shared: readonly SharedArrayBuffer[]) => void): void };
  log(msg: string): void;
  /** The bus address this device's messages come from. */
  readonly addr: Addr;
  /** Send a raw reply on `ch` to `to` (the MCDI answers). */
  send(to: Addr, ch: number, b: Uint8Array, shared?: SharedArrayBuffer[]): void;
}

export interface KernelModule<C = unknown> {
  /** 'device' kernels (the NIC) get a DeviceEnv. */
  kind?: 'domain' | 'device';
  boot(env: DomainEnv<C> & DeviceEnv<C>): void | Promise<void>;
}

export interface EnvOptions {
  clock: Clock;
  /** How synchronous calls wait (a worker); null in process, where services answer at once. */
  wait: SyncWait | null;
  setTimer?: SetTimer;
  log: (line: string) => void;
}

export interface BuiltEnv<C> {
  env: DomainEnv<C>;
  /** Close every endpoint of the domain (it is gone). */
  dispose(): void;
}

export function buildDeviceEnv<C>(bus: Bus, spec: DomainSpec<C>, o: EnvOptions): { env: DeviceEnv<C>; dispose(): void } {
  const id: DomainIdentity = { name: spec.name, host: spec.host, hostIndex: spec.hostIndex, domid: spec.domid, uid: spec.uid };
  const core = new DomainCore(spec.name, o.clock, spec.uid);
  const endpoints: { close(): void }[] = [];
  const wildcards: number[] = [];
  const open = <Out extends OpTable = AnyOps>(ch: number, peer: Addr): RpcEndpoint<Out> => {
    const ep = new RpcEndpoint<Out>(bus, spec.uid, peer, ch, { wait: o.wait ?? undefined, setTimer: o.setTimer });
    ep.onArrive = () => core.wake();
    endpoints.push(ep);
    core.wakeOn(() => ep.queued > 0);
    return ep;
  };
  const control = open(CH.control, 0);
  core.add('control', () => control.poll());
  const env: DeviceEnv<C> = {
    id,
    config: spec.config,
    clock: o.clock,
    core,
    control,
    channel: open,
    anyChannel: (ch) => {
      const inbox = bus.register(spec.uid, ch, ANY);
      wildcards.push(ch);
      inbox.immediate = true;
      return {
        onMessage: (f) => {
          inbox.onArrive = (e) => f(e.from, e.b, e.s ?? []);
        },
      };
    },
    log: (m) => o.log(prefixLogLine(`[${spec.name}] `, m)),
    addr: spec.uid,
    send: (to, ch, b, shared) => bus.send({ to, from: spec.uid, ch, b, s: shared }),
  };
  return {
    env,
    dispose: () => {
      for (const ep of endpoints) ep.close();
      for (const ch of wildcards) bus.unregister(spec.uid, ch, ANY);
    },
  };
}

export function buildEnv<C>(bus: Bus, spec: DomainSpec<C>, o: EnvOptions): BuiltEnv<C> {
  const id: DomainIdentity = { name: spec.name, host: spec.host, hostIndex: spec.hostIndex, domid: spec.domid, uid: spec.uid };
  const core = new DomainCore(`${spec.host}/${spec.name}`, o.clock, spec.uid);
  const service = hostServiceAddr(spec.hostIndex);
  const endpoints: { close(): void }[] = [];
  const wait = o.wait ?? undefined;
  const open = <Out extends OpTable = AnyOps>(ch: number, peer: Addr): RpcEndpoint<Out> => {
    const ep = new RpcEndpoint<Out>(bus, spec.uid, peer, ch, { wait, setTimer: o.setTimer });
    ep.onArrive = () => core.wake();
    endpoints.push(ep);
    core.wakeOn(() => ep.queued > 0);
    return ep;
  };
  const control = open(CH.control, 0);
  const hv = open(CH.hv, service);
  const xs = new XenstoreClient(bus, spec.uid, service, o.wait);
  xs.onArrive = () => core.wake();
  core.wakeOn(() => xs.queued > 0);
  const evtchn = new EventChannels(spec.domid, hv);
  core.wakeOn(() => evtchn.hasPending());
  // Hypervisor notices and the upcall first in every turn, then whatever the kernel adds.
  core.add('evtchn', () => {
    evtchn.poll();
    evtchn.dispatch();
    return 0;
  });
  core.add('xenstore', () => xs.pump());
  core.add('control', () => control.poll());
  const env: DomainEnv<C> = {
    id,
    config: spec.config,
    clock: o.clock,
    core,
    control,
    xs,
    evtchn,
    channel: open,
    // A direct link (the NIC's thread) is rung on its wake word; a device on this thread (a deterministic run) gets the message.
    kickDevice: (device) => {
      if (!bus.kick(device)) bus.send({ to: device, from: spec.uid, ch: CH.kick, b: NO_BYTES });
    },
    log: (m) => o.log(prefixLogLine(`[${spec.host}/${spec.name}] `, m)),
  };
  return {
    env,
    dispose: () => {
      for (const ep of endpoints) ep.close();
      xs.close();
    },
  };
}
