#!/usr/bin/env node
/**
 * xsim — run a topology, benchmark paths, manage devices and plugins.
 * Human-readable output by default; -j for JSON, -p to pretty-print it.
 */
import { MANAGE_OBJECTS, MANAGE_USAGE, manageCommand } from './commands/manage.ts';
import { setCommandLine, versionLine } from '@xsim/toolstack';

const USAGE = `usage: xsim <command> [options]      (xsim --version: version and git commit)

commands:
  run [topology.json]     bring a topology up (default: built-in 2 hosts x (dom0 + 2 domUs)),
                          ping, run a workload between two domUs on different hosts, print counters
      --workload W        udp-stream (default: sequenced UDP frames with credits), tcp-stream (netperf
                          TCP_STREAM, iperf3), tcp-rr (netperf TCP_RR) or ping (ICMP echo)
      --count N           messages: frames (udp-stream, default 200000), MSS-sized 1448-octet messages
                          (tcp-stream, 20000), transactions (tcp-rr, 10000), probes (ping, 100)
      --bytes N           tcp-stream: octets in all instead of --count writes (iperf3 -n)
      --flows N           tcp-stream: parallel connections sharing them (iperf3 -P; default 1)
      --write-size N      tcp-stream: octets per write (netperf -m; default 65536, as iperf3's large writes)
      --req-size N        tcp-rr: request octets (default 1); --rsp-size N: response octets (default 1)
      --size BYTES        Ethernet frame size, 64..MTU+14 (default 1500); ping: data octets (default 56)
      --from HOST/DOM     sender (default: first domU of the first host)
      --to HOST/DOM       receiver (default: first domU of the second host)
      --window FRAMES     sender credit window (default 256; 0 = unpaced)
      --capture SPEC,...  capture frames into one pcapng file (one interface per tap point): a tap point
                          (host-a/vif1.0 backend side, host-a/a1/vif0 frontend side, host-a/uplink,
                          host-a/bridge (its drops), host-b/nic/vi3, host-a/nic/wire, tor0/port1), a glob
                          (host-a/*) or a host name; drops are captured with their counter's name
      --capture-file F    where (default xsim.pcapng); --snaplen N: octets kept per frame
      --interval S        a line per S seconds while streaming, as iperf3 -i (time, frames, Gbit/s,
                          lost; tcp-stream: MBytes, Gbit/s, retransmissions); -j gives them as "intervals"
      --trace FILE        Chrome/Perfetto trace events of every thread from boot on (open FILE at
                          ui.perfetto.dev): a track per domain, pCPU sleeps, ring pushes, notifications,
                          grant copies, xenbus changes, plugin messages, filter insertions, and the hop-by-
                          hop journey of every Nth frame (--trace-sample N, default 1024)
      --plugin NAME[,NAME]  load accelerator plugins (vnic, vdpa, null, firewall or a plugin directory) first,
                          each on the hosts whose NIC it drives
      --nics M[,M]        the built-in topology's NIC models, host-a's and host-b's: vi (sfc-style VIs,
                          nic:1924-0803, plugin vnic) or virtio (a vDPA device, nic:1af4-1041, plugin
                          vdpa); e.g. --nics vi,virtio --plugin vnic,vdpa
      --plugin-args JSON  its load arguments, a JSON object checked against the plugin's manifest.args
                          (e.g. --plugin firewall --plugin-args '{"rules":[{"proto":17,"dstPort":5009}]}')
      --port N            the stream's UDP destination port (default 5001)
      --src-port N        the sender's UDP source port (default: a fresh one per stream; with --serve
                          every round uses one, 42000)
      --serve             keep running and serve a control socket for the commands below; stream
                          in rounds of --count frames, a line per round (--idle: no traffic)
      --socket PATH       where to serve (default $XSIM_SOCKET or the system temp dir's xsim.sock)
      --partition NAME    run one partition of the topology file's "partitions": its wires to the
                          others are VXLAN tunnels (VNI 10000 + the wire's index) on each partition's
                          "address" (default 127.0.0.1) and "port"; both stream ends in it, or
                          --workload ping --to a guest of another partition
      --partition-address NAME=ADDR[:PORT]
                          partition NAME's tunnels are on ADDR (IPv4 or a DNS name, resolved at start,
                          retried up to 120 s) and PORT, over the file's; repeatable
      --bind-any          with --partition: bind this partition's tunnels to 0.0.0.0 (its port), not
                          its own address (one behind NAT, or a name this machine does not hold)
      --partitions local  every partition in a process of its own on this machine, driven as one:
                          boot waits for all, --workload udp-stream (conserved over every partition's
                          counters, frames in UDP counted) or ping between guests of two partitions
                          (default: the first partition's first domU and another's); takes --count,
                          --size, --window, --from, --to, --port, --src-port, --pcpus (each),
                          --partition-address, -j;
                          --serve --idle [--socket PATH]: one control socket for every partition's
                          domains; a partition that dies takes its wires down on the others (exit 3)
      --vxlan-base-port N the k-th partition's tunnels use UDP port N + k (default 14789)
      --pcpus N           pCPU worker threads the domains are scheduled on (default: the machine's
                          cores; the NIC hardware has one thread more)
      --deterministic     every domain and the NIC on one thread, a seeded order, a virtual clock:
                          the same --seed gives the same output byte for byte
      --seed N            the scheduling seed of a deterministic run (default 1)
      -j, -p              JSON output (-p: pretty); nothing but the JSON goes to stdout
      -q, --quiet         warnings and errors only (no progress lines); -v, --verbose: debug lines too
                          (each vif's xenbus transitions at both ends). Log lines go to stderr.
  bench                   throughput matrix: paths x frame sizes x placements, ratios, microbenchmarks
      --quick             a short smoke run (what the tests run)
      --sizes 64,1500     frame sizes (default 64,512,1500,9000)
      --paths LIST        unaccel,vnic,vdpa,null,dom0,raw,raw3 (default all; vdpa runs on two more hosts, c
                          and d, with the virtio NIC, and then all four hosts share a switch; raw3: the raw
                          ring with a forwarder thread between producer and consumer)
      --placements LIST   cross,same (default both)
      --pcpus N           pCPU worker threads (default: the machine's cores)
      --reps N            repetitions per cell (default 5)
      --runs N            repeat the whole matrix N times, fresh simulations each (default 1): every run
                          kept, each ratio's median and min..max across runs
      --wire-gbps G       a line rate on every wire of the bench's topologies (Gbit/s)
      --pairs 1,2,4       concurrent guest pairs a_i -> b_i (four domUs a host), unaccel and vnic, and
                          vnic/unaccel aggregate per N (default 1,2,4; none with --quick)
      --seconds S         length of each repetition (default 0.5; sized from a warm-up)
      --frames N          a fixed frame count per repetition at 1500 B instead
      --out FILE          JSON result (default bench/results/latest.json; none with --quick), and SVG charts
                          beside it (FILE-throughput.svg, -cpu, -ratios, -capture, -compare)
      --compare OLD.json  show the change against an earlier result, marking changes outside its spread
      --micro/--no-micro  microbenchmarks (default on, off with --quick)
      --no-capture        skip the capture-cost streams (unaccel and vnic at 1500 B, capture off and on at
                          one tap point and at every one, paired per repetition)
      --queues 1,2,4      also multi-queue vifs: for each N, a1 and b1 with N queues, N flows a1 -> b1 at
                          once over the slow path (one per TX queue), per-queue frames at both ends
      --tcp, --no-tcp     the TCP section (default on, off with --quick): tcp-stream and tcp-rr on unaccel,
                          dom0 and vnic, offloads on and off, a udp-stream beside each; paired ratios
                          (vnic/unaccel, vnic/dom0, offloads on/off, tcp/udp)
      --tcp-bytes N       octets per tcp-stream repetition; --tcp-rr-count N: transactions per tcp-rr one
                          (default: sized from a warm-up to last --seconds)
      --tcp-paths LIST    unaccel,dom0,vnic (default all); --tcp-offloads on,off (default both)
      --no-tcp-verify     the sink counts octets without checking each against the stream's pattern
  scale                   boot time, peak RSS, idle CPU and a cross-rack stream against the number of
                          domains: each point a generated rack booted in a fresh process
      --domains LIST      domU counts (default 16,64,256,1024; 16 domUs per host, >= 2 hosts)
      --idle-seconds S    idle window measured after boot (default 3)
      --stream-frames N   frames streamed first guest -> last guest (default 20000; 0 = none)
      --pcpus N           pCPU worker threads (default: the machine's cores)
      --out FILE          JSON result (schema xsim-scale/1)
  migration               live-migration figures: a streaming receiver moved between hosts, per case
                          (rounds, pages, blackout, downtime, lost and where, time to the fast path)
      --cases LIST        vnic-vnic,vnic-none,slow-slow (default all)
      --reps N            repetitions per case, each a fresh simulation (default 5)
      --frames N          frames in each stream (default 60000), --size BYTES (default 1500),
      --window FRAMES     sender credit window (default 64); --after N: move after N frames (default 1/4)
      --pcpus N           pCPU worker threads (default: the machine's cores)
      --seed N            deterministic runs instead, seeds N, N+1, ...
      --out FILE          JSON result (schema xsim-migration/1)

  plugin test DIR|NAME    take a plugin through the conformance suite on a deterministic simulation of its
                          own (no --serve needed): load and API handshake, attach, traffic with exact
                          conservation, unload, swap, NIC reset, link, MTU, migration, a full filter quota,
                          a hook that throws; a row each, PASS, FAIL or SKIP with the reason; exit status 1
                          on any FAIL
      --args JSON         the plugin's load arguments
      --seed N            the simulation's seed (default 1); --only ID,...: those checks only
      --partner NAME      the plugin swapped in mid-stream (default null); -j, -p: the report as JSON
      --from/--to H/DOM   the stream's ends (default the first guest of host-a and of host-b)

  schema [--out DIR]      write the JSON Schema files of run -j and bench results (default schemas/);
                          every result carries "meta": xsim version, git commit, command line, Node,
                          CPU, pCPUs

against a simulation that \`xsim run --serve\` keeps running:
${MANAGE_USAGE}
  shutdown [--socket PATH]            stop it
`;

/**
 * One command's part of the usage: its entries (a line indented two spaces
 * that starts with the command's name, and the lines indented deeper under
 * it), after the usage line; the whole usage for a name it does not know.
 */
export function usageOf(cmd: string): string {
  const lines = USAGE.split('\n');
  const out: string[] = [];
  let taking = false;
  for (const line of lines) {
    const entry = /^ {2}\S/.test(line);
    if (entry) taking = line.slice(2).split(/\s/)[0] === cmd;
    else if (line.trim() === '' || !line.startsWith('   ')) taking = false;
    if (taking) out.push(line);
  }
  return out.length ? `${lines[0]}\n\n${out.join('\n')}\n` : USAGE;
}

/** A management command: run the verb over the control socket, print what it returns. */
const manage = (object: string) => async (argv: string[]) => {
  const text = await manageCommand(object, argv);
  if (text) process.stdout.write(text + '\n');
  return 0;
};

/**
 * The command table (as xl_cmdtable.c): a name and what runs it. Usage is USAGE
 * above. A command's module is loaded when it runs, so `xsim domain list` does
 * not load the benchmarks (and their chart renderer).
 */
const COMMANDS: Record<string, (argv: string[]) => Promise<number> | number> = {
  run: async (argv) => (await import('./commands/run.ts')).runCommand(argv),
  bench: async (argv) => (await import('./commands/bench.ts')).benchCommand(argv),
  scale: async (argv) => (await import('./commands/scale.ts')).scaleCommand(argv),
  migration: async (argv) => (await import('./commands/migration.ts')).migrationCommand(argv),
  schema: async (argv) => (await import('./commands/schema.ts')).schemaCommand(argv),
  // Against a running simulation: print what the management verb returns.
  ...Object.fromEntries(MANAGE_OBJECTS.map((object) => [object, manage(object)])),
  // `plugin test` starts a deterministic simulation of its own (no control socket): taken before the management verbs.
  plugin: async (argv) => (argv[0] === 'test' ? (await import('./commands/plugin-test.ts')).pluginTestCommand(argv.slice(1)) : manage('plugin')(argv)),
};

async function main(argv: string[]): Promise<number> {
  setCommandLine(argv);
  // `xsim --version`, `xsim -V`, `xsim version`, and `--version` after any command.
  if (argv.includes('--version') || argv[0] === '-V' || argv[0] === 'version') {
    process.stdout.write(versionLine() + '\n');
    return 0;
  }
  const [cmd, ...rest] = argv;
  // `xsim`, `xsim help`: the whole usage; `xsim run --help`, `xsim scale -h`, `xsim domain help`, `xsim help plugin`: that command's part.
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    process.stdout.write(cmd === 'help' && rest[0] ? usageOf(rest[0]) : USAGE);
    return cmd === undefined ? 1 : 0;
  }
  if (rest.includes('--help') || rest.includes('-h') || rest[0] === 'help') {
    process.stdout.write(usageOf(cmd));
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!command) {
    process.stderr.write(`xsim: unknown command "${cmd}"\n${USAGE}`);
    return 1;
  }
  return command(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`xsim: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
