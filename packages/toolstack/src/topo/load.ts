import { readFile } from 'node:fs/promises';
import type { Topology } from './types.ts';
import { TopologyError, validateTopology } from './validate.ts';

export async function loadTopology(path: string): Promise<Topology> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new TopologyError([{ path: '', message: `cannot read ${path}: ${(e as Error).message}` }]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TopologyError([{ path: '', message: `${path} is not valid JSON: ${(e as Error).message}` }]);
  }
  return validateTopology(json);
}
