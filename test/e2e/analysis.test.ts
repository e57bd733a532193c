/**
 * Analysis end to end: a real Prometheus (basic auth, 1 s scrape) scraping the test app's per-version
 * request counters, the real worker process (`workers/main.ts`) with the Prometheus credentials in its
 * environment only (GLIDEPATH_PROMETHEUS_URL/USERNAME/PASSWORD: the spec carries none), the Temporal
 * dev server, and a Release on the local control plane: setWeight 25, an analysis step (the canary's
 * 5xx ratio, interval 1s, count 5, failureLimit 0), setWeight 100. A healthy canary is promoted
 * (`release start --wait` exits 0); a canary answering 5xx is rolled back (exit 3) and the status
 * shows the failing measurements with their values. Needs KUBECONFIG, TEMPORAL_ADDRESS, PROMETHEUS_BIN.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { startMetricsApp, type MetricsApp } from '../support/metrics-app.ts';
import { eventually, startPrometheus, type PrometheusInstance } from '../support/prometheus.ts';
import type { ReleaseStatus } from '../../workflows/messages.ts';
import { findDeployment, imageOf, kube, cli as runCli, randomSuffix, startWorker as startSuiteWorker, suiteEnv, tempDir, webNamespace, writeRelease } from './support.ts';

const suffix = randomSuffix();
const taskQueue = `e2e-analysis-${suffix}`;
const PASSWORD = 's3cret-pw';
// bcrypt of PASSWORD (cost 4), as Prometheus' web config wants it (the same as auth.test.ts).
const PASSWORD_BCRYPT = '$2b$04$2VOWeqEi1HNa0X3pRX44ReYlo4ulMWH3uPsiYPD155LYwJmlnNlVu';
const AUTH = `Basic ${Buffer.from(`glidepath:${PASSWORD}`).toString('base64')}`;
/** The canary's 5xx ratio over the last 5 s; the version is an arg, placed inside string literals. */
const QUERY =
  'sum(rate(http_requests_total{version="{{args.version}}",code=~"5.."}[5s])) / sum(rate(http_requests_total{version="{{args.version}}"}[5s]))';

let env: NodeJS.ProcessEnv;
let apps: AppsV1Api;
let core: CoreV1Api;
let app: MetricsApp;
let prom: PrometheusInstance;
let worker: ChildProcess | undefined;
let workerLog = '';
let dir: string;
const namespaces: string[] = [];

async function startWorker(): Promise<ChildProcess> {
  const child = await startSuiteWorker(env);
  child.stdout?.on('data', (d: Buffer) => (workerLog += String(d)));
  child.stderr?.on('data', (d: Buffer) => (workerLog += String(d)));
  return child;
}

const cli = (args: string[]) => runCli(env, args);

/** A namespace with a 4-replica Deployment `web` on v1 (with a readiness probe: preflight requires one). */
async function workload(name: string): Promise<string> {
  const ns = `e2e-${name}-${suffix}`;
  namespaces.push(ns);
  await webNamespace({ apps, core }, ns);
  await eventually(async () => (await apps.readNamespacedDeployment({ name: 'web', namespace: ns })).status?.availableReplicas === 4, 60_000, `${ns}/web available`);
  return ns;
}

/** The Release (25 % → analysis → 100 %) and its AnalysisTemplate, in one file. */
function spec(ns: string): Promise<string> {
  return writeRelease(
    dir,
    ns,
    `  strategy:
    canary:
      steps:
        - setWeight: 25
        - analysis:
            templates: [{ templateName: error-rate }]
            args: [{ name: version, value: canary }]
        - setWeight: 100
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: { name: error-rate }
spec:
  args: [{ name: version }]
  metrics:
    - name: error-rate
      interval: 1s
      count: 5
      failureLimit: 0
      successCondition: result[0] < 0.05
      provider:
        prometheus:
          address: ${prom.url}
          query: '${QUERY}'
`,
  );
}

const deployment = (ns: string, name: string) => findDeployment(apps, ns, name);

async function status(id: string): Promise<ReleaseStatus> {
  const r = await cli(['-o', 'json', 'release', 'status', id]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ReleaseStatus;
}

/** The canary's error ratio as Prometheus answers the template's query now. */
async function canaryRatio(): Promise<number | undefined> {
  const res = await fetch(`${prom.url}/api/v1/query`, {
    method: 'POST',
    headers: { Authorization: AUTH, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ query: QUERY.replaceAll('{{args.version}}', 'canary') }),
  });
  const body = (await res.json()) as { data?: { result?: { value: [number, string] }[] } };
  const v = body.data?.result?.[0]?.value[1];
  return v === undefined ? undefined : Number(v);
}

before(async () => {
  ({ apps, core } = kube());
  dir = await tempDir('analysis');
  app = await startMetricsApp({ versions: ['stable', 'canary'], rps: 20 });
  prom = await startPrometheus({ targets: [app.target], webConfig: `basic_auth_users:\n  glidepath: '${PASSWORD_BCRYPT}'\n` });
  const t0 = Date.now();
  // Prometheus 2.42 applies new targets after ~5 s, and rate() over 5 s needs two samples.
  await eventually(async () => (await canaryRatio()) !== undefined, 60_000, 'a first canary error ratio from Prometheus');
  console.log(`prometheus answered the query ${Date.now() - t0} ms after it was ready`);
  env = suiteEnv(taskQueue, {
    GLIDEPATH_PROMETHEUS_URL: prom.url,
    GLIDEPATH_PROMETHEUS_USERNAME: 'glidepath',
    GLIDEPATH_PROMETHEUS_PASSWORD: PASSWORD,
    GLIDEPATH_PROMETHEUS_STALENESS_SECONDS: '30',
  });
  worker = await startWorker();
});

after(async () => {
  worker?.kill('SIGTERM');
  if (worker) await new Promise((r) => worker?.once('exit', r));
  await prom?.stop();
  await app?.stop();
  for (const ns of namespaces) await core.deleteNamespace({ name: ns }).catch(() => {});
});

describe('analysis on real Prometheus data decides the release', () => {
  test('without credentials Prometheus refuses: the worker must bring them', async () => {
    const res = await fetch(`${prom.url}/api/v1/query?query=up`);
    assert.equal(res.status, 401);
  });

  test('healthy canary: five successful measurements → Promoted, exit 0', async () => {
    app.setErrorRate('canary', 0);
    const ns = await workload('an-ok');
    const id = `release_${ns}_web`;
    const t0 = Date.now();
    const r = await cli(['release', 'start', '-f', await spec(ns), '--wait', '--timeout', '180s']);
    const took = Date.now() - t0;
    assert.equal(r.code, 0, r.stdout + r.stderr + workerLog.slice(-2000));
    const s = await status(id);
    assert.equal(s.phase, 'Promoted');
    const runs = s.analysisRuns;
    assert.equal(runs.length, 1);
    const metric = runs[0]?.metrics[0];
    assert.equal(runs[0]?.phase, 'Successful');
    assert.equal(metric?.successful, 5);
    assert.deepEqual(
      metric?.measurements.map((m) => m.phase),
      ['Successful', 'Successful', 'Successful', 'Successful', 'Successful'],
    );
    for (const m of metric?.measurements ?? []) assert.ok(Array.isArray(m.value) && (m.value as number[])[0] === 0, `value ${JSON.stringify(m.value)}`);
    const stable = await deployment(ns, 'web');
    assert.equal(imageOf(stable), 'registry.local/web:v2', 'the new image is stable');
    assert.equal(await deployment(ns, 'web-canary'), undefined, 'the canary is gone');
    const analysisMs = Date.parse(runs[0]?.finishedAt ?? '') - Date.parse(runs[0]?.startedAt ?? '');
    console.log(`healthy: start --wait → Promoted in ${took} ms; analysis ${analysisMs} ms; values ${metric?.measurements.map((m) => JSON.stringify(m.value)).join(' ')}`);
  });

  test('canary answering 5xx: the first measurement fails → RolledBack, exit 3; stable untouched on v1, canary gone', async () => {
    app.setErrorRate('canary', 0.5);
    await eventually(async () => ((await canaryRatio()) ?? 0) > 0.2, 30_000, 'the canary error ratio above 20 % in Prometheus');
    const ns = await workload('an-bad');
    const id = `release_${ns}_web`;
    const t0 = Date.now();
    const r = await cli(['release', 'start', '-f', await spec(ns), '--wait', '--timeout', '180s']);
    const took = Date.now() - t0;
    assert.equal(r.code, 3, r.stdout + r.stderr + workerLog.slice(-2000));
    const s = await status(id);
    assert.equal(s.phase, 'RolledBack');
    assert.match(s.message, /error-rate/);
    const runs = s.analysisRuns;
    assert.equal(runs[0]?.phase, 'Failed');
    const metric = runs[0]?.metrics[0];
    assert.equal(metric?.phase, 'Failed');
    assert.equal(metric?.failed, 1, 'failureLimit 0: the first Failed measurement decides');
    const failing = metric?.measurements.filter((m) => m.phase === 'Failed') ?? [];
    assert.equal(failing.length, 1);
    const value = failing[0]?.value as number[];
    assert.ok(Array.isArray(value) && typeof value[0] === 'number' && value[0] >= 0.05, `the failing value is in the status: ${JSON.stringify(failing[0])}`);
    const stable = await deployment(ns, 'web');
    assert.equal(imageOf(stable), 'registry.local/web:v1', 'stable untouched on v1');
    assert.equal(stable?.spec?.replicas, 4);
    assert.equal(stable?.status?.availableReplicas, 4);
    const canary = await deployment(ns, 'web-canary');
    assert.equal(canary, undefined, 'canary gone');
    const analysisMs = Date.parse(runs[0]?.finishedAt ?? '') - Date.parse(runs[0]?.startedAt ?? '');
    console.log(`5xx: start --wait → RolledBack in ${took} ms; analysis ${analysisMs} ms; measurements ${metric?.measurements.map((m) => `${m.phase}(${JSON.stringify(m.value)})`).join(' ')}; message: ${s.message}`);
    await cli(['release', 'abort', id, '--as', 'oncall']);
  });
});
