/**
 * xsim's rings against io/ring.h's own macros: test/abi/ring-trace.c, built
 * against the installed Xen headers, runs FRONT_RING/BACK_RING with
 * RING_PUSH_*_AND_CHECK_NOTIFY, RING_FINAL_CHECK_FOR_*, RING_COPY_* and
 * friends on seeded operation sequences; test/abi/ring-trace.ts runs xsim's
 * FrontRing/BackRing on the same sequences; the traces (each operation's
 * result, every index, free and unconsumed counts, each slot copied out, and
 * the ring's final bytes) must be identical. Every ring type (TX, RX,
 * control), rings of 256 slots down to 1, and indices starting at 0, at 2^31
 * (the Int32Array's sign) and just below 2^32 (they wrap).
 *
 * Needs gcc, libc6-dev and libxen-dev (test/tools.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeededRng } from '@xsim/hypervisor';
import { SEEDS } from './helpers.ts';
import { needs } from './tools.ts';
import { SLOT, randomOps, runXsim, scenarioInput, slotsFor, type RingKind, type Scenario } from './abi/ring-trace.ts';

const SOURCE = fileURLToPath(new URL('./abi/ring-trace.c', import.meta.url));
const OPS = 300;
const STARTS = [0, 2 ** 31 - 3, 2 ** 32 - 3, 2 ** 32 - 200];

function scenarios(seed: number): Scenario[] {
  const rng = new SeededRng(seed);
  const out: Scenario[] = [];
  for (const kind of ['tx', 'rx', 'ctrl'] as RingKind[]) {
    // A page, and rings of 4, 2 (3 slots' room: __RD32 rounds down) and 1 slot.
    for (const bytes of [4096, 64 + 4 * SLOT[kind], 64 + 3 * SLOT[kind], 64 + SLOT[kind]]) {
      for (const start of STARTS) out.push({ kind, bytes, start, ops: randomOps(rng, slotsFor(kind, bytes), OPS) });
    }
  }
  return out;
}

/** The first line where the two traces differ, with the scenario and the lines before it; '' if none. */
function firstDifference(c: string[], ts: string[]): string {
  const n = Math.max(c.length, ts.length);
  let scenario = '';
  for (let i = 0; i < n; i++) {
    if (c[i]?.startsWith('scenario ')) scenario = c[i];
    if (c[i] === ts[i]) continue;
    const before = c.slice(Math.max(0, i - 4), i).map((l) => `    ${l}`);
    return [`in "${scenario}", trace line ${i + 1}:`, ...before, `  io/ring.h: ${c[i] ?? '(trace ended)'}`, `  xsim:      ${ts[i] ?? '(trace ended)'}`].join(
      '\n',
    );
  }
  return '';
}

describe("xsim's rings against io/ring.h's macros", needs('gcc', 'libc-headers', 'xen-headers'), () => {
  let dir = '';
  let bin = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'xsim-ring-trace-'));
    bin = join(dir, 'ring-trace');
    execFileSync(
      'gcc',
      ['-std=gnu11', '-O1', '-Wall', '-Wextra', '-Werror', '-D__XEN_INTERFACE_VERSION__=__XEN_LATEST_INTERFACE_VERSION__', '-o', bin, SOURCE],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const seed of SEEDS) {
    it(`seed ${seed}: the same operations give the same trace and the same ring bytes`, () => {
      const list = scenarios(seed);
      const c = execFileSync(bin, { input: scenarioInput(list), encoding: 'utf8', maxBuffer: 256 << 20 })
        .trimEnd()
        .split('\n');
      const ts = list.flatMap(runXsim);
      const diff = firstDifference(c, ts);
      if (diff) console.error(`replay: XSIM_SEEDS=${seed} npx vitest run test/xen-abi-ring.test.ts`);
      expect(diff, diff).toBe('');
      const wraps = list.filter((s) => s.start > 2 ** 32 - 1000).length;
      console.log(
        `ring traces, seed ${seed}: ${list.length} scenarios (${wraps} wrapping past 2^32), ${list.length * OPS} operations, ${c.length} trace lines identical`,
      );
    });
  }
});
