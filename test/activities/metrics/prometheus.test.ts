/**
 * The Prometheus provider inside the real analysis loop (activities/analysis.ts through
 * MockActivityEnvironment) against a real Prometheus scraping test/support/metrics-app.ts every second.
 * Needs a prometheus binary: PROMETHEUS_BIN or PATH (scripts/provision-prometheus.sh installs it).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runAnalysis } from '../../../activities/analysis.ts';
import type { ActivityDeps, ReleaseTarget, WorkloadOps } from '../../../activities/contract.ts';
import { MeasurementError, createPrometheusProvider, type PrometheusProvider } from '../../../activities/metrics/prometheus.ts';
import { verdictOf } from '../../../model/analysis.ts';
import { judge } from '../../../model/judge.ts';
import { renderPromQL } from '../../../model/template.ts';
import type { AnalysisRunResult, AnalysisRunSpec, MetricSpec } from '../../../model/types.ts';
import { startMetricsApp, type MetricsApp } from '../../support/metrics-app.ts';
import { eventually, startPrometheus, type PrometheusInstance } from '../../support/prometheus.ts';

const ERROR_RATIO =
  'sum(rate(http_requests_total{version="{{args.version}}", code=~"5.."}[5s])) / sum(rate(http_requests_total{version="{{args.version}}"}[5s]))';

const target: ReleaseTarget = { releaseId: 'r', namespace: 'default', workload: { kind: 'Deployment', name: 'app' }, image: 'app:2', strategy: 'canary', progressDeadlineSeconds: 600 };

let app: MetricsApp;
let prom: PrometheusInstance;
let provider: PrometheusProvider;
const never = new AbortController().signal;

function errorRatioMetric(address: string, extra: Partial<MetricSpec> = {}): MetricSpec {
  return {
    name: 'error-ratio',
    intervalMs: 1000,
    count: 3,
    successCondition: 'result[0] < 0.05',
    failureLimit: 0,
    inconclusiveLimit: 0,
    consecutiveErrorLimit: 2,
    dryRun: false,
    provider: { prometheus: { address, query: ERROR_RATIO } },
    ...extra,
  };
}

async function analyze(p: PrometheusProvider, metrics: MetricSpec[], args: Record<string, string> = { version: 'canary' }, onHeartbeat?: (d: unknown) => void) {
  const deps: ActivityDeps = { workload: {} as WorkloadOps, metrics: { prometheus: p } };
  const run: AnalysisRunSpec = { name: 't', templates: ['t'], args: Object.fromEntries(Object.entries(args).map(([k, v]) => [k, { value: v }])), metrics };
  const env = new MockActivityEnvironment();
  if (onHeartbeat) env.on('heartbeat', onHeartbeat);
  const result: AnalysisRunResult = await env.run(runAnalysis, deps, target, run, { background: false });
  return { result, verdict: verdictOf(metrics, result) };
}

before(async () => {
  app = await startMetricsApp({ rps: 20 });
  app.freeze('canary', 1); // glidepath_frozen_ratio{version="canary"} 1 @ now, never refreshed
  prom = await startPrometheus({ targets: [app.target] });
  provider = createPrometheusProvider();
  // The first scrape comes ~5 s after start (Prometheus applies target updates every 5 s); rate([5s]) needs two.
  await eventually(async () => ((await provider.query({ address: prom.url, query: ERROR_RATIO }, { version: 'canary' }, never)) as number[]).length === 1, 30_000, 'the error ratio');
});

after(async () => {
  await prom?.stop();
  await app?.stop();
});

test('a healthy canary passes the analysis loop', async () => {
  const { result, verdict } = await analyze(provider, [errorRatioMetric(prom.url)]);
  const ms = result.metrics[0]?.measurements ?? [];
  assert.deepEqual(ms.map((m) => m.phase), ['Successful', 'Successful', 'Successful']);
  assert.deepEqual(ms[0]?.value, [0]);
  assert.equal(verdict.phase, 'Successful');
});

test('a 5xx spike fails the analysis', async () => {
  app.setErrorRate('canary', 0.5);
  try {
    const { result, verdict } = await analyze(provider, [errorRatioMetric(prom.url, { count: 20, failureLimit: 1 })]);
    assert.equal(verdict.phase, 'Failed', verdict.message);
    const failed = (result.metrics[0]?.measurements ?? []).filter((m) => m.phase === 'Failed');
    assert.equal(failed.length, 2);
    assert.ok((failed[1]?.value as number[])[0] as number >= 0.05);
  } finally {
    app.setErrorRate('canary', 0);
  }
});

test('a stale series is not a success: its sample is older than the staleness bound', async () => {
  const metric: MetricSpec = { ...errorRatioMetric(prom.url, { count: 1, consecutiveErrorLimit: 0, successCondition: 'result[0] == 1' }), provider: { prometheus: { address: prom.url, query: 'glidepath_frozen_ratio{version="canary"}' } } };
  // Control: with a bound longer than the sample's age the same query passes (Prometheus still serves it).
  const lenient = await analyze(createPrometheusProvider({ stalenessSeconds: 600 }), [metric]);
  assert.equal(lenient.verdict.phase, 'Successful');
  const strict = await analyze(createPrometheusProvider({ stalenessSeconds: 3 }), [metric]);
  assert.equal(strict.verdict.phase, 'Error');
  const m = strict.result.metrics[0]?.measurements[0];
  assert.equal(m?.phase, 'Error');
  assert.match(m?.message ?? '', /older than the evaluation time \(staleness bound 3s\)/);
});

test('a series that stopped being exported: empty result, an Error, never a success', async () => {
  const metric = errorRatioMetric(prom.url, { count: 1, consecutiveErrorLimit: 0 });
  const { result, verdict } = await analyze(provider, [metric], { version: 'no-such-version' });
  assert.equal(verdict.phase, 'Error');
  assert.match(result.metrics[0]?.measurements[0]?.message ?? '', /empty result/);
});

test('a malicious arg cannot widen the query', async () => {
  const naive = (template: string, value: string): string => template.replaceAll('{{args.version}}', value);
  const cases = [
    { template: 'sum(http_requests_total{version="{{args.version}}"})', value: 'x"} or vector(1) or up{a="' },
    { template: 'sum(http_requests_total{version="{{args.version}}"})', value: 'x"} or vector(1) or {a="' },
    { template: 'sum(http_requests_total{version=~"{{args.version}}"})', value: '.*' },
    { template: 'sum(http_requests_total{version="{{args.version}}"})', value: 'x\\"} or vector(1) # ' },
  ];
  let widenedNaively = 0;
  for (const c of cases) {
    // Plain string substitution (what a template engine without escaping does) against the same Prometheus:
    const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(naive(c.template, c.value))}`);
    const body = (await res.json()) as { status: string; data?: { result: unknown[] } };
    if (body.status === 'success' && (body.data?.result.length ?? 0) > 0) widenedNaively++;
    // Ours: the value stays one label value, which no series has, so the result is empty: an Error.
    await assert.rejects(provider.query({ address: prom.url, query: c.template }, { version: c.value }, never), (err: Error) => err instanceof MeasurementError && /empty result/.test(err.message), c.value);
  }
  assert.ok(widenedNaively >= 2, `naive substitution widened ${widenedNaively} of ${cases.length} queries`);
  // Round trip: Prometheus reads each escaped value back as exactly the original string.
  for (const value of [...cases.map((c) => c.value), 'a\nb\r\u0000{}\\']) {
    const rendered = renderPromQL('label_replace(vector(7), "v", "{{args.version}}", "", "")', { version: value });
    const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(rendered)}`);
    const body = (await res.json()) as { data: { result: { metric: { v: string } }[] } };
    assert.equal(body.data.result[0]?.metric.v, value);
  }
});

test('a query Prometheus rejects is a named non-retryable error, and the analysis stops on it', async () => {
  const metric: MetricSpec = { ...errorRatioMetric(prom.url), provider: { prometheus: { address: prom.url, query: 'sum(rate(http_requests_total[1m])' } } };
  await assert.rejects(analyze(provider, [metric]), (err: Error) => {
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, 'QueryRejected');
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, /400 bad_data.*parse error/);
    return true;
  });
  // An arg outside a string literal never reaches Prometheus: refused as a spec error.
  const outside: MetricSpec = { ...errorRatioMetric(prom.url), provider: { prometheus: { address: prom.url, query: 'up > {{args.version}}' } } };
  await assert.rejects(analyze(provider, [outside], { version: '0 or vector(1)' }), (err: Error) => err instanceof ApplicationFailure && err.type === 'InvalidSpec' && err.nonRetryable === true);
});

test('Prometheus killed mid-analysis: Error measurements, an Error verdict, never a success', async () => {
  const own = await startPrometheus({ targets: [app.target] });
  try {
    await eventually(async () => ((await provider.query({ address: own.url, query: ERROR_RATIO }, { version: 'canary' }, never)) as number[]).length === 1, 30_000, 'the error ratio');
    let killed: Promise<void> | undefined;
    const metric = errorRatioMetric(own.url, { count: 30, consecutiveErrorLimit: 2 });
    const { result, verdict } = await analyze(provider, [metric], { version: 'canary' }, (details) => {
      const counted = (details as { metrics: Record<string, { tally: { count: number } }> }).metrics['error-ratio']?.tally.count ?? 0;
      if (!killed && counted >= 2) killed = own.kill();
    });
    await killed;
    const phases = (result.metrics[0]?.measurements ?? []).map((m) => m.phase);
    assert.deepEqual(phases, ['Successful', 'Successful', 'Error', 'Error', 'Error']);
    assert.equal(verdict.phase, 'Error');
    assert.match(result.metrics[0]?.measurements[4]?.message ?? '', /unreachable: ECONNREFUSED/);
  } finally {
    await own.stop();
  }
});

test('the judge on range queries: a canary with higher latency fails, equal error ratios pass', async () => {
  app.setLatencyMs('canary', 40);
  try {
    await new Promise((r) => setTimeout(r, 12_000));
    const end = new Date();
    const range = { start: new Date(end.getTime() - 10_000), end, stepSeconds: 1 };
    const samples = async (query: string, version: string): Promise<number[]> =>
      (await provider.queryRange({ address: prom.url, query }, { version }, range, never)).flatMap((s) => s.values.map((v) => v[1]));
    const LATENCY = 'sum(rate(http_request_duration_seconds_sum{version="{{args.version}}"}[3s])) / sum(rate(http_request_duration_seconds_count{version="{{args.version}}"}[3s]))';
    const latency = { canary: await samples(LATENCY, 'canary'), baseline: await samples(LATENCY, 'stable') };
    const errors = { canary: await samples(ERROR_RATIO, 'canary'), baseline: await samples(ERROR_RATIO, 'stable') };
    assert.ok(latency.canary.length >= 8 && latency.baseline.length >= 8, `${latency.canary.length}/${latency.baseline.length} samples`);
    const verdict = judge([
      { name: 'latency', ...latency, direction: 'increase', critical: true },
      { name: 'errors', ...errors, direction: 'increase' },
    ]);
    assert.equal(verdict.verdict, 'Fail', verdict.reason);
    assert.equal(verdict.metrics[0]?.classification, 'High');
    assert.equal(verdict.metrics[1]?.classification, 'Pass');
    assert.equal(judge([{ name: 'errors', ...errors, direction: 'increase' }]).verdict, 'Pass');
  } finally {
    app.setLatencyMs('canary', 5);
  }
});
