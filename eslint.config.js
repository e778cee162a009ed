// @ts-check
/**
 * The linter: typescript-eslint's recommended rules (without type information,
 * so it runs in seconds) and an import-cycle rule, chosen because cycles
 * between modules are what made the old toolstack hard to follow. Formatting
 * is Prettier's job (.prettierrc.json); `npm run lint` runs both.
 */
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

export default tseslint.config(
  { ignores: ['**/node_modules/**', 'bench/results/**', 'schemas/**', '.scratch/**', 'tmp/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mjs', '**/*.js'],
    plugins: { 'import-x': importX },
    settings: {
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      // No import circle, counting type-only imports too: a type import circle is still a design circle.
      'import-x/no-cycle': ['error', { ignoreExternal: false }],
      'import-x/no-self-import': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    // One concern per file and per function (as the house rules say: a file over ~400 lines or a
    // function over ~80 usually holds two). Declarative tables may opt out where they stand, saying so.
    files: ['packages/*/src/**/*.ts', 'bench/src/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 400, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true, IIFEs: true }],
    },
  },
);
