/**
 * The bundled accelerator plugins and how to find a plugin's modules. A plugin
 * is a directory with backend.ts (exports `manifest` and `createBackend`, runs
 * in dom0) and, for vif accelerators, frontend.ts (exports `createFrontend`,
 * runs in the guest). Domains load them at run time by URL.
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export const BUNDLED = ['vnic', 'null', 'firewall', 'vdpa'] as const;

export interface PluginModules {
  name: string;
  backend: string;
  /** Absent for a plugin without a guest part (a data-path intercept). */
  frontend?: string;
}

/** Resolve a bundled plugin name or a plugin directory path to module URLs. */
export function pluginModules(nameOrPath: string): PluginModules {
  let dir: string;
  let name: string;
  if ((BUNDLED as readonly string[]).includes(nameOrPath)) {
    dir = new URL(`./${nameOrPath}/`, import.meta.url).pathname;
    name = nameOrPath;
  } else {
    dir = isAbsolute(nameOrPath) ? nameOrPath : resolve(nameOrPath);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new Error(`no plugin "${nameOrPath}": not one of ${BUNDLED.join(', ')} and not a plugin directory`);
    }
    name = dir.split('/').filter(Boolean).pop()!;
  }
  const backend = join(dir, 'backend.ts');
  if (!existsSync(backend)) throw new Error(`plugin ${name}: ${backend} is missing`);
  const frontend = join(dir, 'frontend.ts');
  return { name, backend: pathToFileURL(backend).href, frontend: existsSync(frontend) ? pathToFileURL(frontend).href : undefined };
}
