/**
 * null: attaches to every vif and declines every frame, so a run with it
 * measures what the accelerator hooks alone cost on the slow path.
 */
import { CHANNEL_OP, declareCounters } from '@xsim/hypervisor';
import { pluginMessage, type AccelBackend, type AccelBackendContext, type PluginManifest } from '@xsim/netback';

export const NULL_BACKEND_COUNTERS = declareCounters('null backend', {
  attachedVifs: { kind: 'gauge', help: 'vifs attached now' },
});

export const manifest: PluginManifest = {
  name: 'null',
  version: '1.0.0',
  api: '1.1',
  matches: ['*'],
  features: ['vif'],
  messages: { accept: pluginMessage({}) },
};

export function createBackend(ctx: AccelBackendContext): AccelBackend {
  const attached = new Set<string>();
  return {
    name: 'null',
    probe: () => undefined,
    remove: () => attached.clear(),
    attachVif(vif) {
      attached.add(vif.key);
      ctx.send(vif, CHANNEL_OP.offer, {});
    },
    onFrontendMessage(vif, op) {
      if (op === CHANNEL_OP.drained || op === CHANNEL_OP.decline) {
        attached.delete(vif.key);
        ctx.detached(vif);
      }
    },
    detachVif(vif) {
      ctx.send(vif, CHANNEL_OP.detach, {});
    },
    vifGone(vif) {
      attached.delete(vif.key);
    },
    stats: () => ({ attachedVifs: attached.size }),
  };
}
