/** The topology tests' view of validation: every issue it reports, as "path: message" (none: []). */
import { TopologyError, validateTopology } from '../src/topo/index.ts';

export function issues(input: unknown): string[] {
  try {
    validateTopology(input);
  } catch (e) {
    if (e instanceof TopologyError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
}
