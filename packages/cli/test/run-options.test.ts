/** `xsim run`'s plugin arguments and stream ports (issue 19): parsed and checked before anything starts. */
import { describe, expect, it } from 'vitest';
import { runOptions } from '../src/commands/run.ts';

describe('xsim run --plugin-args, --port, --src-port', () => {
  it('passes a JSON object to the plugin, and the ports to the stream', async () => {
    const o = await runOptions(['--plugin', 'firewall', '--plugin-args', '{"rules":[{"proto":17,"dstPort":5009}]}', '--port', '5009', '--src-port', '42001']);
    expect(o.plugin).toBe('firewall');
    expect(o.pluginArgs).toEqual({ rules: [{ proto: 17, dstPort: 5009 }] });
    expect(o.ports).toEqual({ port: 5009, srcPort: 42001 });
    const d = await runOptions([]);
    expect(d.pluginArgs).toBeUndefined();
    expect(d.ports).toEqual({});
  });

  it('refuses arguments without a plugin, that are not JSON, or not an object', async () => {
    await expect(runOptions(['--plugin-args', '{}'])).rejects.toThrow('--plugin-args goes with --plugin NAME');
    await expect(runOptions(['--plugin', 'null', '--plugin-args', '{rules'])).rejects.toThrow(/^--plugin-args is not JSON: /);
    await expect(runOptions(['--plugin', 'null', '--plugin-args', '[1]'])).rejects.toThrow('--plugin-args must be a JSON object, got [1]');
  });

  it('refuses a port out of range, and the same port at both ends', async () => {
    await expect(runOptions(['--port', '0'])).rejects.toThrow('--port must be an integer from 1 to 65535, got "0"');
    await expect(runOptions(['--src-port', '70000'])).rejects.toThrow('--src-port must be an integer from 1 to 65535');
    await expect(runOptions(['--port', '5001', '--src-port', '5001'])).rejects.toThrow('--port and --src-port are both 5001');
  });
});
