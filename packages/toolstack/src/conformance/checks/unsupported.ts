/**
 * Checks the suite cannot make yet, each reported skipped with why, and the
 * detach check, which sums up what the others saw: a detach that never
 * completed is reported by the check that waited for it (naming the vif and
 * the missing ctx.detached), and again here.
 */
import { fail, pass, skip, type Check } from '../types.ts';

export const quotaCheck: Check = {
  id: 'quota',
  title: 'quota exhaustion',
  skip: () => 'xsim has no per-vif quotas yet (issue 19, item 4: limits/max-filters, limits/max-buf-pages): nothing to exhaust',
  run: () => Promise.resolve(skip('no quotas')),
};

export const throwsCheck: Check = {
  id: 'throws',
  title: 'a hook that throws',
  skip: () =>
    "the suite cannot make a plugin's own hook throw on demand (that needs a fault-injecting wrapper); a hook that throws during any check fails that check, naming the hook, and test/broken-plugin.test.ts covers what the framework does then",
  run: () => Promise.resolve(skip('not supported')),
};

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
