/**
 * A guest's home directory as libxl makes it (issue 22, item 6;
 * libxl__domain_make in tools/libs/light/libxl_create.c): /local/domain/N
 * and what describes the domain are dom0's, readable by the guest (n0,rN);
 * the directories the guest writes into are its own (nN); each vif's
 * frontend directory is its own too, so netfront's writes go through.
 */
import { describe, expect, it } from 'vitest';
import { Bus, XenstoreError, XenstoreServer, hostServiceAddr, type PermEntry } from '@xsim/hypervisor';
import { writeDomainNodes, writeVifNodes } from '../src/host.ts';

const GUEST = 3;
const home = `/local/domain/${GUEST}`;
const ro: PermEntry[] = [
  { domid: 0, perm: 'n' },
  { domid: GUEST, perm: 'r' },
];
const own: PermEntry[] = [{ domid: GUEST, perm: 'n' }];

function errno(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof XenstoreError) return e.errno;
    throw e;
  }
  return 'ok';
}

function guestHome(): XenstoreServer {
  const xs = new XenstoreServer(new Bus(), hostServiceAddr(0));
  writeDomainNodes(xs, GUEST, 'g3');
  writeVifNodes(xs, GUEST, 0, { mac: '00:16:3e:00:00:03', ip: '10.0.0.3' });
  return xs;
}

describe("a guest's home directory, as libxl makes it", () => {
  it('/local/domain/N, its name and domid, device and control are (n0,rN); what the guest writes into is (nN)', () => {
    const s = guestHome().store;
    for (const p of ['', '/name', '/domid', '/device', '/device/vif', '/control', '/control/platform-feature-xs_reset_watches'])
      expect(s.getPerms(0, home + p)).toEqual(ro);
    for (const p of ['/control/shutdown', '/control/feature-poweroff', '/control/sysrq', '/data', '/drivers', '/feature', '/attr', '/error'])
      expect(s.getPerms(0, home + p)).toEqual(own);
    expect(s.getPerms(0, `${home}/device/vif/0`)).toEqual([own[0], { domid: 0, perm: 'r' }]);
    expect(s.read(GUEST, `${home}/name`)).toBe('g3');
  });

  it('the guest may not rename itself nor make devices; it writes its frontend, data, error and shutdown acknowledgement', () => {
    const s = guestHome().store;
    expect(errno(() => s.write(GUEST, `${home}/name`, 'evil'))).toBe('EACCES');
    expect(errno(() => s.write(GUEST, `${home}/domid`, '0'))).toBe('EACCES');
    expect(errno(() => s.write(GUEST, `${home}/new-key`, 'x'))).toBe('EACCES');
    expect(errno(() => s.mkdir(GUEST, `${home}/device/vif/9`))).toBe('EACCES');
    expect(errno(() => s.rm(GUEST, `${home}/device/vif`))).toBe('EACCES');
    // netfront's own writes under its vif, and in a transaction as it connects.
    expect(errno(() => s.write(GUEST, `${home}/device/vif/0/state`, '4'))).toBe('ok');
    const t = s.transactionStart(GUEST);
    s.write(GUEST, `${home}/device/vif/0/tx-ring-ref`, '8', t);
    expect(s.transactionEnd(GUEST, t, true)).toBe(true);
    // A failed probe's report (xenbus_dev_fatal), a poweroff acknowledgement, its own data.
    expect(errno(() => s.write(GUEST, `${home}/error/device/vif/0/error`, 'probe failed'))).toBe('ok');
    expect(errno(() => s.write(GUEST, `${home}/control/shutdown`, ''))).toBe('ok');
    expect(errno(() => s.write(GUEST, `${home}/data/k`, 'v'))).toBe('ok');
    // What it made is its own.
    expect(s.getPerms(0, `${home}/data/k`)).toEqual(own);
  });
});
