/**
 * The workflow bundle for tests, built once and reused across test files and runs: webpack takes
 * 5–20 s on 2 busy cores, and every test file (its own process) needed the same bundle.
 *
 * Bundled as the worker bundles it (workers/bundle.ts), with the same preloaded modules: the model
 * shared and frozen, so every workflow suite and the replay test meet what production runs.
 *
 * The bundle is cached under `$GLIDEPATH_CACHE/workflow-bundles` as `workflow-bundle-<digest>.js`,
 * where the digest covers every input webpack read (each file's SHA-256), every path it probed and
 * found absent, the SDK's version and the entry point. A manifest per entry point lists those inputs;
 * the cache is used only when every listed file still has its digest and every absent path is still
 * absent, so any edit to workflow code, its imports or the SDK bundles afresh.
 * `node test/support/workflow-bundle.ts` warms the cache (prints the bundle's path).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type WorkflowBundlePath } from '@temporalio/worker';
import { bundleWebpackConfig, PRELOAD_MODULES } from '../../workers/bundle.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const RELEASE_WORKFLOWS = path.join(root, 'workflows/index.ts');
const CACHE_DIR = path.join(process.env.GLIDEPATH_CACHE ?? path.join(os.homedir(), '.cache/glidepath'), 'workflow-bundles');
const SDK_VERSION = (createRequire(import.meta.url)('@temporalio/worker/package.json') as { version: string }).version;

interface Manifest {
  digest: string;
  /** Every file webpack read, with its SHA-256. */
  files: [string, string][];
  /** Every path webpack probed and did not find (a file created there could change resolution). */
  missing: string[];
}

const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} };

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const fileDigest = (file: string): string | null => {
  try {
    return sha256(readFileSync(file));
  } catch {
    return null;
  }
};

function digestOf(key: string, files: [string, string][], missing: string[]): string {
  return sha256(JSON.stringify({ key, files, missing })).slice(0, 32);
}

/** The cached bundle when every input is unchanged, else null. */
async function cached(manifestPath: string, key: string): Promise<WorkflowBundlePath | null> {
  let m: Manifest;
  try {
    m = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
  } catch {
    return null;
  }
  const codePath = path.join(CACHE_DIR, `workflow-bundle-${m.digest}.js`);
  if (!existsSync(codePath) || digestOf(key, m.files, m.missing) !== m.digest) return null;
  if (m.files.some(([f, d]) => fileDigest(f) !== d) || m.missing.some((f) => existsSync(f))) return null;
  return { codePath };
}

async function writeAtomically(file: string, data: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

/** Bundles `workflowsPath` (default: the release and API-version workflows), or reuses the cached bundle. */
export async function cachedWorkflowBundle(workflowsPath = RELEASE_WORKFLOWS): Promise<WorkflowBundlePath> {
  const key = JSON.stringify({ sdk: SDK_VERSION, workflowsPath, preload: PRELOAD_MODULES, webpack: bundleWebpackConfig.toString() });
  const manifestPath = path.join(CACHE_DIR, `manifest-${sha256(key).slice(0, 16)}.json`);
  const hit = await cached(manifestPath, key);
  if (hit) return hit;

  const read = new Set<string>();
  const probed = new Set<string>();
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    preloadModules: PRELOAD_MODULES,
    logger: quiet as never,
    webpackConfigHook: (config) => ({
      ...bundleWebpackConfig(config),
      plugins: [
        ...(config.plugins ?? []),
        {
          apply(compiler) {
            compiler.hooks.done.tap('glidepath-bundle-inputs', (stats) => {
              for (const f of stats.compilation.fileDependencies) read.add(f);
              for (const f of stats.compilation.missingDependencies) probed.add(f);
            });
          },
        },
      ],
    }),
  });
  // Directories webpack lists are covered by the files read and the paths probed; the generated entry
  // point lives in webpack's memory only, and the SDK's version stands for it.
  const isFile = (f: string): boolean => statSync(f, { throwIfNoEntry: false })?.isFile() ?? false;
  const files = [...read].filter(isFile).sort().map((f): [string, string] => [f, fileDigest(f) ?? '']);
  const missing = [...probed].filter((f) => !existsSync(f)).sort();
  if (files.length === 0) throw new Error(`bundling ${workflowsPath}: webpack reported no input files, so the bundle cannot be cached safely`);
  const digest = digestOf(key, files, missing);
  const codePath = path.join(CACHE_DIR, `workflow-bundle-${digest}.js`);
  await mkdir(CACHE_DIR, { recursive: true });
  let previous: string | undefined;
  try {
    previous = (JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest).digest;
  } catch {
    previous = undefined;
  }
  await writeAtomically(codePath, code);
  await writeAtomically(manifestPath, JSON.stringify({ digest, files, missing } satisfies Manifest));
  if (previous && previous !== digest) await rm(path.join(CACHE_DIR, `workflow-bundle-${previous}.js`), { force: true });
  return { codePath };
}

if (import.meta.main) {
  const t0 = performance.now();
  const { codePath } = await cachedWorkflowBundle(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  console.log(`${codePath} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
