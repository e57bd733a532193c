import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConditionError, evaluateCondition, parseCondition } from '../../model/condition.ts';
import { parseDuration, formatDuration } from '../../model/duration.ts';

test('conditions Argo users write evaluate as expr-lang would', () => {
  assert.equal(evaluateCondition('result[0] >= 0.95', [0.97]), true);
  assert.equal(evaluateCondition('result[0] >= 0.95', [0.9]), false);
  assert.equal(evaluateCondition('result < 0.01', 0.005), true);
  assert.equal(evaluateCondition('result[0] >= 0.95 && result[1] < 200', [0.99, 150]), true);
  assert.equal(evaluateCondition('result[0] >= 0.95 and result[1] < 200', [0.99, 250]), false);
  assert.equal(evaluateCondition('result[0] > 1 || len(result) == 2', [0.5, 1]), true);
  assert.equal(evaluateCondition('not (result == "ok")', 'ok'), false);
  assert.equal(evaluateCondition('default(result, 0) < 5', []), true);
  assert.equal(evaluateCondition('isNaN(result[0])', [Number.NaN]), true);
  assert.equal(evaluateCondition('result.length > 0', [1]), true);
  assert.equal(evaluateCondition('result["status"] == "green"', { status: 'green' }), true);
  assert.equal(evaluateCondition('result * 100 - 1 > 0', 0.05), true);
});

test('NaN never satisfies a comparison (fail closed)', () => {
  assert.equal(evaluateCondition('result < 0.01', Number.NaN), false);
  assert.equal(evaluateCondition('result >= 0.01', Number.NaN), false);
});

test('anything outside the grammar is refused before evaluation, with a reason', () => {
  assert.throws(() => parseCondition('process.exit(1)'), /unknown function/);
  assert.throws(() => parseCondition('process'), /unknown name "process"/);
  assert.throws(() => parseCondition('result.constructor'), /only indexing/);
  assert.throws(() => parseCondition('result = 1'), ConditionError);
  assert.throws(() => parseCondition('eval("1")'), /unknown function/);
  assert.throws(() => parseCondition('result[0] >'), /cannot parse/);
  assert.throws(() => parseCondition('this'), ConditionError);
});

test('type errors and out-of-range indexes are errors, not false', () => {
  assert.throws(() => evaluateCondition('result[3] > 1', [1, 2]), /index 3 out of range: result has 2 element\(s\)/);
  assert.throws(() => evaluateCondition('result > 1', 'abc'), /needs a number/);
  assert.throws(() => evaluateCondition('result', 3), /not true or false/);
  assert.throws(() => evaluateCondition('result["__proto__"] == 1', {}), /cannot index/);
});

test('durations: Go strings, seconds and days', () => {
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('7d'), 604_800_000);
  assert.equal(parseDuration(10), 10_000);
  assert.equal(parseDuration('10'), 10_000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.throws(() => parseDuration('5 parsecs'), /not a duration/);
  assert.throws(() => parseDuration('1h 30m'), /not a duration/);
  assert.throws(() => parseDuration(-1), /non-negative/);
  assert.equal(formatDuration(5_400_000), '1h30m');
  assert.equal(formatDuration(86_400_000), '1d');
});
