// typescript-eslint with the rules STYLE.md asks for; `npm test` runs it and fails on any error.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { bulwarkPlugin } from './tools/eslint/rules.js';

const SOURCE = ['lib/**/*.ts', 'agent/**/*.ts', 'controller/**/*.ts', 'cli/**/*.ts', 'daemon/**/*.ts', 'proto/**/*.ts'];

/**
 * The only places a type assertion may stand in source: constructors of trust types
 * (a value becomes QuotedPcrs, verified events or entries only where the check is made)
 * and decoders that brand bytes they have just checked.
 */
const TRUST_TYPE_CONSTRUCTORS = [
  'lib/tpm/quote.ts',
  'lib/eventlog/replay.ts',
  'lib/ima/replay.ts',
  'lib/ima/recorded.ts',
  'lib/dsse/verify.ts',
  'lib/signing/keyset.ts',
  'lib/eventlog/uki.ts',
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'proto/gen/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { bulwark: bulwarkPlugin },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      // Sanitisers match control characters on purpose (facts, tool output, terminal text).
      'no-control-regex': 'off',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportDefaultDeclaration', message: 'Named exports only (STYLE.md).' },
        { selector: 'ExportAllDeclaration', message: "Name every export; no 'export *' (STYLE.md)." },
      ],
    },
  },
  {
    files: SOURCE,
    rules: {
      '@typescript-eslint/consistent-type-assertions': ['error', { assertionStyle: 'never' }],
      'bulwark/import-through-index': 'error',
    },
  },
  { files: TRUST_TYPE_CONSTRUCTORS, rules: { '@typescript-eslint/consistent-type-assertions': ['error', { assertionStyle: 'as', objectLiteralTypeAssertions: 'never' }] } },
  { files: ['lib/**/*.ts'], rules: { 'bulwark/lib-purity': 'error' } },
);
