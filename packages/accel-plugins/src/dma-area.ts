/**
 * An accelerator frontend's DMA area (vnic's and vdpa's): `pages` physically
 * contiguous guest frames, each granted read-write to dom0 (page i is grant
 * i: vnic's buffer ids, vdpa's IOVA iovaBase + i × 4096), and the
 * device-interrupt port the NIC raises. Allocated at an offer, given back at
 * release once dom0 no longer maps it.
 *
 * An offer that finds no room although the guest has the frames (a kernel
 * just resumed still holds the TX frames it is about to send again) waits
 * for them while they come back: it gives up only after DMA_WAIT_MS of the
 * guest's clock in which not one frame came back (on a loaded machine the
 * kernel may take longer than that to send them all, but it keeps giving
 * frames back while it does). Short of RAM for good, or past that wait,
 * allocation throws and the frontend fails (the vif stays on the slow path).
 */
import type { AccelFrontendContext } from '@xsim/netfront';
const PAGE = 4096;

/** How long an offer waits for its DMA area with no frame coming back (virtual ms in a deterministic run). */
export const DMA_WAIT_MS = 1000;

export class DmaArea {
  /** The area's first guest frame, -1 while none is held. */
  first = -1;
  grefs: number[] = [];
  irqPort = 0;
  /** While an offer waits for room: until when, and the free frames at the last try (-1: not waiting). */
  private waitUntil = -1;
  private waitedAt = -1;

  constructor(
    private readonly ctx: AccelFrontendContext,
    readonly pages: number,
  ) {}

  get held(): boolean {
    return this.first >= 0;
  }

  get waiting(): boolean {
    return this.waitUntil >= 0;
  }

  /** RAM byte offset of octet `o` of the area. */
  ram(o: number): number {
    return this.first * PAGE + o;
  }

  /** Worth another try now: frames came back since the last, or the wait is over (the try then throws). */
  retryDue(): boolean {
    return this.ctx.frames.available !== this.waitedAt || this.ctx.clock.now() > this.waitUntil;
  }

  /**
   * Take the area, grant it and allocate the port: true when held. False when
   * it does not fit yet but may soon (`onWait` is told the first time);
   * throws when it never will.
   */
  allocate(onWait: () => void): boolean {
    const { ctx } = this;
    if (this.first >= 0) return true;
    try {
      this.first = ctx.frames.allocRange(this.pages);
    } catch (e) {
      const now = ctx.clock.now();
      const available = ctx.frames.available;
      if (available < this.pages || (this.waitUntil >= 0 && available === this.waitedAt && now > this.waitUntil)) {
        this.waitUntil = -1;
        throw e;
      }
      if (this.waitUntil < 0) onWait();
      // Waiting starts, or frames came back since the last try: DMA_WAIT_MS more for the rest.
      if (this.waitUntil < 0 || available !== this.waitedAt) this.waitUntil = now + DMA_WAIT_MS;
      this.waitedAt = available;
      return false;
    }
    this.waitUntil = -1;
    for (let p = 0; p < this.pages; p++) {
      const g = ctx.grefs.alloc();
      ctx.gnttab.grantAccess(g, ctx.backendDomid, this.first + p, false); // read-write: the device writes RX and used rings
      this.grefs.push(g);
    }
    this.irqPort = ctx.evtchn.allocPirq();
    ctx.evtchn.bindHandler(this.irqPort, () => {}); // the interrupt wakes the vCPU; netfront then polls
    return true;
  }

  /**
   * Give everything back. Returns how many grants dom0 still mapped: then no
   * page is freed (a page dom0 maps must never be reused). Harmless with
   * nothing held.
   */
  release(): number {
    const { ctx } = this;
    this.waitUntil = -1;
    if (this.first < 0) return 0;
    let stillMapped = 0;
    for (const g of this.grefs) {
      if (ctx.gnttab.endAccess(g)) ctx.grefs.release(g);
      else stillMapped++;
    }
    if (stillMapped === 0) for (let p = 0; p < this.pages; p++) ctx.frames.release(this.first + p);
    ctx.evtchn.close(this.irqPort);
    this.first = -1;
    this.grefs = [];
    this.irqPort = 0;
    return stillMapped;
  }
}
