/**
 * xl migrate between partitions (issue 24, item 3): the source partition's
 * toolstack sends the guest over TCP (migrate-wire.ts) to the partition
 * that holds the destination host, which listens on its partition's
 * address. The halves of the move are DomainMover's (migration.ts): the
 * same suspend, the same arrival, the same report; what differs is that
 * the pages travel as the migration v2 stream in libxc's live order
 * instead of between two RAMs of one process.
 *
 * What a failure leaves: before `go` the guest is resumed where it was
 * (from the source's copy of its RAM, exact after the last round); a
 * destination that fails to boot it says so, cleans up, and the source
 * resumes it; a destination that goes silent after `go` may or may not be
 * running it, so the source does not resume it (that could make two) and
 * keeps its image in a file a user can `xsim domain restore`.
 */
import net from 'node:net';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GuestMemory,
  PageMirror,
  SaveStreamReader,
  closingRecords,
  crossThreadNow,
  domainRecord,
  encodeSaveStream,
  logWarn,
  pageDataRecords,
  staticDataEndRecord,
  streamStart,
  type SavedDomain,
} from '@xsim/hypervisor';
import type { DomainRef, PartitionNet, RunningDomain, ToolstackContext } from './context.ts';
import { dropDelta } from './drops.ts';
import type { DomainMemory, HostResources } from './host.ts';
import { vifHandles } from './hotplug.ts';
import type { DomainLifecycle } from './lifecycle.ts';
import { xsimVersion } from './meta.ts';
import { MAX_ROUNDS, STOP_PAGES, type DomainMover, type MigrateOptions, type MigrationReport } from './migration.ts';
import { MIGRATE_WIRE_VERSION, MigrateConn, MigrateWireError, type MigrateMsg, type MigrateMsgs } from './migrate-wire.ts';
import { parseMac, type Topology } from './topo/index.ts';
import { partitionOf, type PartitionEndpoint } from './topo/partition-split.ts';

/** Where another partition takes migrations. */
export interface PartitionPeer {
  partition: string;
  address: string;
  port: number;
}

/**
 * Partition `partition`'s place for migrations: it listens on its own
 * endpoint's address (0.0.0.0 with `bindAny`) at the TCP port of its VXLAN
 * UDP port's number, and every host of another partition is reached at that
 * partition's endpoint.
 */
export function partitionNet(full: Topology, partition: string, endpoints: readonly PartitionEndpoint[], o: { bindAny?: boolean } = {}): PartitionNet {
  const at = new Map(endpoints.map((e) => [e.name, e]));
  const own = at.get(partition);
  if (!own) throw new Error(`no partition "${partition}" among ${endpoints.map((e) => e.name).join(', ')}`);
  const peers: PartitionNet['peers'] = {};
  for (const h of full.hosts) {
    const p = partitionOf(full, h.name);
    const e = at.get(p);
    if (p !== partition && e) peers[h.name] = { partition: p, address: e.address, port: e.port };
  }
  return { name: partition, listen: { address: o.bindAny ? '0.0.0.0' : own.address, port: own.port }, peers };
}

/** How long one step of the exchange may go quiet (a connect, an answer, the gap between two chunks). */
export const MIGRATE_STEP_MS = 30_000;

const unexpected = (m: MigrateMsg, want: string): Error => new MigrateWireError(`expected ${want}, got "${m.op}"`);

export class RemoteMover {
  constructor(
    private readonly ctx: ToolstackContext,
    private readonly lifecycle: DomainLifecycle,
    private readonly mover: DomainMover,
  ) {}

  /** The source half: move `ref` to host `to` of the partition at `peer`. */
  async migrate(ref: DomainRef, to: string, peer: PartitionPeer, o: MigrateOptions = {}): Promise<MigrationReport> {
    const { h: src, mem, rd } = this.lifecycle.find(ref);
    const who = `partition ${peer.partition} at ${peer.address}:${peer.port}`;
    return this.lifecycle.once(rd, `migration to ${to} (${who})`, async () => {
      const t0 = this.ctx.clock.now();
      const handles = vifHandles(src, mem.domid);
      const spec = src.spec.domUs[src.domUs.indexOf(mem)];
      const vifs = spec.vifs.map((v, i) => ({ handle: handles[i], mac: v.mac, ip: v.ip, mtu: src.spec.nic.mtu }));
      const live = o.live ?? false;
      const conn = await MigrateConn.connect(peer.address, peer.port, who, MIGRATE_STEP_MS);
      try {
        conn.send({ op: 'hello', v: MIGRATE_WIRE_VERSION, host: to, name: mem.name, from: ref.host, memPages: mem.mem.pages, live, vifs });
        const a = await conn.next(MIGRATE_STEP_MS, 'the answer to hello');
        // Refused before anything was touched: the guest runs on as it was.
        if (a.op === 'refuse') throw new Error(`${who} refused ${mem.name}: ${a.error}`);
        if (a.op !== 'accept') throw unexpected(a, 'accept or refuse');
        return await this.send(ref, { src, mem, rd, handles, to, who }, conn, live, o, t0);
      } finally {
        conn.close();
      }
    });
  }

  private async send(
    ref: DomainRef,
    m: { src: HostResources; mem: DomainMemory; rd: RunningDomain; handles: number[]; to: string; who: string },
    conn: MigrateConn,
    live: boolean,
    o: MigrateOptions,
    t0: number,
  ): Promise<MigrationReport> {
    const { src, mem, rd, handles, to, who } = m;
    const before = (await this.ctx.stats()) as Record<string, unknown>;
    delete before[`${ref.host}/${ref.domain}`]; // its counters leave with it
    const accelBefore = await this.mover.accelOf(src, mem.domid);
    // The source's copy of what the destination holds: each round sends what differs from it.
    const copy = GuestMemory.allocate(mem.mem.pages);
    const mirror = new PageMirror(mem.mem, copy, () => this.ctx.clock.now());
    await this.ctx.request(ref, 'migrate_arm', {}, 5000);
    await conn.write([...streamStart({ producer: `xsim ${xsimVersion()}` }), staticDataEndRecord()], MIGRATE_STEP_MS);
    if (live) {
      for (let r = 0; r < (o.maxRounds ?? MAX_ROUNDS); r++) {
        const sent = mirror.round();
        await conn.write(pageDataRecords(copy, sent), MIGRATE_STEP_MS);
        await this.ctx.sleep(Math.max(1, mirror.rounds[r].ms));
        if (r > 0 && sent.length <= (o.stopPages ?? STOP_PAGES)) break;
      }
    }
    const tStop = crossThreadNow(this.ctx.clock);
    const sus = await this.mover.suspend(ref, src, mem, rd, handles);
    const last = mirror.round();
    const rounds: MigrationReport['rounds'] = mirror.rounds.map((r) => ({ ...r }));
    rounds[rounds.length - 1].stop = true;
    let go = false;
    try {
      await conn.write([...pageDataRecords(copy, last), domainRecord(sus.saved), ...closingRecords(sus.saved.accel)], MIGRATE_STEP_MS);
      const r = await conn.next(MIGRATE_STEP_MS, 'the destination to read the stream');
      if (r.op === 'refuse') throw new Error(`${who} refused ${mem.name}: ${r.error}`);
      if (r.op !== 'ready') throw unexpected(r, 'ready or refuse');
      conn.send({ op: 'go' });
      go = true;
      const d = await conn.next((o.connectTimeoutMs ?? 30_000) + (o.settleMs ?? 2000) + MIGRATE_STEP_MS, 'the guest to run at the destination');
      if (d.op === 'failed') {
        go = false; // the destination cleaned up: the guest runs nowhere
        throw new Error(`${who} could not run ${mem.name}: ${d.error}`);
      }
      if (d.op !== 'done') throw unexpected(d, 'done or failed');
      this.ctx.untrack(rd);
      return this.report(ref, to, { sus: sus.saved, resent: sus.resent, lastRxAt: sus.lastRxAt }, d, { before, accelBefore, rounds, mirror, live, tStop, t0 });
    } catch (e) {
      const why = (e as Error).message;
      if (go) {
        this.ctx.untrack(rd);
        const file = await this.keepImage(sus.saved, copy);
        throw new Error(
          `${why}; ${who} was told to run ${mem.name} and then went silent, so whether it runs on ${to} is unknown: it was not resumed on ${ref.host} (that could make two); its image is kept in ${file} (xsim domain restore ${file} HOST)`,
        );
      }
      await this.mover.arrive(src, sus.saved, copy, rd.uid, rd, handles);
      throw new Error(`${why}; ${ref.host}/${ref.domain} was resumed on ${ref.host}`);
    }
  }

  private async report(
    ref: DomainRef,
    to: string,
    s: { sus: SavedDomain; resent: number; lastRxAt: (number | null)[] },
    d: MigrateMsgs['done'],
    m: {
      before: Record<string, unknown>;
      accelBefore: string[];
      rounds: MigrationReport['rounds'];
      mirror: PageMirror;
      live: boolean;
      tStop: number;
      t0: number;
    },
  ): Promise<MigrationReport> {
    const after = await this.ctx.stats();
    const lost = Object.fromEntries(dropDelta(m.before, after));
    const lastRx = Math.max(...s.lastRxAt.map((x) => x ?? -Infinity));
    this.ctx.log(
      `${ref.host}/${ref.domain} migrated to ${to} (another partition) as domain ${d.domid}: ${m.rounds.length} round(s), ${m.mirror.pagesSent} pages, blackout ${Math.round(d.connectedAt - m.tStop)} ms`,
    );
    return {
      domain: ref.domain,
      from: { host: ref.host, domid: s.sus.from.domid },
      to: { host: to, domid: d.domid, pcpu: d.pcpu },
      live: m.live,
      memPages: s.sus.memPages,
      rounds: m.rounds,
      pagesSent: m.mirror.pagesSent,
      // Both ends' clocks are epoch time: exact on one machine, off by the clocks' skew between two.
      blackoutMs: d.connectedAt - m.tStop,
      downtimeMs: d.firstRxAt !== null && Number.isFinite(lastRx) ? d.firstRxAt - lastRx : null,
      resent: s.resent,
      fastPath: { before: m.accelBefore, after: d.accel, backAfterMs: d.accelAfterMs },
      lost,
      lostTotal: Object.values(lost).reduce((n, v) => n + v, 0),
      totalMs: this.ctx.clock.now() - m.t0,
    };
  }

  /** The guest's image, when no one knows whether it runs: a file `xsim domain restore` reads. */
  private async keepImage(saved: SavedDomain, ram: GuestMemory): Promise<string> {
    const file = join(tmpdir(), `xsim-migrated-${saved.from.host}-${saved.name}-${process.pid}-${Date.now()}.xsave`);
    const { bytes } = encodeSaveStream(saved, ram, { producer: `xsim ${xsimVersion()}` });
    await this.ctx.runtime.hold(writeFile(file, bytes, { flag: 'wx' }));
    return file;
  }

  /** The destination half: take migrations from other partitions on `address`:`port` (TCP) until closed. */
  listen(address: string, port: number, o: { settleMs?: number; connectTimeoutMs?: number } = {}): Promise<MigrationListener> {
    const server = net.createServer((sock) => {
      const conn = new MigrateConn(sock, `a migration from ${sock.remoteAddress}:${sock.remotePort}`);
      void this.receive(conn, o).catch((e: Error) => this.ctx.log(logWarn(`${conn.peer} failed: ${e.message}`)));
    });
    return new Promise((resolve, reject) => {
      server.once('error', (e) => reject(new Error(`cannot take migrations on ${address}:${port} (TCP): ${e.message}`)));
      server.listen({ host: address, port }, () => {
        server.removeAllListeners('error');
        server.on('error', (e) => this.ctx.log(logWarn(`the migration listener on ${address}:${port}: ${e.message}`)));
        resolve({
          address,
          port: (server.address() as net.AddressInfo).port,
          close: () => new Promise<void>((r) => server.close(() => r())),
        });
      });
    });
  }

  private async receive(conn: MigrateConn, o: { settleMs?: number; connectTimeoutMs?: number }): Promise<void> {
    let release: (() => void) | null = null;
    try {
      const h = await conn.next(MIGRATE_STEP_MS, 'hello');
      if (h.op !== 'hello') throw unexpected(h, 'hello');
      let dst: HostResources;
      try {
        dst = this.ctx.host(h.host);
        const announced: SavedDomain = {
          name: h.name,
          memPages: h.memPages,
          from: { host: h.from, domid: 1 },
          vifs: h.vifs,
          kernel: { frame: 0, len: 1 },
          accel: [],
          suspendedAt: 0,
        };
        this.mover.check(
          undefined,
          undefined,
          dst,
          h.vifs.map((v) => ({ mac: v.mac, ip: v.ip })),
          announced,
        );
      } catch (e) {
        conn.send({ op: 'refuse', error: (e as Error).message });
        return;
      }
      const uid = this.ctx.nextUid();
      const handles = h.vifs.map((v) => v.handle);
      release = this.ctx.locks.claimArrival({
        uid,
        host: h.host,
        name: h.name,
        memPages: h.memPages,
        from: `${h.from} (another partition)`,
        macs: h.vifs.map((v) => parseMac(v.mac)),
        ips: h.vifs.map((v) => v.ip),
        handles,
      });
      conn.send({ op: 'accept' });
      const reader = new SaveStreamReader({ maxPages: 1 << 20, memPages: h.memPages });
      let img: ReturnType<SaveStreamReader['result']>;
      try {
        await conn.readStream(reader, MIGRATE_STEP_MS);
        img = reader.result();
        const same =
          img.dom.name === h.name &&
          img.dom.vifs.length === h.vifs.length &&
          img.dom.vifs.every((v, i) => v.mac === h.vifs[i].mac && v.ip === h.vifs[i].ip && v.handle === h.vifs[i].handle);
        if (!same) throw new Error(`the stream's domain (${img.dom.name}) is not the one announced in hello (${h.name}, the same vifs)`);
      } catch (e) {
        conn.send({ op: 'refuse', error: (e as Error).message });
        return;
      }
      conn.send({ op: 'ready' });
      // No go (the source resumed it, or went away): the image is dropped and nothing ran here.
      const g = await conn.next(MIGRATE_STEP_MS, 'go');
      if (g.op !== 'go') throw unexpected(g, 'go');
      await this.run(conn, dst, h, img, uid, handles, o);
    } finally {
      release?.();
      conn.close();
    }
  }

  private async run(
    conn: MigrateConn,
    dst: HostResources,
    h: MigrateMsgs['hello'],
    img: ReturnType<SaveStreamReader['result']>,
    uid: number,
    handles: number[],
    o: { settleMs?: number; connectTimeoutMs?: number },
  ): Promise<void> {
    let arrived: { domid: number; pcpu: number };
    try {
      arrived = await this.mover.arrive(dst, img.dom, img.mem, uid, undefined, handles, o.connectTimeoutMs);
    } catch (e) {
      // Whatever of it was built goes, so the source may resume it without a twin.
      await this.lifecycle.destroy({ host: h.host, domain: h.name }).catch(() => undefined);
      conn.send({ op: 'failed', error: (e as Error).message });
      return;
    }
    const connectedAt = crossThreadNow(this.ctx.clock);
    const tUp = this.ctx.clock.now();
    this.ctx.log(`${h.host}/${h.name} arrived from ${h.from} (another partition) as domain ${arrived.domid}: ${img.pages} pages`);
    const settled = await this.mover.settle({ host: h.host, domain: h.name }, dst, arrived.domid, o.settleMs ?? 2000);
    conn.send({
      op: 'done',
      domid: arrived.domid,
      pcpu: arrived.pcpu,
      connectedAt,
      firstRxAt: settled.firstRxAt,
      accel: settled.accel,
      accelAfterMs: settled.accelAt === null ? null : settled.accelAt - tUp,
      pages: img.pages,
    });
  }
}

/** A partition taking migrations: where, and how to stop. */
export interface MigrationListener {
  address: string;
  port: number;
  close(): Promise<void>;
}
