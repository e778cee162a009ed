/**
 * Domains as vCPUs on real pCPU worker threads: create, control, crash and
 * boot failure contained, a domain that never yields found by the watchdog,
 * no lost wake-up across pCPUs, and xenstore from a worker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDR_TOOLSTACK, CH, EvtchnService, RpcEndpoint, ThreadRuntime, XenstoreServer, hostServiceAddr, type DomainSpec } from '../src/index.ts';
import { PINGPONG_BYTES } from './fixtures/pingpong-kernel.ts';

const ECHO = new URL('./fixtures/echo-kernel.ts', import.meta.url).href;
const PINGPONG = new URL('./fixtures/pingpong-kernel.ts', import.meta.url).href;
const XS = new URL('./fixtures/xs-kernel.ts', import.meta.url).href;
const SVC = hostServiceAddr(0);

let rt: ThreadRuntime;
let xs: XenstoreServer;
let hv: EvtchnService;
let nextUid = 1;
const crashes: [number, string][] = [];

/**
 * Poll `check` until it returns a value (not undefined), every 10 ms; fail naming `what` after `ms`.
 * Time is only a deadline here: a test waits for what it means, never for a guessed delay.
 */
async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(() => {
  // No safety net: a pCPU's longest sleep outlasts every deadline in this file, so a wake-up
  // lost anywhere stalls what waits on it until that deadline fails the test.
  rt = new ThreadRuntime(2, { log: () => {}, maxSleepMs: 120_000 });
  rt.onCrash = (uid, e) => crashes.push([uid, e]);
  xs = new XenstoreServer(rt.bus, SVC);
  hv = new EvtchnService(rt.bus, SVC);
});
afterAll(async () => {
  await rt.shutdown(5000);
});

async function start(kernel: string, pcpu: number, domid: number, config: unknown = {}): Promise<{ uid: number; ctl: RpcEndpoint }> {
  const uid = nextUid++;
  xs.introduce(uid, domid);
  hv.introduce(uid, domid, rt.doorbell(pcpu));
  const ctl = new RpcEndpoint(rt.bus, ADDR_TOOLSTACK, uid, CH.control).listen();
  const spec: DomainSpec = { kernel, name: `d${uid}`, host: 'h', hostIndex: 0, domid, uid, config };
  await rt.create(spec, pcpu);
  return { uid, ctl };
}

describe('domains on pCPU workers', () => {
  it('runs a domain and answers its control channel; shutdown returns its final word', async () => {
    const { uid, ctl } = await start(ECHO, 0, 3);
    expect(await ctl.request('echo', { x: [1, 2, 3] })).toEqual({ x: [1, 2, 3] });
    await expect(ctl.request('bogus', null)).rejects.toThrow(/unknown op bogus/);
    expect(await ctl.request('shutdown', null)).toEqual({ domid: 3, requests: 3 });
    await rt.remove(uid, 0, 'reap');
  });

  it('contains a kernel that fails to boot, and one that throws from a turn; the pCPU carries on', async () => {
    await expect(start(ECHO, 1, 4, { failBoot: true })).rejects.toThrow(/failed to boot: kernel panic at boot/);
    const a = await start(ECHO, 1, 5);
    const b = await start(ECHO, 1, 6);
    await a.ctl.request('crash', null);
    await until('the crash to be reported', () => crashes.find(([u]) => u === a.uid));
    expect(crashes).toContainEqual([a.uid, 'kernel panic in a turn']);
    expect(await b.ctl.request('echo', 'still here')).toBe('still here');
    await b.ctl.request('shutdown', null);
  });

  it('loses no wake-up: two domains on two pCPUs bounce a ball 20,000 times through an event channel', async () => {
    const sab = new SharedArrayBuffer(PINGPONG_BYTES);
    const p0 = await start(PINGPONG, 0, 10, { sab, role: 0, turns: 20_000 });
    const p1 = await start(PINGPONG, 1, 11, { sab, role: 1, turns: 20_000 });
    const port = (await p0.ctl.request('offer', { remote: 11 })) as number;
    await p1.ctl.request('bind', { remote: 10, port });
    const before = (await rt.pcpuStats(5000)) as { sleeps: number }[];
    // A lost wake-up would leave a pCPU asleep for its whole maximum sleep (120 s), past play's deadline.
    const [a, b] = (await Promise.all([p0.ctl.request('play', null, 60_000), p1.ctl.request('play', null, 60_000)])) as { moves: number }[];
    const after = (await rt.pcpuStats(5000)) as { sleeps: number }[];
    expect(a.moves + b.moves).toBe(40_000);
    expect(new Int32Array(sab)[0]).toBe(40_000);
    // The pCPUs slept between turns: the wake path ran.
    expect(after[0].sleeps + after[1].sleeps - before[0].sleeps - before[1].sleeps).toBeGreaterThan(0);
    await p0.ctl.request('shutdown', null);
    await p1.ctl.request('shutdown', null);
  });

  it('serves xenstore to a domain on a worker: sync calls, permissions by connection, watches, conflicts', async () => {
    xs.mkdir(0, '/local/domain/7');
    xs.setPerms(0, '/local/domain/7', [{ domid: 7, perm: 'n' }]);
    xs.write(0, '/shared/counter', '0');
    xs.setPerms(0, '/shared', [{ domid: 0, perm: 'r' }]);
    xs.setPerms(0, '/shared/counter', [{ domid: 7, perm: 'b' }]);
    const { ctl } = await start(XS, 1, 7);
    expect(await ctl.request('basic', null)).toEqual({ x: '42', dir: ['x', 'y'], committed: true, denied: 'EACCES', missing: null });
    expect(xs.read(0, '/local/domain/0/evil')).toBeUndefined();
    await ctl.request('watch', null);
    xs.write(0, '/shared/flag', 'up');
    const events = await until('two watch events', async () => {
      const e = (await ctl.request('events', null)) as string[];
      return e.length >= 2 ? e : undefined;
    });
    expect(events).toEqual(['/shared/flag', '/shared/flag']);
    expect(await ctl.request('tx-read', null)).toBe('0');
    xs.write(0, '/shared/counter', 'dom0 got there first');
    expect(await ctl.request('tx-commit', null)).toBe(false);
    expect(xs.read(0, '/shared/counter')).toBe('dom0 got there first');
    await ctl.request('shutdown', null);
  });

  it('finds a domain that never yields: its pCPU stays in that one turn, and terminating the pCPU ends it', async () => {
    const rt2 = new ThreadRuntime(1, { log: () => {} });
    try {
      const uid = 900;
      const ctl = new RpcEndpoint(rt2.bus, ADDR_TOOLSTACK, uid, CH.control).listen();
      await rt2.create({ kernel: ECHO, name: 'spinner', host: 'h', hostIndex: 0, domid: 9, uid, config: {} }, 0);
      void ctl.request('spin', null, 60_000).catch(() => {});
      const a = await until("the spinner's turn", () => {
        const t = rt2.pcpuTurn(0);
        return t?.uid === uid ? t : undefined;
      });
      // Wait until the pCPU has been in a turn for 100 ms more, or has left that turn.
      const b = await until('the turn to age or end', () => {
        const t = rt2.pcpuTurn(0);
        return t && (t.uid !== uid || t.turns !== a.turns || t.forMs >= a.forMs + 100) ? t : undefined;
      });
      // Still the same turn, only older: the pCPU never got it back.
      expect(b).toMatchObject({ uid, turns: a.turns });
      expect(b.forMs).toBeGreaterThan(a.forMs);
      rt2.terminate(0);
    } finally {
      await rt2.shutdown(1000);
    }
  });
});
