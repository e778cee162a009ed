/**
 * The outside tools some tests drive, each with the Debian package that
 * installs it; whether one is installed (a command on PATH, or for the few
 * in FILES, a file at its path); and how a test declares it needs some.
 *
 *   it('tshark reads it', needs('tshark'), () => { ... })
 *   describe('xenstore-utils ...', needs('xenstore-ls', 'xenstore-read'), () => { ... })
 *
 * A tool missing on a developer's machine: those tests are skipped, and the
 * tools they miss are recorded in their task meta; the run's reporter
 * (ToolSkipSummary in vitest.config.ts) prints once, at the end, which files
 * were skipped for what and one `apt-get install -y ...` line for all of them.
 * A tool missing in CI (CI=true): the test file fails at collection with the
 * tool's name and its install line; CI runs every test or says why not.
 *
 * .ci/run installs what is missing from this same table:
 * `npx tsx test/tools.ts missing` prints the packages of the tools not installed
 * (`all`: every package the table declares).
 *
 * Test aid: XSIM_PRETEND_MISSING=tshark,xenstore-ls (tool or package names,
 * comma-separated) makes those count as missing, to see the skip path, or
 * with CI=true the CI failure, on a machine that has them.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TestOptions } from 'vitest';

/** Every outside tool a test runs, and its Debian package. */
export const TOOLS = {
  // test/capture.test.ts reads the simulation's pcapng captures with Wireshark's dissectors
  // (and test/vxlan-linux.test.ts captures on a Linux vxlan device with it).
  tshark: 'tshark',
  // test/vxlan-linux.test.ts: a network namespace, a veth pair and a vxlan device (iproute2), Linux's own ping,
  // and ethtool to turn the vxlan device's TX checksum offload off (a veth never finishes a checksum).
  ip: 'iproute2',
  ping: 'iputils-ping',
  ethtool: 'ethtool',
  // test/xenstore-utils.test.ts drives the simulation's xs_wire socket with Xen's own tools.
  'xenstore-ls': 'xenstore-utils',
  'xenstore-list': 'xenstore-utils',
  'xenstore-read': 'xenstore-utils',
  'xenstore-write': 'xenstore-utils',
  'xenstore-rm': 'xenstore-utils',
  'xenstore-watch': 'xenstore-utils',
  // Results and --version name the commit they ran from (test/schema, bench-smoke, cli-help).
  git: 'git',
  // test/xen-abi*.test.ts compile C programs against Xen's public headers and run them.
  gcc: 'gcc',
  'libc-headers': 'libc6-dev',
  'xen-headers': 'libxen-dev',
} as const;

export type Tool = keyof typeof TOOLS;

/** Tools that are files rather than commands: installed when the file is there. */
export const FILES: Partial<Record<Tool, string>> = {
  'libc-headers': '/usr/include/stdio.h',
  'xen-headers': '/usr/include/xen/io/netif.h',
};

/** What a test skipped for a missing tool carries in its task meta, for the reporter. */
export interface MissingTool {
  tool: Tool;
  pkg: string;
}
export interface ToolsMeta {
  missingTools?: MissingTool[];
}
declare module 'vitest' {
  // Declaration merging: vitest's TaskMeta gains ToolsMeta's fields; the empty body is the point.
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface TaskMeta extends ToolsMeta {}
}

function pretendMissing(): string[] {
  return (process.env.XSIM_PRETEND_MISSING ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** An executable file named `name` in a directory of PATH (looked up here: no shell is spawned). */
export function onPath(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      // Not there, or not executable: look further.
    }
  }
  return false;
}

/** The tool is installed (and not pretended missing with XSIM_PRETEND_MISSING). */
export function toolPresent(tool: Tool): boolean {
  const pretend = pretendMissing();
  if (pretend.includes(tool) || pretend.includes(TOOLS[tool])) return false;
  const file = FILES[tool];
  return file ? existsSync(file) : onPath(tool);
}

/** The Debian packages of these tools, each once, sorted. */
export function packagesOf(tools: readonly Tool[]): string[] {
  return [...new Set(tools.map((t) => TOOLS[t]))].sort();
}

export function installLine(tools: readonly Tool[]): string {
  return `apt-get install -y ${packagesOf(tools).join(' ')}`;
}

/**
 * Options for a describe() or it() whose tests run these tools: {} when all
 * are installed; skip, with the missing ones in the meta, when some are not;
 * in CI (CI=true) a missing tool throws instead, which fails the test file.
 */
export function needs(...tools: Tool[]): TestOptions {
  const missing = tools.filter((t) => !toolPresent(t));
  if (missing.length === 0) return {};
  if (process.env.CI === 'true') {
    const what = missing.length === 1 ? 'it' : 'them';
    throw new Error(
      `${missing.join(', ')} not installed (Debian ${packagesOf(missing).join(', ')}): this test file runs ${what}, and with CI=true every test runs, none is skipped. Install with: ${installLine(missing)}`,
    );
  }
  const meta: ToolsMeta = { missingTools: missing.map((tool) => ({ tool, pkg: TOOLS[tool] })) };
  return { skip: true, meta };
}

/**
 * The end-of-run summary of tests skipped for missing tools (by test file), and
 * one install line for all of them; '' when nothing was skipped for a tool.
 */
export function skippedSummary(byFile: ReadonlyMap<string, readonly MissingTool[]>): string {
  if (byFile.size === 0) return '';
  const all: Tool[] = [];
  const lines = [...byFile]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([file, missing]) => {
      const tools = [...new Set(missing.map((m) => m.tool))].sort();
      all.push(...tools);
      return `  ${file}: ${tools.join(', ')} (Debian ${packagesOf(tools).join(', ')})`;
    });
  return ['', 'Tests skipped because outside tools are missing (CI=true fails them instead):', ...lines, `To run them: ${installLine(all)}`, ''].join('\n');
}

// `tsx test/tools.ts missing|all`: the packages .ci/run installs, one line, space-separated.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const what = process.argv[2];
  const all = Object.keys(TOOLS) as Tool[];
  if (what === 'missing') console.log(packagesOf(all.filter((t) => !toolPresent(t))).join(' '));
  else if (what === 'all') console.log(packagesOf(all).join(' '));
  else {
    console.error('usage: tsx test/tools.ts missing|all');
    process.exitCode = 2;
  }
}
