import { declareCounters } from '@xsim/hypervisor';
import type { AccelFrontend, AccelFrontendContext } from '@xsim/netfront';

export const NULL_FRONTEND_COUNTERS = declareCounters('null frontend', {
  offered: { kind: 'event', help: 'frames offered to the plugin (all declined)' },
});

export function createFrontend(ctx: AccelFrontendContext): AccelFrontend {
  const counters = NULL_FRONTEND_COUNTERS.zero();
  return {
    newDevice() {
      counters.offered = 0;
      ctx.send('accept', {});
    },
    onMessage() {},
    startXmit() {
      counters.offered++;
      return false;
    },
    poll: () => 0,
    checkReady: () => true,
    remove: () => true,
    getStats: () => ({ ...counters }),
  };
}
