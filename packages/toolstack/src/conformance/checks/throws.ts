/**
 * A hook that throws: a copy of the plugin made to fail (fault-wrapper.ts)
 * runs under a stream. Its guest half throws from startXmit in the sender
 * once it has taken a quarter of the frames (the framework declines the frame
 * in hand, tells the backend, which must detach that vif its usual way), then
 * its dom0 half throws from linkChange when the sender's link comes back up
 * (the framework fails it on that host: its VIs are finalised under the
 * guests' frontends, which must account for what was on them). Every frame is
 * still delivered or counted, every vif of the failed host ends on the slow
 * path at both ends, and once the copy is unloaded nothing is held.
 */
import { dom0Stats, guestStats } from '../../stats.ts';
import { parseIp } from '@xsim/netstack';
import { accountedStream, streamProblems, streamSummary } from '../accounting.ts';
import { writeFaultyPlugin } from '../fault-wrapper.ts';
import { health, newTrouble, unloadEverywhere, waitAttached } from '../plugin-state.ts';
import { leaks, resources } from '../resources.ts';
import { detachProblems, vifViews } from '../vifs.ts';
import { afterSent, within } from '../waits.ts';
import { fail, pass, type Check, type CheckContext, type Verdict } from '../types.ts';

const MADE_TO = 'conformance: ';

/** With the faulty copy loaded as `copy.plugin.name`: the stream, the failures made on purpose, and what must follow. */
async function underFaults(ctx: CheckContext, copy: CheckContext): Promise<{ problems: string[]; summary: string }> {
  const { sim } = ctx;
  const host = ctx.from.host;
  const after = Math.ceil(ctx.frames / 4);
  const before = health(copy, await sim.stats());
  const o = await accountedStream(copy, {
    count: ctx.frames,
    // No credit window: credits would be a second flow, whose frames on a torn-down VI are counted too but are not this stream's.
    window: 0,
    during: async (ended) => {
      await afterSent(sim, ctx.from, 2 * after, ctx.deadlineMs, ended);
      await within(sim, sim.setLink(host, false), ctx.deadlineMs, `link down on ${host}`);
      await within(sim, sim.setLink(host, true), ctx.deadlineMs, `link up on ${host}`);
    },
  });
  const s = await sim.stats();
  const problems = streamProblems(o);
  const name = copy.plugin.name;
  if (!dom0Stats(s, host).accel.failures.some((f) => f.plugin === name && f.hook === 'linkChange'))
    problems.push(`the backend's linkChange threw at link up on ${host}, but the plugin was not failed there`);
  // This time (a guest's last error stays when it is past): its error count grew, and the last one is ours.
  const fe = guestStats(s, ctx.from).vifs[0].accel;
  const errorsBefore = before.frontendErrors.get(`${ctx.from.domain} vif0`)?.n ?? 0;
  const threw = (fe?.pluginErrors ?? 0) > errorsBefore && fe?.lastError?.startsWith(`startXmit: ${MADE_TO}`) === true;
  if (ctx.accelerated && !threw)
    problems.push(`the frontend at ${ctx.from.host}/${ctx.from.domain} was made to throw from startXmit, but the guest saw no such error`);
  // The failures made on purpose are the point; any other is the plugin's own.
  problems.push(...newTrouble(before, health(copy, s)).filter((t) => !t.includes(MADE_TO)));
  let left: string[] = [];
  await sim
    .waitFor(
      'the failed host back on the slow path',
      async () =>
        (left = detachProblems(
          name,
          vifViews(sim, await sim.stats()).filter((v) => v.host === host),
        )).length === 0,
      ctx.deadlineMs,
    )
    .catch(() => problems.push(`after the plugin failed on ${host}: ${left.join('; ')}`));
  const fePart = threw
    ? 'its frontend threw from startXmit mid-stream (that vif went back to the slow path)'
    : copy.plugin.features.includes('vif')
      ? 'its frontend took no frame, so startXmit never threw'
      : 'it has no guest half';
  return { problems, summary: `${fePart}; its backend threw from linkChange at link up (failed on ${host}); ${streamSummary(o)}` };
}

export const throwsCheck: Check = {
  id: 'throws',
  title: 'a hook that throws',
  ownTrouble: true,
  async run(ctx): Promise<Verdict> {
    const { sim, plugin } = ctx;
    await unloadEverywhere(ctx);
    const faulty = writeFaultyPlugin(plugin, { frontendIp: parseIp(sim.domain(ctx.from).ip), frontendAfter: Math.ceil(ctx.frames / 4) });
    const copy: CheckContext = { ...ctx, plugin: { ...plugin, name: faulty.name } };
    try {
      await within(sim, sim.loadPlugin(faulty.dir, { args: plugin.args }), ctx.deadlineMs, `loading ${faulty.name} (the plugin made to throw)`);
      await waitAttached(copy);
      const r = await underFaults(ctx, copy);
      await unloadEverywhere(copy, faulty.name);
      if (ctx.baseline) r.problems.push(...leaks(ctx.baseline, resources(sim, await sim.stats())));
      if (r.problems.length) return fail(r.problems.join('; '));
      return pass(`${r.summary}; every vif back on the slow path, nothing held once unloaded`);
    } finally {
      ctx.wedged ??= copy.wedged;
      faulty.remove();
    }
  },
};
