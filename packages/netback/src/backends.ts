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
  /**
   * The final stats of every vif that was removed, by name (domids are not
   * reused): a frame a removed vif dropped stays counted, under the same name,
   * after it is gone.
   */
  readonly removed = new Map<string, ReturnType<VifBackend['stats']> & { key: string; removed: true }>();
  private readonly root: string;

  constructor(
    private readonly deps: VifDeps,
    private readonly xs: XsLike,
    dom0: number,
  ) {
    this.root = vifBackendRoot(dom0);
  }

  start(): void {
    this.xs.watch(this.root, 'netback', (path) => this.changed(path));
  }

  /**
   * The watch fired for `path`. Like Linux's xenbus (xenbus_dev_changed), look
   * only at the device the path names: a write under a vif node the backend
   * already runs needs no xenstore call at all, so bringing up N vifs costs
   * O(N) requests, not a rescan of the whole directory per write (O(N^2)).
   * The registration event and a change to the root or a domain directory
   * rescan what they cover.
   */
  private changed(path: string): void {
    if (!path.startsWith(this.root)) return;
    const parts = path
      .slice(this.root.length)
      .split('/')
      .filter((x) => x !== '');
    if (parts.length === 0) return this.scan();
    if (parts.length === 1) return this.scanDomain(parts[0]);
    const key = `${parts[0]}/${parts[1]}`;
    // Writes inside a running vif's node (its state, features, our own keys): nothing to do,
    // except when the node itself changed (removed, or re-created), which fires with its path.
    if (this.vifs.has(key) && parts.length > 2) return;
    this.consider(parts[0], parts[1]);
  }

  private scan(): void {
    const doms = listOrEmpty(this.xs, this.root);
    for (const dom of doms) this.scanDomain(dom);
    const live = new Set(doms);
    for (const key of [...this.vifs.keys()]) if (!live.has(key.split('/')[0])) this.drop(key);
  }

  private scanDomain(dom: string): void {
    const handles = listOrEmpty(this.xs, `${this.root}/${dom}`);
    for (const handle of handles) this.consider(dom, handle);
    const live = new Set(handles);
    for (const key of [...this.vifs.keys()]) {
      const [d, h] = key.split('/');
      if (d === dom && !live.has(h)) this.drop(key);
    }
  }

  /** One vif node: start its backend once the toolstack has filled it in; close it when the node is gone. */
  private consider(dom: string, handle: string): void {
    const key = `${dom}/${handle}`;
    const node = `${this.root}/${key}`;
    if (this.vifs.has(key)) {
      if (this.xs.tryRead(node) === undefined) this.drop(key);
      return;
    }
    // The node appears before the toolstack has filled it in; wait for its frontend and state keys.
    if (this.xs.tryRead(`${node}/${VIF_KEY.frontend}`) === undefined) return;
    if (this.xs.tryRead(`${node}/${VIF_KEY.state}`) === undefined) return;
    const vif = new VifBackend(this.deps, Number(dom), Number(handle));
    this.vifs.set(key, vif);
    vif.probe();
  }

  private drop(key: string): void {
    const vif = this.vifs.get(key);
    if (!vif) return;
    vif.remove();
    this.vifs.delete(key);
    this.removed.set(vif.name, { ...vif.stats(), key, removed: true });
  }

  /** The toolstack removed one vif (hotplug): remove it now, whatever the watch has delivered so far. */
  dropVif(key: string): void {
    this.drop(key);
  }

  /** The toolstack is taking domain `domid` away: remove every vif of it now, whatever the watch has delivered so far. */
  dropDomain(domid: number): number {
    let n = 0;
    for (const key of [...this.vifs.keys()]) {
      if (key.split('/')[0] !== String(domid)) continue;
      this.drop(key);
      n++;
    }
    return n;
  }

  poll(): number {
    let n = 0;
    for (const vif of this.vifs.values()) n += vif.poll();
    return n;
  }

  /** The soonest credit timer of a rate-limited vif (Infinity: none): dom0 wakes for it. */
  nextDeadline(): number {
    let t = Infinity;
    for (const vif of this.vifs.values()) t = Math.min(t, vif.nextDeadline());
    return t;
  }
}
