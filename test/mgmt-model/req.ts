/**
 * What a generated operation becomes when its step starts (see resolve.ts):
 * the request, the resources it takes, what the model expects of it and what
 * a success changes; and the helpers every kind of operation shares.
 */
import { join } from 'node:path';
import type { Simulation } from '@xsim/toolstack';
import type { DefectId } from './config.ts';
import type { GuestM, Model } from './model.ts';
import type { OpKind, OutSpot, Via } from './ops.ts';

export type Expect = { ok: true } | { refuse: RegExp[] } | { either: string };

export interface Exec {
  sim: Simulation;
  socket: string;
  answerMs: number;
}

export interface Req {
  kind: OpKind;
  via: Via;
  label: string;
  /** Resources it reads or takes: two operations of a step sharing one may go either way. */
  keys: string[];
  expect: Expect;
  run(x: Exec): Promise<unknown>;
  /** A success, into the model; returns what was wrong with the answer (checked only when `strict`). */
  apply(m: Model, value: unknown, strict: boolean): string[];
  /** A refusal, into the model (most change nothing). */
  refused?(m: Model, message: string): void;
  /** Hosts whose lists of domains it may change while it runs (a guest made, ended, arriving or leaving). */
  domainsOn?: string[];
  /** For a create: its host. */
  creates?: string;
  /** It takes a guest away (destroy, shutdown, save, migration). */
  takesAway?: boolean;
  /** An unload from every host. */
  unloadsAll?: boolean;
  /** After the step, when it succeeded: files it wrote, checked whole. */
  verify?(value: unknown): Promise<string[]>;
}

export interface Ctx {
  dir: string;
  hosts: string[];
  known: Set<DefectId>;
  /** The topology's NIC MTU (every vif's unless given). */
  mtu: number;
  fifo: boolean;
}

export const GHOST = 'ghost';
/** netfront's pages per vif at MTU 1500 and the slack the validator adds (topo/validate.ts). */
export const PAGES_PER_VIF = 514;
export const SLACK = 16;
export const MAX_VIFS = 8;

export const hostName = (c: Ctx, i: number): string => c.hosts[i] ?? 'host-z';
export const imagePath = (c: Ctx, n: number) => join(c.dir, `img${n}.xsav`);
export const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Where an output goes, and why it must be refused if it must. */
export function outPath(c: Ctx, spot: OutSpot, stem: string, ext: string): { file: string; refuse?: RegExp } {
  if (spot === 'adir') return { file: join(c.dir, 'adir'), refuse: /: is a directory; give a regular file or a new name/ };
  if (spot === 'missing') return { file: join(c.dir, 'missing', `x${ext}`), refuse: /: no such directory / };
  if (spot === 'fifo') return c.fifo ? { file: join(c.dir, 'fifo'), refuse: /: is a FIFO; give a regular file/ } : outPath(c, 'adir', stem, ext);
  return { file: join(c.dir, `${stem}${spot}${ext}`) };
}

export interface Target {
  host: string;
  name: string;
  g?: GuestM;
  refuse?: RegExp;
}

/** The pick-th guest (of the pool, or of every guest), or now and then one that does not exist or dom0. */
export function target(c: Ctx, m: Model, pick: number, withStable: boolean): Target {
  const cands = withStable ? m.all() : m.pool();
  const r = pick % 20;
  const host = c.hosts[pick % c.hosts.length];
  if (r === 19 || cands.length === 0) return { host, name: GHOST, refuse: new RegExp(`no domain "${GHOST}" on ${esc(host)} \\(domains: `) };
  if (r === 18) return { host, name: 'dom0', refuse: /is dom0: / };
  const g = cands[pick % cands.length];
  return { host: g.host, name: g.name, g };
}

/** What a guest holds that another operation of the step may want too. */
export function guestKeys(host: string, name: string, g?: GuestM): string[] {
  return [`guest:${host}/${name}`, `name:${host}/${name}`, ...(g?.vifs ?? []).flatMap((v) => [`ip:${v.ip}`, `mac:${v.mac}`])];
}

export const expectOf = (refuse: (RegExp | undefined)[]): Expect => {
  const r = refuse.filter((x): x is RegExp => x !== undefined);
  return r.length ? { refuse: r } : { ok: true };
};

export function addrReasons(m: Model, ip?: string, mac?: string): RegExp[] {
  const out: RegExp[] = [];
  if (ip !== undefined && m.ipsInUse().has(ip)) out.push(new RegExp(`IP ${esc(ip)} is already used by `));
  if (mac !== undefined && m.macsInUse().has(mac)) out.push(new RegExp(`MAC ${esc(mac)} is already used by `));
  return out;
}

export function usedIp(m: Model, n: number): string {
  const ips = m.all().flatMap((g) => g.vifs.map((v) => v.ip));
  return ips[n % ips.length];
}

export function usedMac(m: Model, n: number): string {
  const macs = m.all().flatMap((g) => g.vifs.map((v) => v.mac));
  return macs[n % macs.length];
}
