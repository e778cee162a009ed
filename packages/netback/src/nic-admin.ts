/**
 * dom0's management of its NIC through driverlink: link state, MTU, reset.
 * Operations run one at a time, in the order they were asked for, and each is
 * answered: a reset takes a while (every accelerated vif drains and falls
 * back before the hardware resets), and an operation asked for meanwhile
 * waits its turn instead of interleaving with it (two resets at once would
 * suspend twice and resume once).
 */
import { NIC_ADMIN_OPS_TABLE, type McdiOps, type NicAdminOps, type OpArgs, type OpName, type RpcEndpoint, type RpcValue, type VdpaOps } from '@xsim/hypervisor';
import type { Driverlink } from '@xsim/nic';
import type { AccelManager } from './accel.ts';

/** dom0's admin channel to its NIC, by model: MCDI to the VI NIC, the vDPA ops to the virtio NIC (both over CH.mcdi). */
export type NicAdminChannel = { model: 'vi'; mcdi: RpcEndpoint<McdiOps> } | { model: 'virtio'; vdpa: RpcEndpoint<VdpaOps> };

/** What NIC administration needs of the hardware, whatever its model. */
export interface NicControl {
  linkSet(up: boolean): void;
  mtuSet(mtu: number): void;
  /** Reset the NIC's virtualised resources (every guest VI or function stops); what the NIC says it did. */
  reset(): unknown;
}

/** NicControl over a model's admin channel: link_set, mtu_set and nic_reset (MCDI) or dev_reset (vDPA). */
export function nicControl(ch: NicAdminChannel): NicControl {
  if (ch.model === 'vi')
    return {
      linkSet: (up) => void ch.mcdi.requestSync('link_set', { up }),
      mtuSet: (mtu) => void ch.mcdi.requestSync('mtu_set', { mtu }),
      reset: () => ch.mcdi.requestSync('nic_reset', {}),
    };
  return {
    linkSet: (up) => void ch.vdpa.requestSync('link_set', { up }),
    mtuSet: (mtu) => void ch.vdpa.requestSync('mtu_set', { mtu }),
    reset: () => ch.vdpa.requestSync('dev_reset', {}),
  };
}

/** What NIC administration needs of dom0's primary driver (NetDriver or VqNetDriver). */
export interface AdminDriver {
  linkUp: boolean;
  mtu: number;
  readonly maxMtu: number;
}

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
    private readonly nic: NicControl | undefined,
    private readonly driver: AdminDriver | undefined,
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
    const { nic, driver, driverlink } = this;
    if (!nic || !driver) throw new Error('this host has no NIC');
    switch (job.op) {
      case 'link_set': {
        const a = job.args;
        nic.linkSet(a.up);
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
        nic.mtuSet(m);
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
            r = nic.reset();
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
