/**
 * The endpoint's TCP apps (traffic/tcp-apps.ts) as toolstack requests:
 * tcp_sink / tcp_stream (netperf TCP_STREAM, iperf3) and tcp_rr_server /
 * tcp_rr (TCP_RR). Each request becomes a job polled with the endpoint's
 * apps; it answers when its app is done, or at its deadline with what it
 * measured and timedOut, or at a suspend with interrupted.
 */
import { DEFERRED, type Clock, type EndpointOps, type OpHandlers, type RpcReply } from '@xsim/hypervisor';
import { parseIp, type GuestStack } from './net/index.ts';
import { TcpRrClient, TcpRrServer, TcpSink, TcpStreamClient } from './traffic/tcp-apps.ts';

type TcpOps = Pick<EndpointOps, 'tcp_sink' | 'tcp_stream' | 'tcp_rr_server' | 'tcp_rr'>;

interface TcpJob {
  name: string;
  /** A sink's port and octets so far (the toolstack's interval lines read them). */
  progress?: () => { port: number; bytes: number };
  poll(): number;
  done(): boolean;
  /** What to answer with (when done, or cut short). */
  result(): object;
  /** Cut short: listeners close, connections still open are reset. */
  stop(): void;
  /** Done: a listener stops listening (a client's connections close by themselves). */
  release?(): void;
  deadline: number;
  reply: RpcReply;
}

const DEFAULT_TIMEOUT_MS = 60_000;

function positiveInt(what: string, v: number | undefined, dflt: number, max = Number.MAX_SAFE_INTEGER): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < 1 || x > max) throw new Error(`${what} must be an integer 1..${max}, got ${String(v)}`);
  return x;
}

export class TcpJobs {
  private readonly jobs: TcpJob[] = [];

  constructor(
    private readonly stack: GuestStack,
    private readonly clock: Clock,
  ) {}

  get size(): number {
    return this.jobs.length;
  }

  handlers(): OpHandlers<TcpOps> {
    const now = () => this.clock.now();
    const tcp = this.stack.tcp;
    return {
      tcp_sink: (a, { later }) => {
        const flows = positiveInt('flows', a.flows, 1, 1024);
        const sink = new TcpSink(tcp, { port: a.port, flows, verify: a.verify === true }, now);
        return this.add(`tcp sink :${a.port}`, a.timeoutMs, later(), {
          progress: () => ({ port: a.port, bytes: sink.result().bytes }),
          poll: () => 0,
          done: () => sink.done,
          result: () => sink.result(),
          stop: () => sink.stop(),
          release: () => sink.stop(),
        });
      },
      tcp_stream: (a, { later }) => {
        const flows = positiveInt('flows', a.flows, 1, 1024);
        const bytes = positiveInt('bytes', a.bytes, 1);
        const writeSize = positiveInt('writeSize', a.writeSize, 65536, 65536);
        const client = new TcpStreamClient(tcp, { dstIp: parseIp(a.dstIp), dstPort: a.dstPort, bytes, flows, writeSize }, now);
        return this.add(`tcp stream to ${a.dstIp}:${a.dstPort}`, a.timeoutMs, later(), {
          poll: () => client.poll(),
          done: () => client.done,
          result: () => client.result(),
          stop: () => client.abort(),
        });
      },
      tcp_rr_server: (a, { later }) => {
        const reqSize = positiveInt('reqSize', a.reqSize, 1, 65536);
        const rspSize = positiveInt('rspSize', a.rspSize, 1, 65536);
        const conns = positiveInt('conns', a.conns, 1, 1024);
        const server = new TcpRrServer(tcp, { port: a.port, reqSize, rspSize, conns });
        return this.add(`tcp rr server :${a.port}`, a.timeoutMs, later(), {
          poll: () => server.poll(),
          done: () => server.done,
          result: () => ({ transactions: server.transactions }),
          stop: () => server.stop(),
          release: () => server.stop(),
        });
      },
      tcp_rr: (a, { later }) => {
        const count = positiveInt('count', a.count, 1);
        const reqSize = positiveInt('reqSize', a.reqSize, 1, 65536);
        const rspSize = positiveInt('rspSize', a.rspSize, 1, 65536);
        const client = new TcpRrClient(tcp, { dstIp: parseIp(a.dstIp), dstPort: a.dstPort, count, reqSize, rspSize }, now);
        return this.add(`tcp rr to ${a.dstIp}:${a.dstPort}`, a.timeoutMs, later(), {
          poll: () => client.poll(),
          done: () => client.done,
          result: () => client.result(),
          stop: () => client.abort(),
        });
      },
    };
  }

  private add(name: string, timeoutMs: number | undefined, reply: RpcReply, j: Omit<TcpJob, 'name' | 'deadline' | 'reply'>): typeof DEFERRED {
    const t = positiveInt('timeoutMs', timeoutMs, DEFAULT_TIMEOUT_MS);
    this.jobs.push({ ...j, name, reply, deadline: this.clock.now() + t });
    return DEFERRED;
  }

  /** The jobs' share of a poll: write what the sockets take, answer the finished and the late. */
  poll(now: number): number {
    let work = 0;
    for (let i = 0; i < this.jobs.length; i++) {
      const j = this.jobs[i];
      work += j.poll();
      if (j.done()) {
        this.jobs.splice(i--, 1);
        j.release?.();
        j.reply(j.result());
      } else if (now > j.deadline) {
        this.jobs.splice(i--, 1);
        j.stop();
        j.reply({ ...j.result(), timedOut: true });
      }
    }
    return work;
  }

  /** Octets each running sink has received so far, by port. */
  progress(): Record<number, { bytes: number }> {
    const out: Record<number, { bytes: number }> = {};
    for (const j of this.jobs) {
      const p = j.progress?.();
      if (p) out[p.port] = { bytes: p.bytes };
    }
    return out;
  }

  /** The earliest deadline, or Infinity. */
  nextDeadline(): number {
    let t = Infinity;
    for (const j of this.jobs) t = Math.min(t, j.deadline);
    return t;
  }

  /**
   * A suspend: TCP connections do not survive it here (the stack's TCBs are
   * not carried in a save image), so every app answers now with what it
   * measured and `interrupted`.
   */
  interrupt(why: string): void {
    for (const j of this.jobs.splice(0)) {
      j.stop();
      j.reply({ ...j.result(), interrupted: why });
    }
  }
}
