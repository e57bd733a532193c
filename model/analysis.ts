/**
 * Argo Rollouts analysis semantics as pure functions: one measurement's phase from its value and the
 * metric's conditions, a metric's phase from its measurements and limits, a run's phase from its
 * metrics. Shared by the analysis activity (which measures) and the workflow (which re-derives the
 * verdict from the recorded measurements, so history shows why a release moved on or rolled back).
 */
import { ConditionError, evaluateCondition } from './condition.ts';
import type { AnalysisPhase, AnalysisRunResult, AnalysisRunSpec, Measurement, MetricResult, MetricSpec, Tally } from './types.ts';

export type { Tally } from './types.ts';

/** Argo's defaults (utils/defaults). */
export const DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4;
export const DEFAULT_ERROR_RETRY_INTERVAL_MS = 10_000;
/** Argo's DefaultMeasurementHistoryLimit: measurements kept per metric unless `measurementRetention` says otherwise. */
export const DEFAULT_MEASUREMENT_RETENTION = 10;
/** The most measurements a metric may keep: every kept one travels in each heartbeat and in the result. */
export const MAX_MEASUREMENT_RETENTION = 100;
/** The shortest `interval` accepted (Argo has no floor; `0s` would measure in a hot loop). */
export const MIN_INTERVAL_MS = 1_000;
/** A job metric whose JobSpec sets no `activeDeadlineSeconds` gives up on a measurement after this long. */
export const DEFAULT_JOB_MEASUREMENT_TIMEOUT_MS = 3_600_000;
/** Time the Job controller gets, past `activeDeadlineSeconds`, to mark the Job Failed. */
export const JOB_DEADLINE_GRACE_MS = 60_000;
/** Slack past a web or Prometheus request timeout (connection set-up, reading the answer). */
const REQUEST_GRACE_MS = 10_000;
/** Argo's defaults for the web (`timeoutSeconds`) and Prometheus (`timeout`) request timeouts. */
const DEFAULT_WEB_TIMEOUT_S = 10;
const DEFAULT_PROMETHEUS_TIMEOUT_S = 30;

/** A measurement's phase from its value, as Argo's EvaluateResult decides it. */
export function evaluateMeasurement(
  metric: Pick<MetricSpec, 'successCondition' | 'failureCondition'>,
  value: unknown,
): { phase: Exclude<AnalysisPhase, 'Running' | 'Pending'>; message?: string } {
  let success = false;
  let failure = false;
  try {
    if (metric.successCondition) success = evaluateCondition(metric.successCondition, value);
    if (metric.failureCondition) failure = evaluateCondition(metric.failureCondition, value);
  } catch (err) {
    if (err instanceof ConditionError) return { phase: 'Error', message: err.message };
    throw err;
  }
  if (!metric.successCondition && !metric.failureCondition) return { phase: 'Successful' };
  if (metric.successCondition && !metric.failureCondition) failure = !success;
  if (!metric.successCondition && metric.failureCondition) success = !failure;
  if (failure) return { phase: 'Failed' };
  if (!success) return { phase: 'Inconclusive' };
  return { phase: 'Successful' };
}

/**
 * How many measurements a metric wants, as Argo's EffectiveCount: `count` when above 0; else (unset
 * or 0) one without an interval, unbounded with one.
 */
export function effectiveCount(metric: Pick<MetricSpec, 'count' | 'intervalMs'>): number | undefined {
  if (metric.count !== undefined && metric.count > 0) return metric.count;
  return metric.intervalMs === undefined ? 1 : undefined;
}

/** How many of its latest measurements a metric keeps. */
export function retentionOf(metric: Pick<MetricSpec, 'measurementRetention'>): number {
  return Math.max(1, metric.measurementRetention ?? DEFAULT_MEASUREMENT_RETENTION);
}

/**
 * How long one measurement may take before the analysis gives up on it (an Error measurement): a
 * Job's `activeDeadlineSeconds` plus time for the controller to fail it, else an hour; a web or
 * Prometheus request's timeout plus slack.
 */
export function measurementTimeoutMs(metric: Pick<MetricSpec, 'provider'>): number {
  const p = metric.provider;
  if ('job' in p) {
    const deadline = (p.job.spec as { activeDeadlineSeconds?: unknown }).activeDeadlineSeconds;
    return typeof deadline === 'number' && deadline > 0 ? deadline * 1000 + JOB_DEADLINE_GRACE_MS : DEFAULT_JOB_MEASUREMENT_TIMEOUT_MS;
  }
  if ('web' in p) return (p.web.timeoutSeconds ?? DEFAULT_WEB_TIMEOUT_S) * 1000 + REQUEST_GRACE_MS;
  // The judge: two range queries per judged metric, one after another.
  if ('judge' in p) return 2 * p.judge.metrics.length * (p.judge.timeout ?? DEFAULT_PROMETHEUS_TIMEOUT_S) * 1000 + REQUEST_GRACE_MS;
  return (p.prometheus.timeout ?? DEFAULT_PROMETHEUS_TIMEOUT_S) * 1000 + REQUEST_GRACE_MS;
}

/**
 * The longest a run should take when every measurement runs to its timeout: per metric, the
 * initial delay and `count` × (interval + measurement timeout); the slowest metric. `undefined` for a
 * run with an unbounded metric.
 */
export function expectedRunMs(run: Pick<AnalysisRunSpec, 'metrics'>): number | undefined {
  let longest = 0;
  for (const m of run.metrics) {
    const count = effectiveCount(m);
    if (count === undefined) return undefined;
    longest = Math.max(longest, (m.initialDelayMs ?? 0) + count * ((m.intervalMs ?? 0) + measurementTimeoutMs(m)));
  }
  return longest;
}

export const EMPTY_TALLY: Readonly<Tally> = Object.freeze({ count: 0, successful: 0, failed: 0, inconclusive: 0, error: 0, consecutiveError: 0 });

/** The counts after one more measurement. */
export function addToTally(t: Readonly<Tally>, phase: Measurement['phase']): Tally {
  const next = { ...t };
  if (phase === 'Error') {
    next.error++;
    next.consecutiveError++;
    return next;
  }
  next.count++;
  next.consecutiveError = 0;
  if (phase === 'Successful') next.successful++;
  else if (phase === 'Failed') next.failed++;
  else next.inconclusive++;
  return next;
}

export function tally(measurements: readonly Measurement[]): Tally {
  return measurements.reduce((t, m) => addToTally(t, m.phase), { ...EMPTY_TALLY });
}

/** A metric's record in a run: its latest measurements and the exact counts of all it took. */
export interface MetricRecord {
  measurements: readonly Measurement[];
  /** Absent: counted from `measurements` (which then hold every measurement). */
  tally?: Tally | undefined;
}

/** Appends a measurement: counts exact, measurements trimmed to the metric's retention. */
export function recordMeasurement(metric: Pick<MetricSpec, 'measurementRetention'>, rec: MetricRecord, m: Measurement): { measurements: Measurement[]; tally: Tally } {
  const counts = addToTally(rec.tally ?? tally(rec.measurements), m.phase);
  return { measurements: [...rec.measurements, m].slice(-retentionOf(metric)), tally: counts };
}

/**
 * A metric's phase, as Argo's assessMetricStatus: limits first (failed > failureLimit → Failed,
 * inconclusive > inconclusiveLimit → Inconclusive, consecutive errors > consecutiveErrorLimit →
 * Error), then Successful once `count` measurements exist; `terminating` ends a metric still running
 * (Successful, as in Argo). Counts come from `counts` (exact), the error message from the last kept
 * measurement.
 */
export function assessMetric(
  metric: MetricSpec,
  measurements: readonly Measurement[],
  terminating = false,
  counts: Tally = tally(measurements),
): { phase: AnalysisPhase; message?: string } {
  const t = counts;
  if (t.count + t.error === 0) return { phase: terminating ? 'Successful' : 'Pending' };
  if (metric.failureLimit >= 0 && t.failed > metric.failureLimit) {
    return { phase: 'Failed', message: `failed (${t.failed}) > failureLimit (${metric.failureLimit})` };
  }
  if (metric.inconclusiveLimit >= 0 && t.inconclusive > metric.inconclusiveLimit) {
    return {
      phase: 'Inconclusive',
      message: `inconclusive (${t.inconclusive}) > inconclusiveLimit (${metric.inconclusiveLimit})`,
    };
  }
  if (t.consecutiveError > metric.consecutiveErrorLimit) {
    const last = measurements[measurements.length - 1];
    return {
      phase: 'Error',
      message:
        `consecutiveErrors (${t.consecutiveError}) > consecutiveErrorLimit (${metric.consecutiveErrorLimit})` +
        (last?.message ? `: ${last.message}` : ''),
    };
  }
  const want = effectiveCount(metric);
  if (want !== undefined && t.count >= want) return { phase: 'Successful' };
  return { phase: terminating ? 'Successful' : 'Running' };
}

const ORDER: AnalysisPhase[] = ['Pending', 'Running', 'Successful', 'Inconclusive', 'Error', 'Failed'];

/** True when `b` is a worse outcome than `a` (Argo's IsWorse). */
export function isWorse(a: AnalysisPhase, b: AnalysisPhase): boolean {
  return ORDER.indexOf(b) > ORDER.indexOf(a);
}

export function isCompleted(phase: AnalysisPhase): boolean {
  return phase === 'Successful' || phase === 'Failed' || phase === 'Error' || phase === 'Inconclusive';
}

/** A metric phase that ends the whole run (Argo's IsTerminating), unless the metric is dry-run. */
function terminates(phase: AnalysisPhase): boolean {
  return phase === 'Failed' || phase === 'Error' || phase === 'Inconclusive';
}

type Records = Readonly<Record<string, readonly Measurement[] | MetricRecord>>;

function recordOf(results: Records, name: string): MetricRecord {
  const r = results[name];
  if (r === undefined) return { measurements: [] };
  return Array.isArray(r) ? { measurements: r } : (r as MetricRecord);
}

/**
 * A run's phase, as Argo's assessRunStatus. The run is terminating when asked (`terminate`) or as
 * soon as a metric that is not dry-run is Failed, Error or Inconclusive (Argo's IsTerminating): every
 * metric still running then ends (Successful), dry-run ones included. Otherwise the run is Running
 * while any metric runs, dry-run ones included (they measure to their own count). A finished run is
 * the worst phase of its metrics that are not dry-run; dry-run metrics are assessed and reported but
 * never decide it.
 */
export function assessRun(
  metrics: readonly MetricSpec[],
  results: Records,
  terminate = false,
): { phase: AnalysisPhase; message?: string; metrics: MetricResult[] } {
  const records = metrics.map((metric) => {
    const rec = recordOf(results, metric.name);
    return { metric, rec, counts: rec.tally ?? tally(rec.measurements) };
  });
  const terminating = terminate || records.some(({ metric, rec, counts }) => !metric.dryRun && terminates(assessMetric(metric, rec.measurements, false, counts).phase));

  const out: MetricResult[] = [];
  let worst: AnalysisPhase | undefined;
  let worstMessage: string | undefined;
  let running = false;
  for (const { metric, rec, counts } of records) {
    const assessed = assessMetric(metric, rec.measurements, terminating, counts);
    out.push({ name: metric.name, dryRun: metric.dryRun, phase: assessed.phase, message: assessed.message, ...counts, measurements: [...rec.measurements] });
    if (!isCompleted(assessed.phase)) running = true;
    if (metric.dryRun || !isCompleted(assessed.phase)) continue;
    if (worst === undefined || isWorse(worst, assessed.phase)) {
      worst = assessed.phase;
      worstMessage = `metric "${metric.name}" assessed ${assessed.phase}${assessed.message ? `: ${assessed.message}` : ''}`;
    }
  }
  if (running) return { phase: 'Running', metrics: out };
  // Only dry-run metrics, or none: nothing can fail the run.
  if (worst === undefined) return { phase: 'Successful', message: 'no metric decides this run (all dry-run)', metrics: out };
  return { phase: worst, message: worstMessage, metrics: out };
}

/**
 * Re-derives a finished run's verdict from its recorded measurements and counts (used by the
 * workflow; the per-metric measurements it returns are the retained ones). A returned run is over:
 * dry-run metrics an older worker left running count as stopped, and a deciding metric left running
 * is an Error (fail closed), never a pass.
 */
export function verdictOf(metrics: readonly MetricSpec[], run: Pick<AnalysisRunResult, 'metrics' | 'terminated'>): ReturnType<typeof assessRun> {
  const results: Record<string, MetricRecord> = {};
  for (const m of run.metrics) results[m.name] = { measurements: m.measurements, tally: m.tally };
  const verdict = assessRun(metrics, results, run.terminated);
  if (verdict.phase !== 'Running') return verdict;
  const unfinished = verdict.metrics.filter((m) => !m.dryRun && !isCompleted(m.phase)).map((m) => `"${m.name}"`);
  if (unfinished.length === 0) return assessRun(metrics, results, true);
  return { ...verdict, phase: 'Error', message: `the analysis ended before metric(s) ${unfinished.join(', ')} finished` };
}
