/**
 * The detach check, which sums up what the others saw: a detach that never
 * completed is reported by the check that waited for it (naming the vif and
 * the missing ctx.detached), and again here.
 */
import { fail, pass, type Check } from '../types.ts';

export const detachCheck: Check = {
  id: 'detach',
  title: 'every detach completes',
  always: true,
  skip: (ctx) => (ctx.plugin.features.includes('vif') ? undefined : 'not a vif plugin: it has no vifs to detach'),
  run: (ctx) =>
    Promise.resolve(
      ctx.wedged
        ? fail(`${ctx.wedged} (see the check that waited for it for the vifs still held)`)
        : pass('every detach the suite asked for (unload, swap, NIC resets, migrations) completed within its deadline'),
    ),
};
