/**
 * The run metadata every kept result carries (see meta.ts for how it is
 * read). Written once, as a TypeBox schema: the TypeScript type is derived
 * from it, and the published JSON Schema files are generated from it.
 */
import { FormatRegistry, Type, type Static } from '@sinclair/typebox';

// TypeBox checks formats only once told how (ISO 8601 date and time, as toISOString writes it).
if (!FormatRegistry.Has('date-time'))
  FormatRegistry.Set('date-time', (v) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(v) && !Number.isNaN(Date.parse(v)));

export const RunMetaSchema = Type.Object(
  {
    xsim: Type.String({ description: "xsim's version (the root package.json's)" }),
    commit: Type.Union([Type.String({ pattern: '^[0-9a-f]{40}$' }), Type.Null()], {
      description: 'the git commit the code ran from; null outside a git checkout',
    }),
    dirty: Type.Union([Type.Boolean(), Type.Null()], { description: 'whether tracked files differed from that commit; null when unknown' }),
    command: Type.Array(Type.String(), { description: 'the command line after `xsim`' }),
    node: Type.String({ description: 'process.version' }),
    platform: Type.String({ description: 'platform-arch' }),
    cpu: Type.String({ description: 'CPU model' }),
    cores: Type.Integer({ minimum: 1, description: 'cores Node can use' }),
    pcpus: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], {
      description: 'pCPU worker threads the domains ran on (null: deterministic, one thread, or not one number)',
    }),
    date: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'when it ran; null in a deterministic run, whose output depends on its seed alone',
    }),
  },
  { additionalProperties: false, description: 'what produced this result' },
);
export type RunMeta = Static<typeof RunMetaSchema>;
