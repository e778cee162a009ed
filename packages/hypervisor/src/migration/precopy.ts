/**
 * Live migration's memory copy: iterative pre-copy with a dirty log.
 *
 * Xen's log-dirty mode write-protects the guest's pages and logs the first
 * write to each after its copy was sent. A SharedArrayBuffer cannot be
 * write-protected, and writes to guest RAM come from three places (the guest
 * itself, dom0's grant copies, the NIC's DMA) on three threads; so the log
 * is derived instead: a page is dirty when it differs from the copy the
 * destination already holds. That catches every write that changed a page,
 * whoever made it, and needs no writer's cooperation (a writer that forgot to
 * mark a page would otherwise corrupt the destination silently). A write that
 * put back the same bytes is not resent, and need not be. The cost is one
 * memcmp of RAM per round, a few milliseconds for tens of MB.
 *
 * A page read while another thread writes it may be copied torn; it then
 * differs from the source and is sent again next round. The last round runs
 * with the domain stopped and every writer gone, so the destination ends
 * byte-identical.
 */
import { GuestMemory, PAGE_SIZE } from '../memory.ts';

export interface PrecopyRound {
  round: number;
  /** Pages sent in this round (dirty since the last). */
  pages: number;
  ms: number;
}

export class PageMirror {
  readonly rounds: PrecopyRound[] = [];
  private readonly srcPages: Buffer[] = [];
  private readonly dstPages: Buffer[] = [];

  constructor(
    readonly src: GuestMemory,
    readonly dst: GuestMemory,
    private readonly now: () => number,
  ) {
    if (src.pages !== dst.pages) throw new RangeError(`pre-copy between RAMs of ${src.pages} and ${dst.pages} pages`);
    for (let p = 0; p < src.pages; p++) {
      this.srcPages.push(Buffer.from(src.sab, p * PAGE_SIZE, PAGE_SIZE));
      this.dstPages.push(Buffer.from(dst.sab, p * PAGE_SIZE, PAGE_SIZE));
    }
  }

  /** The pages that differ from the destination's copy now (the dirty log), without sending them. */
  dirty(): number[] {
    const out: number[] = [];
    for (let p = 0; p < this.srcPages.length; p++) if (this.srcPages[p].compare(this.dstPages[p]) !== 0) out.push(p);
    return out;
  }

  /** One round: read the dirty log and send every page in it. Returns the pages sent. */
  round(): number[] {
    const t0 = this.now();
    const sent = this.dirty();
    for (const p of sent) this.dstPages[p].set(this.srcPages[p]);
    this.rounds.push({ round: this.rounds.length + 1, pages: sent.length, ms: this.now() - t0 });
    return sent;
  }

  /** Pages sent over every round. */
  get pagesSent(): number {
    return this.rounds.reduce((n, r) => n + r.pages, 0);
  }
}
