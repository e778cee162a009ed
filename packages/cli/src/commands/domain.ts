/**
 * `xsim domain create|shutdown|destroy|list` against `xsim run --serve`, in
 * the style of xl: a table like `xl list`, or JSON with -j/-p.
 */
import type { DomainEnd, DomainInfo } from '../toolstack/lifecycle.ts';
import { intFlag, type Parsed } from '../args.ts';
import { table } from '../format.ts';

type Json = Record<string, unknown>;

export const DOMAIN_USAGE = `  domain list                         every domain (xl list): id, host, state, memory, pCPU, vifs, accelerator
  domain create HOST NAME [--mac M] [--ip A] [--mem PAGES] [--pcpu N]
                                      a guest with one vif, connected when the command returns
  domain shutdown HOST/NAME           the guest closes its vifs, then stops; nothing of it is left
  domain destroy HOST/NAME            the guest stops at once; nothing of it is left`;

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
    list.map((d) => [d.host, d.name, d.domid, d.state, d.memPages, d.pcpu, d.vifs.map((v) => `${v.mac} ${v.ip}`).join(', ') || '-', d.vifs.map((v) => v.accel ?? '-').join(', ') || '-']),
  );
}

export async function domainCommand(verb: string | undefined, rest: string[], p: Parsed, call: (op: string, args?: Json) => Promise<unknown>, out: (v: unknown, human: () => string) => string): Promise<string> {
  switch (verb) {
    case 'list': {
      const list = (await call('domain.list')) as DomainInfo[];
      return out(list, () => listTable(list));
    }
    case 'create': {
      const [host, name] = rest;
      if (!host || !name) throw new Error('usage: xsim domain create HOST NAME [--mac M] [--ip A] [--mem PAGES] [--pcpu N]');
      const args: Json = { host, name };
      for (const k of ['mac', 'ip'] as const) if (p.flags.has(k)) args[k] = String(p.flags.get(k));
      if (p.flags.has('mem')) args.memPages = intFlag(p, 'mem', 0, 1, 1 << 20);
      if (p.flags.has('pcpu')) args.pcpu = intFlag(p, 'pcpu', 0, 0, 1023);
      const d = (await call('domain.create', args)) as DomainInfo;
      return out(d, () => `${d.host}/${d.name} created: domain ${d.domid} on pCPU ${d.pcpu}, ${d.memPages} pages, vif0 ${d.vifs[0]?.mac} ${d.vifs[0]?.ip} connected`);
    }
    case 'shutdown':
    case 'destroy': {
      const e = (await call(`domain.${verb}`, ref(rest[0], verb))) as DomainEnd;
      return out(e, () => endLine(e));
    }
    default:
      throw new Error(`unknown command "xsim domain ${verb ?? ''}"\n${DOMAIN_USAGE}`);
  }
}
