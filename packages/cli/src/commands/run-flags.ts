/** `xsim run`'s flags that take some checking of their own: --plugin-args, --nics, --port and --src-port. */
import { NIC_MODELS, isNicModelName, type NicModelName } from '@xsim/toolstack';
import { intFlag, jsonObjectFlag, type Parsed } from '../args.ts';

/** --plugin-args: a JSON object, and only with --plugin. */
export function pluginArgs(p: Parsed): Record<string, unknown> | undefined {
  if (p.flags.has('plugin-args') && !p.flags.has('plugin')) throw new Error('--plugin-args goes with --plugin NAME (the plugin they are for)');
  const names = p.flags.get('plugin');
  if (p.flags.has('plugin-args') && typeof names === 'string' && names.includes(','))
    throw new Error(`--plugin-args goes with one plugin, not a list (${names}): load the others with xsim plugin load NAME --args JSON`);
  return jsonObjectFlag(p, 'plugin-args');
}

/** --nics MODEL[,MODEL]: the built-in topology's NIC models (host-a's, host-b's; one name for both). */
export function nicsFlag(p: Parsed): [NicModelName, NicModelName] | undefined {
  const v = p.flags.get('nics');
  if (v === undefined) return undefined;
  if (p.positional[0]) throw new Error("--nics chooses the built-in topology's NICs; a topology file names its own (a host's nic.vendor and nic.device)");
  const names = String(v).split(',');
  const bad = names.find((n) => !isNicModelName(n));
  if (bad !== undefined || names.length > 2)
    throw new Error(`--nics takes one or two of ${Object.keys(NIC_MODELS).join(', ')} (host-a's, host-b's), got ${JSON.stringify(String(v))}`);
  const m = names as NicModelName[];
  return [m[0], m[1] ?? m[0]];
}

/** --port and --src-port, each 1..65535 and not the same. */
export function ports(p: Parsed): { port?: number; srcPort?: number } {
  const port = p.flags.has('port') ? intFlag(p, 'port', 0, 1, 65535) : undefined;
  const srcPort = p.flags.has('src-port') ? intFlag(p, 'src-port', 0, 1, 65535) : undefined;
  if (port !== undefined && port === srcPort) throw new Error(`--port and --src-port are both ${port}: the credits would come back to the receiver's port`);
  return { ...(port !== undefined ? { port } : {}), ...(srcPort !== undefined ? { srcPort } : {}) };
}
