/**
 * strategy.rolling on a StatefulSet end to end on real parts: the Temporal dev server, the real worker
 * process (`workers/main.ts`, real Kubernetes activities, the web metric provider), the local control
 * plane (the StatefulSet controller, kwok pods) and a metric server on loopback. A StatefulSet of 5 is
 * updated 1 → 3 → 5 with an analysis between the batches; a failing analysis after 3 rolls the
 * partition back; a worker SIGKILLed during a batch resumes it. Object state is read from the
 * apiserver. Needs KUBECONFIG and TEMPORAL_ADDRESS.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AppsV1Api, CoreV1Api, V1StatefulSet } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import type { ReleaseStatus } from '../../workflows/messages.ts';
import { cli, connectClient, killWorker, kube, randomSuffix, startWorker, suiteEnv, teardown, tempDir, untilStatus } from './support.ts';

const suffix = randomSuffix();
const env = suiteEnv(`e2e-sts-${suffix}`);

let apps: AppsV1Api;
let core: CoreV1Api;
let client: Client;
let worker: ChildProcess | undefined;
let dir: string;
let metrics: Server;
let metricsUrl = '';
/** What the metric server answers: the error ratio the analysis judges (≤ 0.01 passes). */
let errorRatio = 0;
const namespaces: string[] = [];

const OLD = 'registry.local/ledger:v1';
const NEW = 'registry.local/ledger:v2';

const until = (id: string, pred: (s: ReleaseStatus) => boolean, what: string, timeoutMs?: number) => untilStatus(client, id, pred, what, timeoutMs);

/** A namespace with a StatefulSet `ledger` of 5 on v1 (readiness probe), all ready. */
async function statefulSet(name: string, podAnnotations: Record<string, string> = {}): Promise<string> {
  const ns = `e2e-${name}-${suffix}`;
  namespaces.push(ns);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  await waitFor(`default ServiceAccount in ${ns}`, async () => Boolean(await core.readNamespacedServiceAccount({ name: 'default', namespace: ns }).catch(() => undefined)));
  await apps.createNamespacedStatefulSet({
    namespace: ns,
    body: {
      metadata: { name: 'ledger' },
      spec: {
        replicas: 5,
        serviceName: 'ledger',
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: { app: 'ledger' } },
        template: {
          metadata: { labels: { app: 'ledger' }, annotations: podAnnotations },
          spec: { containers: [{ name: 'app', image: OLD, readinessProbe: { tcpSocket: { port: 5432 } } }] },
        },
      },
    },
  });
  await waitFor(`${ns}/ledger ready`, async () => (await read(ns)).status?.readyReplicas === 5);
  return ns;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const read = (ns: string): Promise<V1StatefulSet> => apps.readNamespacedStatefulSet({ name: 'ledger', namespace: ns });
const partition = async (ns: string): Promise<number | undefined> => (await read(ns)).spec?.updateStrategy?.rollingUpdate?.partition;

/** The image each ordinal's pod runs, in ordinal order. */
async function podImages(ns: string): Promise<string[]> {
  const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=ledger' })).items.filter((p) => !p.metadata?.deletionTimestamp);
  return pods.sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '')).map((p) => p.spec?.containers[0]?.image ?? '');
}

/** The Release (batch 1, pause, analysis, batch 60 %, pause, analysis) and its AnalysisTemplate. */
async function spec(ns: string, batches = '        - batch: 1\n        - pause: {}\n        - analysis: { templates: [{ templateName: error-rate }] }\n        - batch: 60%\n        - pause: {}\n        - analysis: { templates: [{ templateName: error-rate }] }\n'): Promise<string> {
  const file = path.join(dir, `${ns}.yaml`);
  await writeFile(
    file,
    `apiVersion: glidepath.dev/v1alpha1
kind: Release
metadata: { name: ledger, namespace: ${ns} }
spec:
  workloadRef: { kind: StatefulSet, name: ledger }
  image: ${NEW}
  progressDeadline: 60s
  strategy:
    rolling:
      steps:
${batches}---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: { name: error-rate, namespace: ${ns} }
spec:
  metrics:
    - name: error-rate
      interval: 1s
      count: 2
      successCondition: result <= 0.01
      provider:
        web:
          url: ${metricsUrl}
          jsonPath: "{$.errorRatio}"
`,
  );
  return file;
}

before(async () => {
  ({ apps, core } = kube());
  dir = await tempDir('sts');
  metrics = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ errorRatio })));
  await new Promise<void>((r) => metrics.listen(0, '127.0.0.1', r));
  metricsUrl = `http://127.0.0.1:${(metrics.address() as AddressInfo).port}/metrics`;
  client = await connectClient();
  worker = await startWorker(env);
});

after(async () => {
  await teardown({ worker, client, core, namespaces });
  metrics.close();
});

describe('StatefulSet released with strategy.rolling', () => {
  test('5 replicas: 1 → analysis → 3 → analysis → 5, the partition and pod images checked at each pause', async () => {
    errorRatio = 0;
    const ns = await statefulSet('sts-ok');
    const id = `release_${ns}_ledger`;
    assert.equal((await cli(env, ['release', 'start', '-f', await spec(ns)])).code, 0);

    const first = await until(id, (s) => s.phase === 'Paused' && s.step.index === 1, 'pause after batch 1');
    assert.deepEqual(first.rolling, { updated: 1, replicas: 5 });
    assert.equal(await partition(ns), 4);
    assert.deepEqual(await podImages(ns), [OLD, OLD, OLD, OLD, NEW]);
    assert.equal((await cli(env, ['release', 'promote', id, '--as', 'alice'])).code, 0);

    const second = await until(id, (s) => s.phase === 'Paused' && s.step.index === 4, 'pause after batch 60%');
    assert.deepEqual(second.rolling, { updated: 3, replicas: 5 });
    assert.equal(second.analysisRuns[0]?.phase, 'Successful');
    assert.equal(await partition(ns), 2);
    assert.deepEqual(await podImages(ns), [OLD, OLD, NEW, NEW, NEW]);
    assert.equal((await cli(env, ['release', 'promote', id, '--as', 'alice'])).code, 0);

    const done = await until(id, (s) => s.phase === 'Promoted', 'promoted');
    assert.deepEqual(done.rolling, { updated: 5, replicas: 5 });
    assert.equal(done.analysisRuns.length, 2);
    const s = await read(ns);
    assert.equal(s.spec?.updateStrategy?.rollingUpdate?.partition, 0);
    assert.equal(s.status?.currentRevision, s.status?.updateRevision);
    assert.deepEqual(await podImages(ns), Array(5).fill(NEW));
  });

  test('a failing analysis after 3 of 5 rolls the partition back: every pod on v1, partition 0', async () => {
    errorRatio = 0;
    const ns = await statefulSet('sts-fail');
    const id = `release_${ns}_ledger`;
    const file = await spec(ns, '        - batch: 60%\n        - pause: {}\n        - analysis: { templates: [{ templateName: error-rate }] }\n        - batch: 100%\n');
    assert.equal((await cli(env, ['release', 'start', '-f', file])).code, 0);
    await until(id, (s) => s.phase === 'Paused' && s.step.index === 1, 'pause after batch 60%');
    assert.deepEqual(await podImages(ns), [OLD, OLD, NEW, NEW, NEW]);
    errorRatio = 0.2;
    assert.equal((await cli(env, ['release', 'promote', id, '--as', 'alice'])).code, 0);
    const rolledBack = await until(id, (s) => s.phase === 'RolledBack', 'rolled back');
    assert.match(rolledBack.message, /analysis error-rate \(step 3\) Failed/);
    const s = await read(ns);
    assert.equal(s.spec?.template?.spec?.containers[0]?.image, OLD);
    assert.equal(s.spec?.updateStrategy?.rollingUpdate?.partition, 0);
    assert.equal(s.status?.currentRevision, s.status?.updateRevision);
    assert.deepEqual(await podImages(ns), Array(5).fill(OLD));
    assert.equal((await cli(env, ['release', 'abort', id, '--as', 'alice'])).code, 0); // closes it
  });

  test('the worker SIGKILLed while a batch waits for slow pods: a new worker resumes the batch and the release promotes', async () => {
    const ns = await statefulSet('sts-kill', { 'glidepath.local/ready-delay': '4s' });
    const id = `release_${ns}_ledger`;
    assert.equal((await cli(env, ['release', 'start', '-f', await spec(ns, '        - batch: 3\n')])).code, 0);
    await until(id, (s) => s.step.kind === 'batch' && s.phase === 'Progressing', 'batch in progress');
    await waitFor('the first pod of the batch replaced', async () => (await podImages(ns)).includes(NEW), 30_000);
    await killWorker(worker, 'SIGKILL');
    worker = await startWorker(env);
    const done = await until(id, (s) => s.phase === 'Promoted', 'promoted after the worker restart', 180_000);
    assert.deepEqual(done.rolling, { updated: 5, replicas: 5 });
    assert.deepEqual(await podImages(ns), Array(5).fill(NEW));
    assert.equal(await partition(ns), 0);
  });
});
