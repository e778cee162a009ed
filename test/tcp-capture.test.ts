/**
 * A TCP run as Wireshark sees it (issue 23 item 5): a stream captured at the
 * sending guest's vif, at both NICs' wire ports and at the receiving guest's
 * vif, read by Debian's tshark. Nothing is malformed; every TCP checksum on
 * the wire is complete and good (the offload completed it where a real NIC
 * would); and tshark's own TCP analysis agrees with xsim's counters: the
 * segments it calls retransmissions at the sender's vif are the ones xsim's
 * sender counted resent. A link flap in the middle makes there be some.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulation, defaultTopology, runTcpStream, type DomainRef, type TcpStreamRun } from '@xsim/toolstack';
import { needs } from './tools.ts';
import { replayOnFailure, seededModes } from './helpers.ts';

const a1: DomainRef = { host: 'host-a', domain: 'a1' };
const b1: DomainRef = { host: 'host-b', domain: 'b1' };

function tshark(...args: string[]): string {
  return execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, maxBuffer: 64 << 20 });
}
const lines = (s: string) => s.split('\n').filter(Boolean);

describe.each([seededModes()[0]])('a TCP stream through tshark ($name)', (mode) => {
  let sim: Simulation;
  let file: string;
  let r: TcpStreamRun;
  replayOnFailure(mode, import.meta.url);

  beforeAll(async () => {
    sim = await Simulation.start(defaultTopology(), { ...mode.opts, log: () => {} });
    file = join(mkdtempSync(join(tmpdir(), 'xsim-tcpcap-')), 'tcp.pcapng');
    await sim.captureStart(['host-a/a1/vif0', 'host-a/nic/wire', 'host-b/nic/wire', 'host-b/b1/vif0'], { file });
    const run = runTcpStream(sim, { from: a1, to: b1, bytes: 12_000_000, verify: true });
    // A link flap mid-stream: segments die at the NIC (counted linkDownDrops), TCP sends them again.
    await sim.waitFor('the sink to be under way', async () => ((await sim.domainStats(b1)).endpoint?.tcpProgress?.[5201]?.bytes ?? 0) > 500_000);
    await sim.setLink('host-b', false);
    await sim.sleep(2);
    await sim.setLink('host-b', true);
    r = await run;
    await sim.captureStop();
  });

  afterAll(async () => {
    await sim?.shutdown();
  });

  it('completes despite the flap, with retransmissions', () => {
    expect(r).toMatchObject({ bytes: 12_000_000, corrupt: 0, complete: true });
    expect(r.sender.tcpTxRetransmits ?? 0).toBeGreaterThan(0);
  });

  it('tshark: nothing malformed, every TCP checksum on the wire good', needs('tshark'), () => {
    expect(tshark('-r', file, '-Y', '_ws.malformed').trim()).toBe('');
    const wire = 'frame.interface_name contains "nic/wire" && tcp';
    const total = lines(tshark('-r', file, '-Y', wire, '-T', 'fields', '-e', 'frame.number')).length;
    const good = lines(
      tshark('-r', file, '-o', 'tcp.check_checksum:TRUE', '-Y', `${wire} && tcp.checksum.status == 1`, '-T', 'fields', '-e', 'frame.number'),
    ).length;
    expect(total).toBeGreaterThan(2000);
    expect(good).toBe(total);
  });

  it("tshark's TCP analysis finds the retransmissions xsim's sender counted", needs('tshark'), () => {
    // The analysis follows a connection across every frame of the file, whatever its tap point: one tap point's
    // frames alone (the sender's vif, where every segment it sends passes once) are written out and analysed.
    const one = file.replace(/\.pcapng$/, '-a1.pcapng');
    tshark('-r', file, '-Y', 'frame.interface_name == "host-a/a1/vif0"', '-w', one);
    const sent = `ip.src == ${sim.domain(a1).ip} && tcp.len > 0`;
    const retr = lines(
      tshark('-r', one, '-Y', `${sent} && (tcp.analysis.retransmission || tcp.analysis.fast_retransmission)`, '-T', 'fields', '-e', 'frame.number'),
    );
    expect(retr.length).toBe(r.sender.tcpTxRetransmits);
    // And nothing it calls lost or out of order on the sender's side: xsim's sender sends in order.
    expect(tshark('-r', one, '-Y', `${sent} && (tcp.analysis.lost_segment || tcp.analysis.out_of_order)`).trim()).toBe('');
  });
});
