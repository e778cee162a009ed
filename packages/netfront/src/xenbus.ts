/**
 * Xenstore paths and state helpers for the vif device class, shared by
 * netfront and netback through this package's exports so both ends name the
 * same keys.
 */
import { XenbusState } from '@xsim/hypervisor';

export { XenbusState };

export function frontendPath(domid: number, handle: number): string {
  return `/local/domain/${domid}/device/vif/${handle}`;
}

export function backendPath(backendDomid: number, frontendDomid: number, handle: number): string {
  return `/local/domain/${backendDomid}/backend/vif/${frontendDomid}/${handle}`;
}

export function parseState(value: string | undefined): XenbusState {
  const n = value === undefined ? 0 : Number.parseInt(value, 10);
  return Number.isInteger(n) && n >= 0 && n <= 6 ? (n as XenbusState) : XenbusState.Unknown;
}

export const STATE_NAMES = ['Unknown', 'Initialising', 'InitWait', 'Initialised', 'Connected', 'Closing', 'Closed'];
