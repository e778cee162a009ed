export { Store, XenstoreError, XENSTORE_REL_PATH_MAX, checkPath, type Perm, type PermEntry, type XsErrno, type WatchFn } from './store.ts';
export { XenstoreServer } from './server.ts';
export * from './wire.ts';
export { XenstoreClient, type WatchCallback } from './client.ts';
export type { XsMessage, XsOp, XsRequest, XsResponse, XsWatchEvent } from './protocol.ts';

/** XenbusState from io/xenbus.h. */
export enum XenbusState {
  Unknown = 0,
  Initialising = 1,
  InitWait = 2,
  Initialised = 3,
  Connected = 4,
  Closing = 5,
  Closed = 6,
  Reconfiguring = 7,
  Reconfigured = 8,
}
