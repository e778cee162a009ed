/** What the guest stack counts (net/stack.ts and its ICMP layer): every frame not delivered, by reason. */
import { declareCounters, type Counters } from '@xsim/hypervisor';

export const STACK_COUNTERS = declareCounters('guest stack', {
  rxFrames: { kind: 'event', help: 'frames handed to the stack' },
  rxUdp: { kind: 'event', help: 'UDP datagrams delivered to a socket' },
  rxArp: { kind: 'event', help: 'ARP packets handled' },
  rxGratuitousArp: { kind: 'event', help: 'gratuitous ARPs heard (a host announcing its address, e.g. after a migration)' },
  rxRunt: { kind: 'drop', help: 'frames shorter than an Ethernet header' },
  rxNotForUs: { kind: 'drop', help: 'frames for another MAC or IP (a flooded copy, an ARP request for someone else)' },
  rxBadIp: { kind: 'drop', help: 'malformed IPv4 header or ARP packet' },
  rxBadChecksum: { kind: 'drop', help: 'IPv4 header checksum wrong' },
  rxNotUdp: { kind: 'drop', help: 'IPv4 protocol other than UDP, TCP and ICMP (answered protocol unreachable, rate-limited)' },
  rxTcp: { kind: 'event', help: 'TCP segments handed to the TCP layer (its own counters say what became of each)' },
  txTcp: { kind: 'event', help: 'TCP segments sent (a TSO frame counts once)' },
  txTso: { kind: 'event', help: 'TCP frames over the MTU handed to the driver to segment (TSO/GSO)' },
  rxIcmpEcho: { kind: 'event', help: 'ICMP echo requests answered (or counted under txBusy/txIcmpTooBig when the reply could not go)' },
  rxIcmpEchoReply: { kind: 'event', help: 'ICMP echo replies delivered to whoever pings with their identifier' },
  rxIcmpUnreach: { kind: 'event', help: 'ICMP destination-unreachable errors received (about something we sent)' },
  rxBadIcmp: { kind: 'drop', help: 'ICMP message shorter than its header or with a wrong checksum' },
  rxIcmpUnmatched: { kind: 'drop', help: 'ICMP echo replies for an identifier nobody pings with, and ICMP types a host does not handle' },
  txIcmp: { kind: 'event', help: 'ICMP messages sent (echo requests and replies, unreachable errors)' },
  txIcmpRateLimited: { kind: 'event', help: 'unreachable errors not sent: over the rate limit (1000/s, burst 50, as Linux)' },
  txIcmpTooBig: { kind: 'event', help: 'echo requests not answered: the reply would not fit our MTU' },
  rxBadUdp: { kind: 'drop', help: 'malformed UDP header' },
  rxNoSocket: { kind: 'drop', help: 'UDP datagram for a port nobody listens on (answered port unreachable, rate-limited)' },
  rxUnknownEthertype: { kind: 'drop', help: 'neither IPv4 nor ARP' },
  txFrames: { kind: 'event', help: 'frames sent' },
  txUdp: { kind: 'event', help: 'UDP datagrams sent' },
  txArp: { kind: 'event', help: 'ARP packets sent' },
  txArpProbe: { kind: 'event', help: 'of them, unicast requests confirming a stale neighbour still in use (NUD_PROBE)' },
  txArpPending: { kind: 'event', help: 'sendUdp refused: destination MAC not resolved yet (an ARP request is out)' },
  txBusy: { kind: 'event', help: 'sendUdp refused: the transport had no room (the caller retries)' },
});

export type StackCounters = Counters<typeof STACK_COUNTERS.decls>;
