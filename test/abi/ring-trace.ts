/**
 * xsim's half of the ring comparison (test/xen-abi-ring.test.ts): seeded
 * operation sequences, and xsim's rings (FrontRing, BackRing, SharedRing
 * from packages/hypervisor/src/ring.ts) run on them, printing the trace
 * test/abi/ring-trace.c prints from io/ring.h's macros. The two must agree
 * line for line; ring-trace.c's header describes the operations and what each
 * slot holds. Slots are written and read through xsim's netif.ts offsets and
 * helpers, so the final bytes of the ring check those too.
 */
import {
  BackRing,
  FrontRing,
  NETIF_CTRL_SLOT_SIZE,
  NETIF_RSP_NULL,
  NETIF_RX_SLOT_SIZE,
  NETIF_TX_SLOT_SIZE,
  RXREQ_GREF,
  RXREQ_ID,
  RXRSP_FLAGS,
  RXRSP_ID,
  RXRSP_OFFSET,
  RXRSP_STATUS,
  SRING_HEADER_SIZE,
  SRING_REQ_EVENT,
  SRING_REQ_PROD,
  SRING_RSP_EVENT,
  SRING_RSP_PROD,
  SeededRng,
  SharedRing,
  TXREQ_FLAGS,
  TXREQ_GREF,
  TXREQ_ID,
  TXREQ_OFFSET,
  TXREQ_SIZE,
  TXRSP_ID,
  TXRSP_STATUS,
  XEN_NETIF_EXTRA_FLAG_MORE,
  newExtraInfo,
  readCtrlRequest,
  readCtrlResponse,
  readExtraInfo,
  writeCtrlRequest,
  writeCtrlResponse,
  writeExtraInfo,
  type NetifExtraInfo,
} from '@xsim/hypervisor';

export type RingKind = 'tx' | 'rx' | 'ctrl';
export const SLOT: Record<RingKind, number> = { tx: NETIF_TX_SLOT_SIZE, rx: NETIF_RX_SLOT_SIZE, ctrl: NETIF_CTRL_SLOT_SIZE };

export interface Scenario {
  kind: RingKind;
  /** Bytes of the page the ring occupies (__RING_SIZE's size). */
  bytes: number;
  /** Every index's first value. */
  start: number;
  ops: string[];
}

/** A seeded sequence of `count` operations for a ring of `slots` slots. */
export function randomOps(rng: SeededRng, slots: number, count: number): string[] {
  const kinds = ['P', 'PN', 'C', 'R', 'RN', 'F', 'BF', 'FF'];
  const ops: string[] = [];
  for (let i = 0; i < count; i++) {
    const k = kinds[rng.int(kinds.length)];
    if (k.length === 2) ops.push(k);
    // Mostly small batches, sometimes more than the ring holds.
    else ops.push(`${k} ${1 + (rng.next() < 0.25 ? rng.int(2 * slots + 2) : rng.int(4))}`);
  }
  return ops;
}

/** What ring-trace.c reads on stdin. */
export function scenarioInput(scenarios: readonly Scenario[]): string {
  return scenarios.map((s) => `scenario ${s.kind} ${s.bytes} ${s.start}\n${s.ops.join('\n')}\nend\n`).join('');
}

const u32 = (x: number): number => x >>> 0;
const isExtra = (v: number): boolean => v % 5 === 4;
const hex2 = (b: number): string => b.toString(16).padStart(2, '0');

function fillExtra(x: NetifExtraInfo, v: number): NetifExtraInfo {
  x.type = 1 + (Math.floor(v / 5) % 5);
  x.flags = Math.floor(v / 25) & 1 ? XEN_NETIF_EXTRA_FLAG_MORE : 0;
  x.gsoSize = v & 0xffff;
  x.gsoType = v % 3;
  x.gsoFeatures = (v >>> 3) & 0xffff;
  for (let i = 0; i < 6; i++) x.mcastAddr[i] = (v >>> (i * 4)) & 0xff;
  x.hashType = v % 4;
  x.hashAlgorithm = v & 1;
  x.hashValue = u32(Math.imul(v, 2654435761));
  x.xdpHeadroom = v & 0xfff;
  return x;
}

function extraLine(what: string, v: number, x: NetifExtraInfo): string {
  const mac = [...x.mcastAddr].map(hex2).join('');
  return `  ${what} ${v} extra type=${x.type} flags=${x.flags} gso=${x.gsoSize}/${x.gsoType}/${x.gsoFeatures} mcast=${mac} hash=${x.hashType}/${x.hashAlgorithm}/${x.hashValue}`;
}

/** How one ring type's slots are filled and printed (the twin of ring-trace.c's <kind>_fill_req and friends). */
interface Slots {
  /** Writes request v at byte o; returns what the response needs of it. */
  fillReq(dv: DataView, o: number, v: number): void;
  /** Copies request v out of byte o: its line, and what the response needs (its id and type). */
  copyReq(dv: DataView, o: number, v: number): { line: string; id: number; type: number };
  fillRsp(dv: DataView, o: number, v: number, req: { id: number; type: number }): void;
  copyRsp(dv: DataView, o: number, v: number): string;
}

const extra = newExtraInfo();

const TX: Slots = {
  fillReq(dv, o, v) {
    if (isExtra(v)) return writeExtraInfo(dv, o, fillExtra(extra, v));
    dv.setUint32(o + TXREQ_GREF, u32(Math.imul(v, 7) + 1), true);
    dv.setUint16(o + TXREQ_OFFSET, v & 0xfff, true);
    dv.setUint16(o + TXREQ_FLAGS, v & 0xf, true);
    dv.setUint16(o + TXREQ_ID, v & 0xffff, true);
    dv.setUint16(o + TXREQ_SIZE, Math.imul(v, 3) & 0xffff, true);
  },
  copyReq(dv, o, v) {
    const id = dv.getUint16(o + TXREQ_ID, true);
    if (isExtra(v)) return { line: extraLine('req', v, readExtraInfo(dv, o, extra)), id, type: 0 };
    const line = `  req ${v} gref=${dv.getUint32(o + TXREQ_GREF, true)} offset=${dv.getUint16(o + TXREQ_OFFSET, true)} flags=${dv.getUint16(o + TXREQ_FLAGS, true)} id=${id} size=${dv.getUint16(o + TXREQ_SIZE, true)}`;
    return { line, id, type: 0 };
  },
  fillRsp(dv, o, v, req) {
    dv.setUint16(o + TXRSP_ID, isExtra(v) ? 0 : req.id, true);
    dv.setInt16(o + TXRSP_STATUS, isExtra(v) ? NETIF_RSP_NULL : (v % 3) - 2, true);
  },
  copyRsp(dv, o, v) {
    return `  rsp ${v} id=${dv.getUint16(o + TXRSP_ID, true)} status=${dv.getInt16(o + TXRSP_STATUS, true)}`;
  },
};

const RX: Slots = {
  fillReq(dv, o, v) {
    dv.setUint16(o + RXREQ_ID, v & 0xffff, true);
    dv.setUint16(o + 2, 0, true); // pad
    dv.setUint32(o + RXREQ_GREF, u32(v ^ 0x5a5a5a5a), true);
  },
  copyReq(dv, o, v) {
    const id = dv.getUint16(o + RXREQ_ID, true);
    return { line: `  req ${v} id=${id} gref=${dv.getUint32(o + RXREQ_GREF, true)}`, id, type: 0 };
  },
  fillRsp(dv, o, v, req) {
    if (isExtra(v)) return writeExtraInfo(dv, o, fillExtra(extra, v));
    dv.setUint16(o + RXRSP_ID, req.id, true);
    dv.setUint16(o + RXRSP_OFFSET, v & 0xfff, true);
    dv.setUint16(o + RXRSP_FLAGS, v & 0x1f, true);
    dv.setInt16(o + RXRSP_STATUS, Math.imul(v, 7) & 0x7ff, true);
  },
  copyRsp(dv, o, v) {
    if (isExtra(v)) return extraLine('rsp', v, readExtraInfo(dv, o, extra));
    return `  rsp ${v} id=${dv.getUint16(o + RXRSP_ID, true)} offset=${dv.getUint16(o + RXRSP_OFFSET, true)} flags=${dv.getUint16(o + RXRSP_FLAGS, true)} status=${dv.getInt16(o + RXRSP_STATUS, true)}`;
  },
};

const CTRL: Slots = {
  fillReq(dv, o, v) {
    writeCtrlRequest(dv, o, { id: v & 0xffff, type: v % 11, data: [0, 1, 2].map((i) => u32(Math.imul(v, i + 1) ^ 0xa5a5a5a5)) as [number, number, number] });
  },
  copyReq(dv, o, v) {
    const r = readCtrlRequest(dv, o);
    return { line: `  req ${v} id=${r.id} type=${r.type} data=${r.data.join(',')}`, id: r.id, type: r.type };
  },
  fillRsp(dv, o, v, req) {
    writeCtrlResponse(dv, o, { id: req.id, type: req.type, status: v % 4, data: u32(~v) });
  },
  copyRsp(dv, o, v) {
    const p = readCtrlResponse(dv, o);
    return `  rsp ${v} id=${p.id} type=${p.type} status=${p.status} data=${p.data}`;
  },
};

const KINDS: Record<RingKind, Slots> = { tx: TX, rx: RX, ctrl: CTRL };

/** Runs one scenario on xsim's rings; returns its trace lines (ring-trace.c's format). */
export function runXsim(sc: Scenario): string[] {
  const slots = KINDS[sc.kind];
  const page = new Uint8Array(new SharedArrayBuffer(sc.bytes));
  const s = new SharedRing(page, SLOT[sc.kind]);
  s.init();
  for (const w of [SRING_REQ_PROD, SRING_RSP_PROD]) Atomics.store(s.idx, w >> 2, sc.start | 0);
  for (const w of [SRING_REQ_EVENT, SRING_RSP_EVENT]) Atomics.store(s.idx, w >> 2, (sc.start + 1) | 0);
  const f = new FrontRing(s);
  const b = new BackRing(s);
  f.reqProdPvt = f.rspCons = b.rspProdPvt = b.reqCons = sc.start;
  const kept = new Map<number, { id: number; type: number }>();
  const out = [`scenario ${sc.kind} ${sc.bytes} ${sc.start}`, `size ${f.size}`];
  /** RING_HAS_UNCONSUMED_REQUESTS, through xsim's checked producer snapshot. */
  const unreq = (): number => {
    const prod = b.requestProducer();
    if (prod < 0) out.push('  IMPOSSIBLE request producer');
    return prod < 0 ? 0 : b.unconsumedRequests(prod);
  };
  for (const op of sc.ops) {
    const [name, arg] = op.split(' ');
    const n = arg === undefined ? 0 : Number(arg);
    out.push(`${name} ${n}`);
    let done = 0;
    let notify = false;
    let work = false;
    switch (name) {
      case 'P':
        for (; done < n && !f.full(); done++, f.reqProdPvt = u32(f.reqProdPvt + 1)) slots.fillReq(s.dv, f.nextRequestOffset(), f.reqProdPvt);
        break;
      case 'PN':
        notify = f.pushRequestsAndCheckNotify();
        break;
      case 'C':
        for (; done < n && unreq() > 0; done++, b.reqCons = u32(b.reqCons + 1)) {
          const r = slots.copyReq(s.dv, s.slotOffset(b.reqCons), b.reqCons);
          kept.set(b.reqCons, r);
          out.push(r.line);
        }
        break;
      case 'R':
        for (; done < n && b.rspProdPvt !== b.reqCons; done++, b.rspProdPvt = u32(b.rspProdPvt + 1)) {
          slots.fillRsp(s.dv, b.nextResponseOffset(), b.rspProdPvt, kept.get(b.rspProdPvt)!);
          kept.delete(b.rspProdPvt);
        }
        break;
      case 'RN':
        notify = b.pushResponsesAndCheckNotify();
        break;
      case 'F':
        if (f.responseProducer() < 0) out.push('  IMPOSSIBLE response producer');
        for (; done < n && f.unconsumedResponses() > 0; done++, f.rspCons = u32(f.rspCons + 1))
          out.push(slots.copyRsp(s.dv, f.responseOffset(f.rspCons), f.rspCons));
        break;
      case 'BF': {
        const r = b.finalCheckForRequests();
        if (r < 0) out.push('  IMPOSSIBLE request producer');
        work = r > 0;
        break;
      }
      case 'FF':
        work = f.finalCheckForResponses();
        break;
      default:
        throw new Error(`unknown ring operation ${op}`);
    }
    out.push(
      `  done=${done} notify=${+notify} work=${+work} | ${s.reqProd} ${s.reqEvent} ${s.rspProd} ${s.rspEvent} | front ${f.reqProdPvt} ${f.rspCons} | back ${b.rspProdPvt} ${b.reqCons} | free=${f.freeRequests()} full=${+f.full()} unreq=${unreq()} unrsp=${f.unconsumedResponses()}`,
    );
  }
  out.push('bytes');
  for (let i = 0; i < sc.bytes; i += 32) out.push([...page.subarray(i, i + 32)].map(hex2).join(''));
  return out;
}

/** The slot count a ring of `bytes` gets (for sizing the operation batches). */
export function slotsFor(kind: RingKind, bytes: number): number {
  return 2 ** Math.floor(Math.log2((bytes - SRING_HEADER_SIZE) / SLOT[kind]));
}
