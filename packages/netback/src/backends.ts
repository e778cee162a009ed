/**
 * netback's xenbus driver: watches dom0's backend/vif directory, where the
 * toolstack creates one node per vif (as libxl does), and runs a VifBackend
 * for each, removing it when the toolstack removes the node.
 */
import { VIF_KEY, vifBackendRoot } from '@xsim/hypervisor';
import { VifBackend } from './vif/xenbus.ts';
import type { VifDeps, XsLike } from './vif/common.ts';
import { listOrEmpty } from './xs-util.ts';

export class VifBackends {
  readonly vifs = new Map<string, VifBackend>();
  private readonly root: string;

  constructor(
    private readonly deps: VifDeps,
    private readonly xs: XsLike,
    dom0: number,
  ) {
    this.root = vifBackendRoot(dom0);
  }

  start(): void {
    this.xs.watch(this.root, 'netback', () => this.scan());
  }

  private scan(): void {
    const seen = new Set<string>();
    for (const dom of listOrEmpty(this.xs, this.root)) {
      for (const handle of listOrEmpty(this.xs, `${this.root}/${dom}`)) {
        const key = `${dom}/${handle}`;
        seen.add(key);
        if (this.vifs.has(key)) continue;
        // The node appears before the toolstack has filled it in; wait for its state key.
        if (this.xs.tryRead(`${this.root}/${key}/${VIF_KEY.frontend}`) === undefined) continue;
        if (this.xs.tryRead(`${this.root}/${key}/${VIF_KEY.state}`) === undefined) continue;
        const vif = new VifBackend(this.deps, Number(dom), Number(handle));
        this.vifs.set(key, vif);
        vif.probe();
      }
    }
    for (const [key, vif] of this.vifs) {
      if (!seen.has(key)) {
        vif.close();
        this.vifs.delete(key);
      }
    }
  }

  poll(): number {
    let n = 0;
    for (const vif of this.vifs.values()) n += vif.poll();
    return n;
  }
}
