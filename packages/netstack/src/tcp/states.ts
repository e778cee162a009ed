/**
 * The connection states of RFC 9293 §3.3.2 and the transitions between them,
 * as a table: a TCB moves only along an edge listed here, and records each
 * move in its history. An event absent from a state's row is a bug in the
 * TCB, not in the peer, and throws (the property test would find it).
 */

export type TcpState =
  'CLOSED' | 'LISTEN' | 'SYN-SENT' | 'SYN-RECEIVED' | 'ESTABLISHED' | 'FIN-WAIT-1' | 'FIN-WAIT-2' | 'CLOSE-WAIT' | 'CLOSING' | 'LAST-ACK' | 'TIME-WAIT';

export type TcpEvent =
  /** user calls */
  | 'connect'
  | 'listen'
  | 'close'
  | 'abort'
  /** a SYN (LISTEN: passive open; SYN-SENT: simultaneous open; SYN-RECEIVED after a passive open: back to LISTEN) */
  | 'rcvSyn'
  /** SYN-SENT: a SYN acknowledging ours */
  | 'rcvSynAck'
  /** SYN-RECEIVED: the ACK of our SYN */
  | 'rcvAck'
  | 'rcvFin'
  | 'rcvAckOfFin'
  /** an acceptable RST (SYN-RECEIVED after a passive open: back to LISTEN) */
  | 'rcvRst'
  | 'rcvRstPassive'
  /** TIME-WAIT's 2*MSL ran out */
  | 'timeWaitDone'
  /** too many retransmissions */
  | 'giveUp';

type Row = Partial<Record<TcpEvent, TcpState>>;

const GONE: Row = { rcvRst: 'CLOSED', abort: 'CLOSED', giveUp: 'CLOSED' };

export const TRANSITIONS: Readonly<Record<TcpState, Row>> = {
  CLOSED: { connect: 'SYN-SENT', listen: 'LISTEN' },
  LISTEN: { rcvSyn: 'SYN-RECEIVED', close: 'CLOSED', abort: 'CLOSED' },
  'SYN-SENT': { rcvSynAck: 'ESTABLISHED', rcvSyn: 'SYN-RECEIVED', close: 'CLOSED', ...GONE },
  'SYN-RECEIVED': { rcvAck: 'ESTABLISHED', rcvSyn: 'LISTEN', rcvRstPassive: 'LISTEN', close: 'FIN-WAIT-1', rcvFin: 'CLOSE-WAIT', ...GONE },
  ESTABLISHED: { close: 'FIN-WAIT-1', rcvFin: 'CLOSE-WAIT', ...GONE },
  'FIN-WAIT-1': { rcvAckOfFin: 'FIN-WAIT-2', rcvFin: 'CLOSING', ...GONE },
  'FIN-WAIT-2': { rcvFin: 'TIME-WAIT', ...GONE },
  'CLOSE-WAIT': { close: 'LAST-ACK', ...GONE },
  CLOSING: { rcvAckOfFin: 'TIME-WAIT', ...GONE },
  'LAST-ACK': { rcvAckOfFin: 'CLOSED', ...GONE },
  'TIME-WAIT': { timeWaitDone: 'CLOSED', rcvRst: 'CLOSED', abort: 'CLOSED' },
};

/** One recorded move. */
export interface Transition {
  at: number;
  from: TcpState;
  event: TcpEvent;
  to: TcpState;
}

/** The state `event` leads to from `from`, or undefined if the table has no such edge. */
export function nextState(from: TcpState, event: TcpEvent): TcpState | undefined {
  return TRANSITIONS[from][event];
}

/** States in which both sides' initial sequence numbers are known (RFC 9293 §3.10.7.4). */
export function isSynchronized(s: TcpState): boolean {
  return s !== 'CLOSED' && s !== 'LISTEN' && s !== 'SYN-SENT';
}
