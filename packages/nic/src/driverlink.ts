/**
 * Driverlink, after the sfc design: dom0's NIC driver is the primary driver;
 * accelerator backends attach to it as secondary drivers. They are told of the
 * NIC (probe/remove), of link changes, asked before an MTU change (any may
 * refuse, and then nobody changes), suspended around a NIC reset and resumed
 * after it, and may intercept the primary driver's data path to veto frames.
 */
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

export class Driverlink {
  private readonly drivers: SecondaryDriver[] = [];
  private rxHooks: SecondaryDriver[] = [];
  private txHooks: SecondaryDriver[] = [];
  readonly events: DriverlinkEvents = { log: [] };
  vetoedRx = 0;
  vetoedTx = 0;

  constructor(readonly nic: () => NicInfo) {}

  get secondaries(): readonly SecondaryDriver[] {
    return this.drivers;
  }

  register(d: SecondaryDriver): void {
    if (this.drivers.some((x) => x.name === d.name)) throw new Error(`driverlink: a driver named ${d.name} is already registered`);
    const refused = d.probe(this.nic());
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
    d.remove();
    this.note(`remove ${d.name}`);
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
    for (const d of this.drivers) d.linkChange?.(up);
  }

  /** Ask every secondary; returns the refusal reason, or undefined when all agreed. */
  negotiateMtu(mtu: number): string | undefined {
    for (const d of this.drivers) {
      const ok = d.mtuChangeRequest?.(mtu) ?? true;
      if (ok !== true) {
        const reason = `${d.name} refused MTU ${mtu}${typeof ok === 'string' ? `: ${ok}` : ''}`;
        this.note(`mtu ${mtu} refused by ${d.name}`);
        for (const x of this.drivers) x.mtuChangeFailed?.(mtu, reason);
        return reason;
      }
    }
    return undefined;
  }

  mtuChanged(mtu: number): void {
    this.note(`mtu ${mtu}`);
    for (const d of this.drivers) d.mtuChanged?.(mtu);
  }

  suspend(): void {
    this.note('suspend');
    for (const d of this.drivers) d.suspend?.();
  }

  resume(): void {
    this.note('resume');
    for (const d of this.drivers) d.resume?.();
  }

  vetoRx(ram: Uint8Array, off: number, len: number): boolean {
    for (let i = 0; i < this.rxHooks.length; i++) {
      if (this.rxHooks[i].rxIntercept!(ram, off, len)) {
        this.vetoedRx++;
        return true;
      }
    }
    return false;
  }

  vetoTx(ram: Uint8Array, off: number, len: number): boolean {
    for (let i = 0; i < this.txHooks.length; i++) {
      if (this.txHooks[i].txIntercept!(ram, off, len)) {
        this.vetoedTx++;
        return true;
      }
    }
    return false;
  }
}
