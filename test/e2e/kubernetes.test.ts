/**
 * End to end on real parts: the Temporal dev server, the real worker process (`workers/main.ts`,
 * real Kubernetes activities) and the local control plane. Object state is read from the apiserver
 * after every step. Needs KUBECONFIG and TEMPORAL_ADDRESS (npm test provides both).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import type { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { statusQuery, type ReleaseStatus } from '../../workflows/messages.ts';
import { connectClient, findDeployment, imageOf, cli, killWorker, kube, randomSuffix, startWorker, suiteEnv, tempDir, untilStatus, waitAvailable, webNamespace, writeRelease, teardown } from './support.ts';

const suffix = randomSuffix();
const env = suiteEnv(`e2e-k8s-${suffix}`);
const metricsPort = Number(String(env.GLIDEPATH_METRICS_ADDRESS).split(':')[1]);

let apps: AppsV1Api;
let core: CoreV1Api;
let client: Client;
let worker: ChildProcess | undefined;
let dir: string;
const namespaces: string[] = [];

const until = (id: string, pred: (s: ReleaseStatus) => boolean, what: string, timeoutMs?: number) => untilStatus(client, id, pred, what, timeoutMs);
const run = (args: string[]) => cli(env, args);

/** A namespace with a 4-replica Deployment `web` on v1 (readiness probe, Service). */
async function workload(name: string, annotations: Record<string, string> = {}): Promise<string> {
  const ns = `e2e-${name}-${suffix}`;
  namespaces.push(ns);
  await webNamespace({ apps, core }, ns, ['web', 'web-preview'], annotations);
  if (!annotations['glidepath.local/never-ready']) await waitAvailable(apps, ns);
  return ns;
}

const spec = (ns: string, strategy: string, extra = ''): Promise<string> => writeRelease(dir, ns, `${extra}  strategy:\n${strategy}`);

const deployment = (ns: string, name: string) => findDeployment(apps, ns, name);

before(async () => {
  ({ apps, core } = kube());
  dir = await tempDir('k8s');
  client = await connectClient();
  worker = await startWorker(env);
});

after(() => teardown({ worker, client, core, namespaces }));

describe('releases on a real control plane', () => {
  test('replica-ratio canary 10/25/50/100 with pauses → promoted, objects checked after every step', async () => {
    const ns = await workload('canary');
    const steps = [10, 25, 50, 100].map((w) => `        - setWeight: ${w}\n        - pause: {}\n`).join('');
    const file = await spec(ns, `    canary:\n      steps:\n${steps}`);
    const id = `release_${ns}_web`;
    assert.equal((await run(['release', 'start', '-f', file])).code, 0);
    for (const [i, weight] of [10, 25, 50, 100].entries()) {
      await until(id, (s) => s.phase === 'Paused' && s.step.index === i * 2 + 1, `pause after ${weight}%`);
      const canary = await deployment(ns, 'web-canary');
      const stable = await deployment(ns, 'web');
      assert.equal(canary?.spec?.replicas, Math.ceil((4 * weight) / 100), `canary replicas at ${weight}%`);
      assert.equal(canary?.status?.availableReplicas, Math.ceil((4 * weight) / 100), `canary ready at ${weight}%`);
      assert.equal(imageOf(canary), 'registry.local/web:v2');
      assert.equal(canary?.metadata?.labels?.['app.kubernetes.io/managed-by'], 'glidepath');
      assert.equal(stable?.spec?.replicas, 4, 'stable keeps full capacity');
      assert.equal(imageOf(stable), 'registry.local/web:v1');
      assert.equal((await run(['release', 'promote', id, '--as', 'alice'])).code, 0);
    }
    assert.equal((await run(['release', 'watch', id, '--timeout', '120s'])).code, 0);
    const stable = await deployment(ns, 'web');
    assert.equal(imageOf(stable), 'registry.local/web:v2', 'the new image is stable');
    assert.equal(stable?.status?.availableReplicas, 4);
    assert.equal(await deployment(ns, 'web-canary'), undefined, 'the canary is gone');
  });

  test('abort mid-canary: stable replicas and image untouched, canary gone', async () => {
    const ns = await workload('abort');
    const file = await spec(ns, `    canary:\n      steps:\n        - setWeight: 50\n        - pause: {}\n        - setWeight: 100\n`);
    const id = `release_${ns}_web`;
    assert.equal((await run(['release', 'start', '-f', file])).code, 0);
    await until(id, (s) => s.phase === 'Paused', 'paused at 50%');
    assert.equal((await deployment(ns, 'web-canary'))?.spec?.replicas, 2);
    assert.equal((await run(['release', 'abort', id, '--as', 'oncall', '--reason', 'test'])).code, 0);
    await until(id, (s) => s.phase === 'Aborted', 'aborted');
    const stable = await deployment(ns, 'web');
    assert.equal(stable?.spec?.replicas, 4);
    assert.equal(stable?.status?.availableReplicas, 4);
    assert.equal(imageOf(stable), 'registry.local/web:v1');
    const canary = await deployment(ns, 'web-canary');
    assert.ok(canary === undefined || canary.spec?.replicas === 0, 'canary removed or at zero');
    await run(['release', 'abort', id, '--as', 'oncall']);
  });

  test('blue/green: preview, switch, then a post-promotion failure switches back', async () => {
    const ns = await workload('bg');
    // The analysis asks a Prometheus that is not there: every measurement errs, and with
    // consecutiveErrorLimit 0 the first error fails the analysis (fail closed), after the switch.
    const file = await spec(
      ns,
      // abortScaleDownDelaySeconds 1: Argo's 30 s default wait after switching back is not what this tests.
      `    blueGreen:\n      activeService: web\n      previewService: web-preview\n      autoPromotionEnabled: false\n      abortScaleDownDelaySeconds: 1\n      postPromotionAnalysis:\n        templates: [{ templateName: unreachable }]\n`,
    );
    await writeFile(
      file,
      `${await import('node:fs/promises').then((f) => f.readFile(file, 'utf8'))}---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: { name: unreachable }
spec:
  metrics:
    - name: up
      consecutiveErrorLimit: 0
      successCondition: result[0] >= 1
      provider: { prometheus: { address: "http://127.0.0.1:9", query: "up" } }
`,
    );
    const id = `release_${ns}_web`;
    assert.equal((await run(['release', 'start', '-f', file])).code, 0);
    await until(id, (s) => s.phase === 'Paused', 'preview up, awaiting promote');
    const preview = await deployment(ns, 'web-preview');
    assert.equal(imageOf(preview), 'registry.local/web:v2');
    const before = (await core.readNamespacedService({ name: 'web', namespace: ns })).spec?.selector;
    const previewSelector = (await core.readNamespacedService({ name: 'web-preview', namespace: ns })).spec?.selector;
    assert.notDeepEqual(before, previewSelector, 'the preview service selects the preview pods');
    assert.equal(before?.app, 'web');
    assert.ok(before?.['pod-template-hash'], 'the active service is pinned to the stable\'s ReplicaSet (preview pods carry app=web too)');
    assert.equal((await run(['release', 'promote', id, '--as', 'alice'])).code, 0);
    const switched = await until(id, (s) => s.canaryWeight === 100 || s.phase === 'RolledBack', 'switched');
    assert.equal(switched.canaryWeight === 100 || switched.phase === 'RolledBack', true);
    const done = await until(id, (s) => s.phase === 'RolledBack', 'rolled back after the failed analysis');
    assert.match(done.message, /postPromotion/);
    const after = (await core.readNamespacedService({ name: 'web', namespace: ns })).spec?.selector;
    assert.deepEqual(after, { app: 'web' }, 'the active service has its own selector back (the preview is gone)');
    assert.equal(imageOf(await deployment(ns, 'web')), 'registry.local/web:v1');
    assert.equal((await deployment(ns, 'web'))?.spec?.replicas, 4);
    await run(['release', 'abort', id, '--as', 'oncall']);
  });

  test('canary pods that never become available: progress deadline exceeded → rolled back', async () => {
    // kwok keeps pods labelled as Glidepath canaries unready when the template carries this
    // annotation (hack/kube/kwok-stages.yaml): the stable stays healthy, its canary never does.
    const ns = await workload('deadline', { 'glidepath.local/canary-never-ready': 'true' });
    const file = await spec(ns, `    canary:\n      steps:\n        - setWeight: 50\n        - setWeight: 100\n`, '  progressDeadline: 15s\n');
    const id = `release_${ns}_web`;
    const r = await run(['release', 'start', '-f', file, '--wait', '--timeout', '120s']);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    const status = await client.workflow.getHandle(id).query(statusQuery);
    assert.match(status.message, /ProgressDeadlineExceeded/);
    const canary = await deployment(ns, 'web-canary');
    assert.ok(canary === undefined || canary.spec?.replicas === 0);
    const stable = await deployment(ns, 'web');
    assert.equal(stable?.spec?.replicas, 4);
    assert.equal(stable?.status?.availableReplicas, 4);
    assert.equal(imageOf(stable), 'registry.local/web:v1');
    await run(['release', 'abort', id, '--as', 'oncall']);
  });

  test('the worker SIGKILLed while waiting for readiness: the release completes, no duplicates', async () => {
    const ns = await workload('kill', { 'glidepath.local/ready-delay': '6s' });
    const file = await spec(ns, `    canary:\n      steps:\n        - setWeight: 50\n        - setWeight: 100\n`);
    const id = `release_${ns}_web`;
    assert.equal((await run(['release', 'start', '-f', file])).code, 0);
    await until(id, (s) => s.step.kind === 'setWeight' && s.phase === 'Progressing', 'waiting for the canary to be ready', 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    await killWorker(worker);
    worker = await startWorker(env);
    assert.equal((await run(['release', 'watch', id, '--timeout', '180s'])).code, 0);
    const deployments = (await apps.listNamespacedDeployment({ namespace: ns })).items.map((d) => d.metadata?.name).sort();
    assert.deepEqual(deployments, ['web'], 'promoted: only the stable Deployment remains');
    assert.equal(imageOf(await deployment(ns, 'web')), 'registry.local/web:v2');
  });

  test('the worker exposes its metrics: ours and the SDK runtime', async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(text, /^# HELP glidepath_releases /m);
    assert.match(text, /glidepath_activity_errors_total/);
    assert.match(text, /^temporal_/m, 'the SDK runtime metrics are served too');
  });
});
