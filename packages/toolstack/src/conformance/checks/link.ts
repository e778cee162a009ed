/**
 * Link down and up: while the sender's link is down every frame of a stream
 * is counted where it died (linkDownDrops, or the plugin's own counters);
 * once it is up, the plugin carries traffic again as before.
 */
import { accountedStream, dropList, streamProblems } from '../accounting.ts';
import { ensureLoaded } from '../plugin-state.ts';
import { backToNormal } from '../quiet.ts';
import { within } from '../waits.ts';
import { fail, pass, type Check } from '../types.ts';

export const linkCheck: Check = {
  id: 'link',
  title: 'link down/up',
  async run(ctx) {
    await ensureLoaded(ctx);
    const { sim } = ctx;
    const host = ctx.from.host;
    // The stream's ARP is answered now: with the link down it could not be (an entry may have aged out).
    await within(sim, sim.request(ctx.from, 'arp_resolve', { ip: sim.domain(ctx.to).ip }), ctx.deadlineMs, 'ARP before the link goes down');
    await within(sim, sim.setLink(host, false), ctx.deadlineMs, `link down on ${host}`);
    let o;
    try {
      o = await accountedStream(ctx, { count: Math.ceil(ctx.frames / 20), window: 0, timeoutMs: 1500 });
    } finally {
      await within(sim, sim.setLink(host, true), ctx.deadlineMs, `link up on ${host}`);
    }
    const problems = streamProblems(o).map((p) => `with the link down: ${p}`);
    const after = await backToNormal(ctx, 'link up');
    problems.push(...after.problems);
    if (problems.length) return fail(problems.join('; '));
    return pass(`link down on ${host}: ${o.r.sent} sent, ${o.r.delivered} delivered, the rest counted (${dropList(o.drops, 2)}); link up: ${after.summary}`);
  },
};
