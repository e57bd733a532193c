/**
 * The baseline-vs-canary judgement end to end: the real worker process (`workers/main.ts`), the
 * Temporal dev server, the control plane and a real Prometheus scraping the test app. A Release with
 * an experiment step (a fresh baseline from the stable's template and the canary, one pod each)
 * whose required analysis is the `judge` provider comparing the two sides' latency. kwok pods serve
 * nothing, so the test app stands in for them: it serves `/work/baseline` and `/work/canary` at the
 * latency the test sets, and the analysis args name those versions (the args bound from the running
 * templates' pod-template-hashes are proven in test/activities/metrics/judge.test.ts). A canary as fast
 * as its baseline is promoted; one at 40 ms against 5 ms is rolled back (exit 3), and
 * `glidepath release status -o json` holds the judge's figures in the audit and the analysis record.
 * Needs KUBECONFIG, TEMPORAL_ADDRESS, PROMETHEUS_BIN.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { isJudgeValue } from '../../model/judge-provider.ts';
import type { ReleaseStatus } from '../../workflows/messages.ts';
import { startMetricsApp, type MetricsApp } from '../support/metrics-app.ts';
import { eventually, startPrometheus, type PrometheusInstance } from '../support/prometheus.ts';
import { cli as runCli, findDeployment, imageOf, kube, randomSuffix, startWorker, suiteEnv, tempDir, webNamespace, writeRelease } from './support.ts';

const suffix = randomSuffix();
const taskQueue = `e2e-judge-${suffix}`;
const LATENCY = (arg: string) => `sum(rate(http_request_duration_seconds_sum{version="{{args.${arg}}}"}[3s])) / sum(rate(http_request_duration_seconds_count{version="{{args.${arg}}}"}[3s]))`;

let env: NodeJS.ProcessEnv;
let apps: AppsV1Api;
let core: CoreV1Api;
let app: MetricsApp;
let prom: PrometheusInstance;
let worker: ChildProcess | undefined;
let workerLog = '';
let dir: string;
const namespaces: string[] = [];
const cli = (args: string[]) => runCli(env, args);

async function workload(name: string): Promise<string> {
  const ns = `e2e-${name}-${suffix}`;
  namespaces.push(ns);
  await webNamespace({ apps, core }, ns);
  await eventually(async () => (await apps.readNamespacedDeployment({ name: 'web', namespace: ns })).status?.availableReplicas === 4, 60_000, `${ns}/web available`);
  return ns;
}

/** setWeight 20 → experiment (baseline and canary, the judge required) → setWeight 100, with the judge's template. */
function spec(ns: string): Promise<string> {
  return writeRelease(
    dir,
    ns,
    `  strategy:
    canary:
      steps:
        - setWeight: 20
        - experiment:
            duration: 5m
            templates:
              - { name: baseline, specRef: stable, replicas: 1 }
              - { name: canary, specRef: canary, replicas: 1 }
            analyses:
              - name: judge
                templateName: baseline-vs-canary
                requiredForCompletion: true
                args:
                  - { name: baseline-version, value: baseline }
                  - { name: canary-version, value: canary }
        - setWeight: 100
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: { name: baseline-vs-canary }
spec:
  args: [{ name: baseline-version }, { name: canary-version }]
  metrics:
    - name: judge
      count: 1
      provider:
        judge:
          address: ${prom.url}
          lookback: 10s
          step: 1s
          metrics:
            - name: latency
              baseline: '${LATENCY('baseline-version')}'
              canary: '${LATENCY('canary-version')}'
              direction: increase
              critical: true
              allowedIncrease: 1.5
`,
  );
}

async function status(id: string): Promise<ReleaseStatus> {
  const r = await cli(['-o', 'json', 'release', 'status', id]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ReleaseStatus;
}

const judgeLines = (s: ReleaseStatus): string[] => s.audit.filter((a) => a.action === 'judge').map((a) => a.detail ?? '');

before(async () => {
  ({ apps, core } = kube());
  dir = await tempDir('judge');
  app = await startMetricsApp({ versions: ['baseline', 'canary'], rps: 20 });
  prom = await startPrometheus({ targets: [app.target] });
  const query = `${prom.url}/api/v1/query?query=${encodeURIComponent(LATENCY('v').replaceAll('{{args.v}}', 'canary'))}`;
  await eventually(async () => (((await (await fetch(query)).json()) as { data?: { result?: unknown[] } }).data?.result ?? []).length === 1, 60_000, 'canary latency in Prometheus');
  await new Promise((r) => setTimeout(r, 10_000)); // a lookback's worth of samples
  env = suiteEnv(taskQueue);
  worker = await startWorker(env);
  worker.stdout?.on('data', (d: Buffer) => (workerLog += String(d)));
  worker.stderr?.on('data', (d: Buffer) => (workerLog += String(d)));
});

after(async () => {
  worker?.kill('SIGTERM');
  if (worker) await new Promise((r) => worker?.once('exit', r));
  await prom?.stop();
  await app?.stop();
  for (const ns of namespaces) await core.deleteNamespace({ name: ns }).catch(() => {});
});

describe('baseline-vs-canary judgement through the real worker', () => {
  test('a canary as fast as its fresh baseline passes the judge: Promoted, the figures in the audit', async () => {
    const ns = await workload('judge-ok');
    const id = `release_${ns}_web`;
    const r = await cli(['release', 'start', '-f', await spec(ns), '--wait', '--timeout', '180s']);
    assert.equal(r.code, 0, r.stdout + r.stderr + workerLog.slice(-3000));
    const s = await status(id);
    assert.equal(s.phase, 'Promoted');
    const lines = judgeLines(s);
    assert.equal(lines.length, 1, JSON.stringify(s.audit));
    assert.match(lines[0] ?? '', /^step 2: judge: judge: Pass, score 100\.0 .*latency Pass: canary median [\d.]+ \(n \d+\) vs baseline median [\d.]+ \(n \d+\), U [\d.]+, p [\d.]+/);
    assert.ok(s.audit.some((a) => a.action === 'experiment' && /removed web-exp-baseline|removed .*baseline/.test(a.detail ?? '')), JSON.stringify(s.audit));
    assert.equal(imageOf(await findDeployment(apps, ns, 'web')), 'registry.local/web:v2');
    console.log(`healthy: ${lines[0]}`);
  });

  test('a canary measurably slower than its baseline is rolled back, with the judge\'s figures in release status -o json', async () => {
    app.setLatencyMs('canary', 40);
    try {
      await new Promise((r) => setTimeout(r, 11_000)); // the whole lookback at the new latency
      const ns = await workload('judge-bad');
      const id = `release_${ns}_web`;
      const r = await cli(['release', 'start', '-f', await spec(ns), '--wait', '--timeout', '180s']);
      assert.equal(r.code, 3, r.stdout + r.stderr + workerLog.slice(-3000));
      const s = await status(id);
      assert.equal(s.phase, 'RolledBack');
      assert.match(s.message, /experiment \(step 2\) Failed: analysis judge Failed/);
      const lines = judgeLines(s);
      assert.equal(lines.length, 1, JSON.stringify(s.audit));
      const m = /latency High: canary median ([\d.]+) \(n (\d+)\) vs baseline median ([\d.]+) \(n (\d+)\), U ([\d.]+), p ([\d.e-]+)/.exec(lines[0] ?? '');
      assert.ok(m, lines[0]);
      assert.match(lines[0] ?? '', /^step 2: judge: judge: Fail, score 0\.0 /);
      const [canaryMedian, canaryN, baselineMedian, baselineN, , p] = m.slice(1).map(Number) as number[];
      assert.ok((canaryMedian ?? 0) > 3 * (baselineMedian ?? Infinity), lines[0]);
      assert.ok((canaryN ?? 0) >= 8 && (baselineN ?? 0) >= 8, lines[0]);
      assert.ok((p ?? 1) < 0.02, lines[0]);
      const run = s.analysisRuns.find((x) => x.name === 'judge');
      assert.equal(run?.phase, 'Failed');
      const value = run?.metrics[0]?.measurements.at(-1)?.value;
      assert.ok(isJudgeValue(value) && value.verdict === 'Fail', JSON.stringify(run));
      const stable = await findDeployment(apps, ns, 'web');
      assert.equal(imageOf(stable), 'registry.local/web:v1', 'stable untouched');
      const left = (await apps.listNamespacedDeployment({ namespace: ns })).items.map((d) => d.metadata?.name).sort();
      assert.deepEqual(left, ['web'], 'the experiment and the canary are gone');
      console.log(`slow canary: ${lines[0]}; ${s.message}`);
    } finally {
      app.setLatencyMs('canary', 5);
    }
  });
});
