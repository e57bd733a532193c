/** The statistical judge: the U test against SciPy's numbers, and Kayenta-style classification and scoring. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { erfc, judge, judgeMetric, mannWhitneyU, type Alternative, type Method } from '../../model/judge.ts';

interface Reference {
  scipy: string;
  datasets: { name: string; x: number[]; y: number[]; ties: boolean; results: Record<Alternative, Partial<Record<Method | 'auto', { u: number; p: number }>>> }[];
}
const reference = JSON.parse(readFileSync(new URL('../fixtures/judge/reference.json', import.meta.url), 'utf8')) as Reference;

const close = (actual: number, expected: number, what: string): void => {
  const tolerance = 1e-12 + 1e-9 * Math.abs(expected);
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs SciPy ${expected} (|Δ| = ${Math.abs(actual - expected)})`);
};

test(`U and p-values match SciPy ${reference.scipy} (exact, asymptotic with tie and continuity correction, auto)`, () => {
  let compared = 0;
  for (const d of reference.datasets) {
    for (const [alternative, byMethod] of Object.entries(d.results) as [Alternative, Reference['datasets'][number]['results'][Alternative]][]) {
      for (const [method, want] of Object.entries(byMethod) as [Method | 'auto', { u: number; p: number }][]) {
        const got = mannWhitneyU(d.x, d.y, alternative, method);
        const what = `${d.name}, ${alternative}, ${method}`;
        assert.equal(got.u, want.u, `${what}: U`);
        close(got.pValue, want.p, `${what}: p`);
        compared++;
      }
    }
  }
  assert.ok(reference.datasets.some((d) => d.ties));
  assert.ok(compared >= 60, `compared ${compared}`);
});

test('erfc across its range', () => {
  // Reference values: scipy.special.erfc (SciPy 1.17.1).
  close(erfc(0), 1, 'erfc(0)');
  close(erfc(0.5), 0.4795001221869535, 'erfc(0.5)');
  close(erfc(1), 0.15729920705028516, 'erfc(1)');
  close(erfc(2), 0.004677734981047266, 'erfc(2)');
  close(erfc(3), 2.2090496998585445e-5, 'erfc(3)');
  close(erfc(5), 1.5374597944280347e-12, 'erfc(5)');
  close(erfc(-1), 1.8427007929497148, 'erfc(-1)');
});

const lat = (center: number, n: number, spread = 10): number[] => Array.from({ length: n }, (_, i) => center + ((i * 7919) % spread) - spread / 2 + i / 1000);

test('directions: increase fails only when the canary is higher, decrease only when lower, either both', () => {
  const base = lat(100, 30);
  const higher = lat(110, 30);
  assert.equal(judgeMetric({ name: 'l', canary: higher, baseline: base, direction: 'increase' }).classification, 'High');
  assert.equal(judgeMetric({ name: 'l', canary: higher, baseline: base, direction: 'decrease' }).classification, 'Pass');
  assert.equal(judgeMetric({ name: 'l', canary: higher, baseline: base, direction: 'either' }).classification, 'High');
  const lower = lat(90, 30);
  assert.equal(judgeMetric({ name: 'l', canary: lower, baseline: base, direction: 'increase' }).classification, 'Pass');
  assert.equal(judgeMetric({ name: 'l', canary: lower, baseline: base, direction: 'decrease' }).classification, 'Low');
  assert.equal(judgeMetric({ name: 'l', canary: lat(100.5, 30), baseline: base }).classification, 'Pass');
});

test('fail closed: no samples, too few to ever reach the confidence, non-finite samples dropped', () => {
  assert.equal(judgeMetric({ name: 'm', canary: [], baseline: [1, 2, 3] }).classification, 'NoData');
  const tiny = judgeMetric({ name: 'm', canary: [10, 11, 12], baseline: [1, 2, 3], direction: 'increase' });
  assert.equal(tiny.classification, 'NoData'); // smallest one-sided p for 3 vs 3 is 1/20 = 0.05 ≥ 0.02
  assert.match(tiny.reason, /cannot reach confidence 0.98/);
  const m = judgeMetric({ name: 'm', canary: [...lat(100, 20), Number.NaN, Infinity], baseline: lat(100, 20) });
  assert.equal(m.dropped, 2);
  assert.equal(m.canary.count, 20);
});

test('effect size: a significant but small increase is tolerated within allowedIncrease', () => {
  const base = lat(100, 40);
  const canary = lat(104, 40);
  assert.equal(judgeMetric({ name: 'l', canary, baseline: base, direction: 'increase' }).classification, 'High');
  assert.equal(judgeMetric({ name: 'l', canary, baseline: base, direction: 'increase', allowedIncrease: 1.1 }).classification, 'Pass');
  assert.equal(judgeMetric({ name: 'l', canary: lat(130, 40), baseline: base, direction: 'increase', allowedIncrease: 1.1 }).classification, 'High');
});

test('scoring: weighted share of passing metrics against pass and marginal thresholds; critical failures fail', () => {
  const ok = { canary: lat(100, 30), baseline: lat(100, 30) };
  const bad = { canary: lat(120, 30), baseline: lat(100, 30), direction: 'increase' as const };
  const all = judge([{ name: 'a', ...ok }, { name: 'b', ...ok }]);
  assert.deepEqual([all.verdict, all.score], ['Pass', 100]);
  const marginal = judge([{ name: 'a', ...ok, weight: 4 }, { name: 'b', ...bad, weight: 1 }]);
  assert.deepEqual([marginal.verdict, marginal.score], ['Marginal', 80]);
  const failed = judge([{ name: 'a', ...ok, weight: 1 }, { name: 'b', ...bad, weight: 1 }]);
  assert.deepEqual([failed.verdict, failed.score], ['Fail', 50]);
  const critical = judge([{ name: 'a', ...ok, weight: 99 }, { name: 'errors', ...bad, weight: 1, critical: true }]);
  assert.equal(critical.verdict, 'Fail');
  assert.equal(critical.score, 99);
  assert.match(critical.reason, /critical metric\(s\) "errors" \(High\)/);
  assert.equal(judge([{ name: 'a', ...ok }, { name: 'b', canary: [], baseline: [1] }], { passThreshold: 50, marginalThreshold: 25 }).verdict, 'Pass');
  assert.equal(judge([]).verdict, 'Fail');
});
