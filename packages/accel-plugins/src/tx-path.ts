/**
 * What the VI-like plugins' frontends (vnic on the VI NIC, vdpa on the
 * virtio NIC) decide alike on TX: which frames stay off the fast path, and
 * the TX slot lent to the stack to build the next frame in (plugin API 1.3's
 * txBuffer), which the frame's startXmit takes back whatever it decides.
 */
import { readMac } from '@xsim/hypervisor';

/** Why a frame stays on the slow path: the fast path is not up, broadcast/multicast, ARP, or a destination the NIC does not reach. */
export type TxDecline = 'notReady' | 'multicast' | 'arp' | 'unknown';

/**
 * Why the frame at `src[off]` is declined, or null if the fast path may take
 * it: `up` (attached, running, not draining), its destination a MAC behind
 * the uplink (`fast`) or a guest of this host (`local`, dom0's localmac).
 */
export function txDecline(up: boolean, fast: ReadonlySet<number>, local: ReadonlySet<number>, src: Uint8Array, off: number): TxDecline | null {
  if (!up) return 'notReady';
  if (src[off] & 1) return 'multicast';
  if (src[off + 12] === 0x08 && src[off + 13] === 0x06) return 'arp';
  const dst = readMac(src, off);
  return fast.has(dst) || local.has(dst) ? null : 'unknown';
}

/** The TX slot txBuffer lent the stack (at most one at a time), taken back by the next startXmit. */
export class LentSlot {
  private slot = -1;

  /** Lend a slot from `free` (the one lent before, never used, goes back first); -1 if none is free. */
  lend(free: number[]): number {
    this.giveBack(free);
    this.slot = free.pop() ?? -1;
    return this.slot;
  }

  /** The slot lent for the frame now offered (-1: none); it is the caller's from here. */
  take(): number {
    const s = this.slot;
    this.slot = -1;
    return s;
  }

  /** A slot lent and not used goes back to `free`. */
  giveBack(free: number[]): void {
    if (this.slot >= 0) free.push(this.slot);
    this.slot = -1;
  }

  /** Forget the lend (a new attachment starts with every slot free). */
  reset(): void {
    this.slot = -1;
  }
}
