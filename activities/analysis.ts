/**
 * The analysis activity: runs every metric of one analysis run on its own schedule (initialDelay,
 * interval, count), keeps measurements in heartbeat details so a retried attempt resumes where the
 * last one stopped, stops as soon as the run is decided, and honours cancellation (abort).
 */
import { Context, CancelledFailure } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { assessRun, effectiveCount, evaluateMeasurement, DEFAULT_ERROR_RETRY_INTERVAL_MS } from '../spec/analysis.ts';
import type { AnalysisRunResult, AnalysisRunSpec, Measurement, MetricSpec } from '../spec/types.ts';
import type { ActivityDeps, MetricProvider, ReleaseTarget } from './contract.ts';
import { ErrorType } from './errors.ts';

interface Progress {
  startedAt: number;
  measurements: Record<string, Measurement[]>;
}

const HEARTBEAT_EVERY_MS = 5_000;

export function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function providerOf(metric: MetricSpec, providers: Record<string, MetricProvider>): MetricProvider {
  const type = Object.keys(metric.provider)[0] ?? '';
  const provider = providers[type];
  if (!provider) {
    throw ApplicationFailure.nonRetryable(`metric "${metric.name}": provider "${type}" is not available on this worker`, ErrorType.UnsupportedProvider);
  }
  return provider;
}

/** Resolves secretKeyRef args inside the activity; their values never reach history. */
async function resolveArgs(target: ReleaseTarget, run: AnalysisRunSpec, deps: ActivityDeps): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(run.args)) {
    if ('value' in v) out[name] = v.value;
    else {
      if (!deps.secrets) throw ApplicationFailure.nonRetryable(`arg "${name}" refers to a Secret but this worker has no secret resolver`, ErrorType.InvalidSpec);
      out[name] = await deps.secrets(target.namespace, v.secretKeyRef);
    }
  }
  return out;
}

export async function runAnalysis(deps: ActivityDeps, target: ReleaseTarget, run: AnalysisRunSpec, opts: { background: boolean }): Promise<AnalysisRunResult> {
  const ctx = Context.current();
  const now = deps.now ?? (() => new Date());
  const sleep = deps.sleep ?? defaultSleep;
  const providers = deps.metrics ?? {};
  const signal = ctx.cancellationSignal;

  const previous = ctx.info.heartbeatDetails as Progress | undefined;
  const progress: Progress = previous ?? { startedAt: now().getTime(), measurements: Object.fromEntries(run.metrics.map((m) => [m.name, []])) };
  for (const m of run.metrics) providerOf(m, providers); // fail fast on a provider this worker lacks
  const args = await resolveArgs(target, run, deps);

  const nextDue = (metric: MetricSpec): number | undefined => {
    const ms = progress.measurements[metric.name] ?? [];
    const want = effectiveCount(metric);
    const counted = ms.filter((m) => m.phase !== 'Error').length;
    if (want !== undefined && counted >= want) return undefined;
    const last = ms[ms.length - 1];
    if (!last) return progress.startedAt + (metric.initialDelayMs ?? 0);
    const interval = metric.intervalMs ?? (last.phase === 'Error' ? DEFAULT_ERROR_RETRY_INTERVAL_MS : undefined);
    return interval === undefined ? undefined : Date.parse(last.finishedAt) + interval;
  };

  const measureOne = async (metric: MetricSpec): Promise<Measurement> => {
    const startedAt = now().toISOString();
    try {
      const measurement = (progress.measurements[metric.name]?.length ?? 0) + 1;
      const value = await providerOf(metric, providers).measure(metric, { args, signal, namespace: target.namespace, releaseId: target.releaseId, measurement });
      const verdict = evaluateMeasurement(metric, value);
      return { phase: verdict.phase, value, ...(verdict.message ? { message: verdict.message } : {}), startedAt, finishedAt: now().toISOString() };
    } catch (err) {
      if (signal.aborted) throw err;
      if (err instanceof ApplicationFailure && err.nonRetryable) throw err; // e.g. a query Prometheus rejects
      return { phase: 'Error', message: (err as Error).message, startedAt, finishedAt: now().toISOString() };
    }
  };

  for (;;) {
    const assessed = assessRun(run.metrics, progress.measurements);
    if (assessed.phase !== 'Running' && assessed.phase !== 'Pending') {
      return { metrics: run.metrics.map((m) => ({ name: m.name, measurements: progress.measurements[m.name] ?? [] })), terminated: false };
    }
    const due = run.metrics.map((m) => ({ m, at: nextDue(m) })).filter((d): d is { m: MetricSpec; at: number } => d.at !== undefined);
    if (due.length === 0) {
      // Only dry-run metrics left running, or nothing to measure: the run is over.
      return { metrics: run.metrics.map((m) => ({ name: m.name, measurements: progress.measurements[m.name] ?? [] })), terminated: true };
    }
    const earliest = Math.min(...due.map((d) => d.at));
    const wait = earliest - now().getTime();
    try {
      if (wait > 0) await sleep(Math.min(wait, HEARTBEAT_EVERY_MS), signal);
      if (earliest > now().getTime()) {
        ctx.heartbeat(progress);
        continue;
      }
      const ready = due.filter((d) => d.at <= now().getTime()).map((d) => d.m);
      const results = await Promise.all(ready.map(measureOne));
      ready.forEach((m, i) => (progress.measurements[m.name] as Measurement[]).push(results[i] as Measurement));
      ctx.heartbeat(progress);
    } catch (err) {
      // What was measured goes with the cancellation: the workflow records the run as terminated with it.
      if (signal.aborted) throw new CancelledFailure(`analysis ${run.name} cancelled${opts.background ? ' (background)' : ''}`, [progress]);
      throw err;
    }
  }
}
