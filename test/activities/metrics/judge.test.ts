/**
 * Baseline-vs-canary end to end on real parts: the experiment's baseline (specRef stable) and canary
 * started on the control plane (scripts/kube.sh), a real Prometheus scraping the test app, whose traffic
 * is labelled by the pod-template-hash each template reports (kwok pods serve nothing: the app stands
 * in for them), and the real analysis loop (runAnalysis) with the judge provider, its args bound from
 * the running templates as the workflow binds them. A canary as fast as its baseline passes; one
 * measurably slower fails, and the measurement holds the judge's figures. Needs KUBECONFIG and
 * PROMETHEUS_BIN (scripts/provision-prometheus.sh).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runAnalysis } from '../../../activities/analysis.ts';
import type { ActivityDeps, WorkloadOps } from '../../../activities/contract.ts';
import { createKubernetesExperiments } from '../../../activities/kubernetes/index.ts';
import { createJudgeProvider } from '../../../activities/metrics/judge.ts';
import { createPrometheusProvider } from '../../../activities/metrics/prometheus.ts';
import { verdictOf } from '../../../model/analysis.ts';
import { bindTemplateArgs, type RunningTemplate } from '../../../model/experiment.ts';
import { describeJudgeValue, isJudgeValue, JUDGE_FAILURE_CONDITION, JUDGE_SUCCESS_CONDITION } from '../../../model/judge-provider.ts';
import type { AnalysisRunResult, AnalysisRunSpec, MetricSpec } from '../../../model/types.ts';
import { startMetricsApp, type MetricsApp } from '../../support/metrics-app.ts';
import { eventually, startPrometheus, type PrometheusInstance } from '../../support/prometheus.ts';
import { TestCluster, target } from '../kubernetes/cluster.ts';

const cluster = new TestCluster();
const experiments = createKubernetesExperiments(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 });
const prometheusProvider = createPrometheusProvider();
let running: RunningTemplate[];
let app: MetricsApp;
let prom: PrometheusInstance;
let ns: string;

const LATENCY = (arg: string) => `sum(rate(http_request_duration_seconds_sum{version="{{args.${arg}}}"}[3s])) / sum(rate(http_request_duration_seconds_count{version="{{args.${arg}}}"}[3s]))`;
const ERRORS = (arg: string) => `sum(rate(http_requests_total{version="{{args.${arg}}}",code=~"5.."}[3s])) / sum(rate(http_requests_total{version="{{args.${arg}}}"}[3s]))`;

function judgeMetric(address: string): MetricSpec {
  return {
    name: 'baseline-vs-canary',
    successCondition: JUDGE_SUCCESS_CONDITION,
    failureCondition: JUDGE_FAILURE_CONDITION,
    failureLimit: 0,
    inconclusiveLimit: 0,
    consecutiveErrorLimit: 0,
    dryRun: false,
    provider: {
      judge: {
        address,
        lookback: '10s',
        step: '1s',
        metrics: [
          // A latency up to 50 % above the baseline's is tolerated (Kayenta's effect size); 5 ms → 40 ms is not.
          { name: 'latency', baseline: LATENCY('baseline-hash'), canary: LATENCY('canary-hash'), direction: 'increase', critical: true, allowedIncrease: 1.5 },
          { name: 'errors', baseline: ERRORS('baseline-hash'), canary: ERRORS('canary-hash'), direction: 'increase' },
        ],
      },
    },
  };
}

async function judgeOnce() {
  const run: AnalysisRunSpec = {
    name: 'judge',
    templates: ['judge'],
    args: { 'baseline-hash': { value: '{{templates.baseline.podTemplateHash}}' }, 'canary-hash': { value: '{{templates.canary.podTemplateHash}}' } },
    metrics: [judgeMetric(prom.url)],
  };
  const bound = bindTemplateArgs(run, running);
  const deps: ActivityDeps = { workload: {} as WorkloadOps, metrics: { judge: createJudgeProvider(prometheusProvider) } };
  const result: AnalysisRunResult = await new MockActivityEnvironment().run(runAnalysis, deps, target(ns), bound, { background: false });
  const value = result.metrics[0]?.measurements[0]?.value;
  assert.ok(isJudgeValue(value), JSON.stringify(result));
  return { verdict: verdictOf(bound.metrics, result), value };
}

before(async () => {
  ns = await cluster.namespace('judge');
  await cluster.stable(ns, { replicas: 2 });
  running = await experiments.startExperiment(target(ns), 0, [
    { name: 'baseline', specRef: 'stable', replicas: 1 },
    { name: 'canary', specRef: 'canary', replicas: 1 },
  ]);
  const versions = running.map((r) => r.podTemplateHash);
  assert.notEqual(versions[0], versions[1], 'baseline and canary run different templates');
  app = await startMetricsApp({ versions, rps: 20 });
  prom = await startPrometheus({ targets: [app.target] });
  await eventually(async () => ((await prometheusProvider.query({ address: prom.url, query: LATENCY('v') }, { v: versions[1] as string }, new AbortController().signal)) as number[]).length === 1, 30_000, 'canary latency');
  await new Promise((r) => setTimeout(r, 10_000)); // a lookback's worth of samples
});

after(async () => {
  await experiments.removeExperiment(target(ns)).catch(() => undefined);
  await prom?.stop();
  await app?.stop();
  await cluster.cleanup();
});

test('a canary as fast as its fresh baseline passes the judge', async () => {
  const { verdict, value } = await judgeOnce();
  assert.equal(verdict.phase, 'Successful', describeJudgeValue(value));
  assert.equal(value.verdict, 'Pass');
  assert.ok((value.metrics[0]?.canary.count ?? 0) >= 8 && (value.metrics[0]?.baseline.count ?? 0) >= 8, describeJudgeValue(value));
});

test('a canary measurably slower than its baseline fails, with the judge\'s figures in the measurement', async () => {
  app.setLatencyMs(running[1]?.podTemplateHash as string, 40);
  try {
    await new Promise((r) => setTimeout(r, 11_000)); // the whole lookback at the new latency
    const { verdict, value } = await judgeOnce();
    assert.equal(verdict.phase, 'Failed', describeJudgeValue(value));
    assert.equal(value.verdict, 'Fail');
    const latency = value.metrics.find((m) => m.name === 'latency');
    assert.equal(latency?.classification, 'High');
    assert.ok((latency?.canary.median ?? 0) > 3 * (latency?.baseline.median ?? Infinity), describeJudgeValue(value));
    assert.ok((latency?.pValue ?? 1) < 0.02);
    assert.match(describeJudgeValue(value), /^Fail, score .*latency High: canary median [\d.]+ \(n \d+\) vs baseline median [\d.]+ \(n \d+\), U [\d.]+, p /);
    console.log(`judge: ${describeJudgeValue(value)}`);
  } finally {
    app.setLatencyMs(running[1]?.podTemplateHash as string, 5);
  }
});
