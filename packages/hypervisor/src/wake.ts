/**
 * The wake word of a worker (a domain or the NIC hardware).
 *
 * Everything that may give a worker work (an event-channel send, a control
 * message, a xenstore reply or watch event, a NIC doorbell) bumps the same
 * 32-bit counter and notifies it. A worker takes a snapshot before it polls its
 * sources and only sleeps if the counter is still at that snapshot, so a kick
 * that races with the poll is never lost.
 */
export class WakeWord {
  readonly i32: Int32Array;
  readonly index: number;

  constructor(sab: SharedArrayBuffer, byteOffset = 0) {
    if (byteOffset % 4 !== 0) throw new RangeError(`wake word offset ${byteOffset} is not 4-byte aligned`);
    this.i32 = new Int32Array(sab, byteOffset, 1);
    this.index = 0;
  }

  static create(): WakeWord {
    return new WakeWord(new SharedArrayBuffer(4));
  }

  get sab(): SharedArrayBuffer {
    return this.i32.buffer as SharedArrayBuffer;
  }

  /** The counter value to pass to {@link sleep} after polling. */
  snapshot(): number {
    return Atomics.load(this.i32, 0);
  }

  /** Give the owner work: bump the counter and wake it if it sleeps. */
  kick(): void {
    Atomics.add(this.i32, 0, 1);
    Atomics.notify(this.i32, 0);
  }

  /**
   * Block until kicked after `seen` was read, or until `timeoutMs` passes.
   * Returns immediately if a kick already happened since the snapshot.
   */
  sleep(seen: number, timeoutMs: number): void {
    Atomics.wait(this.i32, 0, seen, timeoutMs);
  }
}
