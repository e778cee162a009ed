/**
 * The guest's side of the plugin loader (issue 19), in process: netfront's
 * accel host checks an attach's plugin API versions against its own and the
 * object a plugin's createFrontend returns against the hooks netfront calls;
 * what it cannot use it declines, naming the versions or the hook. A
 * compatible older plugin runs and is told the guest's version.
 */
import { describe, expect, it } from 'vitest';
import { PLUGIN_API_VERSION, type RpcEndpoint, type ToBackendChannel } from '@xsim/hypervisor';
import { AccelHost } from '../src/accel-host.ts';
import type { AccelFrontendContext } from '../src/accel-api.ts';
import type { Netfront } from '../src/netfront/xenbus.ts';

const frontendOf = (name: string) => new URL(`../../../test/fixtures/plugins/${name}/frontend.ts`, import.meta.url).href;

/** An accel host on a fake channel: what it sends to the backend, and a way to send it the backend's messages. */
function host() {
  const sent: { op: string; args: Record<string, unknown> }[] = [];
  const logs: string[] = [];
  let handler: (op: string, args: unknown, shared: readonly SharedArrayBuffer[]) => void = () => {};
  const rpc = {
    onEvent: (h: typeof handler) => (handler = h),
    event: (op: string, args: Record<string, unknown>) => sent.push({ op, args }),
    poll: () => 0,
    close: () => {},
  };
  const nf = { accel: null, deliverAccelRx: () => {} };
  const base = { domid: 1, backendDomid: 0, mac: 1, mtu: 1500, mem: { u8: new Uint8Array(64 * 1024) }, log: (m: string) => logs.push(m) } as unknown as Omit<
    AccelFrontendContext,
    'send' | 'deliver' | 'apiVersion'
  >;
  const pending: Promise<unknown>[] = [];
  const h = new AccelHost(rpc as unknown as RpcEndpoint<ToBackendChannel>, nf as unknown as Netfront, base, (p, then, fail) => {
    pending.push(p.then(then, fail));
  });
  const attach = async (plugin: string, api: string, pluginApi: string) => {
    handler('attach', { plugin, version: '1.0.0', api, pluginApi, frontend: frontendOf(plugin) }, []);
    await Promise.all(pending.splice(0));
  };
  return { h, sent, logs, attach, handler: (op: string, args: Record<string, unknown>) => handler(op, args, []), nf };
}

describe("the guest's accel host", () => {
  it('declines an attach from a netback of another major plugin API version, naming both', async () => {
    const x = host();
    await x.attach('older-api', '2.0', '1.0');
    expect(x.sent).toEqual([
      {
        op: 'decline',
        args: {
          plugin: 'older-api',
          reason: `plugin older-api: dom0's netback speaks plugin API 2.0 and this guest's netfront ${PLUGIN_API_VERSION}: another major version is incompatible (EPROTO): declined`,
        },
      },
    ]);
  });

  it('declines a plugin written for a newer plugin API than the guest speaks, naming both', async () => {
    const x = host();
    await x.attach('older-api', '1.1', '1.9');
    expect(x.sent).toHaveLength(1);
    expect(x.sent[0].op).toBe('decline');
    expect(x.sent[0].args.reason).toMatch(/written for plugin API 1\.9, newer than the 1\.5 this guest's netfront speaks/);
  });

  it('declines a frontend object with a misspelt hook, naming it and the hook it meant', async () => {
    const x = host();
    await x.attach('frontend-misspelt', '1.1', '1.1');
    expect(x.sent).toHaveLength(1);
    expect(x.sent[0].op).toBe('decline');
    expect(x.sent[0].args.reason).toMatch(
      /plugin frontend-misspelt: createFrontend returned what netfront cannot use: frontend has no startXmit hook \(required\); frontend has an unknown hook "startXmt" \(did you mean "startXmit"\?\): declined/,
    );
    expect(x.logs.join('\n')).toMatch(/startXmt/);
    // Nothing of it is called: an offer that follows finds no frontend.
    x.handler('offer', { plugin: 'frontend-misspelt' });
    expect(x.nf.accel).toBeNull();
  });

  it('runs a compatible older plugin and tells it the version the guest speaks (ctx.apiVersion)', async () => {
    const x = host();
    await x.attach('older-api', '1.1', '1.0');
    x.handler('offer', { plugin: 'older-api' });
    expect(x.sent).toEqual([{ op: 'accept', args: { plugin: 'older-api' } }]);
    expect(x.h.stats(true).current).toMatchObject({ hostApi: PLUGIN_API_VERSION });
  });

  it("fails a frontend whose txBuffer lends a buffer outside guest RAM: the frame is built in netfront's own, the plugin is off", async () => {
    const x = host();
    await x.attach('bad-txbuffer', PLUGIN_API_VERSION, PLUGIN_API_VERSION);
    x.handler('offer', { plugin: 'bad-txbuffer' });
    const fe = x.nf.accel as unknown as { txBuffer(len: number): number; startXmit(r: Uint8Array, o: number, l: number): boolean };
    expect(fe).not.toBeNull();
    expect(fe.txBuffer(100)).toBe(-1);
    expect(x.logs.join('\n')).toMatch(
      /bad-txbuffer frontend failed in txBuffer: txBuffer\(100\) answered 65526, not a buffer inside guest RAM \(65536 bytes\); back to the slow path/,
    );
    // Failed: every later frame is declined (the slow path sends it).
    expect(fe.startXmit(new Uint8Array(64), 0, 64)).toBe(false);
  });
});
