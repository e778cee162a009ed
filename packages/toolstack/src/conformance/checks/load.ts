/**
 * Load: the plugin is vetted and loads on every host's dom0, each answering
 * its name and version. Once the loader has vetted it (its modules settle),
 * the suite reads its manifest's features to know which checks apply.
 */
import { loadEverywhere } from '../plugin-state.ts';
import { fail, pass, type Check, type CheckContext } from '../types.ts';

/** The manifest's version and features, from the backend module the loader has just vetted and loaded. */
async function describe(ctx: CheckContext): Promise<void> {
  const mod = (await import(ctx.plugin.backend)) as { manifest?: { version?: unknown; features?: unknown } };
  const m = mod.manifest;
  if (typeof m?.version === 'string') ctx.plugin.version = m.version;
  if (Array.isArray(m?.features)) ctx.plugin.features = m.features.filter((f): f is string => typeof f === 'string');
}

export const loadCheck: Check = {
  id: 'load',
  title: 'load on every host',
  async run(ctx) {
    const replies = await loadEverywhere(ctx, { attach: false });
    ctx.loadReplies = replies;
    await describe(ctx);
    const shown = replies.map((r, i) => {
      const x = r as { name?: unknown; version?: unknown; vifs?: unknown } | null;
      return `${ctx.hosts[i]}: ${String(x?.name)} ${String(x?.version)}${typeof x?.vifs === 'number' ? ` (${x.vifs} vifs offered)` : ''}`;
    });
    const wrong = replies.find((r) => (r as { name?: unknown } | null)?.name !== ctx.plugin.name);
    if (wrong !== undefined) return fail(`a host answered the load as ${JSON.stringify(wrong)}, not as plugin ${ctx.plugin.name}`);
    return pass(`loaded: ${shown.join('; ')}`);
  },
};
