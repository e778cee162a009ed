/**
 * firewall: a driverlink data-path intercept on dom0's primary driver. It
 * accelerates nothing; it inspects every frame the primary driver receives or
 * sends and vetoes those matching a rule (vetoed frames are counted by
 * driverlink as vetoedRx/vetoedTx). It inspects standard frames only and so
 * refuses an MTU above 1500.
 */
import { declareCounters } from '@xsim/hypervisor';
import { IPV4_PATTERN, parseIp } from '@xsim/netstack';
import { Type, type AccelBackend, type PluginManifest } from '@xsim/netback';
import type { Static } from '@sinclair/typebox';

const IPV4 = Type.String({ pattern: IPV4_PATTERN });

/** A rule: every field given must match for a frame to be vetoed. */
const RULE = Type.Object(
  {
    /** IPv4 protocol number (17 UDP, 6 TCP); absent = any. */
    proto: Type.Optional(Type.Integer({ minimum: 0, maximum: 255 })),
    dstPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    /** Dotted quad. */
    dstIp: Type.Optional(IPV4),
    srcIp: Type.Optional(IPV4),
  },
  { additionalProperties: false },
);

export type FirewallRule = Static<typeof RULE>;

export const manifest: PluginManifest = {
  name: 'firewall',
  version: '1.0.0',
  api: '1.1',
  matches: ['*'],
  features: ['intercept'],
  args: Type.Object({ rules: Type.Optional(Type.Array(RULE, { maxItems: 10_000 })) }, { additionalProperties: false }),
};

export const FIREWALL_COUNTERS = declareCounters('firewall', {
  rules: { kind: 'gauge', help: 'rules loaded' },
  inspected: { kind: 'event', help: 'frames the rules were checked against' },
  matched: { kind: 'event', help: 'frames a rule matched (vetoed: driverlink counts them as vetoedRx/vetoedTx)' },
});

export function createBackend(_ctx: unknown, args: Record<string, unknown>): AccelBackend {
  // args were checked against manifest.args by netback before we are called.
  const rules = ((args.rules ?? []) as FirewallRule[]).map((r) => ({
    proto: r.proto,
    dstPort: r.dstPort,
    dstIp: r.dstIp === undefined ? undefined : parseIp(r.dstIp),
    srcIp: r.srcIp === undefined ? undefined : parseIp(r.srcIp),
  }));
  const counters = FIREWALL_COUNTERS.zero();
  counters.rules = rules.length;
  const match = (b: Uint8Array, off: number, len: number): boolean => {
    counters.inspected++;
    if (len < 34 || b[off + 12] !== 8 || b[off + 13] !== 0) return false;
    const ip = off + 14;
    const proto = b[ip + 9];
    const src = ((b[ip + 12] << 24) | (b[ip + 13] << 16) | (b[ip + 14] << 8) | b[ip + 15]) >>> 0;
    const dst = ((b[ip + 16] << 24) | (b[ip + 17] << 16) | (b[ip + 18] << 8) | b[ip + 19]) >>> 0;
    const l4 = ip + (b[ip] & 15) * 4;
    const dport = l4 + 4 <= off + len ? (b[l4 + 2] << 8) | b[l4 + 3] : -1;
    for (const r of rules) {
      if (r.proto !== undefined && r.proto !== proto) continue;
      if (r.dstPort !== undefined && r.dstPort !== dport) continue;
      if (r.dstIp !== undefined && r.dstIp !== dst) continue;
      if (r.srcIp !== undefined && r.srcIp !== src) continue;
      counters.matched++;
      return true;
    }
    return false;
  };
  return {
    name: 'firewall',
    probe: () => undefined,
    remove: () => {},
    mtuChangeRequest: (mtu) => (mtu <= 1500 ? true : 'rules inspect standard frames only (MTU <= 1500)'),
    rxIntercept: match,
    txIntercept: match,
    stats: () => ({ ...counters }),
  };
}
