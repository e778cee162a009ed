/**
 * Counts a sequenced stream at the receiver: first-time deliveries,
 * duplicates, reordering, and (with the expected total) losses. Memory is
 * bounded: a bitmap window behind the highest sequence seen; anything older
 * than the window is counted as tooOld, never silently ignored.
 */
export const SEQ_WINDOW = 1 << 16;

export interface SeqStats {
  delivered: number;
  duplicated: number;
  reordered: number;
  tooOld: number;
  lost: number;
  highest: number;
  /** The first few reorderings seen, as [seq, highest-at-the-time], to locate them. */
  reorderSamples: [number, number][];
}

export interface SeqTrackerState {
  bits: Uint8Array;
  highest: number;
  delivered: number;
  duplicated: number;
  reordered: number;
  tooOld: number;
  samples: [number, number][];
}

export class SeqTracker {
  private readonly bits = new Uint32Array(SEQ_WINDOW / 32);
  private highest = -1;
  delivered = 0;
  duplicated = 0;
  reordered = 0;
  tooOld = 0;
  private readonly reorderSamples: [number, number][] = [];

  private test(seq: number): boolean {
    const i = seq & (SEQ_WINDOW - 1);
    return (this.bits[i >>> 5] & (1 << (i & 31))) !== 0;
  }

  private set(seq: number, on: boolean): void {
    const i = seq & (SEQ_WINDOW - 1);
    if (on) this.bits[i >>> 5] |= 1 << (i & 31);
    else this.bits[i >>> 5] &= ~(1 << (i & 31));
  }

  /** Record one arrival. Returns true if it was a first-time delivery. */
  add(seq: number): boolean {
    if (seq > this.highest) {
      // Slots between the old highest and seq become the window's new (empty) front.
      const gap = seq - this.highest;
      if (gap >= SEQ_WINDOW) this.bits.fill(0);
      else for (let s = this.highest + 1; s < seq; s++) this.set(s, false);
      this.set(seq, true);
      this.highest = seq;
      this.delivered++;
      return true;
    }
    if (this.highest - seq >= SEQ_WINDOW) {
      this.tooOld++;
      return false;
    }
    if (this.test(seq)) {
      this.duplicated++;
      return false;
    }
    this.set(seq, true);
    if (this.reorderSamples.length < 8) this.reorderSamples.push([seq, this.highest]);
    this.reordered++;
    this.delivered++;
    return true;
  }

  /** Everything the tracker knows, as plain data (a saved or migrating guest carries it). */
  save(): SeqTrackerState {
    return {
      bits: new Uint8Array(this.bits.buffer.slice(0)),
      highest: this.highest,
      delivered: this.delivered,
      duplicated: this.duplicated,
      reordered: this.reordered,
      tooOld: this.tooOld,
      samples: this.reorderSamples.map((x) => [x[0], x[1]]),
    };
  }

  static restore(st: SeqTrackerState): SeqTracker {
    const t = new SeqTracker();
    if (st.bits.byteLength !== t.bits.byteLength) throw new Error(`saved sequence window of ${st.bits.byteLength} bytes, expected ${t.bits.byteLength}`);
    new Uint8Array(t.bits.buffer).set(st.bits);
    t.highest = st.highest;
    t.delivered = st.delivered;
    t.duplicated = st.duplicated;
    t.reordered = st.reordered;
    t.tooOld = st.tooOld;
    t.reorderSamples.push(...st.samples);
    return t;
  }

  get highestSeq(): number {
    return this.highest;
  }

  stats(expected?: number): SeqStats {
    const total = expected ?? this.highest + 1;
    return {
      delivered: this.delivered,
      duplicated: this.duplicated,
      reordered: this.reordered,
      tooOld: this.tooOld,
      lost: Math.max(0, total - this.delivered),
      highest: this.highest,
      reorderSamples: [...this.reorderSamples],
    };
  }
}
