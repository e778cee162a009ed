/**
 * The machine's futex wake round trip, measured at the start of a bench run:
 * two worker threads ping-pong on an Int32Array in a SharedArrayBuffer, each
 * notifying the other (Atomics.notify) and sleeping until answered
 * (Atomics.wait). A round trip is a wake-up of each thread, so this is the
 * floor under any path that wakes a sleeping thread per batch: the real
 * paths' wakes per frame times this is what waking costs them.
 *
 * The workers are plain JavaScript (eval), so no loader is involved; every
 * wait is bounded (a missing answer ends the measurement with an error, never
 * a hang), and so is the number of round trips.
 */
import { Worker } from 'node:worker_threads';

export interface FutexRoundTrip {
  /** Round trips measured (after the warm-up ones). */
  roundTrips: number;
  medianUs: number;
  p99Us: number;
  /** Of the pinger's waits (warm-up included), those that found the answer already there (no sleep: the peer answered first). */
  noSleep: number;
}

// Word 0: the ball (0: the pinger's turn, 1: the ponger's); word 1: stop.
const PONG = `
const { workerData } = require('node:worker_threads');
const a = new Int32Array(workerData.sab);
for (let i = 0; i < workerData.total; i++) {
  if (Atomics.wait(a, 0, 0, workerData.waitMs) === 'timed-out' || Atomics.load(a, 1) === 1) break;
  Atomics.store(a, 0, 0);
  Atomics.notify(a, 0);
}
`;
const PING = `
const { workerData, parentPort } = require('node:worker_threads');
const a = new Int32Array(workerData.sab);
const us = new Float64Array(workerData.total);
let noSleep = 0;
let done = 0;
for (; done < workerData.total; done++) {
  const t = performance.now();
  Atomics.store(a, 0, 1);
  Atomics.notify(a, 0);
  const r = Atomics.wait(a, 0, 1, workerData.waitMs);
  if (r === 'timed-out') break;
  if (r === 'not-equal') noSleep++;
  us[done] = (performance.now() - t) * 1000;
}
Atomics.store(a, 1, 1);
Atomics.notify(a, 0);
parentPort.postMessage({ us: us.subarray(0, done), done, noSleep });
`;

/** p-th quantile (0..1) of sorted numbers, nearest rank. */
function quantile(sorted: ArrayLike<number>, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/**
 * `roundTrips` measured round trips (1..1,000,000) after `warmup` unmeasured
 * ones; rejects if a thread went unanswered for `waitMs`.
 */
export async function futexRoundTrip(roundTrips = 20_000, o: { warmup?: number; waitMs?: number } = {}): Promise<FutexRoundTrip> {
  const n = Math.max(1, Math.min(1_000_000, Math.floor(roundTrips)));
  const warmup = Math.max(0, Math.min(100_000, o.warmup ?? 1000));
  const waitMs = o.waitMs ?? 2000;
  const total = n + warmup;
  const sab = new SharedArrayBuffer(8);
  const pong = new Worker(PONG, { eval: true, workerData: { sab, total, waitMs } });
  const ping = new Worker(PING, { eval: true, workerData: { sab, total, waitMs } });
  try {
    const r = await new Promise<{ us: Float64Array; done: number; noSleep: number }>((resolve, reject) => {
      ping.once('message', resolve);
      ping.once('error', reject);
      ping.once('exit', (code) => reject(new Error(`the futex pinger exited (${code}) before answering`)));
    });
    if (r.done < total) throw new Error(`futex round trip: no answer within ${waitMs} ms after ${r.done} of ${total} round trips`);
    const us = Float64Array.from(r.us.subarray(warmup)).sort();
    const mid = us.length >> 1;
    const medianUs = us.length % 2 ? us[mid] : (us[mid - 1] + us[mid]) / 2;
    return { roundTrips: us.length, medianUs, p99Us: quantile(us, 0.99), noSleep: r.noSleep };
  } finally {
    await Promise.all([ping.terminate(), pong.terminate()]);
  }
}
