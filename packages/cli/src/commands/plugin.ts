/** `xsim plugin list|load|unload`: accelerator plugins on a running simulation. */
import { table } from '@xsim/toolstack';
import type { ManageVerb } from './manage-verb.ts';

type Json = Record<string, unknown>;

const pluginList: ManageVerb = async ({ call, out }) => {
  const list = await call('plugin.list');
  return out(list, () =>
    list.length
      ? table(
          ['host', 'plugin', 'version', 'vifs', 'unloading'],
          list.map((x) => [x.host, x.name, x.version, x.vifs, x.unloading ? 'yes' : 'no']),
        )
      : 'no plugins loaded',
  );
};

const pluginLoad: ManageVerb = async ({ p, rest, verb, call, out, host }) => {
  if (!rest[0]) throw new Error(`usage: xsim plugin ${verb} NAME [--host H]`);
  let args: Json = {};
  const a = p.flags.get('args');
  if (typeof a === 'string') {
    try {
      args = JSON.parse(a) as Json;
    } catch (e) {
      throw new Error(`--args is not JSON: ${(e as Error).message}`);
    }
  }
  // Only what was given: an absent --host is no host key at all, not an undefined one.
  const where = { name: rest[0], ...(host !== undefined ? { host } : {}) };
  const v = verb === 'load' ? await call('plugin.load', { ...where, args }) : await call('plugin.unload', where);
  return out(v, () => `plugin ${rest[0]} ${verb === 'load' ? 'loaded' : 'unloaded'}${host ? ` on ${host}` : ' on every host'}`);
};

/** plugin VERB -> its handler. */
export const PLUGIN_VERBS: Record<string, ManageVerb> = {
  list: pluginList,
  load: pluginLoad,
  unload: pluginLoad,
};
