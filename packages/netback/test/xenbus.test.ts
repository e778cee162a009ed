/**
 * netback's xenbus side in process: the hotplug-status handshake (Linux
 * netback waits for the toolstack's hotplug script before it connects) and
 * netback_remove (a removed node is never written again, nothing watched).
 */
import { describe, expect, it } from 'vitest';
import { VIF_KEY, XenbusState, vifBackendPath } from '@xsim/hypervisor';
import { GUEST, NetbackHarness } from '../../../test/fixtures/netback-harness.ts';

const be = vifBackendPath(0, GUEST, 0);

describe('netback xenbus', () => {
  it('waits in InitWait for hotplug-status = connected, then connects', () => {
    const h = new NetbackHarness({ hotplugPending: true });
    expect(h.vif.connected).toBe(false);
    expect(h.store.read(0, `${be}/${VIF_KEY.state}`)).toBe(String(XenbusState.InitWait));
    h.store.write(0, `${be}/${VIF_KEY.hotplugStatus}`, 'still running');
    expect(h.vif.connected).toBe(false);
    h.store.write(0, `${be}/${VIF_KEY.hotplugStatus}`, 'connected');
    expect(h.vif.connected).toBe(true);
    expect(h.store.read(0, `${be}/${VIF_KEY.state}`)).toBe(String(XenbusState.Connected));
    expect(h.vif.history.at(-1)).toBe('InitWait->Connected (hotplug-status connected)');
  });

  it('without a hotplug-status node (no script to wait for) connects at once', () => {
    const h = new NetbackHarness();
    expect(h.vif.connected).toBe(true);
  });

  it('remove(): disconnects, walks to Closed, writes nothing into the removed node, stops watching', () => {
    const h = new NetbackHarness();
    const watchesBefore = h.store.usage().watches;
    h.store.rm(0, be);
    h.vif.remove();
    expect(h.vif.connected).toBe(false);
    expect(h.vif.state).toBe(XenbusState.Closed);
    // Its three watches go: the frontend's state and request-multicast-control, the backend's rate node.
    expect(h.store.usage().watches).toBe(watchesBefore - 3);
    expect(() => h.store.read(0, be)).toThrow(/ENOENT/);
    expect(h.bridge.portCount).toBe(1); // only the harness's recording port
    // The frontend moving on afterwards reaches no one.
    h.store.write(0, `/local/domain/${GUEST}/device/vif/0/${VIF_KEY.state}`, String(XenbusState.Closed));
    expect(() => h.store.read(0, be)).toThrow(/ENOENT/);
  });
});
