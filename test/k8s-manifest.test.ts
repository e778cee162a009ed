/**
 * deploy/kubernetes/xsim-partitions.yaml, without a cluster: it parses, says
 * at its top that it is untested, and agrees with the topology it ships
 * (test/fixtures/partitions-2.json): one replica per partition, the VXLAN
 * UDP ports base + k in the Service and the container, the partitions named
 * in their order; and its entrypoint, run by sh with `hostname` and `npx`
 * stubbed, gives pod xsim-k the command `xsim run ... --partition <k-th
 * partition>` with every partition at its pod's DNS name, which the
 * toolstack accepts and places on base + k.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_VXLAN_BASE_PORT, parsePartitionAddresses, partitionEndpoints, validateTopology, withPartitionAddresses, type Topology } from '@xsim/toolstack';

const ROOT = new URL('..', import.meta.url).pathname;
const FILE = join(ROOT, 'deploy/kubernetes/xsim-partitions.yaml');
const TEXT = readFileSync(FILE, 'utf8');
const FIXTURE = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/partitions-2.json'), 'utf8')) as Topology;

type Obj = Record<string, unknown>;
interface Port {
  name: string;
  protocol: string;
  port?: number;
  containerPort?: number;
}
interface Container {
  command: string[];
  env: { name: string; value?: string }[];
  ports: Port[];
  volumeMounts: { name: string; mountPath: string }[];
}

const docs = parseAllDocuments(TEXT);
const objs = docs.map((d) => d.toJS() as Obj & { kind: string; metadata: { name: string; labels?: Obj } });
const kind = <T>(k: string): T => {
  const found = objs.filter((o) => o.kind === k);
  expect(found, `one ${k} in the manifest`).toHaveLength(1);
  return found[0] as T;
};
const cm = () => kind<{ metadata: { name: string }; data: Record<string, string> }>('ConfigMap');
const svc = () => kind<{ metadata: { name: string }; spec: { clusterIP: string; publishNotReadyAddresses: boolean; selector: Obj; ports: Port[] } }>('Service');
const sts = () =>
  kind<{
    spec: {
      serviceName: string;
      replicas: number;
      selector: { matchLabels: Obj };
      template: { metadata: { labels: Obj }; spec: { containers: Container[]; volumes: { name: string; configMap?: { name: string } }[] } };
    };
  }>('StatefulSet');
const container = () => {
  const cs = sts().spec.template.spec.containers;
  expect(cs).toHaveLength(1);
  return cs[0];
};
const env = (name: string) => container().env.find((e) => e.name === name)?.value;
const names = Object.keys(FIXTURE.partitions!);
const expectedPorts = names.map((_, k) => DEFAULT_VXLAN_BASE_PORT + k);

let dir: string | undefined;
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The entrypoint run as pod `host`: every `npx` command line it ran (stubbed: they print and succeed), its status and stderr. */
function entrypoint(host: string): { status: number | null; runs: string[][]; stderr: string } {
  dir ??= mkdtempSync(join(tmpdir(), 'xsim-k8s-'));
  const script = join(dir, 'entrypoint.sh');
  writeFileSync(script, cm().data['entrypoint.sh']);
  const bin = join(dir, 'bin');
  execFileSync('mkdir', ['-p', bin]);
  // One argument a line, a blank line after each command.
  writeFileSync(join(bin, 'npx'), '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done >> "$NPX_LOG"\necho >> "$NPX_LOG"\n');
  writeFileSync(join(bin, 'hostname'), '#!/bin/sh\necho "$FAKE_HOSTNAME"\n');
  chmodSync(join(bin, 'npx'), 0o755);
  chmodSync(join(bin, 'hostname'), 0o755);
  const log = join(dir, `npx-${host}.log`);
  writeFileSync(log, '');
  const vars = Object.fromEntries(container().env.flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])));
  const r = spawnSync('sh', [script], {
    env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, ...vars, POD_NAMESPACE: 'default', FAKE_HOSTNAME: host, NPX_LOG: log },
    encoding: 'utf8',
    timeout: 10_000,
  });
  const runs = readFileSync(log, 'utf8')
    .split('\n\n')
    .filter((s) => s.trim())
    .map((s) => s.split('\n').filter((l) => l !== ''));
  return { status: r.status, runs, stderr: r.stderr };
}

describe('deploy/kubernetes/xsim-partitions.yaml', () => {
  it('parses as YAML, a ConfigMap, a Service and a StatefulSet, and says at its top that it is not tested here', () => {
    for (const d of docs) expect(d.errors.map((e) => e.message)).toEqual([]);
    expect(objs.map((o) => o.kind)).toEqual(['ConfigMap', 'Service', 'StatefulSet']);
    expect(TEXT.split('\n').slice(0, 12).join('\n')).toMatch(/NOT TESTED HERE: no cluster/);
  });

  it('ships the fixture topology, valid, with the entrypoint beside it, mounted where the command reads them', () => {
    const topo = JSON.parse(cm().data['topo.json']) as unknown;
    expect(topo).toEqual(FIXTURE);
    expect(validateTopology(topo).partitions).toBeDefined();
    const c = container();
    expect(c.command).toEqual(['/bin/sh', '/etc/xsim/entrypoint.sh']);
    const mount = c.volumeMounts.find((m) => m.mountPath === '/etc/xsim');
    expect(sts().spec.template.spec.volumes.find((v) => v.name === mount?.name)?.configMap?.name).toBe(cm().metadata.name);
    expect(cm().data['entrypoint.sh']).toContain('/etc/xsim/topo.json');
  });

  it('one pod per partition, behind a headless Service that publishes pods before they are ready', () => {
    expect(sts().spec.replicas).toBe(names.length);
    expect(env('XSIM_PARTITIONS')?.split(/\s+/)).toEqual(names);
    expect(sts().spec.serviceName).toBe(svc().metadata.name);
    expect(env('XSIM_SERVICE')).toBe(svc().metadata.name);
    expect(svc().spec.clusterIP).toBe('None');
    expect(svc().spec.publishNotReadyAddresses).toBe(true);
    expect(sts().spec.template.metadata.labels).toMatchObject(svc().spec.selector);
    expect(sts().spec.template.metadata.labels).toMatchObject(sts().spec.selector.matchLabels);
  });

  it('the VXLAN ports: UDP base + k for each partition k, and TCP on the same numbers for migrations, in the Service and in the container', () => {
    const want = [...expectedPorts.map((p) => ['UDP', p]), ...expectedPorts.map((p) => ['TCP', p])];
    expect(svc().spec.ports.map((p) => [p.protocol, p.port])).toEqual(want);
    expect(container().ports.map((p) => [p.protocol, p.containerPort])).toEqual(want);
    // The entrypoint moves no port: the partitions are on the default base.
    expect(cm().data['entrypoint.sh']).not.toContain('--vxlan-base-port');
  });

  it('xsim-0 pings a guest of another partition first', () => {
    const to = env('XSIM_PING_TO')!;
    const [host, domain] = to.split('/');
    const part = Object.entries(FIXTURE.partitions!).find(([, s]) => s.hosts.includes(host))?.[0];
    expect(part).toBeDefined();
    expect(part).not.toBe(names[0]);
    expect(FIXTURE.hosts.find((h) => h.name === host)?.domUs.map((d) => d.name)).toContain(domain);
  });

  it("the entrypoint: pod xsim-k runs --partition <k-th partition>, every partition at its pod's DNS name, on base + k", () => {
    const dns = names.map((_, k) => `xsim-${k}.xsim.default.svc.cluster.local`);
    for (const [k, name] of names.entries()) {
      const r = entrypoint(`xsim-${k}`);
      expect(r.status, r.stderr).toBe(0);
      const serve = r.runs[r.runs.length - 1];
      expect(serve.slice(0, 5)).toEqual(['xsim', 'run', '/etc/xsim/topo.json', '--partition', name]);
      expect(serve.slice(-4)).toEqual(['--serve', '--idle', '--socket', '/tmp/xsim.sock']);
      expect(serve).toContain('--bind-any');
      const given = serve.flatMap((a, i) => (serve[i - 1] === '--partition-address' ? [a] : []));
      expect(given).toEqual(names.map((n, j) => `${n}=${dns[j]}`));
      // What the CLI would do with them: each partition at its pod's name, on base + k.
      const overrides = parsePartitionAddresses(FIXTURE, given);
      const eps = partitionEndpoints(withPartitionAddresses(FIXTURE, overrides));
      expect(eps.map((e) => `${e.name} ${e.address}:${e.port}`)).toEqual(names.map((n, j) => `${n} ${dns[j]}:${expectedPorts[j]}`));
      if (k === 0) {
        expect(r.runs).toHaveLength(2);
        expect(r.runs[0].slice(0, 5)).toEqual(serve.slice(0, 5));
        expect(r.runs[0].slice(-6)).toEqual(['--workload', 'ping', '--to', env('XSIM_PING_TO'), '--count', '20']);
      } else expect(r.runs).toHaveLength(1);
    }
  });

  it('a pod whose ordinal has no partition stops, saying so', () => {
    const r = entrypoint(`xsim-${names.length}`);
    expect(r.status).toBe(2);
    expect(r.runs).toEqual([]);
    expect(r.stderr).toContain(`xsim: pod xsim-${names.length} (ordinal ${names.length}) has no partition: XSIM_PARTITIONS is "${names.join(' ')}"`);
  });
});
