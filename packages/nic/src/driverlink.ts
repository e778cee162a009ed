/**
 * Driverlink, after the sfc design: dom0's NIC driver is the primary driver;
 * accelerator backends attach to it as secondary drivers. They are told of the
 * NIC (probe/remove), of link changes, asked before an MTU change (any may
 * refuse, and then nobody changes), suspended around a NIC reset and resumed
 * after it, and may intercept the primary driver's data path to veto frames.
 */
import { declareCounters } from '@xsim/hypervisor';

/** Counted here, where they happen (the primary driver's stats show the vetoes, the accel manager's the errors). */
export const DRIVERLINK_COUNTERS = declareCounters('driverlink', {
  vetoedRx: { kind: 'drop', help: 'received frames a secondary driver vetoed' },
  vetoedTx: { kind: 'drop', help: 'frames to send that a secondary driver vetoed' },
  driverErrors: { kind: 'event', help: 'driverlink hook calls that threw (each took its driver off driverlink)' },
});

export interface NicInfo {
  alias: string;
  mac: number;
  mtu: number;
  vis: number;
  linkUp: boolean;
}

export interface SecondaryDriver {
  readonly name: string;
  /** A string is a refusal to bind, with the reason. */
  probe(nic: NicInfo): void | string;
  remove(): void;
  linkChange?(up: boolean): void;
  /** Return false (or a reason) to refuse the change. */
  mtuChangeRequest?(mtu: number): boolean | string;
  mtuChanged?(mtu: number): void;
  mtuChangeFailed?(mtu: number, reason: string): void;
  /** Before a NIC reset: stop using the hardware. resume() is called after. */
  suspend?(): void;
  resume?(): void;
  /** Data-path intercepts on the primary driver's queue: return true to veto the frame. */
  rxIntercept?(ram: Uint8Array, off: number, len: number): boolean;
  txIntercept?(ram: Uint8Array, off: number, len: number): boolean;
}

export interface DriverlinkEvents {
  /** What the primary driver saw, newest last (the tests and `xsim` read it). */
  log: string[];
}

/** Told when a secondary driver threw from a hook; the driver has already been taken off driverlink. */
export type DriverFailure = (d: SecondaryDriver, hook: string, error: Error) => void;

/**
 * A secondary driver that throws is a broken plugin, not a reason for dom0 to
 * fall over: it is taken off driverlink at once (its intercepts stop, a frame
 * it was inspecting passes: fail-open, as unloading it would), and the owner
 * hears of it through onFailure to release whatever else it held.
 */
export class Driverlink {
  private readonly drivers: SecondaryDriver[] = [];
  private rxHooks: SecondaryDriver[] = [];
  private txHooks: SecondaryDriver[] = [];
  readonly events: DriverlinkEvents = { log: [] };
  /** vetoedRx, vetoedTx, driverErrors: stored where declared (DRIVERLINK_COUNTERS). */
  readonly c = DRIVERLINK_COUNTERS.zero();
  onFailure: DriverFailure = () => {};

  constructor(readonly nic: () => NicInfo) {}

  /** Run one hook of `d`; if it throws, drop `d` and return `fallback`. */
  private call<T>(d: SecondaryDriver, hook: string, fn: () => T, fallback: T): T {
    try {
      return fn();
    } catch (e) {
      this.fail(d, hook, e instanceof Error ? e : new Error(String(e)));
      return fallback;
    }
  }

  private fail(d: SecondaryDriver, hook: string, error: Error): void {
    this.c.driverErrors++;
    const i = this.drivers.indexOf(d);
    if (i >= 0) {
      this.drivers.splice(i, 1);
      this.rehook();
    }
    this.note(`${d.name} failed in ${hook}: ${error.message}`);
    this.onFailure(d, hook, error);
  }

  get secondaries(): readonly SecondaryDriver[] {
    return this.drivers;
  }

  register(d: SecondaryDriver): void {
    if (this.drivers.some((x) => x.name === d.name)) throw new Error(`driverlink: a driver named ${d.name} is already registered`);
    let refused: void | string;
    try {
      refused = d.probe(this.nic());
    } catch (e) {
      throw new Error(`driverlink: ${d.name} failed in probe: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (typeof refused === 'string') throw new Error(`driverlink: ${d.name} refused the NIC: ${refused}`);
    this.drivers.push(d);
    this.rehook();
    this.note(`probe ${d.name}`);
  }

  unregister(d: SecondaryDriver): void {
    const i = this.drivers.indexOf(d);
    if (i < 0) return;
    this.drivers.splice(i, 1);
    this.rehook();
    this.note(`remove ${d.name}`);
    try {
      d.remove();
    } catch (e) {
      // Already off driverlink: all that is left to do is say so.
      this.c.driverErrors++;
      this.note(`${d.name} failed in remove: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private rehook(): void {
    this.rxHooks = this.drivers.filter((d) => d.rxIntercept);
    this.txHooks = this.drivers.filter((d) => d.txIntercept);
  }

  private note(s: string): void {
    this.events.log.push(s);
    if (this.events.log.length > 200) this.events.log.shift();
  }

  linkChange(up: boolean): void {
    this.note(`link ${up ? 'up' : 'down'}`);
    for (const d of [...this.drivers]) this.call(d, 'linkChange', () => d.linkChange?.(up), undefined);
  }

  /** Ask every secondary; returns the refusal reason, or undefined when all agreed. */
  negotiateMtu(mtu: number): string | undefined {
    for (const d of [...this.drivers]) {
      // A driver that throws is dropped, and so cannot hold the change up.
      const ok = this.call(d, 'mtuChangeRequest', () => d.mtuChangeRequest?.(mtu) ?? true, true);
      if (ok !== true) {
        const reason = `${d.name} refused MTU ${mtu}${typeof ok === 'string' ? `: ${ok}` : ''}`;
        this.note(`mtu ${mtu} refused by ${d.name}`);
        for (const x of [...this.drivers]) this.call(x, 'mtuChangeFailed', () => x.mtuChangeFailed?.(mtu, reason), undefined);
        return reason;
      }
    }
    return undefined;
  }

  mtuChanged(mtu: number): void {
    this.note(`mtu ${mtu}`);
    for (const d of [...this.drivers]) this.call(d, 'mtuChanged', () => d.mtuChanged?.(mtu), undefined);
  }

  suspend(): void {
    this.note('suspend');
    for (const d of [...this.drivers]) this.call(d, 'suspend', () => d.suspend?.(), undefined);
  }

  resume(): void {
    this.note('resume');
    for (const d of [...this.drivers]) this.call(d, 'resume', () => d.resume?.(), undefined);
  }

  vetoRx(ram: Uint8Array, off: number, len: number): boolean {
    if (this.intercept(this.rxHooks, 'rxIntercept', ram, off, len)) {
      this.c.vetoedRx++;
      return true;
    }
    return false;
  }

  vetoTx(ram: Uint8Array, off: number, len: number): boolean {
    if (this.intercept(this.txHooks, 'txIntercept', ram, off, len)) {
      this.c.vetoedTx++;
      return true;
    }
    return false;
  }

  /** Per frame, so no closure: a hook that throws is dropped and the frame goes on to the next. */
  private intercept(hooks: SecondaryDriver[], hook: 'rxIntercept' | 'txIntercept', ram: Uint8Array, off: number, len: number): boolean {
    for (let i = 0; i < hooks.length; i++) {
      const d = hooks[i];
      try {
        if (d[hook]!(ram, off, len)) return true;
      } catch (e) {
        this.fail(d, hook, e instanceof Error ? e : new Error(String(e)));
      }
    }
    return false;
  }
}
