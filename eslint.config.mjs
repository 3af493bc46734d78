// ESLint: the rooms' import rules (docs/ARCHITECTURE.md) and typescript-eslint's recommended rules.
// Prettier owns the format (.prettierrc.json); `npm run lint` runs both.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const NODE = [
  'node:*',
  'fs',
  'path',
  'crypto',
  'os',
  'child_process',
  'http',
  'https',
  'net',
  'dns',
  'stream',
  'url',
  'util',
];
const nodeBuiltins = { group: NODE, message: 'runs in the workflow sandbox: no Node built-ins' };
const temporal = { group: ['@temporalio/*'], message: 'the core is plain rules over plain data: no Temporal' };
const workflowsCode = {
  regex: '^(\\.\\./)+workflows(/|$)',
  message: 'src/ and activities/ never import workflow code; share through src/contract',
};
const clientSide = {
  group: ['**/client', '**/client/**', '**/cli/**', '**/store', '**/store/**', '**/node/**', '**/activities/**'],
  message: 'not from this room',
};

export default tseslint.config(
  { ignores: ['node_modules/**', 'contract/**', '.tools/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
      // The stores and the canonical JSON refuse control characters on purpose.
      'no-control-regex': 'off',
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            nodeBuiltins,
            temporal,
            workflowsCode,
            { group: ['**/contract', '**/contract/**'], message: 'the core does not depend on the contract' },
            clientSide,
          ],
        },
      ],
    },
  },
  {
    files: ['src/contract/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            nodeBuiltins,
            workflowsCode,
            clientSide,
            {
              group: ['@temporalio/*', '!@temporalio/common'],
              message: "the contract is zod and core (and @temporalio/common's plain definitions)",
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/client/**/*.ts', 'src/cli/**/*.ts', 'src/store/**/*.ts', 'src/node/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [workflowsCode] }] },
  },
  { files: ['activities/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [workflowsCode] }] } },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [nodeBuiltins, clientSide] }],
      // N24: what marks a history or draws on a run's random stream goes through the own-run guard.
      'no-restricted-properties': [
        'error',
        ...['patched', 'uuid4', 'upsertSearchAttributes'].map((property) => ({
          object: 'wf',
          property,
          message: `use ${property} of workflows/ownRun.ts: only the run's own code may call it (N24)`,
        })),
      ],
    },
  },
  { files: ['workflows/ownRun.ts'], rules: { 'no-restricted-properties': 'off' } },
);
