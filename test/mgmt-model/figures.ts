/**
 * What the model test did, counted over every run: steps, operations by kind
 * and how each ended, refusals by reason, the background stream's frames.
 * Printed at the end of the test file (and kept as JSON with XSIM_MODEL_REPORT).
 */
import { writeFileSync } from 'node:fs';

export type Outcome = 'ok' | 'refused' | 'unanswered' | 'unclear';

export class Figures {
  runs = 0;
  steps = 0;
  ops = 0;
  /** Operations in a step where another one wanted the same thing (predicted loosely: either may win). */
  contended = 0;
  readonly byKind: Record<string, Record<Outcome, number>> = {};
  readonly byVia: Record<string, number> = {};
  readonly refusals: Record<string, number> = {};
  readonly stream = { rounds: 0, failedRounds: 0, sent: 0, delivered: 0, tooOld: 0, dropped: 0, copies: 0 };
  readonly dropsBy: Record<string, number> = {};
  /** The first few reasons a stream round failed (while a link was down, that is not held against the plane). */
  readonly streamFailures: string[] = [];
  readonly leakChecks = { runs: 0, clean: 0 };
  readonly ms: Record<string, number> = {};
  readonly failures: string[] = [];

  op(kind: string, via: string, outcome: Outcome, reason?: string): void {
    this.ops++;
    const k = (this.byKind[kind] ??= { ok: 0, refused: 0, unanswered: 0, unclear: 0 });
    k[outcome]++;
    this.byVia[via] = (this.byVia[via] ?? 0) + 1;
    if (reason) this.refusals[reason] = (this.refusals[reason] ?? 0) + 1;
  }

  drops(drops: Map<string, number>): void {
    for (const [k, v] of drops) {
      // Counter names without the host/domain and the vif's instance: where frames ended, in kind.
      const name = k.replace(/^[^.]*\./, '').replace(/\.vif\d+\.\d+\./, '.vifN.');
      this.dropsBy[name] = (this.dropsBy[name] ?? 0) + v;
    }
  }

  text(): string {
    const lines = [
      `model test: ${this.runs} simulation(s), ${this.steps} steps, ${this.ops} operations (${Object.entries(this.byVia)
        .map(([k, v]) => `${v} ${k === 'socket' ? 'over the control socket' : 'through the API'}`)
        .join(', ')}), ${this.contended} contended`,
      `  ${'operation'.padEnd(14)} ${'ok'.padStart(6)} ${'refused'.padStart(8)} ${'unanswered'.padStart(11)} ${'unclear'.padStart(8)}`,
      ...Object.entries(this.byKind)
        .sort()
        .map(
          ([k, o]) =>
            `  ${k.padEnd(14)} ${String(o.ok).padStart(6)} ${String(o.refused).padStart(8)} ${String(o.unanswered).padStart(11)} ${String(o.unclear).padStart(8)}`,
        ),
      `refusals by reason: ${Object.entries(this.refusals)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
      `stream: ${this.stream.rounds} rounds (${this.stream.failedRounds} failed), ${this.stream.sent} sent, ${this.stream.delivered} delivered, ${this.stream.tooOld} too old, ${this.stream.dropped} in drop counters, ${this.stream.copies} flood copies`,
      ...(this.streamFailures.length ? [`stream rounds failed: ${this.streamFailures.join('; ')}`] : []),
      `drops: ${
        Object.entries(this.dropsBy)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none'
      }`,
      `leak checks: ${this.leakChecks.clean} of ${this.leakChecks.runs} clean; ${Object.entries(this.ms)
        .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
        .join(', ')}`,
    ];
    if (this.failures.length) lines.push(`failures:`, ...this.failures.map((f) => `  ${f.split('\n')[0]}`));
    return lines.join('\n');
  }

  save(file: string): void {
    writeFileSync(file, JSON.stringify(this, null, 2));
  }
}
