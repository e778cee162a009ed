/** What the toolstack boots a dom0 with, and the least RAM it runs in. */
import type { Addr } from '@xsim/hypervisor';
import { netDriverPages, vqNetDriverPages, type NicModel } from '@xsim/nic';
import { DOM0_SLACK_PAGES, MIN_SKBS, skbPages } from '../skb.ts';
import type { NetbackParams } from '../vif/features.ts';

/** dom0 pages its NIC's primary driver takes at an MTU: NetDriver's RX ring (the VI NIC), VqNetDriver's queues and buffers (virtio). */
export function primaryDriverPages(mtu: number, model: NicModel): number {
  return model === 'virtio' ? vqNetDriverPages(mtu) : netDriverPages(mtu);
}

/**
 * The least RAM (pages) a dom0 runs in at an MTU: the NIC driver's pages, MIN_SKBS skbs, and slack.
 * Without a model, the most either driver takes.
 */
export function dom0MinPages(mtu: number, model?: NicModel): number {
  const driver = model ? primaryDriverPages(mtu, model) : Math.max(netDriverPages(mtu), vqNetDriverPages(mtu));
  return driver + MIN_SKBS * skbPages(mtu + 18) + DOM0_SLACK_PAGES;
}

/** A guest of this host, as dom0 is handed it. */
export interface Dom0Guest {
  domid: number;
  uid: Addr;
  mem: SharedArrayBuffer;
  gnttab: SharedArrayBuffer;
  /** Its vifs' handles: one plugin channel each. */
  vifs: number[];
}

export interface Dom0Config {
  mem: SharedArrayBuffer;
  gnttab: SharedArrayBuffer;
  guests: Dom0Guest[];
  mac: string;
  ip: string;
  mtu: number;
  /** This host's NIC: its PCI ids, VIs, and wake line; MCDI goes to the NIC hardware's bus address. */
  nic?: { nicWake: { sab: SharedArrayBuffer; offset: number }; mac: number; vendor: string; device: string; vis: number };
  skbs?: number;
  /** netback's parameters (Linux's module parameters: separate_tx_rx_irq; absent: the defaults). */
  netback?: NetbackParams;
}
