/**
 * The wake word of a worker (a domain or the NIC hardware): two Int32 words,
 * [0] a counter and [1] an "asleep" flag.
 *
 * Everything that may give a worker work (an event-channel send, a control
 * message, a xenstore reply or watch event, a NIC doorbell) bumps the counter.
 * A worker takes a snapshot before it polls its sources and only sleeps if the
 * counter is still at that snapshot, so a kick that races with the poll is
 * never lost. The flag spares the kicker an Atomics.notify (a lock and a
 * futex call in V8) while the worker is awake or spinning: the sleeper sets it
 * before it waits, the kicker bumps the counter before it reads it, and with
 * sequentially consistent atomics either the kicker sees the flag or the
 * sleeper sees the new count.
 */
export const WAKE_WORD_BYTES = 8;

export class WakeWord {
  readonly i32: Int32Array;
  readonly index: number;

  constructor(sab: SharedArrayBuffer, byteOffset = 0) {
    if (byteOffset % 4 !== 0) throw new RangeError(`wake word offset ${byteOffset} is not 4-byte aligned`);
    if (byteOffset + WAKE_WORD_BYTES > sab.byteLength)
      throw new RangeError(`wake word at ${byteOffset} needs ${WAKE_WORD_BYTES} bytes; the buffer has ${sab.byteLength}`);
    this.i32 = new Int32Array(sab, byteOffset, 2);
    this.index = 0;
  }

  static create(): WakeWord {
    return new WakeWord(new SharedArrayBuffer(WAKE_WORD_BYTES));
  }

  get sab(): SharedArrayBuffer {
    return this.i32.buffer as SharedArrayBuffer;
  }

  /** The counter value to pass to {@link sleep} after polling. */
  snapshot(): number {
    return Atomics.load(this.i32, 0);
  }

  /** Give the owner work: bump the counter, and wake it if it sleeps. */
  kick(): void {
    kickWord(this.i32, 0);
  }

  /**
   * Block until kicked after `seen` was read, or until `timeoutMs` passes.
   * Returns immediately ('not-equal') if a kick already happened since the snapshot.
   */
  sleep(seen: number, timeoutMs: number): 'ok' | 'not-equal' | 'timed-out' {
    Atomics.store(this.i32, 1, 1);
    const r = Atomics.wait(this.i32, 0, seen, timeoutMs);
    Atomics.store(this.i32, 1, 0);
    return r;
  }
}

/** kick() on a wake word laid out at i32[at] (counter) and i32[at + 1] (asleep flag). */
export function kickWord(i32: Int32Array, at: number): void {
  Atomics.add(i32, at, 1);
  if (Atomics.load(i32, at + 1) !== 0) Atomics.notify(i32, at);
}
