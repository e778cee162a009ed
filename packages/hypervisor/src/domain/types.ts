import type { MessagePort } from 'node:worker_threads';

/** What a worker receives to become a domain (or the NIC hardware). Plain data plus shared memory. */
export interface DomainTask<C = unknown> {
  /** file: URL of the kernel module; it must export `boot(task)`. */
  kernel: string;
  name: string;
  host: string;
  domid: number;
  /** Toolstack ↔ domain control channel (our end). */
  control: MessagePort;
  /** Xenstore connection (our end); absent for the NIC hardware. */
  xenstore?: MessagePort;
  /** Further channels the kernel needs (dom0's MCDI channel to its NIC, the fabric's ends). Transferred. */
  ports?: MessagePort[];
  /** The worker's wake word: a SharedArrayBuffer and byte offset into it. */
  wake: { sab: SharedArrayBuffer; offset: number };
  config: C;
}

export type Kernel = (task: DomainTask) => unknown;
