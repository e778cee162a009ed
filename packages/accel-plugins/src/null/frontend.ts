import type { AccelFrontend, AccelFrontendContext } from '@xsim/netfront';

export function createFrontend(ctx: AccelFrontendContext): AccelFrontend {
  let offered = 0;
  return {
    newDevice() {
      offered = 0;
      ctx.send('accept', {});
    },
    onMessage() {},
    startXmit() {
      offered++;
      return false;
    },
    poll: () => 0,
    checkReady: () => true,
    remove: () => true,
    getStats: () => ({ offered }),
  };
}
