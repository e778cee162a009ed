/**
 * Quota exhaustion (vif plugins): the receiver's filter quota
 * (limits/max-filters in its vif's backend directory, where the 2007
 * accelerator read it and `xsim dev set` writes it) is set to 1 while flows
 * to three ports follow one another. A plugin that honours the quota evicts a
 * filter or leaves the new flow on the slow path; either way every frame of
 * every flow is delivered, the plugin keeps working, and the key is put back
 * as it was.
 */
import { VIF_KEY, vifBackendPath } from '@xsim/hypervisor';
import { dom0Stats, type StatsTree } from '../../stats.ts';
import { accountedStream, streamProblems } from '../accounting.ts';
import { ensureLoaded } from '../plugin-state.ts';
import { quietRules } from '../quiet.ts';
import { fail, pass, type Check, type CheckContext, type Verdict } from '../types.ts';

const PORTS = [5101, 5102, 5103];

/** The plugin's own counters on `host` that grew and look like quota news (evictions, refusals, caps). */
function quotaNews(ctx: CheckContext, before: StatsTree, after: StatsTree, host: string): string[] {
  const b = dom0Stats(before, host).accel.plugins[ctx.plugin.name] ?? {};
  const a = dom0Stats(after, host).accel.plugins[ctx.plugin.name] ?? {};
  return Object.entries(a)
    .filter(([k, v]) => /evict|cap|quota|refus|nospace|full/i.test(k) && typeof v === 'number' && v > Number(b[k] ?? 0))
    .map(([k, v]) => `${k} +${(v as number) - Number(b[k] ?? 0)}`);
}

export const quotaCheck: Check = {
  id: 'quota',
  title: 'quota exhaustion',
  skip: (ctx) => (ctx.plugin.features.includes('vif') ? undefined : 'not a vif plugin: it holds no per-vif filters'),
  async run(ctx): Promise<Verdict> {
    await ensureLoaded(ctx);
    const { sim } = ctx;
    const to = sim.domain(ctx.to);
    const xs = sim.host(ctx.to.host).xenstore;
    const key = `${vifBackendPath(0, to.domid, 0)}/${VIF_KEY.maxFilters}`;
    const old = xs.read(0, key);
    const problems: string[] = [];
    const before = await sim.stats();
    xs.write(0, key, '1');
    try {
      for (const port of PORTS) {
        const o = await accountedStream(ctx, { count: Math.ceil(ctx.frames / 8), port });
        problems.push(...streamProblems(o, quietRules(ctx)).map((p) => `a flow to port ${port} with max-filters 1: ${p}`));
      }
    } finally {
      if (old === undefined) xs.rm(0, key);
      else xs.write(0, key, old);
    }
    const news = quotaNews(ctx, before, await sim.stats(), ctx.to.host);
    if (problems.length) return fail(problems.join('; '));
    return pass(
      `${ctx.to.host}/${ctx.to.domain}'s max-filters set to 1, flows to ports ${PORTS.join(', ')} in turn: each delivered whole; ${news.length ? `the plugin counted ${news.join(', ')}` : 'the plugin counted nothing that looks like a quota (it may not read limits/max-filters)'}; max-filters put back`,
    );
  },
};
