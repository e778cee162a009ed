/**
 * `xsim domain create|shutdown|destroy|list` against `xsim run --serve`, in
 * the style of xl: a table like `xl list`, or JSON with -j/-p.
 */
import { resolve } from 'node:path';
import type { DomainEnd, DomainInfo } from '@xsim/toolstack';
import type { MigrationReport } from '@xsim/toolstack';
import { intFlag } from '../args.ts';
import type { ManageVerb } from './manage-verb.ts';
import { table } from '@xsim/toolstack';

export const DOMAIN_USAGE = `  domain list                         every domain (xl list): id, host, state, memory, pCPU, vifs, accelerator
  domain create HOST NAME [--mac M] [--ip A] [--mem PAGES] [--pcpu N]
                                      a guest with one vif, connected when the command returns
  domain shutdown HOST/NAME           the guest closes its vifs, then stops; nothing of it is left
  domain destroy HOST/NAME            the guest stops at once; nothing of it is left
  domain save HOST/NAME FILE          the guest stops and is written to FILE (Xen's migration stream format)
  domain restore FILE [--host H]      a saved guest runs again (default: on the host it was saved on)
  migrate HOST/NAME --to HOST2 [--live]
                                      move a running guest; --live pre-copies its RAM while it runs`;

/** xl migrate's report, and more: rounds, pages, blackout, downtime, frames lost and where, the fast path. */
export function migrationText(r: MigrationReport): string {
  const lines = [`${r.from.host}/${r.domain} (domain ${r.from.domid}) -> ${r.to.host} (domain ${r.to.domid}, pCPU ${r.to.pcpu})${r.live ? ', live' : ''}`];
  for (const x of r.rounds) lines.push(`  ${x.stop ? 'stop-and-copy' : `pre-copy round ${x.round}`}: ${x.pages} pages (${x.ms.toFixed(1)} ms)`);
  lines.push(`  ${r.pagesSent} pages sent for ${r.memPages} pages of RAM, in ${Math.round(r.totalMs)} ms`);
  lines.push(`  blackout ${r.blackoutMs.toFixed(1)} ms (quiesced at the source -> vifs connected at the destination)`);
  lines.push(
    `  downtime ${r.downtimeMs === null ? 'unknown (no frame received since the resume)' : `${r.downtimeMs.toFixed(1)} ms (last frame received at the source -> first at the destination)`}`,
  );
  lines.push(`  TX frames sent again: ${r.resent}`);
  const fp = (l: string[]) => (l.length ? l.join(',') : 'slow path');
  lines.push(
    `  fast path: ${fp(r.fastPath.before)} -> ${fp(r.fastPath.after)}${r.fastPath.backAfterMs === null ? '' : `, back ${r.fastPath.backAfterMs.toFixed(1)} ms after the vifs connected`}`,
  );
  const lost = Object.entries(r.lost);
  lines.push(`  frames lost: ${r.lostTotal}${lost.length ? ` (${lost.map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`);
  return lines.join('\n');
}

function ref(s: string | undefined, verb: string): { host: string; domain: string } {
  const m = s ? /^([^/]+)\/([^/]+)$/.exec(s) : null;
  if (!m) throw new Error(`usage: xsim domain ${verb} HOST/NAME (got ${s === undefined ? 'nothing' : JSON.stringify(s)})`);
  return { host: m[1], domain: m[2] };
}

function endLine(e: DomainEnd): string {
  const what = e.how === 'shutdown' ? 'shut down' : 'destroyed';
  return `${e.host}/${e.name} (domain ${e.domid}) ${what} in ${Math.round(e.ms)} ms: ${e.vifsRemoved} vif(s) removed, ${e.portsClosed} event-channel port(s) closed`;
}

export function listTable(list: DomainInfo[]): string {
  return table(
    ['host', 'name', 'id', 'state', 'mem (pages)', 'pCPU', 'vifs', 'accel'],
    list.map((d) => [
      d.host,
      d.name,
      d.domid,
      d.migratingTo ? `${d.state} to ${d.migratingTo}` : d.state,
      d.memPages,
      d.pcpu,
      d.vifs.map((v) => `${v.mac} ${v.ip}`).join(', ') || '-',
      d.vifs.map((v) => v.accel ?? '-').join(', ') || '-',
    ]),
  );
}

const domainList: ManageVerb = async ({ call, out }) => {
  const list = await call('domain.list');
  return out(list, () => listTable(list));
};

const domainCreate: ManageVerb = async ({ p, rest, call, out }) => {
  const [host, name] = rest;
  if (!host || !name) throw new Error('usage: xsim domain create HOST NAME [--mac M] [--ip A] [--mem PAGES] [--pcpu N]');
  const args: { host: string; name: string; mac?: string; ip?: string; memPages?: number; pcpu?: number } = { host, name };
  for (const k of ['mac', 'ip'] as const) if (p.flags.has(k)) args[k] = String(p.flags.get(k));
  if (p.flags.has('mem')) args.memPages = intFlag(p, 'mem', 0, 1, 1 << 20);
  if (p.flags.has('pcpu')) args.pcpu = intFlag(p, 'pcpu', 0, 0, 1023);
  const d = await call('domain.create', args);
  return out(
    d,
    () => `${d.host}/${d.name} created: domain ${d.domid} on pCPU ${d.pcpu}, ${d.memPages} pages, vif0 ${d.vifs[0]?.mac} ${d.vifs[0]?.ip} connected`,
  );
};

const domainShutdown: ManageVerb = async ({ rest, verb, call, out }) => {
  const e = verb === 'shutdown' ? await call('domain.shutdown', ref(rest[0], verb)) : await call('domain.destroy', ref(rest[0], verb));
  return out(e, () => endLine(e));
};

const domainSave: ManageVerb = async ({ rest, call, out }) => {
  const r = ref(rest[0], 'save');
  if (!rest[1]) throw new Error('usage: xsim domain save HOST/NAME FILE');
  const s = await call('domain.save', { ...r, file: resolve(rest[1]) });
  return out(s, () => `${s.domain} saved to ${s.file}: ${s.pages} of ${s.memPages} pages, ${s.bytes} octets, in ${Math.round(s.ms)} ms`);
};

const domainRestore: ManageVerb = async ({ p, rest, call, out }) => {
  if (!rest[0]) throw new Error('usage: xsim domain restore FILE [--host H]');
  const host = p.flags.get('host');
  const r = await call('domain.restore', { file: resolve(rest[0]), ...(typeof host === 'string' ? { host } : {}) });
  return out(r, () => `${r.domain} restored as domain ${r.domid}: ${r.pages} pages, vifs connected, in ${Math.round(r.ms)} ms`);
};

/** domain VERB -> its handler. */
export const DOMAIN_VERBS: Record<string, ManageVerb> = {
  list: domainList,
  create: domainCreate,
  shutdown: domainShutdown,
  destroy: domainShutdown,
  save: domainSave,
  restore: domainRestore,
};
