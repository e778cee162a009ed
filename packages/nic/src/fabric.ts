/**
 * The fabric worker: the hardware of every NIC in the topology and the wires
 * between them, in one thread so a 2-core machine is not oversubscribed by
 * one thread per NIC. Kernel module: export boot().
 */
import type { MessagePort } from 'node:worker_threads';
import { DeviceInterrupts, DomainLoop, RpcEndpoint, WakeWord, counterKinds, type DomainTask } from '@xsim/hypervisor';
import { HwNic, type NicSpec } from './hw-nic.ts';
import { FABRIC_ASLEEP } from './layout.ts';
import { handleMcdi } from './mcdi.ts';

export interface FabricNicConfig extends NicSpec {
  viSabs: SharedArrayBuffer[];
  /** The host's event-channel state, to raise VI interrupts. */
  evtchnSab: SharedArrayBuffer;
  /** RAM of every domain of the host, for DMA (always through the buffer table). */
  domainRam: Record<number, SharedArrayBuffer>;
  /** dom0's wake word: MCDI replies kick it. */
  dom0Wake: { sab: SharedArrayBuffer; offset: number };
}

/** task.ports[i] is NIC i's MCDI channel (the toolstack transfers them); task.wake is the fabric wake block. */
export interface FabricConfig {
  nics: FabricNicConfig[];
  /** Pairs of NIC indexes joined by a wire. */
  wires: [number, number][];
  spinRounds?: number;
}

export function boot(task: DomainTask<FabricConfig>): unknown {
  const cfg = task.config;
  const wake = new WakeWord(task.wake.sab, task.wake.offset);
  const flags = new Int32Array(task.wake.sab, task.wake.offset, 2);
  const nics = cfg.nics.map((n) => {
    const rams = new Map(Object.entries(n.domainRam).map(([d, sab]) => [Number(d), new Uint8Array(sab)]));
    return new HwNic(n, n.viSabs, rams, new DeviceInterrupts(n.evtchnSab));
  });
  for (const [a, b] of cfg.wires) {
    if (nics[a].peer || nics[b].peer) throw new Error(`NIC ${a} or ${b} already has a wire (one port per NIC)`);
    nics[a].peer = nics[b];
    nics[b].peer = nics[a];
  }
  const ports = (task.ports ?? []) as MessagePort[];
  if (ports.length !== nics.length) throw new Error(`fabric needs one MCDI port per NIC: ${nics.length} NICs, ${ports.length} ports`);
  const mcdi = nics.map((nic, i) => {
    const d = cfg.nics[i].dom0Wake;
    return new RpcEndpoint(ports[i], new WakeWord(d.sab, d.offset), wake).onRequest((op, args) => handleMcdi(nic, op, args));
  });

  const loop = new DomainLoop(wake, {
    spinRounds: cfg.spinRounds,
    // Doorbell protocol: say we are asleep, then look once more before sleeping.
    beforeSleep: () => {
      Atomics.store(flags, FABRIC_ASLEEP, 1);
      return nics.some((n) => n.txPending()) ? 1 : 0;
    },
    afterWake: () => Atomics.store(flags, FABRIC_ASLEEP, 0),
  });
  const stats = () => ({ nics: nics.map((n) => n.stats()), loop: { ...loop.stats }, kinds: counterKinds() });
  const control = new RpcEndpoint(task.control, null, wake).onRequest((op, args) => {
    const a = (args ?? {}) as { nic?: number; up?: boolean };
    if (op === 'stats') return stats();
    if (op === 'shutdown') {
      loop.stop();
      return true;
    }
    if (op === 'link_set') {
      const nic = nics[Number(a.nic)];
      if (!nic) throw new Error(`no NIC ${String(a.nic)}`);
      nic.linkUp = a.up === true;
      return nic.linkUp;
    }
    throw new Error(`fabric: unknown request ${op}`);
  });

  loop.add('control', () => {
    let n = control.poll();
    for (let i = 0; i < mcdi.length; i++) n += mcdi[i].poll();
    return n;
  });
  loop.add('datapath', () => {
    let n = 0;
    for (let i = 0; i < nics.length; i++) n += nics[i].poll();
    for (let i = 0; i < nics.length; i++) nics[i].flushAll();
    return n;
  });
  loop.run();
  const final = stats();
  control.close();
  for (const m of mcdi) m.close();
  return final;
}
