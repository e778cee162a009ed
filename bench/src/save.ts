/** A result kept on disk (bench, migration, scale): pretty JSON ending in a newline, its directory made. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export function saveJson(file: string, value: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}
