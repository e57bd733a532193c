/** Prebuilds the workflow bundle for production: `node workers/bundle.ts [out.js]` (default dist/workflow-bundle.js). */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type BundleOptions } from '@temporalio/worker';

export const WORKFLOWS_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../workflows/index.ts');

const WORKFLOWS_DIR = path.dirname(WORKFLOWS_PATH);
const MODEL_DIR = path.resolve(WORKFLOWS_DIR, '../model');

/** The model modules the workflow code imports as values (not only types), as absolute paths. */
export function workflowModelImports(dir = WORKFLOWS_DIR): string[] {
  const found = new Set<string>();
  for (const entry of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    if (!entry.endsWith('.ts')) continue;
    const file = path.join(dir, entry);
    for (const m of readFileSync(file, 'utf8').matchAll(/^import (?!type )[^;]*? from '((?:\.\.\/)+model\/[\w-]+\.ts)';/gm)) {
      const target = path.resolve(path.dirname(file), m[1] as string);
      if (path.dirname(target) === MODEL_DIR) found.add(target);
    }
  }
  return [...found].sort();
}

/**
 * Modules the worker evaluates once and shares between workflows instead of once per workflow.
 * With the SDK's reusable V8 context (its default) every module of the bundle that is not preloaded
 * is evaluated anew for each workflow the worker holds in its cache: every library and model module
 * would cost its whole module scope per cached workflow. The model modules hold no per-workflow
 * state (pure functions, constants; condition.ts caches parsed expressions, a pure function of their
 * text) and import nothing from the workflow SDK, so they can be shared; the SDK deep-freezes what
 * they export. Workflow modules stay per workflow. No model module the workflow imports imports zod:
 * zod cannot run on frozen schemas, so the schemas live in files only the edge and the activities
 * import (docs/operations.md), and test/workers/production-bundle.test.ts keeps zod out of the bundle.
 */
export const PRELOAD_MODULES: string[] = ['jsep', '@noble/curves/ed25519.js', ...workflowModelImports()];

type WebpackConfiguration = Parameters<NonNullable<BundleOptions['webpackConfigHook']>>[0];

/**
 * The bundler's webpack settings, changed in one way: the workflow modules are concatenated into
 * one scope where webpack can (its ModuleConcatenationPlugin, on in webpack's production mode, off in
 * the development mode the SDK bundles in). Every workflow module is evaluated once per cached
 * workflow; separately, each costs a module record, an exports object with a getter per export, and
 * a context of its own. Concatenated, a paused release costs the workflow thread's heap 111 KiB
 * instead of 145 KiB (docs/operations.md). Modules the preload list requires stay separate (a
 * require() keeps a module out of a concatenation), so they are still shared.
 */
export function bundleWebpackConfig(config: WebpackConfiguration): WebpackConfiguration {
  return { ...config, optimization: { ...config.optimization, concatenateModules: true, providedExports: true, usedExports: true } };
}

if (import.meta.main) {
  const out = path.resolve(process.argv[2] ?? 'dist/workflow-bundle.js');
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, preloadModules: PRELOAD_MODULES, webpackConfigHook: bundleWebpackConfig });
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, code);
  console.log(`workflow bundle: ${out} (${(code.length / 1024).toFixed(0)} KiB)`);
}
