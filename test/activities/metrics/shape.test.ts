/** Pure parts of the Prometheus provider: result shaping (fail closed) and the selectors a query reads. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MeasurementError, freshnessQuery, promqlSelectors, serverFor, shapeInstant } from '../../../activities/metrics/prometheus.ts';

const T = 1_800_000_000;

test('scalar → number, vector → array of numbers (Argo)', () => {
  assert.equal(shapeInstant({ resultType: 'scalar', result: [T, '0.5'] }, T, 60), 0.5);
  assert.deepEqual(shapeInstant({ resultType: 'vector', result: [{ metric: {}, value: [T, '1'] }, { metric: { a: 'b' }, value: [T, '2.5'] }] }, T, 60), [1, 2.5]);
});

test('fail closed: empty vector, NaN, ±Inf, old samples, odd result types', () => {
  const bad: [unknown, RegExp][] = [
    [{ resultType: 'vector', result: [] }, /empty result/],
    [{ resultType: 'scalar', result: [T, 'NaN'] }, /NaN/],
    [{ resultType: 'vector', result: [{ metric: {}, value: [T, '+Inf'] }] }, /\+Inf/],
    [{ resultType: 'vector', result: [{ metric: {}, value: [T, '-Inf'] }] }, /-Inf/],
    [{ resultType: 'vector', result: [{ metric: { v: 'c' }, value: [T - 61, '1'] }] }, /61\.0s older than the evaluation time/],
    [{ resultType: 'scalar', result: [T - 100, '1'] }, /older/],
    [{ resultType: 'whatever' }, /unexpected resultType/],
  ];
  for (const [data, message] of bad) {
    assert.throws(() => shapeInstant(data as never, T, 60), (err: Error) => err instanceof MeasurementError && message.test(err.message));
  }
  assert.throws(
    () => shapeInstant({ resultType: 'matrix', result: [] }, T, 60),
    (err: Error) => err instanceof ApplicationFailure && err.type === 'QueryRejected' && err.nonRetryable,
  );
});

test('selectors: names, matchers, ranges; not functions, aggregations, label lists, strings or moved selectors', () => {
  const q = 'sum by (version, code) (rate(http_requests_total{version="canary", code=~"5.."}[1m])) / on(version) group_left sum(rate(http_requests_total{version="canary"}[1m]))';
  assert.deepEqual(promqlSelectors(q), [
    { text: 'http_requests_total{version="canary", code=~"5.."}', range: true },
    { text: 'http_requests_total{version="canary"}', range: true },
  ]);
  assert.deepEqual(promqlSelectors('histogram_quantile(0.99, sum without(pod) (rate(lat_bucket{a="}"}[30s])))'), [{ text: 'lat_bucket{a="}"}', range: true }]);
  assert.deepEqual(promqlSelectors('up == bool 1 and {__name__="x"} unless vector(1) or absent(foo)'), [
    { text: 'up', range: false },
    { text: '{__name__="x"}', range: false },
    { text: 'foo', range: false },
  ]);
  assert.deepEqual(promqlSelectors('x offset 1h / x @ 1700000000 + y[5m] offset 5m + z # comment w'), [{ text: 'z', range: false }]);
  assert.deepEqual(promqlSelectors('count_values("label_with_{braces}", m) + topk(3, n) + 1e3 + Inf + 0x1f + 5m'), [
    { text: 'm', range: false },
    { text: 'n', range: false },
  ]);
  assert.deepEqual(promqlSelectors('vector(1) + scalar(time())'), []);
  assert.equal(
    freshnessQuery([{ text: 'a', range: false }, { text: 'b{x="1"}', range: true }]),
    'label_replace(min(timestamp(a)), "glidepath_selector", "0", "", "") or label_replace(max(timestamp(b{x="1"})), "glidepath_selector", "1", "", "")',
  );
});

test('worker credentials are scoped to the address they name', () => {
  const servers = [{ address: 'https://mimir.example:8080/prometheus', bearerToken: 't' }];
  assert.ok(serverFor(servers, 'https://mimir.example:8080/prometheus'));
  assert.ok(serverFor(servers, 'https://mimir.example:8080/prometheus/'));
  assert.equal(serverFor(servers, 'https://mimir.example:8080/prometheus-evil'), undefined);
  assert.equal(serverFor(servers, 'http://mimir.example:8080/prometheus'), undefined);
  assert.equal(serverFor(servers, 'https://evil.example/prometheus'), undefined);
  assert.ok(serverFor([{ address: 'http://p:9090' }], 'http://p:9090'));
});
