/** Attach (vif plugins): every connected vif of every guest is offered to the plugin, taken by it at dom0, and its frontend is ready. */
import { waitAttached } from '../plugin-state.ts';
import { vifViews } from '../vifs.ts';
import { pass, type Check } from '../types.ts';

export const attachCheck: Check = {
  id: 'attach',
  title: 'every vif attached, frontends ready',
  skip: (ctx) => (ctx.plugin.features.includes('vif') ? undefined : 'not a vif plugin: it attaches to no vif'),
  async run(ctx) {
    await waitAttached(ctx);
    const views = vifViews(ctx.sim, await ctx.sim.stats());
    const readiness = views.every((v) => v.ready === undefined) ? ' (its frontend reports no `ready`)' : ', frontends ready';
    return pass(`${views.length} vifs attached at both ends${readiness}: ${views.map((v) => v.label).join(', ')}`);
  },
};
