/**
 * Drift end to end on real parts: the Temporal dev server, the real worker process and the local
 * control plane. A canary release promotes and its promotion starts the workload's watch (the worker's
 * GLIDEPATH_DRIFT_ON_PROMOTION default, `report`; no `drift start`);
 * a hand edit of the stable Deployment's image (another field manager) is reported (status, audit,
 * `glidepath_drift` on the worker's /metrics, `drift status` exits 1), then, once the policy is
 * `revert`, put back and verified, read back from the apiserver; the next release is left alone while
 * it runs and its promotion becomes the reference. Needs KUBECONFIG and TEMPORAL_ADDRESS.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { PatchStrategy, setHeaderOptions, type AppsV1Api, type CoreV1Api } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { driftStatusQuery, type DriftStatus } from '../../workflows/drift/messages.ts';
import { cli, connectClient, findDeployment, imageOf, kube, randomSuffix, startWorker, suiteEnv, teardown, tempDir, waitAvailable, webNamespace, writeRelease } from '../e2e/support.ts';

const suffix = randomSuffix();
const env = suiteEnv(`e2e-drift-${suffix}`, { GLIDEPATH_DRIFT_ON_PROMOTION: 'report', GLIDEPATH_DRIFT_INTERVAL: '10s' });
const metricsUrl = `http://${String(env.GLIDEPATH_METRICS_ADDRESS)}/metrics`;
const STRATEGIC = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

let apps: AppsV1Api;
let core: CoreV1Api;
let client: Client;
let worker: ChildProcess | undefined;
let dir: string;
const namespaces: string[] = [];

before(async () => {
  ({ apps, core } = kube());
  dir = await tempDir('drift');
  client = await connectClient();
  worker = await startWorker(env);
});
after(() => teardown({ worker, client, core, namespaces }));

async function until(id: string, pred: (s: DriftStatus) => boolean, what: string, timeoutMs = 60_000): Promise<DriftStatus> {
  const end = Date.now() + timeoutMs;
  let last: DriftStatus | undefined;
  while (Date.now() < end) {
    try {
      last = await client.workflow.getHandle(id).query(driftStatusQuery);
      if (pred(last)) return last;
    } catch {
      // not started yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}: ${last?.condition} ${last?.message}`);
}

async function driftSample(ns: string, field: string): Promise<string | undefined> {
  const text = await fetch(metricsUrl).then((r) => r.text());
  return new RegExp(`^glidepath_drift\\{namespace="${ns}",workload="web",field="${field}"\\} (\\d+)$`, 'm').exec(text)?.[1];
}

test('a hand edit of the stable Deployment is reported, then reverted under revert', async () => {
  const ns = `e2e-drift-${suffix}`;
  namespaces.push(ns);
  await webNamespace({ apps, core }, ns, ['web-stable', 'web-canary']);
  await waitAvailable(apps, ns);
  const file = await writeRelease(dir, ns, `  strategy:\n    canary:\n      stableService: web-stable\n      canaryService: web-canary\n      steps:\n        - setWeight: 50\n        - setWeight: 100\n`);
  const released = await cli(env, ['release', 'start', '-f', file, '--wait', '--timeout', '120s']);
  assert.equal(released.code, 0, released.stderr);
  assert.equal(imageOf(await findDeployment(apps, ns, 'web')), 'registry.local/web:v2');

  const refused = await cli(env, ['drift', 'start', '-f', file, '--image', 'registry.local/web:v9']);
  assert.equal(refused.code, 1, 'a reference the last release did not promote is refused');
  assert.match(refused.stderr, /promoted registry\.local\/web:v2, not registry\.local\/web:v9/);

  // No `drift start`: the promotion started the watch.
  const id = `drift_${ns}_web`;
  const watched = await until(id, (s) => s.condition === 'InSync', 'in sync after the promotion');
  assert.equal(watched.policy, 'report');
  assert.equal(watched.intervalMs, 10_000);
  assert.equal(watched.releaseId, `release_${ns}_web`);
  assert.equal(watched.image, 'registry.local/web:v2');
  assert.equal(await driftSample(ns, 'image'), '0');

  const t0 = Date.now();
  await apps.patchNamespacedDeployment({ name: 'web', namespace: ns, fieldManager: 'kubectl-edit', body: { spec: { template: { spec: { containers: [{ name: 'web', image: 'registry.local/web:hotfix' }] } } } } }, STRATEGIC);
  const drifted = await until(id, (s) => s.condition === 'Drifted', 'the drift reported on the durable timer');
  const reportedAfterMs = Date.now() - t0;
  assert.deepEqual(drifted.drift.map((f) => [f.field, f.live, f.desired]), [['image', 'registry.local/web:hotfix', 'registry.local/web:v2']]);
  assert.ok(drifted.audit.some((a) => a.action === 'Drifted' && /registry\.local\/web:hotfix/.test(a.detail)));
  assert.equal(await driftSample(ns, 'image'), '1', 'glidepath_drift on the worker\'s /metrics');
  assert.equal(imageOf(await findDeployment(apps, ns, 'web')), 'registry.local/web:hotfix', 'report leaves it as it is');
  const status = await cli(env, ['drift', 'status', `${ns}/web`]);
  assert.equal(status.code, 1, 'drift status exits 1 while drift is found');
  assert.match(status.stdout, /drift image: registry\.local\/web:hotfix \(expected registry\.local\/web:v2\)/);

  const revert = await cli(env, ['drift', 'start', '-f', file, '--policy', 'revert', '--interval', '10s']);
  assert.equal(revert.code, 0, revert.stderr);
  const reverted = await until(id, (s) => s.reverted >= 1, 'the revert');
  assert.equal(reverted.policy, 'revert');
  assert.ok(reverted.audit.some((a) => a.action === 'Reverted' && /put back and verified: image: registry\.local\/web:hotfix/.test(a.detail)));
  const back = await findDeployment(apps, ns, 'web');
  assert.equal(imageOf(back), 'registry.local/web:v2', 'the image is back, read from the apiserver');
  assert.ok(back?.metadata?.managedFields?.some((f) => f.manager === 'glidepath' && f.operation === 'Apply' && JSON.stringify(f.fieldsV1).includes('"f:image"')), 'put back by server-side apply with Glidepath\'s field manager');
  assert.equal(await driftSample(ns, 'image'), '0');

  // The next release: while it runs its canary is not drift (nothing reverted); its promotion is the new reference.
  const paused = file.replace(/\.yaml$/, '-v3.yaml');
  await writeFile(paused, (await readFile(file, 'utf8')).replace('        - setWeight: 50\n', '        - setWeight: 50\n        - pause: {}\n'));
  const next = await cli(env, ['release', 'start', '-f', paused, '--image', 'registry.local/web:v3']);
  assert.equal(next.code, 0, next.stderr);
  const inFlight = await until(id, (s) => s.condition === 'ReleaseInFlight', 'the release in flight');
  assert.match(inFlight.message, new RegExp(`release_${ns}_web is Paused`));
  assert.ok(await findDeployment(apps, ns, 'web-canary'), 'the release\'s canary is left alone');
  assert.equal((await cli(env, ['release', 'promote', `release_${ns}_web`, '--as', 'alice'])).code, 0);
  const promoted = await until(id, (s) => s.condition === 'InSync' && s.image === 'registry.local/web:v3', 'the promotion taken as the new reference', 120_000);
  assert.ok(promoted.audit.some((a) => a.action === 'new-reference' && /promoted registry\.local\/web:v3/.test(a.detail)));
  assert.equal(imageOf(await findDeployment(apps, ns, 'web')), 'registry.local/web:v3', 'the promoted image is not reverted');
  assert.equal(promoted.reverted, 1);
  assert.equal((await cli(env, ['drift', 'stop', `${ns}/web`])).code, 0);
  process.stderr.write(`drift reported ${reportedAfterMs} ms after the hand edit (interval 10 s)\n`);
});
