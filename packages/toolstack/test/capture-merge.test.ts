/**
 * The toolstack's merge of drained capture batches, in process: blocks come
 * out in time order across kernels, each with the file's interface id, from
 * any buffer a batch may arrive in (a Node Buffer at an odd offset included,
 * as msgpackr decodes one), and a tap the file does not describe is left out.
 */
import { describe, expect, it } from 'vitest';
import { CaptureSink, DIR_INBOUND, batchData, captureBlocks, interfaceDescription, readPcapng, sectionHeader } from '@xsim/hypervisor';
import { mergeRuns } from '../src/capture-merge.ts';

/** The blocks back to back in an array of their own (offset 0: the tests edit it through DataViews). */
const cat = (...bs: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(bs));

/** A sink whose clock returns the given times in turn, with one frame per time at tap `name`. */
function batch(name: string, times: number[], size: number): Uint8Array {
  let k = 0;
  const s = new CaptureSink(() => times[k++]);
  const t = s.tap(name);
  s.start([name], 262_144);
  for (const ts of times) t.frame(new Uint8Array(size).fill(ts & 0xff), 0, size, DIR_INBOUND);
  return batchData(s.drain());
}

describe('merging drained capture batches', () => {
  it("orders blocks by time across kernels and gives each the file's interface id", () => {
    const a = batch('a', [1, 4, 5, 9], 60);
    const bRaw = batch('b', [2, 3, 7], 1400); // long blocks: copied by memcpy rather than word by word
    // As msgpackr hands a batch over: a Buffer at an offset that is not 4-aligned.
    const pool = Buffer.alloc(bRaw.length + 6);
    pool.set(bRaw, 2);
    const b = pool.subarray(2, 2 + bRaw.length);
    const runs = [
      { data: a, blocks: captureBlocks(a), ids: [1] },
      { data: b, blocks: captureBlocks(b), ids: [0] },
    ];
    const out = new Uint8Array(a.length + b.length);
    const r = mergeRuns(runs, out, 0);
    expect(r.end).toBe(out.length);
    expect([r.lastHi, r.lastLo]).toEqual([0, 9]);
    const f = readPcapng(cat(sectionHeader('t'), interfaceDescription('b', 262_144), interfaceDescription('a', 262_144), out));
    expect(f.packets.map((p) => [Number(p.tsNs), f.interfaces[p.ifId].name, p.data[0]])).toEqual([
      [1, 'a', 1],
      [2, 'b', 2],
      [3, 'b', 3],
      [4, 'a', 4],
      [5, 'a', 5],
      [7, 'b', 7],
      [9, 'a', 9],
    ]);
  });

  it('leaves out the blocks of a tap the file does not describe', () => {
    const a = batch('a', [1, 2], 60);
    const out = new Uint8Array(a.length);
    expect(mergeRuns([{ data: a, blocks: captureBlocks(a), ids: [-1] }], out, 0)).toEqual({ end: 0, lastHi: -1, lastLo: 0 });
  });
});
