/**
 * The background stream of the model test: rounds between the two stable
 * guests (a1 on host-a, b1 on host-b), one way then the other, for as long as
 * the run lasts. Each round's frames are accounted exactly when it ends:
 * every frame sent was delivered once, arrived too late, or is in a drop
 * counter on its path (the two ends, the dom0s, the NIC hardware), and no more
 * were counted than the flood copies made meanwhile allow.
 */
import { runStream, streamAccount, type DomainRef, type Simulation } from '@xsim/toolstack';
import type { Figures } from './figures.ts';

export const A1: DomainRef = { host: 'host-a', domain: 'a1' };
export const B1: DomainRef = { host: 'host-b', domain: 'b1' };
/** Frames a round, and the pause between rounds (on the simulation's clock): enough to keep frames in flight under every operation, not so many that a deterministic run (one thread) spends its time on them. */
const ROUND = 300;

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
  rounds = 0;

  constructor(
    private readonly sim: Simulation,
    private readonly fig: Figures,
    /** Is a NIC's link down now (the model's view)? A round that fails meanwhile is not held against the plane. */
    private readonly linkDown: () => boolean,
    /** Bumped by every link operation: a round it overlapped may count more drops than it sent (see round()). */
    private readonly linkEpoch: () => number,
    /**
     * Pause between rounds, on the simulation's clock. A deterministic run's clock moves only with the work
     * done (the operations go through the API): a short pause keeps frames in flight under them. Real time
     * passes anyway on threads, where the socket's requests come in: there a longer one leaves the cores to them.
     */
    private readonly pauseMs: number,
  ) {}

  /** One round, accounted; throws only if the round itself failed. */
  async round(from: DomainRef, to: DomainRef, srcPort: number): Promise<void> {
    const sim = this.sim;
    // ARP first, outside the accounted interval (its broadcast is no frame of the stream).
    await sim.request(from, 'arp_resolve', { ip: sim.domain(to).ip });
    const epoch = this.linkEpoch();
    const down = this.linkDown();
    const before = await sim.stats();
    const r = await runStream(sim, { from, to, count: ROUND, frameSize: 800, window: 64, srcPort, timeoutMs: 60_000 });
    const after = await sim.stats();
    const all = streamAccount(before, after, r);
    const drops = new Map([...all.drops].filter(([k]) => onPath(k)));
    const dropped = [...drops.values()].reduce((a, b) => a + b, 0);
    const seen = r.delivered + r.tooOld + dropped;
    const s = this.fig.stream;
    s.rounds++;
    s.sent += r.sent;
    s.delivered += r.delivered;
    s.tooOld += r.tooOld;
    s.dropped += dropped;
    s.copies += all.copies;
    this.fig.drops(drops);
    const what = `stream round ${this.rounds} ${from.host}/${from.domain} -> ${to.host}/${to.domain}: sent ${r.sent}, delivered ${r.delivered}, too old ${r.tooOld}, drops ${JSON.stringify([...drops])}, elsewhere ${JSON.stringify([...all.drops].filter(([k]) => !onPath(k)))}, flood copies ${all.copies}`;
    if (r.duplicated !== 0) this.problems.push(`${what}: ${r.duplicated} delivered twice`);
    if (seen < r.sent) this.problems.push(`${what}: ${r.sent - seen} frame(s) neither delivered nor counted`);
    // A link that went down while the round ran also drops what is not the stream's data (the receiver's
    // credits, other guests' ARP): then only the lower bound is exact.
    const flapped = down || this.linkDown() || epoch !== this.linkEpoch();
    if (seen > r.sent + all.copies && !flapped) this.problems.push(`${what}: ${seen - r.sent - all.copies} more counted than sent (and flooded)`);
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

  /** Problems since the last call. */
  take(): string[] {
    const p = this.problems;
    this.problems = [];
    return p;
  }

  async stop(): Promise<string[]> {
    this.stopping = true;
    await this.loop;
    return this.take();
  }
}
