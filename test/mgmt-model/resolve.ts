/**
 * A generated operation made concrete against the model as the step starts:
 * the request (over the control socket or the API), the resources it reads or
 * takes (two operations of one step sharing one are not predicted strictly:
 * either may win), what the model expects of it alone (success, or a refusal
 * for one of the reasons named), and what a success changes in the model.
 */
import { join } from 'node:path';
import { manageRequest, type DomainEnd, type DomainInfo, type MigrationReport, type SaveReport, type VifInfo } from '@xsim/toolstack';
import type { Model } from './model.ts';
import { IMAGES, NAMES, type InSpot, type OpSpec } from './ops.ts';
import { MEMORY } from './refusals.ts';
import { resolvePlugin, resolveNic, resolveObserver, resolveRead } from './resolve-more.ts';
import {
  MAX_VIFS,
  PAGES_PER_VIF,
  SLACK,
  addrReasons,
  esc,
  expectOf,
  guestKeys,
  hostName,
  imagePath,
  outPath,
  target,
  usedIp,
  usedMac,
  type Ctx,
  type Expect,
  type Req,
} from './req.ts';

const hex2 = (n: number) => n.toString(16).padStart(2, '0');
const nameRefusal = (host: string, name: string) => new RegExp(`domU name "${esc(name)}" is used twice on ${esc(host)}`);

/** A host whose NIC carries less than `mtu` (set at run time, or the topology's) refuses vifs of that MTU. */
function mtuRefusal(c: Ctx, m: Model, host: string, mtu: number): RegExp | undefined {
  const carries = m.mtu.get(host) ?? c.mtu;
  return carries < mtu ? new RegExp(`its vifs use MTU ${mtu}, the destination's NIC carries ${carries}`) : undefined;
}

function create(s: Extract<OpSpec, { k: 'create' }>, c: Ctx, m: Model): Req {
  const host = hostName(c, s.host);
  const hi = Math.max(0, c.hosts.indexOf(host));
  const name = NAMES[s.name];
  const memPages = s.mem === 'big' ? 4096 : s.mem === 'tiny' ? 256 : undefined;
  const ip = s.ip === 'used' ? usedIp(m, s.n) : s.ip === 'fresh' ? `10.0.${10 + hi}.${200 + s.n}` : undefined;
  const mac = s.mac === 'used' ? usedMac(m, s.n) : s.mac === 'fresh' ? `00:16:3e:7${hi}:${hex2(s.n)}:01` : undefined;
  const opts = { ...(ip ? { ip } : {}), ...(mac ? { mac } : {}), ...(memPages ? { memPages } : {}) };
  const reasons: RegExp[] = [];
  if (!c.hosts.includes(host)) reasons.push(/no host "host-z" \(hosts: /);
  if (name === 'dom0') reasons.push(/"dom0" is reserved: it names the host's dom0/);
  if (name === 'Bad_Name') reasons.push(/"Bad_Name" is not a domain name/);
  if (m.guest(host, name)) reasons.push(nameRefusal(host, name));
  if (memPages === 256) reasons.push(/memPages: must be an integer from 530 to 65536/);
  reasons.push(...addrReasons(m, ip, mac));
  return {
    kind: 'create',
    via: s.via,
    domainsOn: [host],
    creates: host,
    label: `create ${host}/${name} ${JSON.stringify(opts)}`,
    // An address the toolstack picks may be one a restore of the same step wants back (the lowest free one).
    keys: [`name:${host}/${name}`, ip ? `ip:${ip}` : 'ip:auto', ...(mac ? [`mac:${mac}`] : [])],
    expect: expectOf(reasons),
    run: (x) => (s.via === 'socket' ? manageRequest(x.socket, 'domain.create', { host, name, ...opts }, x.answerMs) : x.sim.createDomain(host, name, opts)),
    apply(model, value) {
      const d = value as DomainInfo;
      const bad: string[] = [];
      if (d.host !== host || d.name !== name) bad.push(`create ${host}/${name} answered ${d.host}/${d.name}`);
      if (d.vifs.length !== 1) bad.push(`create ${host}/${name} answered ${d.vifs.length} vifs`);
      if (ip && d.vifs[0]?.ip !== ip) bad.push(`create ${host}/${name} asked for IP ${ip}, got ${d.vifs[0]?.ip}`);
      if (mac && d.vifs[0]?.mac !== mac) bad.push(`create ${host}/${name} asked for MAC ${mac}, got ${d.vifs[0]?.mac}`);
      if (d.memPages !== (memPages ?? 1024)) bad.push(`create ${host}/${name}: ${d.memPages} pages, not ${memPages ?? 1024}`);
      model.add(
        {
          host,
          name,
          domid: d.domid,
          memPages: d.memPages,
          vifs: d.vifs.map((v) => ({ handle: v.handle, mac: v.mac, ip: v.ip })),
          stable: false,
          nextHandle: 1,
        },
        `create ${host}/${name}`,
      );
      return bad;
    },
  };
}

function end(s: Extract<OpSpec, { k: 'destroy' | 'shutdown' }>, c: Ctx, m: Model): Req {
  const t = target(c, m, s.pick, false);
  const ref = { host: t.host, domain: t.name };
  return {
    kind: s.k,
    via: s.via,
    domainsOn: [t.host],
    takesAway: true,
    label: `${s.k} ${t.host}/${t.name}`,
    keys: guestKeys(t.host, t.name, t.g),
    expect: expectOf([t.refuse]),
    run: (x) =>
      s.k === 'destroy'
        ? s.via === 'socket'
          ? manageRequest(x.socket, 'domain.destroy', ref, x.answerMs)
          : x.sim.destroyDomain(ref)
        : s.via === 'socket'
          ? manageRequest(x.socket, 'domain.shutdown', ref, x.answerMs)
          : x.sim.shutdownDomain(ref),
    apply(model, value, strict) {
      const e = value as DomainEnd;
      const g = model.remove(t.host, t.name);
      const bad: string[] = [];
      if (e.host !== t.host || e.name !== t.name || e.how !== s.k) bad.push(`${s.k} ${t.host}/${t.name} answered ${e.how} of ${e.host}/${e.name}`);
      if (strict && g && e.vifsRemoved !== g.vifs.length) bad.push(`${s.k} ${t.host}/${t.name} removed ${e.vifsRemoved} vif(s); it had ${g.vifs.length}`);
      return bad;
    },
  };
}

function save(s: Extract<OpSpec, { k: 'save' }>, c: Ctx, m: Model): Req {
  const t = target(c, m, s.pick, false);
  const out = outPath(c, s.file, 'img', '.xsav');
  return {
    kind: 'save',
    via: s.via,
    domainsOn: [t.host],
    takesAway: true,
    label: `save ${t.host}/${t.name} to ${out.file}`,
    keys: [...guestKeys(t.host, t.name, t.g), `file:${out.file}`],
    expect: expectOf([t.refuse, out.refuse]),
    run: (x) =>
      s.via === 'socket'
        ? manageRequest(x.socket, 'domain.save', { host: t.host, domain: t.name, file: out.file }, x.answerMs)
        : x.sim.saveDomain({ host: t.host, domain: t.name }, out.file),
    apply(model, value) {
      const r = value as SaveReport;
      const g = model.remove(t.host, t.name);
      // What the file holds now is read back after the step (two saves to one file: the last rename wins).
      if (g)
        model.images.set(out.file, {
          name: g.name,
          host: g.host,
          memPages: g.memPages,
          vifs: g.vifs.map((v) => ({ ...v })),
          mtu: model.mtu.get(g.host) ?? c.mtu,
        });
      return r.file === out.file && r.domain === `${t.host}/${t.name}` ? [] : [`save ${t.host}/${t.name} answered ${r.domain} to ${r.file}`];
    },
    refused(model, message) {
      // The image never reached its file after the suspend: the guest runs again, under a new domid.
      if (/ was resumed on /.test(message)) {
        const g = model.guest(t.host, t.name);
        if (g) {
          g.domid = -1;
          g.nextHandle = Math.max(0, ...g.vifs.map((v) => v.handle + 1));
        }
      }
    },
  };
}

function inPath(c: Ctx, spot: InSpot): string {
  if (spot === 'junk') return join(c.dir, 'junk.xsav');
  if (spot === 'adir') return join(c.dir, 'adir');
  if (spot === 'fifo') return c.fifo ? join(c.dir, 'fifo') : join(c.dir, 'junk.xsav');
  return imagePath(c, spot % IMAGES);
}

function restore(s: Extract<OpSpec, { k: 'restore' }>, c: Ctx, m: Model): Req {
  const file = inPath(c, s.file);
  const img = m.images.get(file);
  const dst = s.host === null ? (img?.host ?? c.hosts[0]) : hostName(c, s.host);
  const reasons: (RegExp | undefined)[] = [];
  if (file.endsWith('junk.xsav')) reasons.push(/: not a usable xsim save image: /);
  else if (file.endsWith('/fifo')) reasons.push(/cannot read save image \S+: is a FIFO; give a save image/);
  else if (file.endsWith('/adir')) reasons.push(/cannot read save image \S+: (is a directory; give a save image|EISDIR)/);
  else if (!img) reasons.push(/cannot read save image /);
  else {
    if (!c.hosts.includes(dst)) reasons.push(/no host "host-z" \(hosts: /);
    if (m.guest(dst, img.name)) reasons.push(nameRefusal(dst, img.name));
    if (img.vifs.length === 0) reasons.push(/a saved domain has 1 to \d+ vifs|must have 1 to \d+ vifs/);
    for (const v of img.vifs) reasons.push(...addrReasons(m, v.ip, v.mac));
    if (c.hosts.includes(dst)) reasons.push(mtuRefusal(c, m, dst, img.mtu));
  }
  return {
    kind: 'restore',
    via: s.via,
    domainsOn: [dst],
    label: `restore ${file}${s.host === null ? '' : ` on ${dst}`}${img ? ` (${img.host}/${img.name})` : ''}`,
    keys: [`file:${file}`, ...(img ? [`name:${dst}/${img.name}`, `mtu:${dst}`, 'ip:auto', ...img.vifs.flatMap((v) => [`ip:${v.ip}`, `mac:${v.mac}`])] : [])],
    expect: expectOf(reasons),
    run: (x) =>
      s.via === 'socket'
        ? manageRequest(x.socket, 'domain.restore', { file, ...(s.host === null ? {} : { host: dst }) }, x.answerMs)
        : x.sim.restoreDomain(file, s.host === null ? undefined : dst),
    apply(model, value, strict) {
      const r = value as { domain: string; domid: number };
      const [host, name] = r.domain.split('/');
      // What the file held when the restore read it: the image of the step's start, or one a save of the step wrote.
      const i = [model.images.get(file), img].find((x) => x !== undefined && x.name === name);
      if (!i) return [`restore ${file} answered ${r.domain}, but the model has no image of ${name} there`];
      const bad = strict && r.domain !== `${dst}/${i.name}` ? [`restore ${file} answered ${r.domain}, not ${dst}/${i.name}`] : [];
      const nextHandle = Math.max(0, ...i.vifs.map((v) => v.handle + 1));
      model.add({ host, name, domid: r.domid, memPages: i.memPages, vifs: i.vifs.map((v) => ({ ...v })), stable: false, nextHandle }, `restore ${file}`);
      return bad;
    },
  };
}

function migrate(s: Extract<OpSpec, { k: 'migrate' }>, c: Ctx, m: Model): Req {
  const t = target(c, m, s.pick, false);
  const to = hostName(c, s.to);
  const reasons: (RegExp | undefined)[] = [t.refuse];
  if (!c.hosts.includes(to)) reasons.push(/no host "host-z" \(hosts: /);
  if (t.g && to !== t.host && m.guest(to, t.name)) reasons.push(nameRefusal(to, t.name));
  if (t.g && t.g.vifs.length === 0) reasons.push(/must have 1 to \d+ vifs/);
  // Its vifs carry what its host's NIC carries now.
  if (t.g && c.hosts.includes(to)) reasons.push(mtuRefusal(c, m, to, m.mtu.get(t.host) ?? c.mtu));
  // Over the socket the report waits up to 2 s for the first frame and the fast path (the op's default); the API is told 200 ms.
  const settleMs = 200;
  return {
    kind: 'migrate',
    via: s.via,
    domainsOn: [t.host, to],
    takesAway: true,
    label: `migrate ${t.host}/${t.name} to ${to}${s.live ? ' live' : ''}`,
    keys: [...guestKeys(t.host, t.name, t.g), `name:${to}/${t.name}`, `mtu:${t.host}`, `mtu:${to}`],
    expect: expectOf(reasons),
    run: (x) =>
      s.via === 'socket'
        ? manageRequest(x.socket, 'domain.migrate', { host: t.host, domain: t.name, to, live: s.live }, x.answerMs)
        : x.sim.migrateDomain({ host: t.host, domain: t.name }, to, { live: s.live, settleMs }),
    apply(model, value) {
      const r = value as MigrationReport;
      const g = model.guest(t.host, t.name);
      if (!g) return [`migrate ${t.host}/${t.name} succeeded, but the model has no such guest`];
      const bad =
        r.from.host === t.host && r.to.host === to && r.domain === t.name
          ? []
          : [`migrate ${t.host}/${t.name} to ${to} answered ${JSON.stringify([r.domain, r.from, r.to])}`];
      if (to !== t.host && model.guest(to, t.name))
        return [...bad, `migrate ${t.host}/${t.name} to ${to} succeeded though ${to}/${t.name} exists: two guests of one name`];
      model.newDomid(to, r.to.domid, `migrate ${t.host}/${t.name} to ${to}`);
      g.host = to;
      g.domid = r.to.domid;
      g.nextHandle = Math.max(0, ...g.vifs.map((v) => v.handle + 1));
      return bad;
    },
  };
}

/** What vnic's frontend takes of a guest's RAM for each vif it accelerates (its DMA area). */
const VNIC_PAGES = 396;

function devAdd(s: Extract<OpSpec, { k: 'devAdd' }>, c: Ctx, m: Model): Req {
  const t = target(c, m, s.pick, true);
  const dev = `${t.host}/${t.name}`;
  const g = t.g;
  const hi = Math.max(0, c.hosts.indexOf(t.host));
  const hostMtu = m.mtu.get(t.host) ?? c.mtu;
  // Defect handleRewind: naming a handle below the guest's next one winds its counter back; left out unless asked for.
  const rewinds = g !== undefined && Math.max(g.nextHandle, ...g.vifs.map((v) => v.handle + 1)) > 8 && !c.known.has('handleRewind');
  const name =
    s.name === 'auto' || (s.name === 'high' && rewinds) ? undefined : s.name === 'bad' ? 'eth0' : s.name === 'high' ? 'vif7' : `vif${g?.vifs[0]?.handle ?? 0}`;
  const ip = s.ip === 'used' ? usedIp(m, s.n) : s.ip === 'fresh' ? `10.0.${10 + hi}.${150 + s.n}` : undefined;
  const opts = { ...(name ? { name } : {}), ...(ip ? { ip } : {}), ...(s.mtu !== null ? { mtu: s.mtu } : {}) };
  const reasons: (RegExp | undefined)[] = [t.refuse];
  let expect: Expect | undefined;
  if (g) {
    const handle = name && /^vif\d+$/.test(name) ? Number(name.slice(3)) : undefined;
    if (name === 'eth0') reasons.push(/name "eth0" is not vifN/);
    if (handle !== undefined && g.vifs.some((v) => v.handle === handle)) reasons.push(new RegExp(`already has vif${handle} \\(vifs: `));
    if (s.mtu !== null && s.mtu > hostMtu) reasons.push(new RegExp(`mtu ${s.mtu}: a vif's MTU is 68\\.\\.${hostMtu}`));
    if (g.vifs.length + 1 > MAX_VIFS) reasons.push(/must have 1 to 8 vifs/);
    else if ((g.vifs.length + 1) * PAGES_PER_VIF + SLACK > g.memPages) reasons.push(MEMORY);
    reasons.push(...addrReasons(m, ip));
    // Room for the buffers, but perhaps not for a plugin's areas beside them (vnic's, 396 frames a vif): the guest may refuse.
    if (reasons.every((r) => r === undefined) && (g.vifs.length + 1) * (PAGES_PER_VIF + VNIC_PAGES) + SLACK > g.memPages)
      expect ??= { either: `${dev} has room for ${g.vifs.length + 1} vifs' buffers, perhaps not for a plugin's areas too` };
  }
  return {
    kind: 'devAdd',
    via: s.via,
    label: `dev add ${dev} ${JSON.stringify(opts)}`,
    keys: [`guest:${dev}`, ip ? `ip:${ip}` : 'ip:auto', `mtu:${t.host}`],
    expect: expect ?? expectOf(reasons),
    run: (x) => (s.via === 'socket' ? manageRequest(x.socket, 'dev.add', { dev, ...opts }, x.answerMs) : x.sim.addVif({ host: t.host, domain: t.name }, opts)),
    apply(model, value, strict) {
      const v = value as VifInfo;
      const h = model.guest(t.host, t.name);
      if (!h) return [`dev add ${dev} succeeded, but the model has no such guest`];
      const bad: string[] = [];
      const want = name ? Number(name.slice(3)) : Math.max(h.nextHandle, ...h.vifs.map((x) => x.handle + 1));
      if (v.dev !== `${dev}/vif${v.handle}`) bad.push(`dev add ${dev} answered ${v.dev} (handle ${v.handle})`);
      if (strict && v.handle !== want) bad.push(`dev add ${dev} gave vif${v.handle}, expected vif${want} (handles are not reused)`);
      if (ip && v.ip !== ip) bad.push(`dev add ${dev} asked for IP ${ip}, got ${v.ip}`);
      if (strict && v.mtu !== (s.mtu ?? hostMtu)) bad.push(`dev add ${dev}: MTU ${v.mtu}, not ${s.mtu ?? hostMtu}`);
      h.vifs.push({ handle: v.handle, mac: v.mac, ip: v.ip });
      h.nextHandle = Math.max(h.nextHandle, v.handle + 1);
      return bad;
    },
    refused(model, message) {
      // Refused after its handle was taken (the guest had no room): that handle is not given again.
      const n = /\/vif(\d+) failed: /.exec(message);
      const h = model.guest(t.host, t.name);
      if (n && h) h.nextHandle = Math.max(h.nextHandle, Number(n[1]) + 1);
    },
  };
}

function devDel(s: Extract<OpSpec, { k: 'devDel' }>, c: Ctx, m: Model): Req {
  const t = target(c, m, s.pick, true);
  const g = t.g;
  let handle = 99;
  const reasons: (RegExp | undefined)[] = [t.refuse];
  if (g) {
    const i = s.vif % (g.vifs.length + 1);
    const v = g.vifs[i];
    // A stream end keeps its vif0; a guest keeps one vif (the last is refused).
    if (v !== undefined && !(g.stable && v.handle === 0)) handle = v.handle;
    if (handle === 99) reasons.push(/has no vif99 \(vifs: /);
    else if (g.vifs.length === 1) reasons.push(/is the guest's last vif: a guest keeps one/);
  }
  const dev = `${t.host}/${t.name}/vif${handle}`;
  // Its MAC and IP are free again once it is gone: another operation of the step may take them.
  const freed = (g?.vifs ?? []).filter((v) => v.handle === handle).flatMap((v) => [`ip:${v.ip}`, `mac:${v.mac}`]);
  return {
    kind: 'devDel',
    via: s.via,
    label: `dev del ${dev}`,
    keys: [`guest:${t.host}/${t.name}`, ...freed],
    expect: expectOf(reasons),
    run: (x) => (s.via === 'socket' ? manageRequest(x.socket, 'dev.del', { dev }, x.answerMs) : x.sim.delVif({ host: t.host, domain: t.name }, handle)),
    apply(model, value) {
      const r = value as { dev: string };
      const h = model.guest(t.host, t.name);
      if (!h) return [`dev del ${dev} succeeded, but the model has no such guest`];
      h.vifs = h.vifs.filter((v) => v.handle !== handle);
      return r.dev === dev ? [] : [`dev del ${dev} answered ${r.dev}`];
    },
  };
}

export function resolve(s: OpSpec, c: Ctx, m: Model): Req {
  switch (s.k) {
    case 'create':
      return create(s, c, m);
    case 'destroy':
    case 'shutdown':
      return end(s, c, m);
    case 'save':
      return save(s, c, m);
    case 'restore':
      return restore(s, c, m);
    case 'migrate':
      return migrate(s, c, m);
    case 'devAdd':
      return devAdd(s, c, m);
    case 'devDel':
      return devDel(s, c, m);
    case 'pluginLoad':
    case 'pluginUnload':
    case 'pluginSwap':
      return resolvePlugin(s, c, m);
    case 'captureStart':
    case 'captureStop':
    case 'traceStart':
    case 'traceStop':
      return resolveObserver(s, c, m);
    case 'link':
    case 'mtu':
    case 'reset':
      return resolveNic(s, c);
    case 'read':
      return resolveRead(s, c, m);
  }
}
