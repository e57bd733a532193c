/**
 * The cached test bundle (test/support/workflow-bundle.ts) on a scratch workflow (under .state/, so
 * that webpack finds node_modules), with
 * its own cache (GLIDEPATH_CACHE): built once, reused while its inputs are unchanged, built again
 * when a file the workflow imports changes, and the superseded bundle removed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import type { cachedWorkflowBundle as CachedWorkflowBundle } from './workflow-bundle.ts';

let dir: string;
let cache: string;
let cachedWorkflowBundle: typeof CachedWorkflowBundle;

before(async () => {
  const state = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../.state');
  mkdirSync(state, { recursive: true });
  dir = await mkdtemp(path.join(state, 'bundle-test-'));
  cache = path.join(dir, 'cache');
  process.env.GLIDEPATH_CACHE = cache; // read when the module loads
  ({ cachedWorkflowBundle } = await import('./workflow-bundle.ts'));
  await writeFile(path.join(dir, 'greeting.ts'), "export const greeting = 'hello';\n");
  await writeFile(path.join(dir, 'workflows.ts'), "import { greeting } from './greeting.ts';\nexport async function greet(): Promise<string> {\n  return greeting;\n}\n");
});

after(() => rm(dir, { recursive: true, force: true }));

const bundles = async (): Promise<string[]> => (await readdir(path.join(cache, 'workflow-bundles'))).filter((f) => f.endsWith('.js'));

test('built once, reused while unchanged, rebuilt when an imported file changes', async () => {
  const workflows = path.join(dir, 'workflows.ts');
  const first = await cachedWorkflowBundle(workflows);
  assert.match(await readFile(first.codePath, 'utf8'), /'hello'/);
  const t0 = performance.now();
  const again = await cachedWorkflowBundle(workflows);
  assert.equal(again.codePath, first.codePath, 'unchanged inputs: the same file');
  assert.ok(performance.now() - t0 < 2_000, 'a cache hit does not run webpack');

  await writeFile(path.join(dir, 'greeting.ts'), "export const greeting = 'hallo';\n");
  const changed = await cachedWorkflowBundle(workflows);
  assert.notEqual(changed.codePath, first.codePath, 'an imported file changed: a new bundle');
  assert.match(await readFile(changed.codePath, 'utf8'), /'hallo'/);
  assert.deepEqual(await bundles(), [path.basename(changed.codePath)], 'the superseded bundle is removed');
});
