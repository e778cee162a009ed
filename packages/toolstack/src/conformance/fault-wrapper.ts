/**
 * A fault-injecting copy of the plugin under test, for the "a hook that
 * throws" check: a plugin directory written to a temporary place whose
 * modules import the plugin's own and pass every hook through, except that
 * the backend throws from linkChange when the link comes up, and the guest
 * half throws from startXmit once it has taken `frontendAfter` frames (in the
 * guest whose address the backend's offer names). It has a name of its own
 * (NAME-faulty): a guest keeps a plugin's frontend across attachments by
 * name, so under the plugin's own name the guests would reuse the frontends
 * they already have instead of importing these.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Every backend hook the framework knows (AccelBackend's members), passed through. */
const BACKEND_HOOKS = [
  'probe',
  'remove',
  'stats',
  'linkChange',
  'mtuChangeRequest',
  'mtuChanged',
  'mtuChangeFailed',
  'suspend',
  'resume',
  'rxIntercept',
  'txIntercept',
  'attachVif',
  'detachVif',
  'vifGone',
  'onFrontendMessage',
  'onSlowPathRx',
  'onUplinkLearn',
  'onUplinkForget',
  'saveState',
  'restoreState',
];
const FRONTEND_HOOKS = ['newDevice', 'onMessage', 'startXmit', 'poll', 'checkReady', 'remove', 'release', 'getStats'];

/** The message key the backend adds to its offer to arm the guest half (stripped before the plugin's frontend sees the offer). */
const ARM = 'conformanceThrowAfter';

function backendSource(url: string, name: string, frontendIp: number, frontendAfter: number): string {
  return `// Written by xsim's conformance suite: ${url} with linkChange(up) made to throw.
const inner = await import(${JSON.stringify(url)});
export const manifest = { ...inner.manifest, name: ${JSON.stringify(name)} };
const HOOKS = ${JSON.stringify(BACKEND_HOOKS)};
export function createBackend(ctx, args) {
  const arm = (vif, op, a) => (op === 'offer' && vif.ip === ${frontendIp} ? { ...a, ${ARM}: ${frontendAfter} } : a);
  const b = inner.createBackend({ ...ctx, send: (vif, op, a, shared) => ctx.send(vif, op, arm(vif, op, a), shared) }, args);
  const out = { name: ${JSON.stringify(name)} };
  for (const h of HOOKS) if (typeof b[h] === 'function') out[h] = (...x) => b[h](...x);
  out.linkChange = (up) => {
    if (up) throw new Error('conformance: linkChange made to throw at link up');
    return b.linkChange?.(up);
  };
  return out;
}
`;
}

function frontendSource(url: string): string {
  return `// Written by xsim's conformance suite: ${url} with startXmit made to throw once armed by the offer.
const inner = await import(${JSON.stringify(url)});
const HOOKS = ${JSON.stringify(FRONTEND_HOOKS)};
export function createFrontend(ctx) {
  const fe = inner.createFrontend(ctx);
  let after = -1;
  let taken = 0;
  const out = {};
  for (const h of HOOKS) if (typeof fe[h] === 'function') out[h] = (...x) => fe[h](...x);
  out.newDevice = (args, shared) => {
    const { ${ARM}: n, ...rest } = args;
    if (typeof n === 'number') after = n;
    return fe.newDevice(rest, shared);
  };
  out.startXmit = (ram, off, len) => {
    if (after >= 0 && taken >= after) throw new Error('conformance: startXmit made to throw after ' + after + ' frames');
    const t = fe.startXmit(ram, off, len);
    if (t) taken++;
    return t;
  };
  return out;
}
`;
}

export interface FaultyPlugin {
  /** The directory to load (its name is the plugin's). */
  dir: string;
  name: string;
  remove(): void;
}

/** Write the faulty copy of the plugin whose modules are at these URLs. */
export function writeFaultyPlugin(p: { name: string; backend: string; frontend?: string }, o: { frontendIp: number; frontendAfter: number }): FaultyPlugin {
  const base = mkdtempSync(join(tmpdir(), 'xsim-conformance-'));
  const name = `${p.name}-faulty`.slice(0, 64);
  const dir = join(base, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  writeFileSync(join(dir, 'backend.ts'), backendSource(p.backend, name, o.frontendIp, o.frontendAfter));
  if (p.frontend) writeFileSync(join(dir, 'frontend.ts'), frontendSource(p.frontend));
  return { dir, name, remove: () => rmSync(base, { recursive: true, force: true }) };
}
