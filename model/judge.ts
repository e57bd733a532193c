/**
 * A statistical canary judge in the manner of Kayenta (Netflix/Spinnaker): per metric, canary samples
 * are compared with baseline samples by a Mann-Whitney U test; a metric fails when the canary is
 * significantly higher (direction `increase`), lower (`decrease`) or either (`either`) at the given
 * confidence (default 0.98); a failing critical metric fails the whole judgment; otherwise the
 * weighted share of passing metrics is the score (0–100), read against pass and marginal thresholds.
 *
 * The U test follows SciPy's `mannwhitneyu` (which the tests check against, test/fixtures/judge):
 * U is the canary's statistic U1 = R1 − n1(n1+1)/2 with mid-ranks for ties; p-values are exact (the
 * null distribution of U, counted) for small samples without ties, else the normal approximation with
 * tie correction and continuity correction. Pure and deterministic: safe in workflow code.
 *
 * Fail closed: a metric with no samples on either side, or too few for the test ever to reach the
 * confidence, is `NoData` and does not pass.
 */

export type Direction = 'increase' | 'decrease' | 'either';
export type Alternative = 'two-sided' | 'greater' | 'less';
export type Method = 'exact' | 'asymptotic';

export interface MannWhitneyResult {
  /** U1, the statistic of the first sample (the canary), as SciPy reports it. */
  u: number;
  pValue: number;
  method: Method;
  alternative: Alternative;
  /** The standardised statistic (asymptotic method only). */
  z?: number;
}

// ---- the normal tail -------------------------------------------------------------------------------

/** erfc(x), to about 1e-14 relative: Taylor series of erf below 2, a continued fraction (Lentz) above. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) {
    // erf(x) = 2/√π Σ (−1)ⁿ x^(2n+1) / (n! (2n+1))
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (x > 27) return 0;
  // erfc(x) = exp(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? 1 / tiny : 1 / d;
    c = x + a / c;
    if (Math.abs(c) < tiny) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** P(Z > z) for a standard normal Z. */
export function normalSf(z: number): number {
  if (z === Infinity) return 0;
  if (z === -Infinity) return 1;
  return 0.5 * erfc(z / Math.SQRT2);
}

// ---- the U test ------------------------------------------------------------------------------------

/** Mid-ranks (1-based) of `values`, and Σ(t³ − t) over groups of ties. */
export function rankWithTies(values: readonly number[]): { ranks: number[]; tieTerm: number } {
  const order = values.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(values.length);
  let tieTerm = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && (order[j + 1] as readonly [number, number])[0] === (order[i] as readonly [number, number])[0]) j++;
    const mid = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[(order[k] as readonly [number, number])[1]] = mid;
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    i = j + 1;
  }
  return { ranks, tieTerm };
}

const exactCache = new Map<string, Float64Array>();

/**
 * The null distribution of U for samples of m and n without ties, as tail sums: `tail[u]` = P(U ≥ u).
 * Counts are the coefficients of the Gaussian binomial [m+n choose m]_q, built factor by factor.
 */
function exactTail(m: number, n: number): Float64Array {
  const key = `${Math.min(m, n)}x${Math.max(m, n)}`;
  const hit = exactCache.get(key);
  if (hit) return hit;
  const a = Math.min(m, n);
  const b = Math.max(m, n);
  const size = a * b + 1;
  const c = new Float64Array(size);
  c[0] = 1;
  for (let i = 1; i <= a; i++) {
    // multiply by (1 − q^(b+i)), then divide by (1 − q^i): the result is [b+i choose i]_q
    for (let k = size - 1; k >= b + i; k--) c[k] = (c[k] as number) - (c[k - b - i] as number);
    for (let k = i; k < size; k++) c[k] = (c[k] as number) + (c[k - i] as number);
  }
  let total = 0;
  for (let k = 0; k < size; k++) total += c[k] as number;
  const tail = new Float64Array(size + 1);
  let acc = 0;
  for (let k = size - 1; k >= 0; k--) {
    acc += c[k] as number;
    tail[k] = acc / total;
  }
  exactCache.set(key, tail);
  return tail;
}

/** SciPy's 'auto' rule: exact when a sample has at most 8 values and there are no ties. */
export function autoMethod(n1: number, n2: number, hasTies: boolean): Method {
  return (n1 <= 8 || n2 <= 8) && !hasTies ? 'exact' : 'asymptotic';
}

/**
 * Mann-Whitney U test of `x` against `y` (SciPy `mannwhitneyu(x, y, alternative, method,
 * use_continuity=True)`): `greater` tests x stochastically greater than y.
 */
export function mannWhitneyU(x: readonly number[], y: readonly number[], alternative: Alternative = 'two-sided', method: Method | 'auto' = 'auto'): MannWhitneyResult {
  const n1 = x.length;
  const n2 = y.length;
  if (n1 === 0 || n2 === 0) throw new RangeError('mannWhitneyU needs at least one value in each sample');
  const { ranks, tieTerm } = rankWithTies([...x, ...y]);
  let r1 = 0;
  for (let i = 0; i < n1; i++) r1 += ranks[i] as number;
  const u1 = r1 - (n1 * (n1 + 1)) / 2;
  const u2 = n1 * n2 - u1;
  const chosen = method === 'auto' ? autoMethod(n1, n2, tieTerm > 0) : method;
  const [u, factor] = alternative === 'greater' ? [u1, 1] : alternative === 'less' ? [u2, 1] : [Math.max(u1, u2), 2];

  if (chosen === 'exact') {
    const tail = exactTail(n1, n2);
    const p = factor * (tail[Math.max(0, Math.ceil(u - 1e-9))] ?? 0);
    return { u: u1, pValue: Math.min(1, p), method: 'exact', alternative };
  }
  const n = n1 + n2;
  const mu = (n1 * n2) / 2;
  const s = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  const z = s === 0 ? (u - mu - 0.5 >= 0 ? Infinity : -Infinity) : (u - mu - 0.5) / s;
  const p = Math.min(1, Math.max(0, factor * normalSf(z)));
  return { u: u1, pValue: p, method: 'asymptotic', alternative, z };
}

// ---- the judgment ----------------------------------------------------------------------------------

export interface JudgeMetric {
  name: string;
  canary: readonly number[];
  baseline: readonly number[];
  /** Which change is bad: `increase` (errors, latency), `decrease` (throughput), `either`. Default `either`. */
  direction?: Direction;
  /** A critical metric that does not pass fails the whole judgment. */
  critical?: boolean;
  /** Share of the score. Default 1. */
  weight?: number;
  /**
   * Kayenta's effect size: a significant change is tolerated while mean(canary)/mean(baseline)
   * stays within these ratios (e.g. allowedIncrease 1.1 tolerates +10 %). Default 1 (none).
   */
  allowedIncrease?: number;
  allowedDecrease?: number;
}

export interface JudgeOptions {
  /** Default 0.98: a change is significant when p < 1 − confidence. */
  confidence?: number;
  /** Scores at or above pass (default 95) pass; at or above marginal (default 75) are marginal; below fail. */
  passThreshold?: number;
  marginalThreshold?: number;
}

export type Classification = 'Pass' | 'High' | 'Low' | 'NoData';

export interface MetricJudgment {
  name: string;
  classification: Classification;
  critical: boolean;
  weight: number;
  reason: string;
  test?: MannWhitneyResult;
  canary: { count: number; median: number | undefined; mean: number | undefined };
  baseline: { count: number; median: number | undefined; mean: number | undefined };
  /** Non-finite samples dropped (NaN, ±Inf). */
  dropped: number;
}

export interface Judgment {
  verdict: 'Pass' | 'Marginal' | 'Fail';
  score: number;
  reason: string;
  metrics: MetricJudgment[];
}

export const JUDGE_DEFAULTS = { confidence: 0.98, passThreshold: 95, marginalThreshold: 75 } as const;

function summary(values: readonly number[]): { count: number; median: number | undefined; mean: number | undefined } {
  if (values.length === 0) return { count: 0, median: undefined, mean: undefined };
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { count: s.length, median, mean: s.reduce((a, b) => a + b, 0) / s.length };
}

function alternativeOf(direction: Direction): Alternative {
  return direction === 'increase' ? 'greater' : direction === 'decrease' ? 'less' : 'two-sided';
}

/** The smallest p-value the test could give for these sample sizes (all canary values above, or below, all baseline values). */
function minimumP(n1: number, n2: number, alternative: Alternative): number {
  const low = (k: number): number[] => Array.from({ length: k }, (_, i) => i);
  const high = (k: number): number[] => Array.from({ length: k }, (_, i) => 1_000_000 + i);
  return alternative === 'less' ? mannWhitneyU(low(n1), high(n2), alternative).pValue : mannWhitneyU(high(n1), low(n2), alternative).pValue;
}

export function judgeMetric(metric: JudgeMetric, options: JudgeOptions = {}): MetricJudgment {
  const confidence = options.confidence ?? JUDGE_DEFAULTS.confidence;
  const alpha = 1 - confidence;
  const direction = metric.direction ?? 'either';
  const canary = metric.canary.filter(Number.isFinite);
  const baseline = metric.baseline.filter(Number.isFinite);
  const base = {
    name: metric.name,
    critical: metric.critical ?? false,
    weight: metric.weight ?? 1,
    canary: summary(canary),
    baseline: summary(baseline),
    dropped: metric.canary.length - canary.length + (metric.baseline.length - baseline.length),
  };
  if (canary.length === 0 || baseline.length === 0) {
    return { ...base, classification: 'NoData', reason: `no ${canary.length === 0 ? 'canary' : 'baseline'} samples` };
  }
  const alternative = alternativeOf(direction);
  const floor = minimumP(canary.length, baseline.length, alternative);
  if (floor >= alpha) {
    return { ...base, classification: 'NoData', reason: `${canary.length} canary and ${baseline.length} baseline samples cannot reach confidence ${confidence} (smallest possible p = ${floor.toPrecision(3)})` };
  }
  const test = mannWhitneyU(canary, baseline, alternative);
  const significant = test.pValue < alpha;
  const higher = test.u > (canary.length * baseline.length) / 2;
  const ratio = (base.canary.mean as number) / (base.baseline.mean as number);
  const within = higher ? ratio <= (metric.allowedIncrease ?? 1) : ratio >= (metric.allowedDecrease ?? 1);
  const p = `p = ${test.pValue.toPrecision(3)} (${test.method}, ${alternative})`;
  if (!significant || (Number.isFinite(ratio) && within && (metric.allowedIncrease !== undefined || metric.allowedDecrease !== undefined))) {
    return { ...base, classification: 'Pass', test, reason: significant ? `${p}, but mean ratio ${ratio.toFixed(3)} is within the allowed effect size` : `no significant ${direction === 'either' ? 'change' : direction}: ${p} ≥ ${alpha.toPrecision(3)}` };
  }
  return { ...base, classification: higher ? 'High' : 'Low', test, reason: `canary ${higher ? 'higher' : 'lower'} than baseline: ${p} < ${alpha.toPrecision(3)}` };
}

/** Judges every metric and scores the canary. */
export function judge(metrics: readonly JudgeMetric[], options: JudgeOptions = {}): Judgment {
  const passAt = options.passThreshold ?? JUDGE_DEFAULTS.passThreshold;
  const marginalAt = options.marginalThreshold ?? JUDGE_DEFAULTS.marginalThreshold;
  const judged = metrics.map((m) => judgeMetric(m, options));
  const total = judged.reduce((a, m) => a + m.weight, 0);
  const passed = judged.reduce((a, m) => a + (m.classification === 'Pass' ? m.weight : 0), 0);
  const score = total > 0 ? (100 * passed) / total : 0;
  const criticalFailed = judged.filter((m) => m.critical && m.classification !== 'Pass');
  if (judged.length === 0) return { verdict: 'Fail', score: 0, reason: 'no metrics to judge', metrics: judged };
  if (criticalFailed.length > 0) {
    return { verdict: 'Fail', score, reason: `critical metric(s) ${criticalFailed.map((m) => `"${m.name}" (${m.classification})`).join(', ')} did not pass`, metrics: judged };
  }
  const verdict = score >= passAt ? 'Pass' : score >= marginalAt ? 'Marginal' : 'Fail';
  return { verdict, score, reason: `score ${score.toFixed(1)} (pass ≥ ${passAt}, marginal ≥ ${marginalAt})`, metrics: judged };
}
