/**
 * Accelerator plugins from the toolstack's side: resolve a bundled name or a
 * directory to module URLs, vet the modules in a throwaway worker before any
 * domain imports them, and load or unload the plugin in the dom0 of every host
 * whose NIC it drives (or one host's). A plugin binds to a NIC only if its
 * aliases match.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { pluginModules } from '@xsim/accel-plugins';
import { vetPlugin } from './plugins/vet.ts';
import type { DomainRef, ToolstackContext } from './context.ts';
import type { GuestStats } from './stats.ts';
import { nicAlias } from './topo/index.ts';

export class PluginOps {
  constructor(
    private readonly ctx: ToolstackContext,
    private readonly vetMs?: number,
  ) {}

  async load(name: string, opts: { host?: string; args?: Record<string, unknown> } = {}): Promise<unknown[]> {
    const mod = pluginModules(name);
    this.ctx.hostNames(opts.host);
    if (opts.args !== undefined && (opts.args === null || typeof opts.args !== 'object' || Array.isArray(opts.args)))
      throw new Error(`plugin ${mod.name}: arguments must be a JSON object, got ${JSON.stringify(opts.args)}`);
    // No domain imports a module that has not first loaded cleanly in a throwaway worker.
    const vet = await this.ctx.runtime.hold(vetPlugin(mod, this.vetMs, opts.args ?? {}));
    const hosts = this.hostsFor(mod.name, vet.matches, opts.host);
    const out: unknown[] = [];
    const done: string[] = [];
    for (const host of hosts) {
      try {
        out.push(
          await this.ctx.request(
            { host, domain: 'dom0' },
            'plugin_load',
            { name: mod.name, backend: mod.backend, frontend: mod.frontend, args: opts.args ?? {} },
            30_000,
          ),
        );
      } catch (e) {
        // All hosts or none: the hosts it reached before the refusal let it go again, and the error says so.
        const undone = await this.undo(mod.name, done);
        throw new Error(`${e instanceof Error ? e.message : String(e)} (on ${host}${undone})`);
      }
      done.push(host);
    }
    return out;
  }

  /**
   * Where a load goes: the host asked for (refused there, naming the NIC, if
   * the plugin does not drive it), or else every host whose NIC the plugin
   * matches, as a module alias loads a driver only where its hardware is; a
   * plugin matching no host's NIC is refused with every host's NIC named.
   */
  private hostsFor(name: string, matches: string[], host: string | undefined): string[] {
    if (host !== undefined || matches.includes('*')) return this.ctx.hostNames(host);
    const nics = this.ctx.hosts.map((h) => ({ host: h.spec.name, alias: nicAlias(h.spec.nic.vendor, h.spec.nic.device) }));
    const hosts = nics.filter((n) => matches.includes(n.alias)).map((n) => n.host);
    if (hosts.length === 0)
      throw new Error(`plugin ${name} drives ${matches.join(', ')}; no host's NIC is one of them (${nics.map((n) => `${n.host}: ${n.alias}`).join(', ')})`);
    return hosts;
  }

  /** Unload `name` from `hosts` after a load refused elsewhere; says what was undone, and what could not be. */
  private async undo(name: string, hosts: string[]): Promise<string> {
    if (hosts.length === 0) return '';
    const failed: string[] = [];
    for (const host of hosts) await this.ctx.request({ host, domain: 'dom0' }, 'plugin_unload', { name }, 30_000).catch(() => failed.push(host));
    const ok = hosts.filter((h) => !failed.includes(h));
    return `; unloaded again from ${ok.join(', ') || 'none'}${failed.length ? `; could not unload it from ${failed.join(', ')}` : ''}`;
  }

  /** Unload: every vif using it detaches (drains, falls back to the slow path) first. */
  async unload(nameOrPath: string, opts: { host?: string } = {}): Promise<unknown[]> {
    // A plugin loaded by path may be unloaded by that path (or by its name).
    const dir = resolvePath(nameOrPath);
    const name = existsSync(dir) && statSync(dir).isDirectory() ? pluginModules(nameOrPath).name : nameOrPath;
    const out: unknown[] = [];
    const hosts = this.ctx.hostNames(opts.host);
    for (const host of hosts) {
      try {
        out.push(await this.ctx.request({ host, domain: 'dom0' }, 'plugin_unload', { name }, 30_000));
      } catch (e) {
        // Without --host: the hosts it was never loaded on (their NIC is not one it drives) are passed by.
        if (opts.host !== undefined || !(e instanceof Error && e.message.endsWith(`plugin ${name} is not loaded`))) throw e;
      }
    }
    if (out.length === 0) throw new Error(`plugin ${name} is not loaded on any host (${hosts.join(', ')})`);
    return out;
  }

  /**
   * Wait until every vif of each guest in `refs` has its fast path up: a
   * frontend attached (of `plugin`, if named) whose stats say `ready: true`
   * (docs/plugins.md: getStats). A plugin's load returns once each dom0 has
   * it; its frontends attach after (xenstore, the channel's handshake, the
   * DMA area), which on a loaded machine takes a while: what measures the
   * fast path waits for this first. On timeout the error names each vif not
   * up and what its accelerator host says (plugin, attachments, lastError).
   */
  async waitAccelerated(refs: readonly DomainRef[], o: { plugin?: string; timeoutMs?: number } = {}): Promise<void> {
    const notUp = new Map<string, string>();
    const up = async (): Promise<boolean> => {
      notUp.clear();
      for (const ref of refs) {
        const g = (await this.ctx.kernelStats(this.ctx.domain(ref))) as GuestStats;
        for (const v of g.vifs) {
          const a = v.accel;
          if (a?.current?.ready === true && (o.plugin === undefined || a.plugin === o.plugin)) continue;
          const say = a ? { plugin: a.plugin, attachments: a.attachments, ready: a.current?.ready ?? null, lastError: a.lastError } : null;
          notUp.set(`${ref.host}/${ref.domain}/vif${v.handle}`, JSON.stringify(say));
        }
      }
      return notUp.size === 0;
    };
    const what = `${refs.map((r) => `${r.host}/${r.domain}`).join(', ')} accelerated${o.plugin ? ` by ${o.plugin}` : ''}`;
    try {
      await this.ctx.waitFor(what, up, o.timeoutMs);
    } catch (e) {
      throw new Error(`${e instanceof Error ? e.message : String(e)}: not up: ${[...notUp].map(([k, v]) => `${k} ${v}`).join('; ')}`);
    }
  }
}
