/**
 * The bridge port of dom0's own stack: frames are built in an skb and
 * forwarded. An skb is recycled memory that held other domains' frames, so
 * every frame built here is zero-filled first: a stack that writes only part
 * of a payload (a ping writes 16 of its bytes) sends zeros, never another
 * guest's data.
 */
import { declareCounters } from '@xsim/hypervisor';
import type { FrameTransport } from '@xsim/netstack';
import type { Bridge, BridgePort } from '../bridge.ts';
import { CSUM_NONE, CSUM_PARTIAL, type CsumState, type SkbPool } from '../skb.ts';
import { rxCsumFlags } from '../vif/rx.ts';

export const LOCAL_PORT_COUNTERS = declareCounters("dom0's stack port", {
  txDropNoSkb: { kind: 'drop', help: "frames dom0's own stack could not send: no skb was free" },
});

export class LocalPort implements BridgePort, FrameTransport {
  readonly name = 'dom0';
  portId = -1;
  /** A frame for dom0's stack, with the NETRXF_* flags its checksum state gives (as a vif's guest is given them). */
  onReceive: (ram: Uint8Array, off: number, len: number, rxFlags: number) => void = () => {};
  private reserved = -1;
  readonly c = LOCAL_PORT_COUNTERS.zero();

  constructor(
    private readonly skbs: SkbPool,
    private readonly bridge: Bridge,
  ) {}

  get ram(): Uint8Array {
    return this.skbs.mem.u8;
  }

  deliver(addr: number, len: number, _skb: number, csum: CsumState = CSUM_NONE): void {
    this.onReceive(this.skbs.mem.u8, addr, len, rxCsumFlags(csum));
  }

  txReserve(len: number): number {
    if (len > this.skbs.slotSize) return -1;
    this.reserved = this.skbs.alloc();
    if (this.reserved < 0) {
      this.c.txDropNoSkb++;
      return -1;
    }
    const at = this.skbs.addr(this.reserved);
    this.skbs.mem.u8.fill(0, at, at + len);
    return at;
  }

  /** `csumPartial`: dom0's stack left the checksum partial (it always may: every port behind the bridge completes what it must). */
  txCommit(len: number, csumPartial = false): void {
    const skb = this.reserved;
    this.reserved = -1;
    this.skbs.len[skb] = len;
    this.bridge.forward(this.portId, this.skbs.addr(skb), len, skb, csumPartial ? CSUM_PARTIAL : CSUM_NONE);
    this.skbs.put(skb);
  }

  txAvailable(): number {
    return this.skbs.available;
  }

  flush(): void {}
}
