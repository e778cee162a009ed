/**
 * Intercept plugins: the stream crosses both hosts' primary drivers, so each
 * frame passes the plugin's txIntercept on the sender's host and its
 * rxIntercept on the receiver's; what it vetoes is counted (driverlink's
 * vetoedTx/vetoedRx, drops in conservation) and nothing else goes missing.
 */
import { dom0Stats, type StatsTree } from '../../stats.ts';
import { accountedStream, streamProblems } from '../accounting.ts';
import { ensureLoaded } from '../plugin-state.ts';
import { fail, pass, type Check, type CheckContext } from '../types.ts';

/** Numeric counters of the plugin's own stats (dom0's accel.plugins.NAME) that grew on `host`. */
function moved(ctx: CheckContext, before: StatsTree, after: StatsTree, host: string): string[] {
  const b = dom0Stats(before, host).accel.plugins[ctx.plugin.name] ?? {};
  const a = dom0Stats(after, host).accel.plugins[ctx.plugin.name] ?? {};
  return Object.entries(a)
    .filter(([k, v]) => typeof v === 'number' && typeof b[k] === 'number' && v > b[k])
    .map(([k, v]) => `${host} ${k} +${(v as number) - (b[k] as number)}`);
}

export const interceptCheck: Check = {
  id: 'intercept',
  title: 'intercept hooks see frames, vetoes counted',
  skip: (ctx) => (ctx.plugin.features.includes('intercept') ? undefined : 'not an intercept plugin'),
  async run(ctx) {
    await ensureLoaded(ctx);
    const o = await accountedStream(ctx, { count: Math.ceil(ctx.frames / 4) });
    const problems = streamProblems(o);
    if (problems.length) return fail(problems.join('; '));
    const [tx, rx] = [ctx.from.host, ctx.to.host];
    const nic = (s: StatsTree, h: string) => dom0Stats(s, h).nic;
    const crossedTx = (nic(o.after, tx)?.txPosted ?? 0) - (nic(o.before, tx)?.txPosted ?? 0);
    const crossedRx = (nic(o.after, rx)?.rxFrames ?? 0) - (nic(o.before, rx)?.rxFrames ?? 0);
    const vetoedTx = (nic(o.after, tx)?.vetoedTx ?? 0) - (nic(o.before, tx)?.vetoedTx ?? 0);
    const vetoedRx = (nic(o.after, rx)?.vetoedRx ?? 0) - (nic(o.before, rx)?.vetoedRx ?? 0);
    if (crossedTx + vetoedTx === 0) return fail(`no frame of the stream reached ${tx}'s primary driver, so the intercept hooks saw none`);
    const own = [...moved(ctx, o.before, o.after, tx), ...moved(ctx, o.before, o.after, rx)];
    const seen = own.length ? `its own counters moved (${own.join(', ')})` : 'its own stats show no counter that moved';
    return pass(
      `${crossedTx + vetoedTx} frames offered to txIntercept on ${tx}, ${crossedRx + vetoedRx} to rxIntercept on ${rx}; ${seen}; vetoed ${vetoedTx} TX + ${vetoedRx} RX, each counted; ${o.r.delivered} of ${o.r.sent} delivered${o.r.delivered < o.r.sent ? ', the rest counted' : ''}`,
    );
  },
};
