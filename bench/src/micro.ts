/**
 * Microbenchmarks (benny) of the pieces every frame goes through: a ring
 * push/pop with notification check, a 1500-byte grant copy with its checks, a
 * NIC filter lookup among 10,000 filters, a bridge forwarding decision.
 */
import b from 'benny';
import {
  BackRing,
  DOMID_SELF,
  FrontRing,
  GNTCOPY_source_gref,
  GrantOps,
  GrantTable,
  GuestMemory,
  NETIF_TX_SLOT_SIZE,
  SharedRing,
  TXREQ_ID,
} from '@xsim/hypervisor';
import { FilterTable } from '@xsim/nic';
import { Bridge, type BridgePort } from '@xsim/netback';

export interface MicroResult {
  name: string;
  opsPerSec: number;
  margin: number;
}

export async function runMicro(opts: { quick: boolean; folder?: string }): Promise<MicroResult[]> {
  const cases = opts.quick ? { minTime: 0.05, maxTime: 0.1, minSamples: 2 } : { minTime: 0.5, maxTime: 1.5 };

  const page = new Uint8Array(new SharedArrayBuffer(4096));
  const sring = new SharedRing(page, NETIF_TX_SLOT_SIZE);
  sring.init();
  const front = new FrontRing(sring);
  const back = new BackRing(sring);

  const dom0 = { domid: 0, mem: GuestMemory.allocate(4), gnttab: GrantTable.create(64) };
  const guest = { domid: 1, mem: GuestMemory.allocate(4), gnttab: GrantTable.create(64) };
  guest.gnttab.grantAccess(10, 0, 2, true);
  // Grant operations see the guest's table through the hypervisor's view (private pin counts).
  const guestHv = { ...guest, gnttab: GrantTable.hypervisorView(guest.gnttab.sab) };
  const ops = new GrantOps(dom0, (d) => (d === 1 ? guestHv : undefined));

  const filters = new FilterTable();
  for (let i = 0; i < 10_000; i++) filters.insert(1 + (i % 63), { kind: 'ipv4', proto: 17, addr: 0x0a000000 + i, port: 5001 });
  const frame = new Uint8Array(64);
  frame[12] = 8;
  frame[14] = 0x45;
  frame[23] = 17;
  new DataView(frame.buffer).setUint32(30, 0x0a000000 + 4321);
  new DataView(frame.buffer).setUint16(36, 5001);

  const ram = new Uint8Array(4096);
  const bridge = new Bridge(ram);
  const sink: BridgePort = { name: 'sink', deliver: () => {} };
  const p1 = bridge.addPort(sink);
  for (let i = 0; i < 64; i++) bridge.addPort(sink);
  ram.set([0x00, 0x16, 0x3e, 0, 0, 2, 0x00, 0x16, 0x3e, 0, 0, 1], 0);
  bridge.forward(p1, 0, 60, -1);
  ram.set([0x00, 0x16, 0x3e, 0, 0, 1, 0x00, 0x16, 0x3e, 0, 0, 2], 100);
  bridge.forward(p1 + 1, 100, 60, -1);

  let id = 0;
  // benny reports progress with console.log; xsim's stdout carries results only (JSON with -j), so progress goes to stderr.
  const log = console.log;
  console.log = (...a: unknown[]) => console.error(...a);
  const summary = await b
    .suite(
      'xsim micro',
      b.configure({ cases }),
      b.add('ring push+pop (netif TX slot, notify check)', () => {
        sring.dv.setUint16(front.nextRequestOffset() + TXREQ_ID, id++ & 0xffff, true);
        front.reqProdPvt = (front.reqProdPvt + 1) >>> 0;
        front.pushRequestsAndCheckNotify();
        const prod = back.requestProducer();
        back.reqCons = prod;
        back.rspProdPvt = prod;
        back.pushResponsesAndCheckNotify();
        front.rspCons = prod;
      }),
      b.add('grant copy 1500 B (checked)', () => {
        ops.copy(GNTCOPY_source_gref, 1, 10, 0, DOMID_SELF, 1, 0, 1500);
      }),
      b.add('filter lookup among 10,000 filters', () => {
        filters.lookup(frame, 0, 64);
      }),
      b.add('bridge forward (known unicast, 66 ports)', () => {
        bridge.forward(p1, 0, 60, -1);
      }),
      ...(opts.folder ? [b.save({ file: 'micro', folder: opts.folder, format: 'json' as const, details: false })] : []),
    )
    .finally(() => {
      console.log = log;
    });
  return summary.results.map((r) => ({ name: r.name, opsPerSec: r.ops, margin: r.margin }));
}
