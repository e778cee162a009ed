/**
 * The version handshake at load: the plugin names the plugin API it was built
 * for and the host answers with its own (issue 19, item 1: `manifest.api`).
 * Until the loader has one, the check is skipped, saying so.
 */
import { fail, pass, skip, type Check } from '../types.ts';

/** The API versions a load reply names, if the loader reports any: the host's and the plugin's. */
function apiOf(reply: unknown): { host?: unknown; plugin?: unknown } | undefined {
  const r = reply as Record<string, unknown> | null;
  if (!r || typeof r !== 'object' || !('api' in r)) return undefined;
  const api = r.api;
  if (api !== null && typeof api === 'object') return api as { host?: unknown; plugin?: unknown };
  return { plugin: api };
}

export const handshakeCheck: Check = {
  id: 'handshake',
  title: 'plugin API version handshake',
  async run(ctx) {
    const apis = ctx.loadReplies.map(apiOf);
    if (apis.every((a) => a === undefined))
      return skip(`the loader has no plugin API version yet (issue 19, item 1: manifest.api); the load answered ${JSON.stringify(ctx.loadReplies[0])}`);
    const missing = ctx.hosts.filter((_, i) => apis[i] === undefined);
    if (missing.length) return fail(`${missing.join(', ')} answered the load without an API version, the others with one`);
    return pass(`API versions agreed: ${ctx.hosts.map((h, i) => `${h} ${JSON.stringify(apis[i])}`).join('; ')}`);
  },
};
