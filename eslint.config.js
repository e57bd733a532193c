// Lint: type-aware TypeScript rules everywhere; workflow-safe code (workflows/, model/) may not
// import Node built-ins or I/O libraries, nor use Math.random; workflows import activities as types.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeBuiltins = ['assert', 'buffer', 'child_process', 'cluster', 'crypto', 'dgram', 'dns', 'events', 'fs', 'fs/promises', 'http', 'http2', 'https', 'net', 'os', 'path', 'perf_hooks', 'process', 'readline', 'stream', 'timers', 'tls', 'url', 'util', 'v8', 'vm', 'worker_threads', 'zlib'];
const ioLibraries = ['axios', '@kubernetes/client-node', '@temporalio/activity', '@temporalio/client', '@temporalio/worker', '@temporalio/testing', 'pino', 'prom-client', 'commander', 'yaml'];

export default tseslint.config(
  { ignores: ['eslint.config.js', 'node_modules/**', 'dist/**', '.state/**', 'test/replay/histories/**', 'hack/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      eqeqeq: 'error',
      'no-eval': 'error',
      'no-new-func': 'error',
    },
  },
  {
    files: ['workflows/**/*.ts', 'model/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [...nodeBuiltins.map((name) => ({ name, message: 'workflow-safe code does no I/O' })), ...ioLibraries.map((name) => ({ name, message: 'workflow-safe code does no I/O' }))],
          patterns: [
            { group: ['node:*'], message: 'workflow-safe code does no I/O' },
            { group: ['../activities/*', '!../activities/errors.ts'], allowTypeImports: true, message: 'workflows import activities as types only' },
          ],
        },
      ],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'use the workflow uuid4()/random from @temporalio/workflow' }],
      'no-restricted-globals': ['error', { name: 'fetch', message: 'no I/O in workflow code' }, { name: 'process', message: 'no environment in workflow code' }],
    },
  },
  {
    files: ['model/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'model code is pure: pass the time in' }, { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'model code is pure: pass the time in' }],
    },
  },
);
