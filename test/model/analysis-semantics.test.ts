/**
 * Analysis semantics where Argo Rollouts ends or bounds a run (utils/analysis/helpers.go IsTerminating,
 * ValidateMetric, EffectiveCount, measurementRetention), and the lint rules that keep a metric from
 * failing open: each test names the behaviour it pins.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpecError, formatProblem, normalize } from '../../model/normalize.ts';
import { planProblems } from '../../model/plan.ts';
import * as analysis from '../../model/analysis.ts';
import type { MetricRecord } from '../../model/analysis.ts';
import { analysis as analysisProfile } from '../../workflows/profiles.ts';
import type { Measurement, MetricSpec, ReleasePlan } from '../../model/types.ts';
import { release } from './helpers.ts';

// Bound per name (not imported by name), so that against older code only the tests of what is missing fail.
const { assessRun, effectiveCount, expectedRunMs, measurementTimeoutMs, recordMeasurement, verdictOf, DEFAULT_MEASUREMENT_RETENTION } = analysis;

const at = (i: number): string => new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
const m = (phase: Measurement['phase'], i = 0): Measurement => ({ phase, value: i, startedAt: at(i), finishedAt: at(i) });
const metric = (extra: Partial<MetricSpec> = {}): MetricSpec => ({
  name: 'm',
  failureLimit: 0,
  inconclusiveLimit: 0,
  consecutiveErrorLimit: 4,
  dryRun: false,
  provider: { prometheus: { address: 'http://127.0.0.1:9090', query: 'up' } },
  ...extra,
});

// ---- lint: a template whose one metric carries `fields` ----------------------------------------------

function template(fields: Record<string, unknown>, spec: Record<string, unknown> = {}) {
  return {
    source: 't.yaml',
    doc: {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'AnalysisTemplate',
      metadata: { name: 'gate' },
      spec: { metrics: [{ name: 'errors', provider: { prometheus: { address: 'http://127.0.0.1:9090', query: 'up' } }, ...fields }], ...spec },
    },
  };
}

/** Lint problems of a release with one analysis step on the template, or its normalised metric. */
function lint(fields: Record<string, unknown>, spec: Record<string, unknown> = {}): { problems: string[]; metric?: MetricSpec } {
  try {
    const plan = normalize([release({ steps: [{ setWeight: 10 }, { analysis: { templates: [{ templateName: 'gate' }] } }] }), template(fields, spec)]);
    const step = plan.strategy.type === 'canary' ? plan.strategy.steps[1] : undefined;
    return { problems: [], ...(step?.kind === 'analysis' ? { metric: step.analysis.metrics[0] } : {}) };
  } catch (err) {
    if (err instanceof SpecError) return { problems: err.problems.filter((p) => p.source === 't.yaml').map(formatProblem) };
    throw err;
  }
}

/** The workflow-start check on a plan whose analysis step has `metric`. */
function startProblems(mt: MetricSpec): string[] {
  const plan: ReleasePlan = {
    name: 'web',
    namespace: 'shop',
    workload: { kind: 'Deployment', name: 'web' },
    image: 'example/web:2',
    progressDeadlineSeconds: 600,
    retryWindowSeconds: 0,
    policy: {},
    strategy: { type: 'canary', steps: [{ kind: 'analysis', analysis: { name: 'gate', templates: ['gate'], args: {}, metrics: [mt] } }] },
  } as unknown as ReleasePlan;
  return planProblems(plan);
}

test('count semantics: count 0 is unset (one measurement, not none), count > 1 needs an interval, unreachable limits are refused', () => {
  // Argo's EffectiveCount: 0 means unset.
  assert.equal(effectiveCount({ count: 0 }), 1);
  assert.equal(effectiveCount({ count: 0, intervalMs: 60_000 }), undefined);
  assert.equal(lint({ count: 0 }).metric?.count, undefined, 'count 0 normalises to unset');
  // A count-0 run with no measurement is not finished, let alone successful.
  const zero = assessRun([metric({ count: 0 })], { m: [] });
  assert.equal(zero.phase, 'Running');
  assert.equal(zero.metrics[0]?.phase, 'Pending');

  assert.deepEqual(lint({ count: 3 }).problems, ['t.yaml: spec.metrics[0].count: count 3 needs an interval between measurements']);
  assert.deepEqual(lint({ count: 3, interval: '30s' }).problems, []);
  assert.deepEqual(lint({ count: 3, interval: '30s', failureLimit: 3 }).problems, [
    't.yaml: spec.metrics[0].failureLimit: failureLimit 3 can never be exceeded by count 3 measurements, so it never decides; lower it below count, or use -1 to tolerate any',
  ]);
  assert.match(lint({ count: '2', interval: '30s', inconclusiveLimit: 5 }).problems.join('\n'), /spec\.metrics\[0\]\.inconclusiveLimit: inconclusiveLimit 5 can never be exceeded by count 2/);
  assert.deepEqual(lint({ count: 3, interval: '30s', failureLimit: 2, inconclusiveLimit: -1 }).problems, []);
  // The workflow refuses the same plans.
  assert.deepEqual(startProblems(metric({ count: 3 })), ['strategy.steps.0.analysis.metrics.0.count: count 3 needs intervalMs']);
  assert.deepEqual(startProblems(metric({ count: 2, intervalMs: 1000, failureLimit: 2 })), ['strategy.steps.0.analysis.metrics.0.failureLimit: failureLimit 2 can never be exceeded by count 2']);
});

test('negative counts and limits are refused at lint, as at the workflow start', () => {
  assert.deepEqual(lint({ count: -1 }).problems, ['t.yaml: spec.metrics[0].count: must be ≥ 0 (0 or unset: one measurement without interval, unbounded with one); got -1']);
  assert.deepEqual(lint({ count: '-3', interval: '1m' }).problems, ['t.yaml: spec.metrics[0].count: must be ≥ 0 (0 or unset: one measurement without interval, unbounded with one); got -3']);
  assert.deepEqual(lint({ failureLimit: -2 }).problems, ['t.yaml: spec.metrics[0].failureLimit: must be ≥ -1 (-1 tolerates any); got -2']);
  assert.deepEqual(lint({ consecutiveErrorLimit: -1 }).problems, ['t.yaml: spec.metrics[0].consecutiveErrorLimit: must be ≥ 0; got -1']);
  assert.equal(startProblems(metric({ count: -1 })).length, 1);
});

test('interval has a floor of 1s: interval 0s (a hot loop) is refused, naming the field', () => {
  assert.deepEqual(lint({ interval: '0s' }).problems, ['t.yaml: spec.metrics[0].interval: must be at least 1s; got 0s']);
  assert.deepEqual(lint({ interval: '500ms', count: 4 }).problems, ['t.yaml: spec.metrics[0].interval: must be at least 1s; got 500ms']);
  assert.deepEqual(lint({ interval: '1s', count: 4 }).problems, []);
  assert.deepEqual(startProblems(metric({ intervalMs: 0 })), ['strategy.steps.0.analysis.metrics.0.intervalMs: must be at least 1000 ms']);
});

test('an Inconclusive metric ends the run: a later failure of another metric does not turn the pause into a rollback', () => {
  const gate = metric({ name: 'gate', count: 1 });
  const soak = metric({ name: 'soak', intervalMs: 60_000 }); // unbounded
  const assessed = assessRun([gate, soak], { gate: [m('Inconclusive')], soak: [m('Successful')] });
  assert.equal(assessed.phase, 'Inconclusive', 'the run is over once a metric is Inconclusive (Argo IsTerminating)');
  assert.equal(assessed.metrics.find((x) => x.name === 'soak')?.phase, 'Successful', 'the unbounded metric is terminated');
  // A dry-run metric's Inconclusive does not terminate the run.
  const dry = metric({ name: 'dry', count: 1, dryRun: true });
  assert.equal(assessRun([dry, soak], { dry: [m('Inconclusive')], soak: [m('Successful')] }).phase, 'Running');
});

test('measurementRetention: the latest N measurements are kept (default 10), counts stay exact and decide', () => {
  const spec = metric({ count: 500, intervalMs: 30_000, failureLimit: 2 });
  let rec: MetricRecord = { measurements: [] };
  for (let i = 0; i < 300; i++) rec = recordMeasurement(spec, rec, m(i % 100 === 0 ? 'Failed' : i % 7 === 0 ? 'Error' : 'Successful', i));
  assert.equal(rec.measurements.length, DEFAULT_MEASUREMENT_RETENTION);
  assert.deepEqual(rec.measurements.map((x) => x.value), [290, 291, 292, 293, 294, 295, 296, 297, 298, 299]);
  assert.equal(rec.tally?.count, 300 - 43 + 1, 'Errors (every 7th, not the Failed ones) do not count');
  assert.equal(rec.tally?.failed, 3);
  // Three failures lie outside the kept window, yet exceed failureLimit 2: the metric fails.
  const verdict = verdictOf([spec], { metrics: [{ name: 'm', ...rec, measurements: [...rec.measurements] }], terminated: true });
  assert.equal(verdict.phase, 'Failed');
  assert.equal(verdict.metrics[0]?.measurements.length, 10, "the workflow records only the retained measurements");
  assert.equal(verdict.metrics[0]?.failed, 3);

  // Argo's field on the template, per metric or '*'.
  assert.equal(lint({ interval: '30s' }, { measurementRetention: [{ metricName: 'errors', limit: 3 }] }).metric?.measurementRetention, 3);
  assert.equal(lint({ interval: '30s' }, { measurementRetention: [{ metricName: '*', limit: 20 }] }).metric?.measurementRetention, 20);
  assert.deepEqual(lint({ interval: '30s' }, { measurementRetention: [{ metricName: 'nope', limit: 3 }] }).problems, ['t.yaml: spec.measurementRetention[0].metricName: no metric named "nope"']);
  assert.match(lint({ interval: '30s' }, { measurementRetention: [{ metricName: 'errors', limit: 0 }] }).problems.join('\n'), /spec\.measurementRetention\[0\]\.limit: Too small/);
  const kept3 = recordMeasurement({ measurementRetention: 3 }, { measurements: [m('Successful', 1), m('Successful', 2), m('Successful', 3)] }, m('Failed', 4));
  assert.deepEqual(kept3.measurements.map((x) => x.value), [2, 3, 4]);
});

test('dry-run metrics keep measuring to their own count; an all-dry-run run is not over before it measures', () => {
  const gate = metric({ name: 'gate', count: 1 });
  const dry = metric({ name: 'dry', count: 3, intervalMs: 1000, dryRun: true });
  assert.equal(assessRun([gate, dry], { gate: [m('Successful')], dry: [m('Successful')] }).phase, 'Running', 'the gate is done but the dry-run metric is not');
  const done = assessRun([gate, dry], { gate: [m('Successful')], dry: [m('Failed'), m('Failed'), m('Failed')] });
  assert.equal(done.phase, 'Successful', 'dry-run results never decide');
  assert.equal(done.metrics.find((x) => x.name === 'dry')?.phase, 'Failed');
  assert.equal(assessRun([dry], { dry: [] }).phase, 'Running', 'all dry-run: still to measure');
  // A deciding failure terminates everything, dry-run included (Argo IsTerminating).
  assert.equal(assessRun([gate, dry], { gate: [m('Failed')], dry: [m('Successful')] }).phase, 'Failed');
});

test('long measurements: each has its own timeout, and a count-1 job metric gets a realistic bound', () => {
  const job = (spec: Record<string, unknown>): MetricSpec => metric({ provider: { job: { spec: { template: { spec: { containers: [{ name: 'c', image: 'busybox' }] } }, ...spec } } } });
  assert.equal(measurementTimeoutMs(job({ activeDeadlineSeconds: 1800 })), 1_860_000, 'activeDeadlineSeconds plus a minute for the controller');
  assert.equal(measurementTimeoutMs(job({})), 3_600_000, 'no deadline: an hour');
  assert.equal(measurementTimeoutMs(metric({ provider: { web: { url: 'http://127.0.0.1/x', timeoutSeconds: 20 } } })), 30_000);
  assert.equal(measurementTimeoutMs(metric()), 40_000, 'Prometheus: Argo default 30s plus slack');
  // A count-1 Job of up to 30 minutes: the run is expected to take that long, not 0 ms.
  assert.equal(expectedRunMs({ metrics: [job({ activeDeadlineSeconds: 1800 })] }), 1_860_000);
  assert.equal(analysisProfile(expectedRunMs({ metrics: [job({ activeDeadlineSeconds: 1800 })] })).startToCloseTimeout, 4_320_000, 'the activity gets 72 minutes, not 10');
  assert.equal(expectedRunMs({ metrics: [metric({ count: 3, intervalMs: 60_000, initialDelayMs: 5000 })] }), 5000 + 3 * (60_000 + 40_000));
  assert.equal(expectedRunMs({ metrics: [metric({ intervalMs: 60_000 })] }), undefined);
});

test('a returned run with a deciding metric still running fails closed; dry-run stragglers from older workers count as stopped', () => {
  const gate = metric({ name: 'gate', count: 2, intervalMs: 1000 });
  const dry = metric({ name: 'dry', count: 3, intervalMs: 1000, dryRun: true });
  assert.equal(verdictOf([gate], { metrics: [{ name: 'gate', measurements: [m('Successful')] }], terminated: false }).phase, 'Error');
  assert.equal(verdictOf([gate, dry], { metrics: [{ name: 'gate', measurements: [m('Successful'), m('Successful')] }, { name: 'dry', measurements: [m('Successful')] }], terminated: false }).phase, 'Successful');
});
