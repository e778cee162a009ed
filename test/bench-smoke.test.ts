/**
 * `xsim bench --quick` as the test suite runs it: every path delivers frames,
 * the JSON matches its schema, and conservation holds in every cell. No
 * timing is asserted (the machines are shared and noisy).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { PATHS, compare, report, repFaults, tcpCell, tcpRatios, validateBenchJson, type BenchJson, type TcpRep } from '@xsim/bench';
import { needs } from './tools.ts';

describe('xsim bench --quick', () => {
  // Six paths and, for vdpa, four hosts: 59 s on 2 cores with another test run beside it, over the 60 s default; execFileSync's 120 s is the limit.
  it('measures every path, conserves every frame and writes valid JSON', { ...needs('git'), timeout: 130_000 }, () => {
    const out = `/tmp/xsim-bench-smoke-${process.pid}.json`;
    const root = new URL('..', import.meta.url).pathname;
    const stdout = execFileSync(
      'npx',
      ['xsim', 'bench', '--quick', '--micro', '--sizes', '64,9000', '--out', out, '--compare', `${root}bench/results/pcpu.json`],
      { cwd: root, stdio: 'pipe', timeout: 120_000 },
    ).toString();
    const r = JSON.parse(readFileSync(out, 'utf8')) as BenchJson;
    expect(validateBenchJson(r)).toEqual([]);
    // The microbenchmarks ran too (each case a positive rate).
    expect(r.micro?.map((m) => m.name)).toHaveLength(4);
    for (const m of r.micro ?? []) expect(m.opsPerSec, m.name).toBeGreaterThan(0);
    expect(new Set(r.cells.map((c) => c.path))).toEqual(new Set(PATHS));
    for (const c of r.cells) {
      for (const rep of c.reps) {
        expect(rep.delivered, `${c.path}/${c.placement}`).toBeGreaterThan(0);
        expect(rep.conserved, `${c.path}/${c.placement}`).toBe(true);
      }
    }
    expect(r.ratios.find((x) => x.placement === 'cross')?.accelOverUnaccel).toBeGreaterThan(0);
    expect(r.cells.reduce((n, c) => n + (c.wakesPerFrame ?? 0), 0)).toBeGreaterThan(0);
    // The machine's futex wake round trip, measured first (--quick: 5000 round trips) and printed in the header.
    expect(r.machine.futexRoundTripUs?.roundTrips).toBe(5000);
    expect(r.machine.futexRoundTripUs?.median).toBeGreaterThan(0);
    expect(stdout).toMatch(/^machine: \d+ cores .*futex wake round trip .* median [\d.]+ us, p99 [\d.]+ us over 5000 round trips/);
    // The bench checks itself: the accelerated cells took their streams on the fast path (or say they did not), the others took none.
    for (const c of r.cells) {
      const what = `${c.path}/${c.placement}/${c.size}`;
      if (c.path === 'vnic' || c.path === 'vdpa') {
        expect(
          c.reps.every((x) => (x.fastPathShare ?? -1) >= 0),
          what,
        ).toBe(true);
        expect(c.valid, `${what}: ${c.invalid}`).toBe(c.fastPathShare >= 0.99);
        expect(c.fastPathShare, what).toBeGreaterThan(0.5);
      } else expect([c.fastPathShare, c.valid], what).toEqual([0, true]);
      // Wake-ups and copies per delivered frame: every path copies each frame at least twice (out of
      // the sender, into the receiver; the raw ring by construction), and threads slept at times.
      expect(c.copiesPerFrame, what).toBeGreaterThanOrEqual(c.path === 'raw' ? 2 : c.path === 'raw3' ? 3 : 1.9);
      expect(c.wakesPerFrame, what).toBeGreaterThanOrEqual(0);
      if (c.path === 'unaccel' && c.placement === 'cross')
        expect(Object.keys(c.copies ?? {}), what).toEqual(
          expect.arrayContaining(['netback TX grant copy', 'netback RX grant copy', 'NIC TX DMA', 'NIC RX DMA']),
        );
    }
    // Both accelerators, paired: vdpa (the virtio NIC's hosts) over vnic and over the VI hosts' slow path.
    for (const x of r.ratios) {
      expect(x.vdpaOverVnic, `${x.size} ${x.placement}`).toBeGreaterThan(0);
      expect(x.vdpaOverUnaccel, `${x.size} ${x.placement}`).toBeGreaterThan(0);
      expect(x.overRaw.vdpa, `${x.size} ${x.placement}`).toBeGreaterThan(0);
      // Every real path over the three-thread raw reference too (producer -> forwarder -> consumer).
      expect(x.overRaw3?.vnic, `${x.size} ${x.placement}`).toBeGreaterThan(0);
    }
    // Each path names the pCPU of every domain it keeps busy, and the thread count.
    expect(r.threads.unaccel.busy).toEqual(expect.arrayContaining([expect.stringMatching(/^host-a\/a1@pCPU\d+$/), 'NIC thread']));
    expect(r.threads.vdpa.busy).toEqual([expect.stringMatching(/^host-c\/c1@pCPU\d+$/), 'NIC thread', expect.stringMatching(/^host-d\/d1@pCPU\d+$/)]);
    for (const c of r.cells.filter((x) => x.path !== 'raw' && x.path !== 'raw3'))
      expect(Object.keys(c.vcpu ?? {}).length, `${c.path}/${c.placement}`).toBeGreaterThan(0);
    expect(validateBenchJson({ ...r, schema: 'other' })).toEqual([`/schema: Expected 'xsim-bench/6', got "other"`]);
    // The published schema file says the same to an independent validator; the run says what produced it.
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats.default(ajv);
    const validate = ajv.compile(JSON.parse(readFileSync(`${root}schemas/xsim-bench-6.schema.json`, 'utf8')) as object);
    expect(validate(r), JSON.stringify(validate.errors)).toBe(true);
    expect(r.meta.command.slice(0, 2)).toEqual(['bench', '--quick']);
    expect(r.meta.commit).toMatch(/^[0-9a-f]{40}$/);
    // Capture's cost was measured on the unaccelerated and vnic paths (not vdpa), for each of what is captured.
    expect(r.capture?.map((c) => `${c.path} ${c.spec} ${c.snaplen}`)).toEqual([
      'unaccel host-b/b1/vif0 262144',
      'unaccel * 128',
      'unaccel * 262144',
      'vnic host-b/b1/vif0 262144',
      'vnic * 128',
      'vnic * 262144',
    ]);
    for (const c of r.capture ?? []) {
      expect(c.taps, `${c.path} ${c.spec}`).toBeGreaterThan(0);
      expect(c.reps[0].records, `${c.path} ${c.spec}`).toBeGreaterThan(0);
    }
    // SVG charts beside the JSON, each with its data in it; the comparison marks changes against the old spread.
    const charts = Object.fromEntries(
      ['throughput', 'cpu', 'ratios', 'capture', 'compare'].map((n) => [n, readFileSync(out.replace(/\.json$/, `-${n}.svg`), 'utf8')]),
    );
    for (const [n, svg] of Object.entries(charts)) {
      expect(svg, n).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      expect(svg, n).not.toMatch(/NaN|undefined/);
    }
    expect(charts.throughput).toMatch(/Goodput by path and frame size/);
    for (const p of PATHS) expect(charts.throughput, p).toContain(`>${p}<`);
    expect(charts.compare).toMatch(/Old and new, side by side/);
    expect(stdout).toMatch(/a change is OUTSIDE when the new median lies outside the old repetitions' min\.\.max \(\d+ of \d+\)/);
    // --compare still reads the committed baseline from before pCPUs (schema xsim-bench/1).
    const old = JSON.parse(readFileSync(`${root}bench/results/baseline.json`, 'utf8')) as BenchJson;
    expect(compare(old, r)).toMatch(/^compared with .*\n.*old Gbit\/s/);
  });
});

describe('xsim bench --quick --tcp', () => {
  const root = new URL('..', import.meta.url).pathname;
  let run: { r: BenchJson; stdout: string } | undefined;
  // The matrix cut to the raw ring (no simulation), then the TCP section tiny: 200 kB streams, 50 transactions, one repetition.
  const tcpRun = () => {
    if (run) return run;
    const out = `/tmp/xsim-bench-tcp-${process.pid}.json`;
    const stdout = execFileSync(
      'npx',
      [
        'xsim',
        'bench',
        '--quick',
        '--tcp',
        '--sizes',
        '1500',
        '--paths',
        'raw',
        '--placements',
        'cross',
        '--no-capture',
        '--tcp-bytes',
        '200000',
        '--tcp-rr-count',
        '50',
        '--out',
        out,
      ],
      { cwd: root, stdio: 'pipe', timeout: 150_000 },
    ).toString();
    run = { r: JSON.parse(readFileSync(out, 'utf8')) as BenchJson, stdout };
    return run;
  };

  it('measures tcp-stream, tcp-rr and a udp-stream per cell, offloads on and off, with paired ratios', { timeout: 160_000 }, () => {
    const { r, stdout } = tcpRun();
    expect(validateBenchJson(r)).toEqual([]);
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats.default(ajv);
    const validate = ajv.compile(JSON.parse(readFileSync(`${root}schemas/xsim-bench-6.schema.json`, 'utf8')) as object);
    expect(validate(r), JSON.stringify(validate.errors)).toBe(true);
    const t = r.tcp!;
    expect(t.cells.map((c) => `${c.path} ${c.placement} ${c.offloads} ${c.from}->${c.to}`)).toEqual([
      'unaccel cross on host-a/a1->host-b/b1',
      'unaccel cross off host-a/a3->host-b/b3',
      'dom0 cross on host-a/dom0->host-b/dom0',
      'vnic cross on host-a/a1->host-b/b1',
      'vnic cross off host-a/a3->host-b/b3',
    ]);
    expect(t.options).toMatchObject({ bytes: 200_000, verify: true, reps: 1, size: 1500 });
    for (const c of t.cells) {
      const what = `${c.path} ${c.offloads}`;
      const [rep] = c.reps;
      // Every octet arrived, verified; every transaction; the UDP stream beside it conserved.
      expect([rep.stream.bytes, rep.stream.complete, rep.stream.corrupt, rep.rr.transactions, rep.rr.complete, rep.udp.conserved], what).toEqual([
        200_000,
        true,
        0,
        50,
        true,
        true,
      ]);
      expect([rep.ok, c.valid, c.invalid], what).toEqual([true, true, undefined]);
      expect(c.median.gbps, what).toBeGreaterThan(0);
      expect(c.median.udpGbps, what).toBeGreaterThan(0);
      expect(c.median.p99Us, what).toBeGreaterThanOrEqual(c.median.p50Us);
      // The offload switch reached the sender's stack: partial checksums with it on, none off; dom0 has no netfront.
      if (c.path === 'dom0') expect(rep.csumPartialShare, what).toBeNull();
      else if (c.offloads === 'on') expect(rep.csumPartialShare, what).toBeGreaterThan(0.9);
      else expect(rep.csumPartialShare, what).toBe(0);
      if (c.path === 'vnic') expect(c.fastPathShare, what).toBeGreaterThanOrEqual(0.99);
      else expect(c.fastPathShare, what).toBe(0);
      expect(c.busy, what).toContain('NIC thread');
    }
    const ratio = (name: string, offloads: string | null) => t.ratios.find((x) => x.name === name && x.offloads === offloads && x.placement === 'cross');
    for (const [name, m] of [
      ['tcp-stream vnic/unaccel', 'on'],
      ['tcp-stream vnic/unaccel', 'off'],
      ['tcp-stream vnic/dom0', 'on'],
      ['tcp-rr vnic/unaccel', 'on'],
      ['offloads on/off unaccel', null],
      ['offloads on/off vnic', null],
      ['tcp/udp unaccel', 'on'],
      ['tcp/udp vnic', 'off'],
      ['tcp/udp dom0', 'on'],
    ] as const) {
      const x = ratio(name, m);
      expect(x?.median, `${name} ${m}`).toBeGreaterThan(0);
      expect(x?.values, `${name} ${m}`).toHaveLength(1);
    }
    // dom0's stack is not behind a vif: its on/off is listed as not measurable, with the reason.
    expect(ratio('offloads on/off dom0', null)).toMatchObject({ median: null, invalid: expect.stringMatching(/do not reach dom0's stack/) });
    expect(stdout).toMatch(/^TCP at 1500 B \(MTU 1500\), 1 repetition\(s\)/m);
    expect(stdout).toMatch(/^tcp-stream vnic\/unaccel +cross +on +[\d.]+/m);
    expect(stdout).toMatch(/^TCP ratios left out/m);
  });

  it('a repetition that did not complete, or delivered a corrupt octet, makes its cell INVALID and its ratios null', { timeout: 160_000 }, () => {
    const { r } = tcpRun();
    const t = r.tcp!;
    const on = t.cells.find((c) => c.path === 'vnic' && c.offloads === 'on')!;
    const [good] = on.reps;
    const n = { bytes: 200_000, rr: 50 };
    expect(repFaults(good, n)).toEqual([]);
    const cut: TcpRep = { ...good, stream: { ...good.stream, bytes: 150_000, complete: false, failed: { reset: 1 } } };
    const corrupt: TcpRep = { ...good, stream: { ...good.stream, corrupt: 3 } };
    const rrShort: TcpRep = { ...good, rr: { ...good.rr, transactions: 49, complete: false } };
    expect(repFaults(cut, n)).toEqual(['tcp-stream incomplete (150000 of 200000 octets received; reset 1)']);
    expect(repFaults(corrupt, n)).toEqual(['tcp-stream: 3 corrupt octets']);
    expect(repFaults(rrShort, n)).toEqual(['tcp-rr incomplete (49 of 50 transactions)']);
    expect(repFaults({ ...good, udp: { ...good.udp, conserved: false } }, n)[0]).toMatch(/^udp-stream not conserved/);
    const key = { path: 'vnic', placement: 'cross', offloads: 'on' } as const;
    const bad = tcpCell(key, [{ ...corrupt, ok: false, why: repFaults(corrupt, n).join('; ') }], on.busy);
    expect([bad.valid, bad.invalid]).toEqual([false, 'repetition 1: tcp-stream: 3 corrupt octets']);
    // A vnic cell whose sender went by the slow path is not what it says either.
    const slow = tcpCell(key, [{ ...good, fastPathShare: 0.5 }], on.busy);
    expect(slow.invalid).toMatch(/took 50\.0% of its TCP frames on the fast path/);
    expect(tcpCell(key, [good], on.busy).valid).toBe(true);
    const cells = t.cells.map((c) => (c === on ? bad : c));
    const ratios = tcpRatios(cells, { placements: ['cross'], offloads: ['on', 'off'] });
    for (const name of ['tcp-stream vnic/unaccel', 'tcp-stream vnic/dom0', 'tcp/udp vnic']) {
      const x = ratios.find((y) => y.name === name && y.offloads === 'on')!;
      expect([x.median, x.invalid], name).toEqual([
        null,
        expect.stringMatching(/^vnic cross offloads on is INVALID \(repetition 1: tcp-stream: 3 corrupt octets\)/),
      ]);
    }
    expect(ratios.find((y) => y.name === 'offloads on/off vnic')?.median).toBeNull();
    expect(ratios.find((y) => y.name === 'tcp-stream vnic/unaccel' && y.offloads === 'off')?.median).toBeGreaterThan(0);
    // The report marks it.
    const text = report({ ...r, tcp: { ...t, cells, ratios } });
    expect(text).toMatch(/^vnic +cross +on .* NO +\S+ +[\d.]+% INVALID\s*$/m);
    expect(text).toMatch(/^INVALID TCP cells/m);
  });
});
