/** Argo Rollouts' analysis semantics (analysis/analysis.go, utils/evaluate) as pure functions. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assessMetric, assessRun, effectiveCount, evaluateMeasurement } from '../../model/analysis.ts';
import type { Measurement, MetricSpec } from '../../model/types.ts';

const m = (phase: Measurement['phase']): Measurement => ({ phase, startedAt: '', finishedAt: '' });
const metric = (extra: Partial<MetricSpec> = {}): MetricSpec => ({
  name: 'm',
  failureLimit: 0,
  inconclusiveLimit: 0,
  consecutiveErrorLimit: 4,
  dryRun: false,
  provider: { prometheus: { address: 'http://x', query: 'up' } },
  ...extra,
});

test('a measurement: success and failure conditions combine as in Argo', () => {
  assert.equal(evaluateMeasurement({}, 1).phase, 'Successful');
  assert.equal(evaluateMeasurement({ successCondition: 'result > 1' }, 0).phase, 'Failed');
  assert.equal(evaluateMeasurement({ failureCondition: 'result > 1' }, 0).phase, 'Successful');
  assert.equal(evaluateMeasurement({ failureCondition: 'result > 1' }, 2).phase, 'Failed');
  assert.equal(evaluateMeasurement({ successCondition: 'result > 5', failureCondition: 'result < 1' }, 3).phase, 'Inconclusive');
  assert.equal(evaluateMeasurement({ successCondition: 'result > 5', failureCondition: 'result < 1' }, 0).phase, 'Failed');
  const err = evaluateMeasurement({ successCondition: 'result[0] > 1' }, []);
  assert.equal(err.phase, 'Error');
  assert.match(err.message ?? '', /out of range/);
});

test('effective count: count, else one without interval, else unbounded', () => {
  assert.equal(effectiveCount({ count: 5 }), 5);
  assert.equal(effectiveCount({}), 1);
  assert.equal(effectiveCount({ intervalMs: 1000 }), undefined);
});

test('failureLimit: failures beyond the limit fail the metric; within it the count decides', () => {
  const spec = metric({ count: 3, failureLimit: 1 });
  assert.equal(assessMetric(spec, [m('Failed')]).phase, 'Running');
  assert.equal(assessMetric(spec, [m('Failed'), m('Successful'), m('Successful')]).phase, 'Successful');
  assert.equal(assessMetric(spec, [m('Failed'), m('Failed')]).phase, 'Failed');
  assert.equal(assessMetric(metric({ count: 3, failureLimit: -1 }), [m('Failed'), m('Failed'), m('Failed')]).phase, 'Successful');
});

test('inconclusiveLimit and consecutiveErrorLimit (default 4)', () => {
  assert.equal(assessMetric(metric({ count: 2 }), [m('Inconclusive')]).phase, 'Inconclusive');
  assert.equal(assessMetric(metric({ count: 2, inconclusiveLimit: 1 }), [m('Inconclusive')]).phase, 'Running');
  const errors = [m('Error'), m('Error'), m('Error'), m('Error')];
  assert.equal(assessMetric(metric({ count: 2 }), errors).phase, 'Running');
  assert.equal(assessMetric(metric({ count: 2 }), [...errors, m('Error')]).phase, 'Error');
  // errors do not count toward `count`, and a success resets the consecutive run
  assert.equal(assessMetric(metric({ count: 2 }), [...errors, m('Successful'), ...errors, m('Successful')]).phase, 'Successful');
});

test('an unbounded metric runs until terminated, then counts as successful', () => {
  const spec = metric({ intervalMs: 1000 });
  assert.equal(assessMetric(spec, [m('Successful'), m('Successful')]).phase, 'Running');
  assert.equal(assessMetric(spec, [m('Successful')], true).phase, 'Successful');
  assert.equal(assessMetric(spec, [m('Failed')], true).phase, 'Failed');
});

test('a run takes the worst metric; dry-run metrics never decide', () => {
  const a = metric({ name: 'a', count: 1 });
  const b = metric({ name: 'b', count: 2 });
  assert.equal(assessRun([a, b], { a: [m('Successful')], b: [m('Successful')] }).phase, 'Running');
  assert.equal(assessRun([a, b], { a: [m('Inconclusive')], b: [m('Successful'), m('Successful')] }).phase, 'Inconclusive');
  const failed = assessRun([a, b], { a: [m('Failed')], b: [] });
  assert.equal(failed.phase, 'Failed', 'a failed metric decides at once');
  assert.match(failed.message ?? '', /metric "a" assessed Failed: failed \(1\) > failureLimit \(0\)/);
  const dry = metric({ name: 'dry', count: 1, dryRun: true });
  const r = assessRun([a, dry], { a: [m('Successful')], dry: [m('Failed')] });
  assert.equal(r.phase, 'Successful');
  assert.equal(r.metrics.find((x) => x.name === 'dry')?.phase, 'Failed', 'still assessed and reported');
});
