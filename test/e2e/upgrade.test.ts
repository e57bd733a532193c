/**
 * Upgrading Glidepath while releases are in flight, on real parts (the Temporal dev server, the local
 * control plane, real worker processes). The previous version is the commit UPGRADE_FROM, taken from
 * this repository's own history (`git archive`), with this checkout's node_modules (every package its
 * lockfile names must be locked here at the same version). Its CLI starts releases and its worker takes them to their first pause; then a rolling
 * upgrade: a worker of this version starts next to it (both poll the task queue, as during a Deployment's
 * rolling update), some releases are promoted while both run, the old worker is stopped with SIGTERM, and
 * every release is promoted to the end by this version. Every release must end Promoted with its image,
 * no canary left, and its history must record a patch of this version (a branch the previous one lacks)
 * taken mid-release.
 * docs/operations.md, "Upgrading Glidepath", is the procedure this follows.
 * Needs KUBECONFIG, TEMPORAL_ADDRESS and the repository's history (a clone, not an export).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import type { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { patchMarkerIds } from '../support/patch-markers.ts';
import { cli, connectClient, findDeployment, imageOf, killWorker, kube, randomSuffix, root, startWorker, suiteEnv, teardown, tempDir, untilStatus, waitAvailable, webNamespace, writeRelease, type CliResult } from './support.ts';

/** The version users upgrade from: the last one shipped before this one. Move it forward with each version. */
const UPGRADE_FROM = 'cec5ac29907b95d30d48d4320aee7f84664ab00d';
const RELEASES = 4;

const run = promisify(execFile);
const suffix = randomSuffix();
const env = suiteEnv(`e2e-upgrade-${suffix}`);
/** The previous version's worker: the same task queue, its own metrics ports (both run at once). */
const oldEnv = { ...suiteEnv(String(env.GLIDEPATH_TASK_QUEUE)), GLIDEPATH_USER: env.GLIDEPATH_USER };

let apps: AppsV1Api;
let core: CoreV1Api;
let client: Client;
let oldTree: string;
let oldPatches: Set<string>;
let oldWorker: ChildProcess | undefined;
let newWorker: ChildProcess | undefined;
const namespaces: string[] = [];

/** Why the previous version cannot be read from this checkout's history, or undefined. */
function historyMissing(): string | undefined {
  try {
    execFileSync('git', ['-C', root, 'cat-file', '-e', `${UPGRADE_FROM}^{commit}`], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `commit ${UPGRADE_FROM} (the version upgraded from) is not in this checkout's history (a shallow clone or an export)`;
  }
}
const skip = historyMissing();

/** The previous version's CLI. */
async function oldCli(args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(path.join(oldTree, 'bin/glidepath'), args, { env: oldEnv });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The patch IDs (`patched('…')` and the constants they use) that a tree's workflow code can record. */
async function patchIds(tree: string): Promise<Set<string>> {
  const ids = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.name.endsWith('.ts')) for (const m of (await readFile(p, 'utf8')).matchAll(/'(glidepath-[a-z0-9-]+)'/g)) ids.add(m[1] as string);
    }
  };
  await walk(path.join(tree, 'workflows'));
  return ids;
}

/** The patch markers a release's history recorded. */
async function markersOf(id: string): Promise<string[]> {
  return patchMarkerIds(await client.workflow.getHandle(id).fetchHistory());
}

/**
 * Waits, without a query, until the release's first workflow task has completed. A query answered
 * while the previous version's first task runs its local activities makes the worker end that task
 * early, and a history split that way does not replay on any version (the previous version decides its
 * patches per task; this one decides them before its first await: workflows/patches-first.ts,
 * test/replay/patches-first.test.ts). That is the previous version's defect, documented in
 * docs/operations.md ("Upgrading"); this test is about what the upgrade itself carries.
 */
async function untilFirstTaskCompleted(id: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const history = await client.workflow.getHandle(id).fetchHistory();
    if ((history.events ?? []).some((e) => e.workflowTaskCompletedEventAttributes)) return;
    if (Date.now() > deadline) throw new Error(`${id}: its first workflow task did not complete within 60 s (${history.events?.length ?? 0} events)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  if (skip) return;
  ({ apps, core } = kube());
  client = await connectClient();
  oldTree = await mkdtemp(path.join(os.tmpdir(), 'glidepath-upgrade-from-'));
  execFileSync('bash', ['-c', `git -C "${root}" archive ${UPGRADE_FROM} | tar -x -C "${oldTree}"`]);
  // The previous version runs on this checkout's node_modules: every package it locked must be
  // installed here at the version it locked (this version may add packages, never change or drop one).
  const packagesOf = async (tree: string) => (JSON.parse(await readFile(path.join(tree, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> }).packages;
  const [oldPackages, packages] = [await packagesOf(oldTree), await packagesOf(root)];
  const differing = Object.entries(oldPackages).filter(([name, p]) => name !== '' && packages[name]?.version !== p.version);
  assert.deepEqual(differing.map(([name, p]) => `${name}@${p.version} (here: ${packages[name]?.version ?? 'none'})`), [], "the previous version's locked packages, installed here at the same versions");
  await symlink(path.join(root, 'node_modules'), path.join(oldTree, 'node_modules'));
  oldPatches = await patchIds(oldTree);
});

after(async () => {
  if (skip) return;
  await killWorker(oldWorker, 'SIGTERM');
  await killWorker(newWorker, 'SIGTERM');
  await teardown({ worker: undefined, client, core, namespaces });
  await rm(oldTree, { recursive: true, force: true });
});

test('releases started by the previous version finish on this one, through a rolling upgrade of the workers', { skip }, async () => {
  oldWorker = await startWorker(oldEnv, path.relative(root, path.join(oldTree, 'workers/main.ts')));
  const dir = await tempDir('upgrade');
  const ids: string[] = [];
  await Promise.all(
    Array.from({ length: RELEASES }, async (_, i) => {
      const ns = `e2e-upgrade-${i}-${suffix}`;
      namespaces.push(ns);
      await webNamespace({ apps, core }, ns);
      await waitAvailable(apps, ns);
      const file = await writeRelease(dir, ns, `  strategy:\n    canary:\n      steps:\n        - setWeight: 25\n        - pause: {}\n        - setWeight: 50\n        - pause: {}\n`);
      // Without the CLI's preflight wait, whose status queries could meet the release's first task (below).
      const started = await oldCli(['release', 'start', '-f', file, '--preflight-timeout', '0']);
      assert.equal(started.code, 0, started.stdout + started.stderr);
      ids[i] = `release_${ns}_web`;
      await untilFirstTaskCompleted(ids[i]);
    }),
  );
  for (const id of ids) await untilStatus(client, id, (s) => s.phase === 'Paused' && s.step.index === 1, `${id} paused by the previous version`, 120_000);

  // The rolling update: this version's worker joins, both poll; half the releases move on meanwhile.
  newWorker = await startWorker(env);
  const promote = async (id: string): Promise<void> => {
    const r = await cli(env, ['release', 'promote', id, '--as', 'alice']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  };
  const firstHalf = ids.slice(0, RELEASES / 2);
  await Promise.all(firstHalf.map(promote));
  for (const id of firstHalf) await untilStatus(client, id, (s) => s.phase === 'Paused' && s.step.index === 3, `${id} at its second pause`, 120_000);
  await killWorker(oldWorker, 'SIGTERM');

  await Promise.all(ids.map(promote));
  const rest = ids.slice(RELEASES / 2);
  for (const id of rest) await untilStatus(client, id, (s) => s.phase === 'Paused' && s.step.index === 3, `${id} at its second pause`, 120_000);
  await Promise.all(rest.map(promote));
  for (const id of ids) await untilStatus(client, id, (s) => s.phase === 'Promoted', `${id} promoted by this version`, 180_000);

  for (const [i, id] of ids.entries()) {
    const ns = `e2e-upgrade-${i}-${suffix}`;
    assert.equal(imageOf(await findDeployment(apps, ns, 'web')), 'registry.local/web:v2', `${id}: the stable runs the new image`);
    assert.equal(await findDeployment(apps, ns, 'web-canary'), undefined, `${id}: no canary left`);
  }

  // What the upgrade carried: patches this version has and the previous did not, and which of them the
  // releases recorded once this version's worker served them.
  const added = [...(await patchIds(root))].filter((p) => !oldPatches.has(p));
  assert.ok(added.length > 0, `this version changes workflow code behind patched() since ${UPGRADE_FROM.slice(0, 7)}`);
  for (const id of ids) {
    const markers = await markersOf(id);
    const taken = markers.filter((m) => added.includes(m));
    assert.ok(taken.length > 0, `${id} took a branch of this version mid-release (recorded ${markers.join(', ')})`);
  }
  console.log(`upgrade from ${UPGRADE_FROM.slice(0, 7)}: patches added ${added.join(', ')}; recorded by the upgraded releases: ${[...new Set((await Promise.all(ids.map(markersOf))).flat().filter((m) => added.includes(m)))].join(', ')}`);
});
