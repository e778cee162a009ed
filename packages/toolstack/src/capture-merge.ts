/**
 * The toolstack's half of a capture drain: the kernels' batches of Enhanced
 * Packet Blocks, each already in time order, merged by timestamp into one
 * buffer, each block copied once (32-bit words: blocks are 4-aligned) and its
 * interface id set to the file's. It runs on the main thread, which also
 * routes messages between pCPUs, so it must not allocate per block.
 */
import { EPB_IFID } from '@xsim/hypervisor';

/** One kernel's batch: its blocks (see captureBlocks) and its tap index → interface id (-1: not in the file). */
export interface MergeRun {
  data: Uint8Array;
  blocks: { at: Int32Array; hi: Uint32Array; lo: Uint32Array; n: number };
  ids: readonly number[];
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const TWO32 = 4294967296;

/** 32-bit words of `u8` (copied to an aligned buffer if it is not aligned). */
function words(u8: Uint8Array): Int32Array {
  if (u8.byteOffset % 4 === 0 && u8.byteLength % 4 === 0) return new Int32Array(u8.buffer, u8.byteOffset, u8.byteLength / 4);
  // Copied by hand: a Node Buffer (what msgpackr decodes a batch into) answers slice() with a view, not a copy.
  const copy = new Uint8Array(u8.byteLength & ~3);
  copy.set(u8.subarray(0, copy.length));
  return new Int32Array(copy.buffer);
}

/**
 * Merge `runs` into `out` from octet `at` (4-aligned). Returns where it ended
 * and the last block's timestamp halves (-1 when none was written).
 */
export function mergeRuns(runs: readonly MergeRun[], out: Uint8Array, at: number): { end: number; lastHi: number; lastLo: number } {
  if (!LITTLE_ENDIAN) throw new Error('capture: the merge copies 32-bit words and expects a little-endian machine');
  if (at % 4 !== 0 || out.byteOffset % 4 !== 0) throw new Error('capture: merge output must be 4-aligned');
  const ow = new Int32Array(out.buffer, out.byteOffset, out.byteLength >> 2);
  // Keys as doubles: the high halves of one drain differ by little, so (hi - base) * 2^32 + lo is exact.
  let base = Infinity;
  for (const r of runs) for (let i = 0; i < r.blocks.n; i++) if (r.blocks.hi[i] < base) base = r.blocks.hi[i];
  const src = runs.map((r) => words(r.data));
  const keys = runs.map((r) => {
    const k = new Float64Array(r.blocks.n);
    for (let i = 0; i < r.blocks.n; i++) k[i] = (r.blocks.hi[i] - base) * TWO32 + r.blocks.lo[i];
    return k;
  });
  const next = new Int32Array(runs.length);
  let o = at >> 2;
  let lastHi = -1;
  let lastLo = 0;
  for (;;) {
    let best = -1;
    let bestKey = Infinity;
    for (let k = 0; k < runs.length; k++) {
      const i = next[k];
      if (i < runs[k].blocks.n && keys[k][i] < bestKey) {
        best = k;
        bestKey = keys[k][i];
      }
    }
    if (best < 0) break;
    const r = runs[best];
    const i = next[best]++;
    const w = src[best];
    const from = r.blocks.at[i] >> 2;
    const id = r.ids[w[from + (EPB_IFID >> 2)]] ?? -1;
    if (id < 0) continue; // a tap the file does not describe: its blocks are not counted either
    const nw = w[from + 1] >> 2;
    // Short blocks word by word; long ones (full frames) by the engine's memcpy, whose call costs more than a few words.
    if (nw <= 64) for (let j = 0; j < nw; j++) ow[o + j] = w[from + j];
    else ow.set(w.subarray(from, from + nw), o);
    ow[o + (EPB_IFID >> 2)] = id;
    o += nw;
    lastHi = r.blocks.hi[i];
    lastLo = r.blocks.lo[i];
  }
  return { end: o << 2, lastHi, lastLo };
}
