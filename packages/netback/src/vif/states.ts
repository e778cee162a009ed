/**
 * set_backend_state's table (Linux xen-netback's xenbus.c): from the current
 * state, the next hop towards a target. Initialising → InitWait → Connected,
 * any → Closing ↔ Closed.
 */
import { XenbusState } from '@xsim/hypervisor';

type S = XenbusState;
const { Initialising, InitWait, Connected, Closing, Closed } = XenbusState;

export const NEXT: Partial<Record<S, Partial<Record<S, S>>>> = {
  [Initialising]: { [InitWait]: InitWait, [Connected]: InitWait, [Closing]: InitWait, [Closed]: Closed },
  [Closed]: { [InitWait]: InitWait, [Connected]: InitWait, [Closing]: Closing },
  [InitWait]: { [Connected]: Connected, [Closing]: Closing, [Closed]: Closing },
  [Connected]: { [InitWait]: Closing, [Closing]: Closing, [Closed]: Closing },
  [Closing]: { [InitWait]: Closed, [Connected]: Closed, [Closed]: Closed },
};

/** The backend transitions a test may check, as "from->to" names. */
export function backendNextHop(from: S, to: S): S | undefined {
  return NEXT[from]?.[to];
}
