/**
 * The background stream of the model test: rounds between the two stable
 * guests (a1 on host-a, b1 on host-b), one way then the other, for as long as
 * the run lasts, accounted over the whole run: the stats snapshots follow one
 * another with no gap, so every frame sent was delivered once, arrived too
 * late, or is in a drop counter on its path (the two ends, the dom0s, the NIC
 * hardware), by the time the stream has stopped and settled; and no more were
 * counted than the flood copies made meanwhile allow.
 *
 * Accounted over the run rather than per round: a receiver that hears nothing
 * for 500 ms ends its round, and frames still on their way (a guest its pCPU
 * did not run for that long, as when a plugin's modules load on a loaded
 * machine) arrive in a later round, dropped at a closed port. Each round uses
 * its own port of 32, so such a frame never lands in a later receiver, which
 * would count it only as `foreign` in its reply (no drop counter): see the
 * model test's report (issue 20).
 */
import { runStream, streamAccount, type DomainRef, type Simulation, type StatsTree } from '@xsim/toolstack';
import type { Figures } from './figures.ts';

export const A1: DomainRef = { host: 'host-a', domain: 'a1' };
export const B1: DomainRef = { host: 'host-b', domain: 'b1' };
/** Frames a round: enough to keep frames in flight under every operation, not so many that a deterministic run (one thread) spends its time on them. */
const ROUND = 300;
const PORTS = 32;

/**
 * Drop counters on the stream's path: the two ends, the dom0s (but of their vifs only the ends' first:
 * vif1.0, domain 1 on each host), the NIC hardware. A frame of the stream that ended anywhere else was
 * misdelivered; a frame that ended on another guest's vif (a migrated guest's first frames refused as spoofed)
 * is not the stream's.
 */
const onPath = (k: string) => /^(host-a\/a1|host-b\/b1|host-a\/dom0|host-b\/dom0|fabric)\./.test(k) && !/^host-[ab]\/dom0\.vifs\.(?!vif1\.0\.)/.test(k);

export class BackgroundStream {
  private stopping = false;
  private loop: Promise<void> | null = null;
  /** What went wrong since the last step looked (taken by take()). */
  private problems: string[] = [];
  /** The last snapshot: the next interval starts there (null: take a new one, the chain was broken). */
  private base: StatsTree | null = null;
  /** Over the run: frames sent, delivered, too old, dropped on the path, flood copies, and drops in intervals a link operation overlapped. */
  private readonly acc = { sent: 0, delivered: 0, tooOld: 0, dropped: 0, copies: 0, flapDrops: 0 };
  /** A round failed after it may have sent frames: what they became cannot be accounted. */
  private broken = false;
  rounds = 0;

  constructor(
    private readonly sim: Simulation,
    private readonly fig: Figures,
    /** Is a NIC's link down now (the model's view)? A round that fails meanwhile is not held against the plane. */
    private readonly linkDown: () => boolean,
    /** Bumped by every link operation: an interval it overlapped may count more drops than frames (the receiver's credits, ARP). */
    private readonly linkEpoch: () => number,
    /**
     * Pause between rounds, on the simulation's clock. A deterministic run's clock moves only with the work
     * done (the operations go through the API): a short pause keeps frames in flight under them. Real time
     * passes anyway on threads, where the socket's requests come in: there a longer one leaves the cores to them.
     */
    private readonly pauseMs: number,
  ) {}

  /** One interval into the totals: from the last snapshot to now, with what the round (if any) sent and got. */
  private async account(r: { sent: number; delivered: number; tooOld: number; duplicated: number }, what: string, flapped: boolean): Promise<void> {
    const before = this.base ?? (await this.sim.stats());
    const after = await this.sim.stats();
    this.base = after;
    const all = streamAccount(before, after, r);
    const drops = new Map([...all.drops].filter(([k]) => onPath(k)));
    const dropped = [...drops.values()].reduce((a, b) => a + b, 0);
    for (const [k, v] of Object.entries({ sent: r.sent, delivered: r.delivered, tooOld: r.tooOld, dropped, copies: all.copies }))
      this.acc[k as keyof typeof this.acc] += v;
    if (flapped) this.acc.flapDrops += dropped;
    const s = this.fig.stream;
    s.sent += r.sent;
    s.delivered += r.delivered;
    s.tooOld += r.tooOld;
    s.dropped += dropped;
    s.copies += all.copies;
    this.fig.drops(drops);
    if (r.duplicated !== 0) this.problems.push(`${what}: ${r.duplicated} frame(s) delivered twice`);
  }

  /** One round; throws only if the round itself failed. */
  async round(from: DomainRef, to: DomainRef, srcPort: number): Promise<void> {
    const sim = this.sim;
    await sim.request(from, 'arp_resolve', { ip: sim.domain(to).ip });
    const epoch = this.linkEpoch();
    const down = this.linkDown();
    if (this.base === null) this.base = await sim.stats();
    let sent = false;
    try {
      const port = 5001 + (this.rounds % PORTS);
      sent = true;
      const r = await runStream(sim, { from, to, count: ROUND, frameSize: 800, window: 64, port, srcPort, timeoutMs: 60_000 });
      this.fig.stream.rounds++;
      const what = `stream round ${this.rounds} ${from.host}/${from.domain} -> ${to.host}/${to.domain} (sent ${r.sent}, delivered ${r.delivered})`;
      await this.account(r, what, down || this.linkDown() || epoch !== this.linkEpoch());
    } catch (e) {
      // An ARP that got no answer (a link down) sent nothing of the stream.
      if (sent && !(e as Error).message.startsWith('arp_resolve')) {
        this.broken = true;
        this.base = null;
      }
      throw e;
    }
  }

  /**
   * The totals so far. Frames of at most one round may still be on their way (a round ends on 500 ms of
   * silence); `final` (the stream stopped and settled): none may.
   */
  private check(final: boolean): string[] {
    if (this.broken) return [];
    const a = this.acc;
    const deficit = a.sent - a.delivered - a.tooOld - a.dropped;
    const totals = `over ${this.rounds} rounds: sent ${a.sent}, delivered ${a.delivered}, too old ${a.tooOld}, dropped on the path ${a.dropped}, flood copies ${a.copies}`;
    if (deficit > (final ? 0 : ROUND)) return [`stream ${totals}: ${deficit} frame(s) neither delivered nor counted`];
    if (-deficit > a.copies + a.flapDrops) return [`stream ${totals}: ${-deficit - a.copies - a.flapDrops} more counted than sent (and flooded)`];
    return [];
  }

  start(): void {
    this.loop = (async () => {
      while (!this.stopping) {
        const [from, to, port] = this.rounds % 2 === 0 ? [A1, B1, 6001] : [B1, A1, 6002];
        this.rounds++;
        const down = this.linkDown();
        try {
          await this.round(from, to, port);
          await this.sim.sleep(this.pauseMs);
        } catch (e) {
          this.fig.stream.failedRounds++;
          if (this.fig.streamFailures.length < 5) this.fig.streamFailures.push(`${down || this.linkDown() ? '(link down) ' : ''}${(e as Error).message}`);
          if (!down && !this.linkDown()) this.problems.push(`stream round ${this.rounds} ${from.domain} -> ${to.domain} failed: ${(e as Error).message}`);
          await this.sim.sleep(50);
        }
      }
    })();
  }

  /** The simulation is going down anyway (a failed run): no more rounds, no waiting for this one. */
  abandon(): void {
    this.stopping = true;
  }

  /** Problems since the last call, and the totals so far. */
  take(): string[] {
    const p = [...this.problems, ...this.check(false)];
    this.problems = [];
    return p;
  }

  /** Stop after the round under way, let what is still on its way arrive or be dropped, and check the totals exactly. */
  async stop(): Promise<string[]> {
    this.stopping = true;
    await this.loop;
    await this.sim.sleep(1000);
    if (!this.broken && this.base) await this.account({ sent: 0, delivered: 0, tooOld: 0, duplicated: 0 }, 'after the last round', this.linkDown());
    const p = [...this.problems, ...this.check(true)];
    this.problems = [];
    return p;
  }
}
