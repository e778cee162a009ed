/**
 * `xsim run --workload` (issue 23): tcp-stream, tcp-rr and ping beside the
 * default udp-stream, each from the command line as a user runs it, on a
 * seeded run: -j validates against the published schema, a TCP stream's
 * interval lines tile it and add up to what the sink received, and flags
 * that belong to another workload are refused naming both.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import type { TcpIntervalSample, TcpRrRun, TcpStreamRun } from '@xsim/toolstack';
import { runOptions } from '../packages/cli/src/commands/run.ts';

const root = new URL('..', import.meta.url).pathname;

function xsim(...args: string[]) {
  const r = spawnSync('npx', ['xsim', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function validator() {
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats.default(ajv);
  return ajv.compile(JSON.parse(readFileSync(join(root, 'schemas', 'xsim-run-1.schema.json'), 'utf8')) as object);
}

describe('xsim run --workload', () => {
  it('tcp-stream: 2 flows share --bytes, -j validates, the interval lines tile the stream and add up to it', () => {
    const r = xsim('run', '--deterministic', '--workload', 'tcp-stream', '--bytes', '10000000', '--flows', '2', '--interval', '0.01', '-j');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { workload: string; tcpStream: TcpStreamRun; intervals: TcpIntervalSample[]; stream?: unknown };
    const validate = validator();
    expect(validate(out), JSON.stringify(validate.errors)).toBe(true);
    expect(out.workload).toBe('tcp-stream');
    expect(out.stream).toBeUndefined();
    expect(out.tcpStream).toMatchObject({ flows: 2, bytes: 10_000_000, sentBytes: 10_000_000, complete: true, corrupt: 0, failed: {} });
    const xs = out.intervals;
    expect(xs.length).toBeGreaterThanOrEqual(2);
    expect(xs[0].start).toBe(0);
    for (let i = 1; i < xs.length; i++) expect(xs[i].start).toBe(xs[i - 1].end);
    expect(xs.reduce((n, x) => n + x.bytes, 0)).toBe(out.tcpStream.bytes);
    // The validator is not a rubber stamp.
    expect(validate({ ...out, tcpStream: { ...out.tcpStream, bytes: -1 } })).toBe(false);
  });

  it('tcp-rr: --count transactions with --req-size/--rsp-size, printed with their latency', () => {
    const j = xsim('run', '--deterministic', '--workload', 'tcp-rr', '--count', '200', '--req-size', '32', '--rsp-size', '2000', '-j');
    expect(j.status, j.stderr).toBe(0);
    const rr = (JSON.parse(j.stdout) as { tcpRr: TcpRrRun }).tcpRr;
    expect(rr).toMatchObject({ transactions: 200, complete: true, failed: {} });
    expect(rr.p99Us).toBeGreaterThanOrEqual(rr.p50Us);
    const text = xsim('run', '--deterministic', '--workload', 'tcp-rr', '--count', '50');
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^tcp rr +transactions +per s +p50 us +p99 us +max us +client$/m);
    expect(text.stdout).toMatch(/^host-a\/a1 -> host-b\/b1 +50 +\d+/m);
  });

  it('ping: --count probes of --size data octets, as ICMP echo', () => {
    const r = xsim('run', '--deterministic', '--workload', 'ping', '--count', '25', '--size', '1000', '-j');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { ping: { count: number; lost: number }; stats: Record<string, { endpoint?: { stack: Record<string, number> } }> };
    expect(out.ping).toMatchObject({ count: 25, lost: 0 });
    expect(out.stats['host-b/b1'].endpoint?.stack.rxIcmpEcho).toBe(25);
  });

  it.each([
    [['--workload', 'tcp'], /--workload must be one of udp-stream, tcp-stream, tcp-rr, ping, got "tcp"/],
    [['--bytes', '1000'], /--bytes goes with --workload tcp-stream, not udp-stream/],
    [['--workload', 'tcp-stream', '--window', '64'], /--window goes with --workload udp-stream, not tcp-stream/],
    [['--workload', 'tcp-rr', '--flows', '2'], /--flows goes with --workload tcp-stream, not tcp-rr/],
    [['--workload', 'tcp-stream', '--bytes', '10', '--count', '10'], /--bytes and --count both size the stream/],
    [['--workload', 'tcp-rr', '--serve'], /--serve streams UDP in rounds; --workload tcp-rr runs once/],
    [['--workload', 'tcp-stream', '--flows', '0'], /--flows must be an integer from 1 to 128, got "0"/],
  ])('refuses %j naming what is wrong', async (args, msg) => {
    await expect(runOptions(['--deterministic', ...args])).rejects.toThrow(msg);
  });
});
