/**
 * dom0's management of its NIC through driverlink: link state, MTU, reset.
 * Operations run one at a time, in the order they were asked for, and each is
 * answered: a reset takes a while (every accelerated vif drains and falls
 * back before the hardware resets), and an operation asked for meanwhile
 * waits its turn instead of interleaving with it (two resets at once would
 * suspend twice and resume once).
 */
import { NIC_ADMIN_OPS_TABLE, type McdiOps, type NicAdminOps, type OpArgs, type OpName, type RpcEndpoint, type RpcValue } from '@xsim/hypervisor';
import type { Driverlink, NetDriver } from '@xsim/nic';
import type { AccelManager } from './accel.ts';

type Reply = (result: RpcValue, error?: string) => void;

export const NIC_ADMIN_OPS = Object.keys(NIC_ADMIN_OPS_TABLE) as NicAdminOp[];
export type NicAdminOp = OpName<NicAdminOps>;
type Job = { [K in NicAdminOp]: { op: K; args: OpArgs<NicAdminOps, K>; reply: Reply } }[NicAdminOp];

export class NicAdmin {
  private readonly queue: Job[] = [];
  private busy = false;
  /** Operations completed, by outcome (for stats). */
  readonly done = { ok: 0, refused: 0 };

  constructor(
    private readonly mcdi: RpcEndpoint<McdiOps> | undefined,
    private readonly driver: NetDriver | undefined,
    private readonly driverlink: Driverlink,
    private readonly accel: AccelManager,
  ) {}

  get pending(): number {
    return this.queue.length + (this.busy ? 1 : 0);
  }

  request<K extends NicAdminOp>(op: K, args: OpArgs<NicAdminOps, K>, reply: Reply): void {
    this.queue.push({ op, args, reply } as Job);
    if (!this.busy) this.next();
  }

  private next(): void {
    const job = this.queue.shift();
    if (!job) {
      this.busy = false;
      return;
    }
    this.busy = true;
    const finish = (result: RpcValue, error?: string): void => {
      if (error === undefined) this.done.ok++;
      else this.done.refused++;
      job.reply(result, error);
      this.next();
    };
    try {
      this.run(job, finish);
    } catch (e) {
      finish(undefined, e instanceof Error ? e.message : String(e));
    }
  }

  private run(job: Job, finish: Reply): void {
    const { mcdi, driver, driverlink } = this;
    if (!mcdi || !driver) throw new Error('this host has no NIC');
    switch (job.op) {
      case 'link_set': {
        const a = job.args;
        mcdi.requestSync('link_set', { up: a.up });
        driver.linkUp = a.up;
        driverlink.linkChange(a.up);
        return finish({ up: a.up });
      }
      case 'mtu_set': {
        const m = job.args.mtu;
        if (!Number.isInteger(m) || m < 68 || m > 9000) throw new Error(`mtu_set: MTU must be an integer from 68 to 9000, got ${JSON.stringify(m)}`);
        if (m > driver.maxMtu) throw new Error(`primary driver refused MTU ${m}: its RX buffers hold at most MTU ${driver.maxMtu}`);
        const refused = driverlink.negotiateMtu(m);
        if (refused) throw new Error(refused);
        mcdi.requestSync('mtu_set', { mtu: m });
        driver.mtu = m;
        driverlink.mtuChanged(m);
        return finish({ mtu: m });
      }
      case 'nic_reset': {
        // Secondary drivers stop using the hardware, vifs fall back to the slow path, then the reset.
        driverlink.suspend();
        this.accel.detachAll(() => {
          let r: unknown;
          try {
            r = mcdi.requestSync('nic_reset', {});
          } finally {
            driverlink.resume();
            this.accel.attachAll();
          }
          finish(r);
        });
        return;
      }
    }
  }
}
