/**
 * The JSON Schema files xsim publishes (schemas/ at the repository's root),
 * generated from the TypeBox definitions the code's types derive from.
 * `xsim schema --out schemas` writes them; a test checks the committed files
 * are what the code generates, so they cannot drift.
 */
import type { TSchema } from '@sinclair/typebox';
import { RunJsonSchema } from '@xsim/toolstack';
import { BenchJsonSchema } from './schema.ts';

export const PUBLISHED_SCHEMAS: Readonly<Record<string, TSchema>> = {
  'xsim-bench-6.schema.json': BenchJsonSchema,
  'xsim-run-1.schema.json': RunJsonSchema,
};

/** A schema as its published file holds it (JSON Schema draft-07, which TypeBox's output follows: tuples as items arrays; TypeBox's own symbols do not survive JSON). */
export function schemaFileText(schema: TSchema): string {
  return JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...schema }, null, 2) + '\n';
}
