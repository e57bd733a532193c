/**
 * Argo Rollouts analysis semantics as pure functions: one measurement's phase from its value and the
 * metric's conditions, a metric's phase from its measurements and limits, a run's phase from its
 * metrics. Shared by the analysis activity (which measures) and the workflow (which re-derives the
 * verdict from the recorded measurements, so history shows why a release moved on or rolled back).
 */
import { ConditionError, evaluateCondition } from './condition.ts';
import type { AnalysisPhase, AnalysisRunResult, Measurement, MetricResult, MetricSpec } from './types.ts';

/** Argo's defaults (utils/defaults). */
export const DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4;
export const DEFAULT_ERROR_RETRY_INTERVAL_MS = 10_000;

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

/** How many measurements a metric wants: `count`, else one if it has no interval, else unbounded. */
export function effectiveCount(metric: Pick<MetricSpec, 'count' | 'intervalMs'>): number | undefined {
  if (metric.count !== undefined) return metric.count;
  return metric.intervalMs === undefined ? 1 : undefined;
}

export interface Tally {
  count: number;
  successful: number;
  failed: number;
  inconclusive: number;
  error: number;
  consecutiveError: number;
}

export function tally(measurements: readonly Measurement[]): Tally {
  const t: Tally = { count: 0, successful: 0, failed: 0, inconclusive: 0, error: 0, consecutiveError: 0 };
  for (const m of measurements) {
    switch (m.phase) {
      case 'Successful':
        t.successful++;
        t.count++;
        t.consecutiveError = 0;
        break;
      case 'Failed':
        t.failed++;
        t.count++;
        t.consecutiveError = 0;
        break;
      case 'Inconclusive':
        t.inconclusive++;
        t.count++;
        t.consecutiveError = 0;
        break;
      case 'Error':
        t.error++;
        t.consecutiveError++;
        break;
    }
  }
  return t;
}

/**
 * A metric's phase, as Argo's assessMetricStatus: limits first (failed > failureLimit → Failed,
 * inconclusive > inconclusiveLimit → Inconclusive, consecutive errors > consecutiveErrorLimit →
 * Error), then Successful once `count` measurements exist; `terminating` ends an unbounded metric.
 */
export function assessMetric(
  metric: MetricSpec,
  measurements: readonly Measurement[],
  terminating = false,
): { phase: AnalysisPhase; message?: string } {
  if (measurements.length === 0) return { phase: terminating ? 'Successful' : 'Pending' };
  const t = tally(measurements);
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

/**
 * A run's phase: Running while any metric runs, else the worst metric phase. Dry-run metrics are
 * assessed and reported but never decide the run. A Failed or Error metric decides at once
 * (the run terminates the others), as in Argo.
 */
export function assessRun(
  metrics: readonly MetricSpec[],
  results: Readonly<Record<string, readonly Measurement[]>>,
  terminating = false,
): { phase: AnalysisPhase; message?: string; metrics: MetricResult[] } {
  const out: MetricResult[] = [];
  let worst: AnalysisPhase | undefined;
  let worstMessage: string | undefined;
  let running = false;
  let decisive = false;
  for (const metric of metrics) {
    const measurements = results[metric.name] ?? [];
    const assessed = assessMetric(metric, measurements, terminating);
    out.push({ name: metric.name, dryRun: metric.dryRun, phase: assessed.phase, message: assessed.message, ...tally(measurements), measurements: [...measurements] });
    if (metric.dryRun) continue;
    if (!isCompleted(assessed.phase)) {
      running = true;
      continue;
    }
    if (assessed.phase === 'Failed' || assessed.phase === 'Error') decisive = true;
    if (worst === undefined || isWorse(worst, assessed.phase)) {
      worst = assessed.phase;
      worstMessage = `metric "${metric.name}" assessed ${assessed.phase}${assessed.message ? `: ${assessed.message}` : ''}`;
    }
  }
  if (decisive && worst !== undefined) return { phase: worst, message: worstMessage, metrics: out };
  if (running) return { phase: 'Running', metrics: out };
  // Only dry-run metrics, or none: nothing can fail the run.
  if (worst === undefined) return { phase: 'Successful', message: 'no metric decides this run (all dry-run)', metrics: out };
  return { phase: worst, message: worstMessage, metrics: out };
}

/** Re-derives a finished run's verdict from its recorded measurements (used by the workflow). */
export function verdictOf(metrics: readonly MetricSpec[], run: Pick<AnalysisRunResult, 'metrics' | 'terminated'>): ReturnType<typeof assessRun> {
  const results: Record<string, Measurement[]> = {};
  for (const m of run.metrics) results[m.name] = m.measurements;
  return assessRun(metrics, results, run.terminated);
}
