/**
 * Defects the model-based test of the management plane found (test/mgmt-model:
 * KNOWN_DEFECTS), each reproduced alone here, deterministically:
 *
 * - lastVif: `dev del` of a guest's last vif was accepted, leaving a guest
 *   that could not migrate and whose save image restore refused;
 * - domidReuse: a created guest took the domid of a destroyed topology guest;
 * - restoreFifo: `domain restore FIFO` blocked (a deterministic run froze);
 * - errorNodes: a `dev add` the guest refused left error/device/vif in xenstore;
 * - runtimeMtu: migrate, restore and dev add checked the topology's MTU, not the one set at run time;
 * - unloadAttach: a vif attached (by a NIC reset's re-attach) to a plugin being
 *   unloaded kept the unload from ever finishing;
 * - loadRace: two loads of one plugin at once both passed the "already loaded"
 *   check, the second refused by driverlink in its own words;
 * - partialLoad: a load on every host stopped at the first refusal and left the
 *   plugin loaded on the hosts before it;
 * - createRace: a create beside another create booted its guest with the other's spec;
 * - captureLeaving: a capture start racing a guest going away failed after 5 s
 *   and left its temporary file, which refused every later capture into it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, dom0Stats, validateTopology, type DomainRef } from '@xsim/toolstack';

const dir = mkdtempSync(join(tmpdir(), 'xsim-model-defects-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('management-plane defects found by the model test (deterministic, seed 4)', () => {
  let sim: Simulation;
  beforeAll(async () => {
    const t = structuredClone(defaultTopology());
    for (const h of t.hosts) for (const d of h.domUs) d.memPages = 4096;
    sim = await Simulation.start(validateTopology(t), { deterministic: { seed: 4 }, log: () => {} });
  });
  afterAll(async () => {
    await sim?.shutdown();
  });

  it("lastVif: a guest's last vif cannot be deleted, even by two deletes at once", async () => {
    const a1: DomainRef = { host: 'host-a', domain: 'a1' };
    await expect(sim.delVif(a1, 0)).rejects.toThrow(/host-a\/a1\/vif0 is the guest's last vif: a guest keeps one; destroy the guest instead/);
    const v = await sim.addVif(a1);
    const both = await Promise.allSettled([sim.delVif(a1, 0), sim.delVif(a1, v.handle)]);
    expect(both.map((x) => x.status).sort()).toEqual(['fulfilled', 'rejected']);
    const r = both.find((x) => x.status === 'rejected') as PromiseRejectedResult;
    expect(String(r.reason)).toMatch(/is the guest's last vif \(the others are being deleted\)/);
    expect((await sim.listDomains()).find((d) => d.name === 'a1')!.vifs).toHaveLength(1);
  });

  it("domidReuse: a created guest never takes a destroyed topology guest's domid", async () => {
    const a2 = sim.domain({ host: 'host-a', domain: 'a2' }).domid;
    await sim.destroyDomain({ host: 'host-a', domain: 'a2' });
    const x = await sim.createDomain('host-a', 'x');
    expect(x.domid).not.toBe(a2);
    expect(x.domid).toBeGreaterThan(a2);
    await sim.destroyDomain({ host: 'host-a', domain: 'x' });
  });

  it('restoreFifo: restoring from a FIFO is refused at once, and the simulation goes on', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    await expect(sim.restoreDomain(fifo)).rejects.toThrow(/cannot read save image .*fifo: is a FIFO; give a save image \(a regular file\)/);
    // Not frozen: the simulation still answers and creates.
    const y = await sim.createDomain('host-b', 'y');
    await sim.destroyDomain({ host: 'host-b', domain: y.name });
  });

  it("errorNodes: a dev add the guest refuses leaves no error nodes behind (libxl's error directory stays)", async () => {
    const b1 = sim.domain({ host: 'host-b', domain: 'b1' });
    const xs = sim.host('host-b').xenstore;
    const nodes = () => xs.usage().nodes;
    const before = nodes();
    await sim.loadPlugin('vnic', { host: 'host-b' });
    // b1's 4096 pages hold vnic's DMA areas for a few vifs; more are refused by the guest itself.
    const added: number[] = [];
    let refused = '';
    for (let i = 0; i < 6 && !refused; i++) {
      try {
        added.push((await sim.addVif({ host: 'host-b', domain: 'b1' })).handle);
      } catch (e) {
        refused = String(e);
      }
    }
    expect(refused).toMatch(/the guest says: .*\(the vif was removed again\)/);
    // Only libxl's error directory is left, empty.
    expect(xs.directory(0, `/local/domain/${b1.domid}/error`)).toEqual([]);
    for (const h of added) await sim.delVif({ host: 'host-b', domain: 'b1' }, h);
    await sim.unloadPlugin('vnic', { host: 'host-b' });
    expect(nodes()).toBe(before);
  });

  it('captureLeaving: a capture started while a guest is destroyed starts without it, and leaves no temporary file', async () => {
    const z = await sim.createDomain('host-b', 'z');
    const file = join(dir, 'leaving.pcapng');
    const t0 = sim.clock.now();
    const [destroyed, started] = await Promise.allSettled([sim.destroyDomain({ host: 'host-b', domain: z.name }), sim.captureStart(['host-b'], { file })]);
    expect(destroyed.status).toBe('fulfilled');
    expect(started.status).toBe('fulfilled');
    // Not the 5 s a leaving guest's silence used to cost.
    expect(sim.clock.now() - t0).toBeLessThan(5000);
    await sim.captureStop();
    expect(readdirSync(dir).filter((f) => f.includes('leaving'))).toEqual(['leaving.pcapng']);
    // And the name takes another capture.
    await sim.captureStart(['host-b'], { file });
    await sim.captureStop();
  });

  it('runtimeMtu: a move onto a NIC whose MTU was lowered, or a vif over it, is refused at the MTU it carries now', async () => {
    await sim.setMtu('host-a', 1400);
    try {
      await expect(sim.migrateDomain({ host: 'host-b', domain: 'b1' }, 'host-a')).rejects.toThrow(
        /cannot move b1 to host-a: its vifs use MTU 1500, the destination's NIC carries 1400/,
      );
      await expect(sim.addVif({ host: 'host-a', domain: 'a1' }, { mtu: 1500 })).rejects.toThrow(/mtu 1500: a vif's MTU is 68..1400/);
      expect((await sim.listDomains()).find((d) => d.name === 'b1')!.host).toBe('host-b');
    } finally {
      await sim.setMtu('host-a', 1500);
    }
  });

  it('unloadAttach: an unload beside a NIC reset finishes, and the plugin can be loaded again', async () => {
    const s0 = dom0Stats(await sim.stats(), 'host-a');
    expect(Object.keys(s0.accel.plugins)).toEqual([]);
    await sim.loadPlugin('vnic', { host: 'host-a' });
    const [unloaded, reset] = await Promise.allSettled([sim.unloadPlugin('vnic', { host: 'host-a' }), sim.nicReset('host-a')]);
    expect(unloaded.status).toBe('fulfilled');
    expect(reset.status).toBe('fulfilled');
    const s1 = dom0Stats(await sim.stats(), 'host-a');
    expect(Object.keys(s1.accel.plugins)).toEqual([]);
    await sim.loadPlugin('vnic', { host: 'host-a' });
    await sim.unloadPlugin('vnic', { host: 'host-a' });
  });

  it('loadRace: two loads of one plugin at once: one loads, the other is told it is loading', async () => {
    const both = await Promise.allSettled([sim.loadPlugin('firewall', { host: 'host-a' }), sim.loadPlugin('firewall', { host: 'host-a' })]);
    expect(both.map((x) => x.status).sort()).toEqual(['fulfilled', 'rejected']);
    const r = both.find((x) => x.status === 'rejected') as PromiseRejectedResult;
    expect(String(r.reason)).toMatch(/plugin firewall is already (loading|loaded)/);
    expect(String(r.reason)).not.toMatch(/driverlink/);
    await sim.unloadPlugin('firewall', { host: 'host-a' });
  });

  it('partialLoad: a load on every host refused on one leaves it on none', async () => {
    await sim.loadPlugin('vnic', { host: 'host-b' });
    await expect(sim.loadPlugin('vnic')).rejects.toThrow(/plugin vnic is already loaded \(on host-b; unloaded again from host-a\)/);
    const s = await sim.stats();
    expect(Object.keys(dom0Stats(s, 'host-a').accel.plugins)).toEqual([]);
    expect(Object.keys(dom0Stats(s, 'host-b').accel.plugins)).toEqual(['vnic']);
    await sim.unloadPlugin('vnic', { host: 'host-b' });
  });

  it('createRace: two creates at once on one host each boot with their own spec', async () => {
    const [x, y] = await Promise.all([
      sim.createDomain('host-a', 'rx', { ip: '10.0.10.100' }),
      sim.createDomain('host-a', 'ry', { ip: '10.0.10.101', memPages: 4096 }),
    ]);
    const xs = sim.host('host-a').xenstore;
    for (const d of [x, y]) {
      // As xenstore has it and as the toolstack tracks it.
      expect(xs.read(0, `/local/domain/${d.domid}/name`)).toBe(d.name);
      expect(sim.domain({ host: 'host-a', domain: d.name }).ip).toBe(d.vifs[0].ip);
    }
    await sim.destroyDomain({ host: 'host-a', domain: 'rx' });
    await sim.destroyDomain({ host: 'host-a', domain: 'ry' });
  });
});
