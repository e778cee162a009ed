/**
 * docs/plugins.md, the plugin writer's reference, against the code, so the
 * page cannot drift from what it describes. Every table or block after a
 * `<!-- checked: KIND [ARG] -->` marker in the page is compared with what the
 * code declares or does:
 *
 *   layout-constants  every number exported by packages/nic/src/layout.ts, with its value (a fault
 *                     reason with its FAULT_NAMES name), and nothing else
 *   ring-pages        the VI's ring pages: each ring's offset, size and pages
 *   diagram NAME      the octet diagrams (tx, rx, event, doorbell): each field's offset against the
 *                     layout constant, and its offset and width against what ViQueues, HwVi and
 *                     HwNic really write there
 *   mcdi              the ops of MCDI_OPS, each once; each op's argument fields, optionality and
 *                     types from its schema; its reply's shape from a real NIC's answer; every
 *                     error listed is one a NIC answers (a case below produces each), and every
 *                     case's error is listed. The two refusal templates in the text likewise
 *   filter-match      FILTER_MATCH's kinds and their fields
 *   channel-ops       the plugin channel's framework ops (TO_FRONTEND, TO_BACKEND): direction, fields
 *   sequence          every framework op appears in some sequence diagram
 *   manifest          MANIFEST_SCHEMA's fields, which are required, their patterns and limits
 *   interfaces        the TypeScript interfaces shown, member by member against their sources
 *   backend-context, helpers
 *                     every call named exists (a member of the context, or of the class behind a
 *                     context field, or of ViQueues) and takes that many parameters
 *   backend-hooks, frontend-hooks
 *                     every hook of ACCEL_BACKEND_HOOKS / ACCEL_FRONTEND_HOOKS once, with the kind the
 *                     loader holds it to (required, optional, a string, or what FEATURE_HOOKS asks)
 *   constants         each constant shown is exported by every package named, with that value
 *   conformance       the conformance suite's checks (CHECKS), in order, with the title each row prints
 *   plugin-test-options
 *                     the options of `xsim plugin test` (its usage line), with the defaults and ranges
 *                     plugin-test.ts gives them
 *   template PATH     the templates: written with the page's package.json and tsconfig.json into a
 *                     temporary directory outside the repository (node_modules linked, as the page
 *                     says), type-checked there, then loaded into a deterministic simulation
 *
 * A failure names the line of docs/plugins.md that no longer matches.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANNEL_OP, FILTER_MATCH, MCDI_OPS, TO_BACKEND, TO_FRONTEND, WithShared, type RpcValue } from '@xsim/hypervisor';
import * as HYPERVISOR from '@xsim/hypervisor';
import * as NETBACK from '@xsim/netback';
import { ACCEL_BACKEND_HOOKS, FEATURE_HOOKS, MANIFEST_SCHEMA } from '@xsim/netback';
import { ACCEL_FRONTEND_HOOKS } from '@xsim/netfront';
import * as NIC from '@xsim/nic';
import { HwNic, HwVi, ViQueues, handleMcdi, type McdiOp } from '@xsim/nic';
import { Simulation, defaultTopology, dom0Stats, guestStats, runStream, streamAccount, type DomainRef } from '@xsim/toolstack';
import * as LAYOUT from '../packages/nic/src/layout.ts';
import { CHECKS } from '../packages/toolstack/src/conformance/runner.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DOC_PATH = 'docs/plugins.md';
const LINES = readFileSync(join(ROOT, DOC_PATH), 'utf8').split('\n');
const DOC = LINES.join('\n');

// ---------------------------------------------------------------- the page's marked blocks

interface Block {
  kind: string;
  arg: string;
  /** 1-based line of the block's first line (a table's header, a code block's first line inside the fence). */
  line: number;
  text: string;
}

function markedBlocks(): Block[] {
  const out: Block[] = [];
  LINES.forEach((l, i) => {
    const m = /^<!-- checked: (\S+)(?: (.+?))? -->$/.exec(l);
    if (!m) return;
    let j = i + 1;
    while (j < LINES.length && LINES[j].trim() === '') j++;
    let k = j;
    if (LINES[j]?.startsWith('```')) {
      k = j + 1;
      while (k < LINES.length && !LINES[k].startsWith('```')) k++;
      out.push({ kind: m[1], arg: m[2] ?? '', line: j + 2, text: LINES.slice(j + 1, k).join('\n') });
    } else if (LINES[j]?.startsWith('|')) {
      while (k < LINES.length && LINES[k].startsWith('|')) k++;
      out.push({ kind: m[1], arg: m[2] ?? '', line: j + 1, text: LINES.slice(j, k).join('\n') });
    } else throw new Error(`${DOC_PATH}:${i + 1}: "checked: ${m[1]}" is followed by neither a table nor a code block`);
  });
  return out;
}

const BLOCKS = markedBlocks();

function blocksOf(kind: string): Block[] {
  const b = BLOCKS.filter((x) => x.kind === kind);
  if (b.length === 0) throw new Error(`${DOC_PATH} has no block marked "checked: ${kind}"`);
  return b;
}

/** The one block of a kind (and argument). */
function blockOf(kind: string, arg = ''): Block {
  const b = blocksOf(kind).filter((x) => x.arg === arg);
  if (b.length !== 1) throw new Error(`${DOC_PATH} has ${b.length} blocks marked "checked: ${kind}${arg ? ` ${arg}` : ''}", not one`);
  return b[0];
}

interface Row {
  cells: string[];
  /** Where it is, for messages: "docs/plugins.md:LINE". */
  at: string;
}

/** A table's body rows, cells split on unescaped pipes (`\|` is a pipe inside a cell). */
function rows(b: Block): Row[] {
  return b.text
    .split('\n')
    .slice(2)
    .map((l, i) => {
      const cells: string[] = [];
      let cur = '';
      for (let c = 1; c < l.length; c++) {
        if (l[c] === '\\' && l[c + 1] === '|') {
          cur += '|';
          c++;
        } else if (l[c] === '|') {
          cells.push(cur.trim());
          cur = '';
        } else cur += l[c];
      }
      return { cells, at: `${DOC_PATH}:${b.line + 2 + i}` };
    });
}

/** Every `code span` of a cell or text. */
const ticks = (s: string): string[] => [...s.matchAll(/`([^`]+)`/g)].map((m) => m[1]);

/** The code spans of the page's prose (not of its code blocks). */
function proseTicks(): string[] {
  let fenced = false;
  return LINES.flatMap((l) => {
    if (l.startsWith('```')) fenced = !fenced;
    return fenced || l.startsWith('```') ? [] : ticks(l);
  });
}

/** Fields written `name: type` or `name?: type` in a cell's code spans. */
function fieldsOf(cell: string): { name: string; optional: boolean; type: string }[] {
  return ticks(cell).flatMap((t) => {
    const m = /^(\w+)(\?)?: (.+)$/.exec(t);
    return m ? [{ name: m[1], optional: m[2] === '?', type: m[3] }] : [];
  });
}

// ---------------------------------------------------------------- schemas (TypeBox: plain JSON Schema data)

interface Schema {
  type?: string;
  items?: Schema;
  anyOf?: Schema[];
  const?: unknown;
  properties?: Record<string, Schema>;
  required?: string[];
  patternProperties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
}

/** A schema's type as the page writes one: integer, boolean, string, integer[], a | b. */
function typeText(s: Schema): string[] {
  if (s.anyOf) return s.anyOf.flatMap(typeText);
  if (s.type === 'array' && s.items) return typeText(s.items).map((t) => `${t}[]`);
  return [String(s.type)];
}

/** The page's fields of an object schema: names, optionality and (unless told not to) types agree. */
function expectFields(at: string, cell: string, schema: Schema, o: { types?: boolean; named?: Record<string, Schema> } = {}): void {
  const props = schema.properties ?? {};
  const doc = fieldsOf(cell);
  expect(doc.map((f) => f.name).sort(), `${at}: the fields`).toEqual(Object.keys(props).sort());
  for (const f of doc) {
    const p = props[f.name];
    if (!p) continue;
    expect(f.optional, `${at}: ${f.name} is ${f.optional ? 'optional' : 'required'} here`).toBe(!(schema.required ?? []).includes(f.name));
    if (o.types === false) continue;
    const named = Object.entries(o.named ?? {}).find(([, v]) => v === p)?.[0];
    const want = named ? [named] : typeText(p);
    expect(f.type.split(' | ').sort(), `${at}: the type of ${f.name}`).toEqual(want.sort());
  }
}

// ---------------------------------------------------------------- TypeScript sources

const printer = ts.createPrinter({ removeComments: true });

function parse(name: string, text: string): ts.SourceFile {
  return ts.createSourceFile(name, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
}

function source(rel: string): ts.SourceFile {
  return parse(rel, readFileSync(join(ROOT, rel), 'utf8'));
}

type Decl = ts.InterfaceDeclaration | ts.ClassDeclaration;

function declarations(sf: ts.SourceFile): Map<string, Decl> {
  const out = new Map<string, Decl>();
  sf.forEachChild((n) => {
    if ((ts.isInterfaceDeclaration(n) || ts.isClassDeclaration(n)) && n.name) out.set(n.name.text, n);
  });
  return out;
}

interface Member {
  /** Parameters if it can be called, else -1. */
  params: number;
  isStatic: boolean;
  /** The member's type as written (a property's), for following ctx.X to its class. */
  type: string;
}

/** The public members of an interface or class: name, parameters, static, type. */
function members(d: Decl, sf: ts.SourceFile): Map<string, Member> {
  const out = new Map<string, Member>();
  for (const m of d.members as ts.NodeArray<ts.ClassElement | ts.TypeElement>) {
    const mods = ts.canHaveModifiers(m) ? (ts.getModifiers(m) ?? []) : [];
    if (mods.some((x) => x.kind === ts.SyntaxKind.PrivateKeyword || x.kind === ts.SyntaxKind.ProtectedKeyword)) continue;
    const isStatic = mods.some((x) => x.kind === ts.SyntaxKind.StaticKeyword);
    if (ts.isConstructorDeclaration(m)) {
      out.set('constructor', { params: m.parameters.length, isStatic: true, type: '' });
      continue;
    }
    if (!m.name || ts.isPrivateIdentifier(m.name)) continue;
    const name = m.name.getText(sf);
    if (ts.isMethodDeclaration(m) || ts.isMethodSignature(m)) out.set(name, { params: m.parameters.length, isStatic, type: '' });
    else if ((ts.isPropertySignature(m) || ts.isPropertyDeclaration(m)) && m.type) {
      out.set(name, { params: ts.isFunctionTypeNode(m.type) ? m.type.parameters.length : -1, isStatic, type: m.type.getText(sf) });
    } else if (ts.isGetAccessorDeclaration(m) || ts.isPropertyDeclaration(m)) out.set(name, { params: -1, isStatic, type: '' });
  }
  return out;
}

/** The interfaces the page copies, and where they are declared. */
const INTERFACE_SOURCES: Record<string, string> = {
  BackendModule: 'packages/netback/src/accel-api.ts',
  AccelVif: 'packages/netback/src/accel-api.ts',
  AccelVifConfig: 'packages/netback/src/accel-api.ts',
  AccelBackendContext: 'packages/netback/src/accel-api.ts',
  AccelBackend: 'packages/netback/src/accel-api.ts',
  NicInfo: 'packages/nic/src/driverlink.ts',
  SecondaryDriver: 'packages/nic/src/driverlink.ts',
  FrontendModule: 'packages/netfront/src/accel-api.ts',
  AccelFrontendContext: 'packages/netfront/src/accel-api.ts',
  AccelFrontend: 'packages/netfront/src/accel-api.ts',
};

/** The classes behind the frontend context's fields, and ViQueues. */
const CLASS_SOURCES: Record<string, string> = {
  GuestMemory: 'packages/hypervisor/src/memory.ts',
  FrameAllocator: 'packages/hypervisor/src/memory.ts',
  GrantTable: 'packages/hypervisor/src/grant-table.ts',
  GrantRefAllocator: 'packages/hypervisor/src/grant-table.ts',
  EventChannels: 'packages/hypervisor/src/evtchn.ts',
  Clock: 'packages/hypervisor/src/sched/clock.ts',
  ViQueues: 'packages/nic/src/vi-queues.ts',
};

function declared(name: string, table: Record<string, string>): Map<string, Member> {
  const file = table[name];
  if (!file) throw new Error(`no known source declares ${name}`);
  const sf = source(file);
  const d = declarations(sf).get(name);
  if (!d) throw new Error(`${file} no longer declares ${name}`);
  return members(d, sf);
}

// ---------------------------------------------------------------- a NIC to ask

const NIC_SPEC = { name: 'doc-nic', host: 'doc', mac: 0x000f53000001, mtu: 1500, vendor: '1924', device: '0803', vis: 4 };
const DOMID = 1;

function freshNic(spec: Partial<typeof NIC_SPEC & { filters: number }> = {}): { nic: HwNic; ram: SharedArrayBuffer } {
  const ram = new SharedArrayBuffer(64 * LAYOUT.BUFFER_PAGE);
  return { nic: new HwNic({ ...NIC_SPEC, ...spec }, new Map([[DOMID, new Uint8Array(ram)]])), ram };
}

function mcdi(nic: HwNic, op: string, args: unknown, shared: SharedArrayBuffer[] = []): unknown {
  return handleMcdi(nic, op as McdiOp, args as RpcValue, shared);
}

/** A NIC whose VI 1 has its ring pages (frames 0..VI_RING_PAGES − 1 of domain 1) registered from buffer id 0. */
function nicWithRings(): { nic: HwNic; ram: SharedArrayBuffer } {
  const n = freshNic();
  mcdi(n.nic, 'buffer_table_alloc', { vi: 1, domid: DOMID, frames: Array.from({ length: LAYOUT.VI_RING_PAGES }, (_, i) => i) });
  return n;
}

/** ...and attached: vi_init's answer, the attachment's doorbell. */
function nicRunning(): { nic: HwNic; ram: SharedArrayBuffer; doorbell: SharedArrayBuffer } {
  const n = nicWithRings();
  const r = mcdi(n.nic, 'vi_init', { vi: 1, domid: DOMID, rings: 0, macs: [0x00163e000001] }) as WithShared;
  return { ...n, doorbell: r.shared[0] };
}

/** A NIC with VIs 1 and 2 running (each on 12 ring pages of its own), as filter_insert wants them. */
function nicTwoRunning(spec: Partial<typeof NIC_SPEC & { filters: number }> = {}): { nic: HwNic } {
  const { nic } = freshNic(spec);
  for (const vi of [1, 2]) {
    const frames = Array.from({ length: LAYOUT.VI_RING_PAGES }, (_, i) => vi * 16 + i);
    const rings = mcdi(nic, 'buffer_table_alloc', { vi, domid: DOMID, frames });
    mcdi(nic, 'vi_init', { vi, domid: DOMID, rings, macs: null });
  }
  return { nic };
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  throw new Error('expected an error, got an answer');
}

const mac = (kind: 'mac', v: number, vlan?: number) => ({ kind, mac: v, ...(vlan === undefined ? {} : { vlan }) });
const ipv4 = (proto: number, addr: number, port: number) => ({ kind: 'ipv4' as const, proto, addr, port });

/** Each MCDI op's errors, as a NIC answers them: every error the page lists must be one of these, and each of these listed. */
const MCDI_ERROR_CASES: Record<string, (() => string)[]> = {
  vi_init: [
    () => errorOf(() => mcdi(freshNic().nic, 'vi_init', { vi: 9, domid: DOMID, rings: 0, macs: null })),
    () => errorOf(() => mcdi(freshNic().nic, 'vi_init', { vi: 1, domid: 7, rings: 0, macs: null })),
    () => errorOf(() => mcdi(freshNic().nic, 'vi_init', { vi: 1, domid: DOMID, rings: 0, macs: null })),
    () => errorOf(() => mcdi(nicRunning().nic, 'vi_init', { vi: 1, domid: DOMID, rings: 0, macs: null })),
  ],
  vi_fini: [() => errorOf(() => mcdi(freshNic().nic, 'vi_fini', { vi: 9 }))],
  buffer_table_alloc: [
    () => errorOf(() => mcdi(freshNic().nic, 'buffer_table_alloc', { vi: 9, domid: DOMID, frames: [0] })),
    () => errorOf(() => mcdi(freshNic().nic, 'buffer_table_alloc', { vi: 1, domid: 7, frames: [0] })),
    () => errorOf(() => mcdi(freshNic().nic, 'buffer_table_alloc', { vi: 1, domid: DOMID, frames: [0, 64] })),
    () => {
      const { nic } = freshNic();
      const frames = Array.from({ length: 65536 }, () => 0);
      return errorOf(() => {
        for (;;) mcdi(nic, 'buffer_table_alloc', { vi: 1, domid: DOMID, frames });
      });
    },
  ],
  buffer_table_free: [
    () => errorOf(() => mcdi(nicWithRings().nic, 'buffer_table_free', { vi: 2, base: 0, count: 1 })),
    () => errorOf(() => mcdi(nicWithRings().nic, 'buffer_table_free', { vi: 1, base: LAYOUT.VI_RING_PAGES, count: 4 })),
  ],
  filter_insert: [
    () => errorOf(() => mcdi(freshNic().nic, 'filter_insert', { vi: 9, match: mac('mac', 1) })),
    () => errorOf(() => mcdi(freshNic().nic, 'filter_insert', { vi: 1, match: mac('mac', 1) })),
    () => errorOf(() => mcdi(nicTwoRunning().nic, 'filter_insert', { vi: 1, match: mac('mac', 1.5) })),
    () => errorOf(() => mcdi(nicTwoRunning().nic, 'filter_insert', { vi: 1, match: mac('mac', 1, 5000) })),
    () => errorOf(() => mcdi(nicTwoRunning().nic, 'filter_insert', { vi: 1, match: ipv4(256, 1, 1) })),
    () => errorOf(() => mcdi(nicTwoRunning().nic, 'filter_insert', { vi: 1, match: ipv4(17, 2 ** 32, 1) })),
    () => errorOf(() => mcdi(nicTwoRunning().nic, 'filter_insert', { vi: 1, match: ipv4(17, 1, 70000) })),
    () => {
      const { nic } = nicTwoRunning({ filters: 1 });
      mcdi(nic, 'filter_insert', { vi: 1, match: mac('mac', 1) });
      return errorOf(() => mcdi(nic, 'filter_insert', { vi: 1, match: mac('mac', 2) }));
    },
    ...[mac('mac', 0x00163e000001), mac('mac', 0x00163e000001, 5), ipv4(17, 0x0a000a01, 5001)].map((match) => () => {
      const { nic } = nicTwoRunning();
      mcdi(nic, 'filter_insert', { vi: 1, match });
      return errorOf(() => mcdi(nic, 'filter_insert', { vi: 2, match }));
    }),
    // A switch-only filter for the MAC names VI 1: a normal one to VI 2 would have the wire and the switch disagree.
    () => {
      const { nic } = nicTwoRunning();
      mcdi(nic, 'filter_insert', { vi: 1, match: { ...mac('mac', 0x00163e000001), local: true } });
      return errorOf(() => mcdi(nic, 'filter_insert', { vi: 2, match: mac('mac', 0x00163e000001) }));
    },
  ],
  vi_stats: [() => errorOf(() => mcdi(freshNic().nic, 'vi_stats', { vi: 9 }))],
  mtu_set: [() => errorOf(() => mcdi(freshNic().nic, 'mtu_set', { mtu: 10_000 })), () => errorOf(() => mcdi(freshNic().nic, 'mtu_set', { mtu: 60 }))],
};

/** A successful answer of each MCDI op, from a NIC. */
const MCDI_REPLY_CASES: Record<string, () => unknown> = {
  vi_init: () => mcdi(nicWithRings().nic, 'vi_init', { vi: 1, domid: DOMID, rings: 0, macs: [0x00163e000001] }),
  vi_fini: () => mcdi(nicRunning().nic, 'vi_fini', { vi: 1 }),
  buffer_table_alloc: () => mcdi(freshNic().nic, 'buffer_table_alloc', { vi: 1, domid: DOMID, frames: [3, 4] }),
  buffer_table_free: () => mcdi(nicWithRings().nic, 'buffer_table_free', { vi: 1, base: 0, count: 2 }),
  filter_insert: () => mcdi(nicTwoRunning().nic, 'filter_insert', { vi: 1, match: mac('mac', 1) }),
  filter_remove: () => mcdi(nicTwoRunning().nic, 'filter_remove', { id: 1 }),
  filter_list: () => {
    const { nic } = nicTwoRunning();
    mcdi(nic, 'filter_insert', { vi: 1, match: mac('mac', 1) });
    mcdi(nic, 'filter_insert', { vi: 2, match: ipv4(17, 1, 2) });
    return mcdi(nic, 'filter_list', {});
  },
  filter_hits: () => {
    const { nic } = nicTwoRunning();
    const id = mcdi(nic, 'filter_insert', { vi: 1, match: mac('mac', 1) });
    return mcdi(nic, 'filter_hits', { ids: [id, 99] });
  },
  vi_stats: () => mcdi(nicRunning().nic, 'vi_stats', { vi: 1 }),
  nic_stats: () => mcdi(nicRunning().nic, 'nic_stats', {}),
  link_set: () => mcdi(freshNic().nic, 'link_set', { up: false }),
  nic_reset: () => mcdi(nicRunning().nic, 'nic_reset', {}),
  mtu_set: () => mcdi(freshNic().nic, 'mtu_set', { mtu: 9000 }),
};

/** An error template of the page (‹…› stands for a value) as a pattern. */
function template(t: string): RegExp {
  const parts = t.split(/‹[^›]*›/).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.+?')}$`);
}

function expectReply(at: string, op: string, shape: string, reply: unknown): void {
  const what = `${at}: ${op}'s reply is documented as ${shape}, the NIC answers ${JSON.stringify(reply)}`;
  const keys = (s: string) =>
    s
      .replace(/^\[?\{|\}(, …\])?$/g, '')
      .split(',')
      .map((k) => k.trim())
      .sort();
  if (shape === 'true') expect(reply, what).toBe(true);
  else if (shape === 'integer') expect(Number.isInteger(reply), what).toBe(true);
  else if (shape === 'boolean') expect(typeof reply, what).toBe('boolean');
  else if (/^\{.*\}$/.test(shape)) expect(Object.keys(reply as object).sort(), what).toEqual(keys(shape));
  else if (/^\[\{.*\}, …\]$/.test(shape)) {
    expect(Array.isArray(reply) && reply.length > 0, what).toBe(true);
    for (const e of reply as object[]) expect(Object.keys(e).sort(), what).toEqual(keys(shape));
  } else if (/^\[[\w |]+, …\]$/.test(shape)) {
    // An array of scalars, each of one of the types named: [integer | null, …].
    const types = shape.slice(1, -4).split(' | ');
    const is = (v: unknown) =>
      types.some((t) => (t === 'integer' ? Number.isInteger(v) : t === 'null' ? v === null : t === 'boolean' ? typeof v === 'boolean' : false));
    expect(Array.isArray(reply) && reply.length > 0 && reply.every(is), what).toBe(true);
  } else throw new Error(`${at}: a reply shape this test cannot read: ${shape}`);
}

// ---------------------------------------------------------------- octet diagrams

interface Field {
  label: string;
  at: number;
  width: number;
}

/** A netif.h-style diagram: 8 octets a row, cells 6 columns wide, the octet numbers over them. */
function diagram(b: Block): { fields: Field[]; size: number } {
  const lines = b.text.split('\n');
  const where = (i: number) => `${DOC_PATH}:${b.line + i}`;
  const rowsAt = lines.flatMap((l, i) => (l.trim().startsWith('|') ? [i] : []));
  const c0 = lines[rowsAt[0]].indexOf('|');
  const header = lines[0];
  for (let k = 0; k < 8; k++) expect(header[c0 + 6 * k + 3], `${where(0)}: octet ${k} over its cell`).toBe(String(k));
  const fields: Field[] = [];
  let size = 0;
  rowsAt.forEach((li, row) => {
    const l = lines[li];
    const pipes = [...l].flatMap((ch, i) => (ch === '|' ? [i] : []));
    for (const p of pipes) expect((p - c0) % 6, `${where(li)}: a cell boundary off the octet grid`).toBe(0);
    for (const border of [lines[li - 1], lines[li + 1]]) {
      for (const p of pipes) expect(border[p], `${where(li)}: the borders above and below meet its cells`).toBe('+');
    }
    for (let k = 0; k + 1 < pipes.length; k++) {
      const at = row * 8 + (pipes[k] - c0) / 6;
      const width = (pipes[k + 1] - pipes[k]) / 6;
      fields.push({ label: l.slice(pipes[k] + 1, pipes[k + 1]).trim(), at, width });
      size = Math.max(size, at + width);
    }
  });
  return { fields, size };
}

function readLE(u8: Uint8Array, at: number, width: number): number {
  let v = 0;
  for (let i = width - 1; i >= 0; i--) v = v * 256 + u8[at + i];
  return v;
}

/** One diagram against the layout constants and against memory the code wrote: `wrote` maps each label to its value. */
function expectDiagram(
  name: string,
  o: { size: number; constants: Record<string, number>; mem: Uint8Array; base: number; wrote: Record<string, number> },
): void {
  const b = blockOf('diagram', name);
  const { fields, size } = diagram(b);
  const at = `${DOC_PATH}:${b.line}`;
  expect(size, `${at}: the ${name} diagram's size`).toBe(o.size);
  const named = fields.filter((f) => !/^\(.*\)$/.test(f.label));
  expect(named.map((f) => f.label).sort(), `${at}: the ${name} diagram's fields`).toEqual(Object.keys(o.constants).sort());
  for (const f of named) {
    expect(f.at, `${at}: ${name} field ${f.label} is at octet ${f.at}, the layout says ${o.constants[f.label]}`).toBe(o.constants[f.label]);
    expect(readLE(o.mem, o.base + f.at, f.width), `${at}: ${name} field ${f.label} (octets ${f.at}..${f.at + f.width - 1}) read back`).toBe(o.wrote[f.label]);
  }
  for (const f of fields.filter((x) => !named.includes(x))) {
    expect(readLE(o.mem, o.base + f.at, f.width), `${at}: ${name} octets ${f.at}..${f.at + f.width - 1} are unused`).toBe(0);
  }
}

// ---------------------------------------------------------------- the tests

describe(`${DOC_PATH} against the code`, () => {
  it('lists every VI layout constant with its value, and no other', () => {
    const numbers = Object.entries(LAYOUT).filter(([, v]) => typeof v === 'number') as [string, number][];
    const rs = rows(blockOf('layout-constants'));
    const seen = new Set<string>();
    for (const { cells, at } of rs) {
      const name = ticks(cells[0])[0];
      const value = Number(/^-?\d+/.exec(cells[1])?.[0]);
      expect(Object.hasOwn(LAYOUT, name), `${at}: ${name} is not exported by packages/nic/src/layout.ts`).toBe(true);
      expect(value, `${at}: ${name}`).toBe((LAYOUT as Record<string, unknown>)[name]);
      if (name.startsWith('FAULT_')) expect(ticks(cells[2]), `${at}: ${name}'s name`).toContain(LAYOUT.FAULT_NAMES[value]);
      seen.add(name);
    }
    expect(
      numbers.map(([n]) => n).filter((n) => !seen.has(n)),
      'layout constants missing from the table',
    ).toEqual([]);
    expect(DOC).toContain(`[${LAYOUT.FAULT_NAMES.map((n) => `'${n}'`).join(', ')}]`);
  });

  it("describes the VI's ring pages as the layout lays them out", () => {
    const rings: Record<string, [number, number]> = {
      TXQ_OFFSET: [LAYOUT.VI_TXQ_SIZE, LAYOUT.DESC_SIZE],
      RXQ_OFFSET: [LAYOUT.VI_RXQ_SIZE, LAYOUT.DESC_SIZE],
      EVQ_OFFSET: [LAYOUT.VI_EVQ_SIZE, LAYOUT.EV_SIZE],
    };
    let next = 0;
    const rs = rows(blockOf('ring-pages'));
    for (const { cells, at } of rs) {
      const [first, last] = cells[0].split(/[–-]/).map(Number);
      const offset = Number(/^\d+/.exec(cells[1])?.[0]);
      const name = ticks(cells[1])[0];
      const octets = Number(cells[3]);
      const [n, each] = /(\d+) (?:descriptors|events) of (\d+) octets/.exec(cells[2])!.slice(1).map(Number);
      expect(Object.keys(rings), `${at}: ${name}`).toContain(name);
      expect(offset, `${at}: ${name}`).toBe((LAYOUT as unknown as Record<string, number>)[name]);
      expect(offset, `${at}: the rings follow each other`).toBe(next);
      expect([n, each], `${at}: entries and their size`).toEqual(rings[name]);
      expect(octets, `${at}: octets`).toBe(n * each);
      expect([first, last], `${at}: pages`).toEqual([offset / LAYOUT.BUFFER_PAGE, (offset + octets) / LAYOUT.BUFFER_PAGE - 1]);
      next = offset + octets;
    }
    expect(rs.length).toBe(3);
    expect(next).toBe(LAYOUT.VI_RING_BYTES);
    expect(next / LAYOUT.BUFFER_PAGE).toBe(LAYOUT.VI_RING_PAGES);
  });

  it('draws the TX and RX descriptors where ViQueues writes their fields', () => {
    const ram = new SharedArrayBuffer(LAYOUT.VI_RING_BYTES);
    const q = new ViQueues(new SharedArrayBuffer(LAYOUT.DOORBELL_BYTES), ram, 0, () => {});
    const tx = { bufId: 0x11223344, offset: 0x5566, len: 0x7788, flags: 0x99aa, mss: 0xbbcc };
    q.postTx(tx.bufId, tx.offset, tx.len, tx.flags, tx.mss);
    const rx = { bufId: 0x44332211, offset: 0x6655, capacity: 0x8877 };
    q.postRx(rx.bufId, rx.offset, rx.capacity);
    const mem = new Uint8Array(ram);
    const { TXD_BUF, TXD_OFF, TXD_LEN, TXD_FLAGS, TXD_MSS, RXD_BUF, RXD_OFF, RXD_LEN } = LAYOUT;
    const txConstants = { bufId: TXD_BUF, offset: TXD_OFF, len: TXD_LEN, flags: TXD_FLAGS, mss: TXD_MSS };
    expectDiagram('tx', { size: LAYOUT.DESC_SIZE, constants: txConstants, mem, base: LAYOUT.TXQ_OFFSET, wrote: tx });
    expectDiagram('rx', { size: LAYOUT.DESC_SIZE, constants: { bufId: RXD_BUF, offset: RXD_OFF, capacity: RXD_LEN }, mem, base: LAYOUT.RXQ_OFFSET, wrote: rx });
  });

  it('draws an event where the NIC writes its fields', () => {
    const ram = new SharedArrayBuffer(LAYOUT.VI_RING_BYTES);
    const doorbell = HwVi.newDoorbell();
    const v = new HwVi(1);
    v.attach({
      domid: DOMID,
      doorbell,
      db: new Int32Array(doorbell),
      ram: new Uint8Array(ram),
      dv: new DataView(ram),
      i32: new Int32Array(ram),
      ring: 0,
      irq: null,
      macs: null,
    });
    const ev = { type: 0x1122, flags: 0x3344, len: 0x5566, index: 0x778899aa };
    v.writeEvent(ev.type, ev.flags, ev.len, ev.index);
    const { EV_TYPE, EV_FLAGS, EV_LEN, EV_INDEX, EV_SEQ } = LAYOUT;
    expectDiagram('event', {
      size: LAYOUT.EV_SIZE,
      constants: { type: EV_TYPE, flags: EV_FLAGS, len: EV_LEN, index: EV_INDEX, seq: EV_SEQ },
      mem: new Uint8Array(ram),
      base: LAYOUT.EVQ_OFFSET,
      wrote: { ...ev, seq: 1 },
    });
  });

  it("draws the doorbell's words where the driver and the NIC write them", () => {
    const { nic, ram, doorbell } = nicRunning();
    const q = new ViQueues(doorbell, ram, 0, () => {});
    for (let i = 0; i < 5; i++) q.postTx(0, 0, 60, 0);
    q.pushTx();
    for (let i = 0; i < 6; i++) q.postRx(0, 0, 2048);
    q.pushRx();
    for (let i = 0; i < 7; i++) q.takeEvent();
    q.publishEvCons();
    q.armIrq();
    nic.markAsleep(true);
    nic.vi(1).fault(LAYOUT.FAULT_BUFFER_RANGE);
    const words = ['TX_PROD', 'RX_PROD', 'EV_CONS', 'IRQ_ARM', 'STATUS', 'NIC_ASLEEP'];
    expectDiagram('doorbell', {
      size: LAYOUT.DOORBELL_BYTES,
      constants: Object.fromEntries(words.map((w) => [w, (LAYOUT as unknown as Record<string, number>)[`W_${w}`] * 4])),
      mem: new Uint8Array(doorbell),
      base: 0,
      wrote: { TX_PROD: 5, RX_PROD: 6, EV_CONS: 7, IRQ_ARM: 1, STATUS: LAYOUT.VI_STATE_FAULTED | (LAYOUT.FAULT_BUFFER_RANGE << 8), NIC_ASLEEP: 1 },
    });
  });

  describe('MCDI', () => {
    const table = () => rows(blockOf('mcdi'));
    const opsTable = MCDI_OPS as unknown as Record<string, { args: Schema }>;

    it('has a row for every op of the ABI, and no other', () => {
      const ops = table().map((r) => ticks(r.cells[0])[0]);
      expect([...ops].sort()).toEqual(Object.keys(MCDI_OPS).sort());
      expect(new Set(ops).size).toBe(ops.length);
    });

    it("gives each op's argument fields as its schema declares them", () => {
      for (const { cells, at } of table()) {
        const op = ticks(cells[0])[0];
        const schema = opsTable[op]?.args;
        if (!schema) continue;
        if (cells[1] === 'none') expect(Object.keys(schema.properties ?? {}), `${at}: ${op} takes arguments`).toEqual([]);
        else expectFields(`${at} (${op})`, cells[1], schema, { named: { FilterMatch: FILTER_MATCH as unknown as Schema } });
      }
    });

    it('gives the shape of what a NIC answers each op', () => {
      for (const { cells, at } of table()) {
        const op = ticks(cells[0])[0];
        const run = MCDI_REPLY_CASES[op];
        expect(run, `${at}: no reply case for ${op} in this test: add one`).toBeDefined();
        let reply = run();
        if (op === 'vi_init') {
          expect(reply, `${at}: vi_init answers with the doorbell beside its reply`).toBeInstanceOf(WithShared);
          const w = reply as WithShared;
          expect(w.shared[0].byteLength).toBe(LAYOUT.DOORBELL_BYTES);
          expect(cells[2]).toContain(`${LAYOUT.DOORBELL_BYTES}-octet doorbell`);
          reply = w.value;
        }
        expectReply(at, op, ticks(cells[2])[0], reply);
      }
    });

    it('lists exactly the errors a NIC answers each op with', () => {
      for (const { cells, at } of table()) {
        const op = ticks(cells[0])[0];
        const templates = cells[3] === '—' ? [] : ticks(cells[3]);
        const messages = (MCDI_ERROR_CASES[op] ?? []).map((f) => f());
        for (const m of messages) {
          expect(
            templates.some((t) => template(t).test(m)),
            `${at}: a NIC answers ${op} with "${m}", which no error listed there matches`,
          ).toBe(true);
        }
        for (const t of templates) {
          expect(
            messages.some((m) => template(t).test(m)),
            `${at}: ${op}'s error "${t}" is produced by no case of this test (${JSON.stringify(messages)}): add one, or remove it`,
          ).toBe(true);
        }
      }
    });

    it('says how a NIC refuses an unknown op and bad arguments', () => {
      const { nic } = freshNic();
      const refusals = [errorOf(() => mcdi(nic, 'frobnicate', {})), errorOf(() => mcdi(nic, 'vi_init', { vi: 'one', domid: DOMID, rings: 0 }))];
      const documented = proseTicks().filter((t) => t.startsWith('MCDI: '));
      expect(documented.length).toBe(2);
      for (const m of refusals)
        expect(
          documented.some((t) => template(t).test(m)),
          `no refusal in the page matches "${m}"`,
        ).toBe(true);
      for (const t of documented)
        expect(
          refusals.some((m) => template(t).test(m)),
          `"${t}" matches no refusal`,
        ).toBe(true);
    });

    it('gives the filter match kinds and their fields (FILTER_MATCH)', () => {
      const kinds = (FILTER_MATCH as unknown as Schema).anyOf!;
      const rs = rows(blockOf('filter-match'));
      expect(rs.map((r) => ticks(r.cells[0])[0]).sort()).toEqual(kinds.map((k) => String(k.properties!.kind.const)).sort());
      for (const { cells, at } of rs) {
        const k = kinds.find((x) => x.properties!.kind.const === ticks(cells[0])[0])!;
        const { kind: _kind, ...props } = k.properties!;
        // The schema says number; the NIC takes integers only (checkFilterMatch), as the page says.
        expectFields(at, cells[1], { ...k, properties: props }, { types: false });
      }
    });
  });

  describe('the plugin channel', () => {
    const channel = { ...TO_FRONTEND, ...TO_BACKEND } as unknown as Record<string, { args: Schema }>;

    it('lists every framework op with its direction and fields', () => {
      const rs = rows(blockOf('channel-ops'));
      const ops = rs.map((r) => ticks(r.cells[0])[0]);
      expect([...ops].sort()).toEqual(Object.keys(channel).sort());
      expect([...ops].sort()).toEqual(Object.values(CHANNEL_OP).sort());
      for (const { cells, at } of rs) {
        const op = ticks(cells[0])[0];
        expect(cells[1], `${at}: ${op}'s direction`).toBe(Object.hasOwn(TO_FRONTEND, op) ? 'dom0 → guest' : 'guest → dom0');
        const schema = channel[op].args;
        if (!schema.properties) {
          expect(cells[2], `${at}: ${op} takes any fields`).toBe('any');
          continue;
        }
        expectFields(at, cells[2], schema);
        if (schema.additionalProperties === true) expect(cells[2], `${at}: ${op} carries the plugin's own fields too`).toContain('…');
      }
    });

    it('shows every framework op in a sequence diagram', () => {
      const text = blocksOf('sequence')
        .map((b) => b.text)
        .join('\n');
      for (const op of Object.values(CHANNEL_OP)) expect(new RegExp(`\\b${op}\\b`).test(text), `${op} appears in no sequence diagram`).toBe(true);
    });
  });

  it("gives the manifest's fields as MANIFEST_SCHEMA declares them", () => {
    const schema = MANIFEST_SCHEMA as unknown as Schema;
    const props = schema.properties!;
    const rs = rows(blockOf('manifest'));
    expect(rs.map((r) => ticks(r.cells[0])[0]).sort()).toEqual(Object.keys(props).sort());
    for (const { cells, at } of rs) {
      const name = ticks(cells[0])[0];
      const p = props[name];
      expect(cells[2] === 'yes', `${at}: is ${name} required?`).toBe((schema.required ?? []).includes(name));
      const pattern = p.pattern ?? p.items?.pattern;
      if (pattern) expect(ticks(cells[1]), `${at}: ${name}'s pattern`).toContain(pattern);
      if (p.minLength !== undefined) expect(cells[1], `${at}: ${name}'s length`).toContain(`${p.minLength} to ${p.maxLength} characters`);
      for (const lit of p.items?.anyOf ?? []) expect(ticks(cells[1]), `${at}: ${name}'s values`).toContain(String(lit.const));
    }
  });

  it('copies the TypeScript interfaces as their sources declare them', () => {
    const shown = new Map<string, { d: ts.InterfaceDeclaration; sf: ts.SourceFile; line: number }>();
    for (const b of blocksOf('interfaces')) {
      const sf = parse('doc.ts', b.text);
      for (const [name, d] of declarations(sf)) {
        expect(shown.has(name), `${DOC_PATH}:${b.line}: ${name} shown twice`).toBe(false);
        if (ts.isInterfaceDeclaration(d)) shown.set(name, { d, sf, line: b.line + sf.getLineAndCharacterOfPosition(d.getStart(sf)).line });
      }
    }
    expect([...shown.keys()].sort()).toEqual(Object.keys(INTERFACE_SOURCES).sort());
    const print = (n: ts.Node, sf: ts.SourceFile) => printer.printNode(ts.EmitHint.Unspecified, n, sf).replace(/\s+/g, ' ');
    for (const [name, file] of Object.entries(INTERFACE_SOURCES)) {
      const sf = source(file);
      const real = declarations(sf).get(name);
      expect(real && ts.isInterfaceDeclaration(real), `${file} no longer declares interface ${name}`).toBe(true);
      const doc = shown.get(name)!;
      const at = `${DOC_PATH}:${doc.line}`;
      const heritage = (d: ts.InterfaceDeclaration, s: ts.SourceFile) => (d.heritageClauses ?? []).map((h) => print(h, s));
      expect(heritage(doc.d, doc.sf), `${at}: ${name} extends`).toEqual(heritage(real as ts.InterfaceDeclaration, sf));
      expect(
        doc.d.members.map((m) => print(m, doc.sf)),
        `${at}: interface ${name} (${file})`,
      ).toEqual((real as ts.InterfaceDeclaration).members.map((m) => print(m, sf)));
    }
  });

  it("names only calls that exist, with their parameters: the backend's context and the frontend's helpers", () => {
    const backendCtx = declared('AccelBackendContext', INTERFACE_SOURCES);
    const frontendCtx = declared('AccelFrontendContext', INTERFACE_SOURCES);
    const classes = new Map<string, Map<string, Member>>();
    const classOf = (name: string) => {
      if (!classes.has(name)) classes.set(name, declared(name, CLASS_SOURCES));
      return classes.get(name)!;
    };
    const check = (at: string, token: string, owner: Map<string, Member>, name: string, args: string | undefined, isStatic = false) => {
      const m = owner.get(name);
      expect(m, `${at}: ${token}: no such member`).toBeDefined();
      if (!m) return;
      expect(m.isStatic, `${at}: ${token}: static?`).toBe(isStatic);
      if (args !== undefined) expect(args === '' ? 0 : args.split(',').length, `${at}: ${token}: its parameters`).toBe(m.params);
    };
    const named = new Set<string>();
    for (const { cells, at } of rows(blockOf('backend-context'))) {
      for (const token of ticks(cells[0])) {
        const m = /^ctx\.(\w+)(?:\((.*)\))?$/.exec(token);
        expect(m, `${at}: ${token} is not ctx.MEMBER`).not.toBeNull();
        check(at, token, backendCtx, m![1], m![2]);
        named.add(m![1]);
      }
    }
    expect(
      [...backendCtx.keys()].filter((k) => !named.has(k)),
      "the backend context's members missing from its table",
    ).toEqual([]);
    for (const b of blocksOf('helpers')) {
      for (const { cells, at } of rows(b)) {
        for (const token of ticks(cells[0])) {
          const m = /^(new )?([\w.]+)(?:\((.*)\))?$/.exec(token)!;
          const path = m[2].split('.');
          if (m[1]) check(at, token, classOf(path[0]), 'constructor', m[3], true);
          else if (path[0] === 'ViQueues') check(at, token, classOf('ViQueues'), path[1], m[3], true);
          else if (path[0] === 'q') check(at, token, classOf('ViQueues'), path[1], m[3]);
          else {
            expect(path[0], `${at}: ${token}`).toBe('ctx');
            const field = frontendCtx.get(path[1]);
            expect(field, `${at}: ${token}: the frontend's context has no ${path[1]}`).toBeDefined();
            if (path.length === 3) check(at, token, classOf(field!.type), path[2], m[3]);
          }
        }
      }
    }
  });

  describe('the hooks the loader holds a plugin to', () => {
    /** Each row's hooks (the names before their parameters) with the kind the row gives them. */
    const hookRows = (kind: string) =>
      rows(blockOf(kind)).flatMap(({ cells, at }) => ticks(cells[0]).map((t) => ({ name: /^\w+/.exec(t)![0], kind: cells[1], at })));
    const once = (names: string[], hooks: object, what: string) => {
      expect([...names].sort(), `${what}: the hooks`).toEqual(Object.keys(hooks).sort());
      expect(new Set(names).size, `${what}: a hook listed twice`).toBe(names.length);
    };

    it('gives every backend hook once, as ACCEL_BACKEND_HOOKS and FEATURE_HOOKS hold it', () => {
      const feature = (name: string): string | undefined => {
        for (const [f, need] of Object.entries(FEATURE_HOOKS) as [string, { allOf?: readonly string[]; anyOf?: readonly string[] }][]) {
          if (need.allOf?.includes(name)) return `required for \`${f}\` plugins`;
          if (need.anyOf?.includes(name)) return `one required for \`${f}\` plugins`;
        }
        return undefined;
      };
      const want = (name: string): string => {
        const k = (ACCEL_BACKEND_HOOKS as Record<string, string>)[name];
        if (k === 'string') return 'a string';
        if (k === 'required') return 'required';
        return feature(name) ?? 'optional';
      };
      const rs = hookRows('backend-hooks');
      once(
        rs.map((r) => r.name),
        ACCEL_BACKEND_HOOKS,
        'backend-hooks',
      );
      for (const r of rs) expect(r.kind, `${r.at}: ${r.name}`).toBe(want(r.name));
    });

    it('gives every frontend hook once, as ACCEL_FRONTEND_HOOKS holds it', () => {
      const rs = hookRows('frontend-hooks');
      once(
        rs.map((r) => r.name),
        ACCEL_FRONTEND_HOOKS,
        'frontend-hooks',
      );
      for (const r of rs) expect(r.kind, `${r.at}: ${r.name}`).toBe((ACCEL_FRONTEND_HOOKS as Record<string, string>)[r.name]);
    });
  });

  it('gives the constants with the values the packages export', () => {
    const packages: Record<string, Record<string, unknown>> = { '@xsim/hypervisor': HYPERVISOR, '@xsim/netback': NETBACK, '@xsim/nic': NIC };
    const rs = rows(blockOf('constants'));
    expect(rs.map((r) => ticks(r.cells[0])[0]).sort()).toEqual(['DEFAULT_FILTER_TABLE_SIZE', 'MCDI_ENOSPC', 'PLUGIN_API_VERSION', 'UNLOAD_DETACH_MS']);
    for (const { cells, at } of rs) {
      const name = ticks(cells[0])[0];
      const from = ticks(cells[1]);
      expect(from.length, `${at}: ${name} comes from no package`).toBeGreaterThan(0);
      for (const pkg of from) {
        expect(Object.keys(packages), `${at}: ${pkg}`).toContain(pkg);
        const v = packages[pkg][name];
        expect(v, `${at}: ${pkg} exports no ${name}`).toBeDefined();
        const shown = typeof v === 'string' ? `\`'${v}'\`` : String(v);
        expect(cells[2], `${at}: ${name} in ${pkg}`).toBe(shown);
      }
    }
  });

  describe('xsim plugin test', () => {
    it('lists the conformance checks in the order they run, each with the title its row prints', () => {
      const rs = rows(blockOf('conformance'));
      expect(
        rs.map((r) => ticks(r.cells[0])[0]),
        'the checks, in order',
      ).toEqual(CHECKS.map((c) => c.id));
      for (const { cells, at } of rs) expect(cells[1], `${at}: the row of ${ticks(cells[0])[0]}`).toBe(CHECKS.find((c) => c.id === ticks(cells[0])[0])!.title);
    });

    it('gives the options of its usage line, with their defaults and ranges', () => {
      const src = readFileSync(join(ROOT, 'packages/cli/src/commands/plugin-test.ts'), 'utf8');
      const usage = /const USAGE = '([^']*)'/.exec(src)![1];
      const flags = (text: string) => [...text.matchAll(/(?<![\w-])(--?[a-z][\w-]*)/g)].map((m) => m[1]);
      const rs = rows(blockOf('plugin-test-options'));
      const shown = rs.flatMap((r) => ticks(r.cells[0]).flatMap(flags));
      expect([...shown].sort(), `the options of "${usage}"`).toEqual([...new Set(flags(usage.replace(/^usage: xsim plugin test DIR\|NAME/, '')))].sort());
      // intFlag(p, 'NAME', DEFAULT, MIN, MAX): the default, and the range where the page gives one.
      const num = (x: string): number => {
        const m = /^(\d+)(?: \*\* (\d+))?(?: - (\d+))?$/.exec(x.replace(/_/g, '').trim());
        if (!m) throw new Error(`plugin-test.ts: a bound this test cannot read: ${x}`);
        return Number(m[1]) ** Number(m[2] ?? 1) - Number(m[3] ?? 0);
      };
      const ints = new Map([...src.matchAll(/intFlag\(p, '(\w+)', ([\d_]+), ([\d_]+), ([\d_* -]+)\)/g)].map((m) => [m[1], [m[2], m[3], m[4]].map(num)]));
      expect([...ints.keys()].sort()).toEqual(['frames', 'seed']);
      for (const { cells, at } of rs) {
        const flag = flags(ticks(cells[0])[0])[0].replace(/^-+/, '');
        const int = ints.get(flag);
        if (!int) continue;
        expect(Number(/^\d+/.exec(cells[1])?.[0]), `${at}: --${flag}'s default`).toBe(int[0]);
        const range = /\((\d+) to (\d+)\)/.exec(cells[1]);
        if (range) expect([Number(range[1]), Number(range[2])], `${at}: --${flag}'s range`).toEqual([int[1], int[2]]);
      }
    });
  });

  describe('the templates, outside the repository', () => {
    let dir = '';
    const templates = () => blocksOf('template');
    let sim: Simulation | undefined;

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'xsim-plugins-doc-'));
      // As the page says: xsim's node_modules visible from the plugins' directory.
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
      for (const b of templates()) {
        mkdirSync(dirname(join(dir, b.arg)), { recursive: true });
        writeFileSync(join(dir, b.arg), `${b.text}\n`);
      }
    });
    afterAll(async () => {
      await sim?.shutdown();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('type-check against the real interfaces with the tsconfig.json of the page', () => {
      const names = templates().map((b) => b.arg);
      expect(names).toEqual(expect.arrayContaining(['package.json', 'tsconfig.json', 'portdrop/backend.ts', 'myvif/backend.ts', 'myvif/frontend.ts']));
      expect(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).type).toBe('module');
      const cfg = ts.parseJsonConfigFileContent(JSON.parse(readFileSync(join(dir, 'tsconfig.json'), 'utf8')), ts.sys, dir);
      expect(cfg.errors).toEqual([]);
      const ours = names.filter((n) => n.endsWith('.ts')).map((n) => join(dir, n));
      expect([...cfg.fileNames].sort()).toEqual([...ours].sort());
      const program = ts.createProgram(cfg.fileNames, cfg.options);
      const diagnostics = [
        ...program.getOptionsDiagnostics(),
        ...program.getGlobalDiagnostics(),
        ...ours.flatMap((f) => {
          const sf = program.getSourceFile(f)!;
          return [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
        }),
      ];
      const text = diagnostics.map((d) => {
        const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
        return `${d.file ? d.file.fileName.slice(dir.length + 1) : ''}${where ? `(${where.line + 1},${where.character + 1})` : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
      expect(text).toEqual([]);
    });

    it('load, attach, accelerate and let go in a simulation', { timeout: 180_000 }, async () => {
      const a1: DomainRef = { host: 'host-a', domain: 'a1' };
      const b1: DomainRef = { host: 'host-b', domain: 'b1' };
      sim = await Simulation.start(defaultTopology(), { deterministic: { seed: 1 }, log: () => {} });
      const s = sim;
      const accelOf = async (ref: DomainRef) => guestStats(await s.stats(), ref).vifs[0].accel;

      // myvif: the handshake both ways, every frame declined.
      await s.loadPlugin(join(dir, 'myvif'));
      await s.waitFor(
        'myvif to be accepted by both guests of host-a',
        async () => dom0Stats(await s.stats(), 'host-a').accel.plugins.myvif?.myvifAccepted === 2,
      );
      expect((await accelOf(a1))?.plugin).toBe('myvif');
      await s.unloadPlugin(join(dir, 'myvif'));
      expect((await accelOf(a1))?.plugin ?? null).toBeNull();

      // macvi: the stream goes by the VIs, all of it delivered or counted, little of it through dom0.
      await s.loadPlugin(join(dir, 'macvi'));
      await s.waitFor('macvi to run on a1 and b1', async () => (await accelOf(a1))?.current?.up === true && (await accelOf(b1))?.current?.up === true);
      await s.request(a1, 'arp_resolve', { ip: s.domain(b1).ip });
      const before = await s.stats();
      const r = await runStream(s, { from: a1, to: b1, count: 3000, frameSize: 1500, window: 256 });
      const after = await s.stats();
      const acc = streamAccount(before, after, r);
      expect(acc.conserved, JSON.stringify({ r, drops: [...acc.drops] })).toBe(true);
      expect(r.delivered).toBe(3000);
      const uplinkRx = (t: typeof after) => dom0Stats(t, 'host-b').uplink?.rxPackets ?? 0;
      expect(uplinkRx(after) - uplinkRx(before), 'frames that reached host-b through dom0').toBeLessThan(100);
      const taken = (t: typeof after) => guestStats(t, a1).vifs[0].accel?.txTaken ?? 0;
      expect(taken(after) - taken(before)).toBeGreaterThanOrEqual(3000);
      expect(guestStats(after, a1).vifs[0].accel?.txUnaccounted).toBe(0);
      await s.unloadPlugin(join(dir, 'macvi'));

      // portdrop: its arguments checked against its schema, then every frame through host-b's VI 0 inspected.
      await expect(s.loadPlugin(join(dir, 'portdrop'), { host: 'host-b', args: { port: 'nine' } })).rejects.toThrow(/bad arguments: \/port/);
      await s.loadPlugin(join(dir, 'portdrop'), { host: 'host-b', args: { port: 9 } });
      const r2 = await runStream(s, { from: a1, to: b1, count: 500, frameSize: 200, window: 64 });
      expect(r2.delivered).toBe(500);
      const pd = dom0Stats(await s.stats(), 'host-b').accel.plugins.portdrop;
      expect(pd?.portdropInspected).toBeGreaterThanOrEqual(500);
      expect(pd?.portdropMatched).toBe(0);
    });
  });
});
