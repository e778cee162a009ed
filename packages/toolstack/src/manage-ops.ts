/**
 * The control socket's protocol: what `xsim` (or any client) may ask a
 * simulation that `xsim run --serve` keeps running, one op table as
 * hypervisor's abi/ has for every other channel: op -> {args schema, reply}.
 * The client's sends are checked by the compiler against it (manageRequest);
 * the server checks each request's arguments once, at the socket, against the
 * same schemas, so no handler decodes arguments by hand.
 *
 * On the wire, one msgpack frame each way (control-socket.ts): request
 * {op, args}, answer {ok: true, value} or {ok: false, error}.
 *
 *   op               args                                              reply
 *   mgmtdev.list     {}                                                MgmtDev[]
 *   mgmtdev.set      {dev, link?: 'up'|'down', mtu?: int, reset?: true} (exactly one of the three)
 *   dev.list         {}                                                Dev[]
 *   dev.stats        {dev: HOST/DOMU[/vifN], qidx?}                    a vif's counters at both ends (qidx: one queue's)
 *   dev.features     {dev}                                             the feature-* keys both ends wrote
 *   dev.set          {dev: HOST/DOMU[/vifN], maxFilters?: int,         {dev, backendPath, limits, rate, offloads?}: the vif's
 *                     maxBufPages?: int (0..65536), rate?: xl's RATE     limits/* and rate keys in xenstore now (its accelerator
 *                     or 'unlimited', csum?: boolean,                  applies the limits, netback the rate); offloads: its
 *                     gso?: boolean} (at least one)                    checksum offload now (switched in the guest: a reconnect)
 *   dev.add          {dev: HOST/DOMU, name?, mac?, ip?, mtu?: int}     VifInfo
 *   dev.del          {dev: HOST/DOMU/vifN}                             {dev, forced}
 *   domain.list      {}                                                DomainInfo[]
 *   domain.create    {host, name, mac?, ip?, memPages?: int, pcpu?: int} DomainInfo
 *   domain.shutdown  {host, domain}                                    DomainEnd
 *   domain.destroy   {host, domain}                                    DomainEnd
 *   domain.save      {host, domain, file}                              SaveReport
 *   domain.restore   {file, host?}                                     {domain, domid, pages, ms}
 *   domain.migrate   {host, domain, to, live?: boolean}                MigrationReport
 *   capture.list     {}                                                string[] (tap points)
 *   capture.start    {specs: string[] (>= 1), file, snaplen?: int}     {file, interfaces}
 *   capture.stop     {}                                                CaptureSummary
 *   trace.start      {file, sample?: int}                              {file}
 *   trace.stop       {}                                                TraceSummary
 *   plugin.list      {}                                                PluginView[]
 *   plugin.load      {name, host?, args?: object}                      one answer per host
 *   plugin.unload    {name, host?}                                     one answer per host
 *   shutdown         {}                                                string (served by `run --serve` itself)
 */
import { Type } from '@sinclair/typebox';
import { NO_ARGS, op, replyOf } from '@xsim/hypervisor';
import type { DomainEnd, DomainInfo } from './lifecycle.ts';
import type { VifInfo } from './hotplug.ts';
import type { MigrationReport, SaveReport } from './migration.ts';
import type { CaptureSummary } from './capture.ts';
import type { TraceSummary } from './trace.ts';

export interface MgmtDev {
  name: string;
  host: string;
  alias: string;
  mac: string;
  mtu: number;
  link: string;
  vis: number;
  visInUse: number;
  /** Guest vifs on the host, and how many more the NIC could give a VI of their own (VI 0 is dom0's). */
  vifs: number;
  vifsFree: number;
  filters: number;
}

export interface Dev {
  /** host/domain/vifN */
  dev: string;
  domid: number;
  /** The vif's handle (xl network-list's Idx) and its backend's domain (BE). */
  handle: number;
  backendId: number;
  mac: string;
  ip: string;
  state: number;
  backendState: number;
  /**
   * What netfront published in xenstore for the handshake (null before it
   * did): its event channel (the TX one, event-channel-tx, with split event
   * channels), the RX one (event-channel-rx; null with one channel for both),
   * and the rings' grant refs.
   */
  evtchn: number | null;
  evtchnRx: number | null;
  txRingRef: number | null;
  rxRingRef: number | null;
  /** The backend's xenstore directory (xl network-list's BE-path). */
  backendPath: string;
  accel: string | null;
}

/** A vif's accelerator limits as its backend directory has them (limits/max-filters, limits/max-buf-pages); absent: the plugin's defaults. */
export interface DevLimits {
  maxFilters?: number;
  maxBufPages?: number;
}

export interface PluginView {
  host: string;
  name: string;
  version: string;
  vifs: number;
  unloading: boolean;
}

type Json = Record<string, unknown>;

const str = () => Type.String({ minLength: 1 });
const int = () => Type.Integer();
const dom = () => Type.Object({ host: str(), domain: str() }, { additionalProperties: false });
const dev = () => Type.Object({ dev: str() }, { additionalProperties: false });

export const MANAGE_PROTOCOL = {
  'mgmtdev.list': op(NO_ARGS, replyOf<MgmtDev[]>()),
  'mgmtdev.set': op(
    Type.Object(
      {
        dev: str(),
        link: Type.Optional(Type.Union([Type.Literal('up'), Type.Literal('down')])),
        mtu: Type.Optional(int()),
        reset: Type.Optional(Type.Literal(true)),
      },
      { additionalProperties: false },
    ),
    replyOf<{ mgmtdev: string; host: string; done: string; result: unknown }>(),
  ),
  'dev.list': op(NO_ARGS, replyOf<Dev[]>()),
  'dev.stats': op(
    Type.Object({ dev: str(), qidx: Type.Optional(Type.Integer({ minimum: 0, maximum: 1023 })) }, { additionalProperties: false }),
    replyOf<{ dev: string; frontend: Json; backend: Json }>(),
  ),
  'dev.features': op(dev(), replyOf<{ dev: string; frontend: Record<string, string>; backend: Record<string, string> }>()),
  'dev.set': op(
    Type.Object(
      {
        dev: str(),
        maxFilters: Type.Optional(Type.Integer({ minimum: 0, maximum: 65536 })),
        maxBufPages: Type.Optional(Type.Integer({ minimum: 0, maximum: 65536 })),
        /** xl's rate= (AMOUNT[@INTERVAL], e.g. 10Mb/s@20ms), or 'unlimited' to remove the limit. */
        rate: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
        /** The vif's checksum offload, as ethtool -K in the guest (off: feature-no-csum-offload = 1 after a reconnect). */
        csum: Type.Optional(Type.Boolean()),
        /** TCPv4 segmentation offload, likewise (off: feature-gso-tcpv4 0 and no TSO frames from the guest's stack). */
        gso: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
    /** rate: the backend's rate node now ("BYTES,USEC"), null when there is none (unlimited); offloads: when csum was given. */
    replyOf<{ dev: string; backendPath: string; limits: DevLimits; rate: string | null; offloads?: { csum: boolean; gso: boolean; changed: boolean } }>(),
  ),
  'dev.add': op(
    Type.Object(
      { dev: str(), name: Type.Optional(str()), mac: Type.Optional(str()), ip: Type.Optional(str()), mtu: Type.Optional(int()) },
      { additionalProperties: false },
    ),
    replyOf<VifInfo>(),
  ),
  'dev.del': op(dev(), replyOf<{ dev: string; forced: boolean }>()),
  'domain.list': op(NO_ARGS, replyOf<DomainInfo[]>()),
  'domain.create': op(
    Type.Object(
      { host: str(), name: str(), mac: Type.Optional(str()), ip: Type.Optional(str()), memPages: Type.Optional(int()), pcpu: Type.Optional(int()) },
      { additionalProperties: false },
    ),
    replyOf<DomainInfo>(),
  ),
  'domain.shutdown': op(dom(), replyOf<DomainEnd>()),
  'domain.destroy': op(dom(), replyOf<DomainEnd>()),
  'domain.save': op(Type.Object({ host: str(), domain: str(), file: str() }, { additionalProperties: false }), replyOf<SaveReport>()),
  'domain.restore': op(
    Type.Object({ file: str(), host: Type.Optional(str()) }, { additionalProperties: false }),
    replyOf<{ domain: string; domid: number; pages: number; ms: number }>(),
  ),
  'domain.migrate': op(
    Type.Object({ host: str(), domain: str(), to: str(), live: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
    replyOf<MigrationReport>(),
  ),
  'capture.list': op(NO_ARGS, replyOf<string[]>()),
  'capture.start': op(
    Type.Object({ specs: Type.Array(str(), { minItems: 1 }), file: str(), snaplen: Type.Optional(int()) }, { additionalProperties: false }),
    replyOf<{ file: string; interfaces: string[] }>(),
  ),
  'capture.stop': op(NO_ARGS, replyOf<CaptureSummary>()),
  'trace.start': op(Type.Object({ file: str(), sample: Type.Optional(int()) }, { additionalProperties: false }), replyOf<{ file: string }>()),
  'trace.stop': op(NO_ARGS, replyOf<TraceSummary>()),
  'plugin.list': op(NO_ARGS, replyOf<PluginView[]>()),
  'plugin.load': op(
    Type.Object({ name: str(), host: Type.Optional(str()), args: Type.Optional(Type.Record(Type.String(), Type.Unknown())) }, { additionalProperties: false }),
    replyOf<unknown[]>(),
  ),
  'plugin.unload': op(Type.Object({ name: str(), host: Type.Optional(str()) }, { additionalProperties: false }), replyOf<unknown[]>()),
  shutdown: op(NO_ARGS, replyOf<string>()),
} as const;

export type ManageProtocol = typeof MANAGE_PROTOCOL;
