/**
 * One TCP socket (tcp-sock.ts keeps the table of them): a TCB with the
 * handlers an in-kernel user sets (data, established, the peer's FIN, the
 * end), told of the TCB's moves by sync() after every input, timer and call.
 */
import type { TcpState } from '../tcp/states.ts';
import type { Tcb } from '../tcp/tcb.ts';
import type { TcbOptions } from '../tcp/tcb-core.ts';

/** What a socket needs of the table that holds it. */
export interface SocketOwner {
  now(): number;
  /** The socket's TCB reached CLOSED (or a half-open passive one went back to LISTEN). */
  remove(sock: TcpSocket, why: TcpCloseReason): void;
}

/** Why a connection ended: both FINs exchanged, an RST, retransmissions given up, an RST to our SYN, or our abort. */
export type TcpCloseReason = 'closed' | 'reset' | 'timeout' | 'refused' | 'aborted';

/** Per-socket options (the TCB's), chosen at connect/listen. */
export type TcpSocketOptions = Pick<TcbOptions, 'rcvWnd' | 'sndBuf' | 'msl' | 'maxRetries' | 'synRetries'> & Record<string, unknown>;

export class TcpSocket {
  private dataHandler?: (buf: Uint8Array, off: number, len: number) => void;
  /** Data that arrived before the app set onData (with the handshake's last ACK, before accept ran): handed over then. */
  private early: Uint8Array[] = [];
  /** The three-way handshake completed. */
  onEstablished?: () => void;
  /** The peer closed its direction (its FIN arrived: we are in CLOSE-WAIT or beyond). */
  onPeerClosed?: () => void;
  /** The connection is over: CLOSED, or TIME-WAIT after an orderly close (the TCB then waits out 2*MSL without the app). */
  onClosed?: (why: TcpCloseReason) => void;
  private last: TcpState;
  private peerClosed = false;
  private established = false;
  /** Set once the connection is over (onClosed told). */
  closedBy: TcpCloseReason | null = null;

  constructor(
    readonly tcb: Tcb,
    private readonly owner: SocketOwner,
    /** Where the table filed it: remote address * 65536 + remote port (the TCB's own remote is cleared if a half-open passive one resets). */
    readonly key: number,
  ) {
    this.last = tcb.state;
  }

  /** In-order data (valid during the call); data that came before the handler was set is handed to it at once. */
  set onData(fn: ((buf: Uint8Array, off: number, len: number) => void) | undefined) {
    this.dataHandler = fn;
    if (!fn) return;
    for (const b of this.early.splice(0)) fn(b, 0, b.length);
  }
  get onData(): ((buf: Uint8Array, off: number, len: number) => void) | undefined {
    return this.dataHandler;
  }

  /** From the TCB: in-order data. */
  deliver(b: Uint8Array, off: number, len: number): void {
    if (this.dataHandler) this.dataHandler(b, off, len);
    else this.early.push(b.slice(off, off + len));
  }

  get state(): TcpState {
    return this.tcb.state;
  }
  get localPort(): number {
    return this.tcb.localPort;
  }
  get remoteIp(): number {
    return this.tcb.remoteIp;
  }
  get remotePort(): number {
    return this.tcb.remotePort;
  }
  /** Octets send() takes now. */
  get sendSpace(): number {
    return this.tcb.sendSpace;
  }
  /** Octets given to send() not acknowledged yet. */
  get unacked(): number {
    return this.tcb.unacked;
  }

  /** Queue `len` octets at `off` (copied); returns how many were taken. */
  send(b: Uint8Array, off: number, len: number): number {
    const n = this.tcb.send(b, off, len, this.owner.now());
    this.sync();
    return n;
  }

  /** Close our direction: a FIN after the queued data. */
  close(): void {
    this.tcb.close(this.owner.now());
    this.sync();
  }

  /** Reset the connection. */
  abort(): void {
    this.tcb.abort(this.owner.now());
    this.sync();
  }

  /** Report the moves the TCB made since the last look: establishment, the peer's FIN, the end. */
  sync(): void {
    const s = this.tcb.state;
    if (s === this.last) return;
    const was = this.last;
    this.last = s;
    // One input may carry the handshake's last ACK, data and a FIN: ESTABLISHED then lies between two looks.
    if (!this.established && this.tcb.history.some((h) => h.to === 'ESTABLISHED')) {
      this.established = true;
      this.onEstablished?.();
    }
    if (!this.peerClosed && (s === 'CLOSE-WAIT' || s === 'CLOSING' || s === 'TIME-WAIT' || s === 'LAST-ACK')) {
      this.peerClosed = true;
      this.onPeerClosed?.();
    }
    // TIME-WAIT: both FINs exchanged, ours acknowledged; the connection is over for the app, the TCB stays 2*MSL.
    if (s === 'TIME-WAIT') this.tell('closed');
    if (s === 'CLOSED' || (s === 'LISTEN' && was !== 'CLOSED')) this.owner.remove(this, closeReason(this.tcb, was));
  }

  /** Tell the app its connection is over (once). */
  tell(why: TcpCloseReason): void {
    if (this.closedBy !== null) return;
    this.closedBy = why;
    this.onClosed?.(why);
  }
}

/** Why the TCB went to CLOSED (or back to LISTEN, a half-open connection reset), from its last move. */
function closeReason(tcb: Tcb, was: TcpState): TcpCloseReason {
  const e = tcb.history.at(-1)?.event;
  if (e === 'giveUp') return 'timeout';
  if (e === 'abort' || (e === 'close' && was === 'SYN-SENT')) return 'aborted';
  if (e === 'rcvRst' || e === 'rcvRstPassive' || e === 'rcvSyn') return was === 'SYN-SENT' ? 'refused' : 'reset';
  return 'closed';
}
