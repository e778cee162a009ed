/**
 * A xenstore watch a connected vif holds (Linux's xen_register_watchers:
 * the backend's rate node, the frontend's request-multicast-control): set at
 * connect, where it fires once at once, and taken off at disconnect.
 */
import type { XsLike } from './common.ts';

export class NodeWatch {
  private on = false;

  constructor(
    private readonly xs: XsLike,
    readonly path: string,
    private readonly token: string,
    private readonly changed: (value: string | undefined) => void,
  ) {}

  start(): void {
    if (this.on) return;
    this.on = true;
    this.xs.watch(this.path, this.token, () => this.changed(this.xs.tryRead(this.path)));
  }

  stop(): void {
    if (!this.on) return;
    this.on = false;
    try {
      this.xs.unwatch(this.path, this.token);
    } catch {
      // Released with its domain already.
    }
  }
}
