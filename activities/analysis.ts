/**
 * The analysis activity: runs every metric of one analysis run on its own schedule (initialDelay,
 * interval, count), keeps exact counts and the latest measurements (each metric's retention) in
 * heartbeat details so a retried attempt resumes where the last one stopped, stops as soon as the run
 * is decided (model/analysis.ts), and honours cancellation (abort).
 *
 * It heartbeats every few seconds, also while a measurement runs; each measurement is bounded by its
 * own timeout (model/analysis.ts measurementTimeoutMs) and ends as an Error measurement when it passes.
 * A provider that leaves objects behind (the job provider's Jobs) deletes them when a measurement is
 * abandoned, and a retried attempt first asks it to delete what an earlier attempt left.
 */
import { Context, CancelledFailure } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { assessRun, effectiveCount, evaluateMeasurement, measurementTimeoutMs, recordMeasurement, tally, DEFAULT_ERROR_RETRY_INTERVAL_MS, MIN_INTERVAL_MS, type MetricRecord } from '../model/analysis.ts';
import type { AnalysisRunResult, AnalysisRunSpec, Measurement, MetricSpec, Tally } from '../model/types.ts';
import type { ActivityDeps, MetricProvider, ReleaseTarget } from './contract.ts';
import { ErrorType } from './errors.ts';
import { redact, redactValue } from './metrics/redact.ts';

/** Heartbeat details: what a retried attempt resumes from. Bounded: counts plus the retained measurements. */
export interface Progress {
  startedAt: number;
  metrics: Record<string, { measurements: Measurement[]; tally: Tally }>;
  /** Per metric, what its running measurement created (a Job's name), for a retried attempt to delete. */
  inflight: Record<string, string>;
}

/** Heartbeat details an older worker wrote: every measurement, no counts. */
interface LegacyProgress {
  startedAt: number;
  measurements: Record<string, Measurement[]>;
}

export const HEARTBEAT_EVERY_MS = 5_000;

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

/**
 * Resolves secretKeyRef args inside the activity; their values never reach history: `secrets` holds
 * them for redaction of every value, message and error the activity reports.
 */
async function resolveArgs(target: ReleaseTarget, run: AnalysisRunSpec, deps: ActivityDeps): Promise<{ args: Record<string, string>; secrets: string[] }> {
  const args: Record<string, string> = {};
  const secrets: string[] = [];
  for (const [name, v] of Object.entries(run.args)) {
    if ('value' in v) args[name] = v.value;
    else {
      if (!deps.secrets) throw ApplicationFailure.nonRetryable(`arg "${name}" refers to a Secret but this worker has no secret resolver`, ErrorType.InvalidSpec);
      args[name] = await deps.secrets(target.namespace, v.secretKeyRef);
      secrets.push(args[name]);
    }
  }
  return { args, secrets };
}

/**
 * A failure to rethrow with secrets redacted from its message. A new failure, so that neither its
 * stack (which repeats the message) nor its cause carries the original text into history.
 */
function redactedFailure(err: unknown, secrets: string[]): unknown {
  if (secrets.length === 0 || !(err instanceof Error) || err instanceof CancelledFailure) return err;
  const message = redact(err.message, secrets);
  if (message === err.message && (err.stack === undefined || redact(err.stack, secrets) === err.stack) && err.cause === undefined) return err;
  if (err instanceof ApplicationFailure) {
    return ApplicationFailure.create({ message, type: err.type ?? undefined, nonRetryable: err.nonRetryable === true, details: redactValue(err.details ?? [], secrets) as unknown[] });
  }
  return new Error(message);
}

/** Progress from the last attempt's heartbeat, converted from an older worker's format; else a fresh start. */
function resume(run: AnalysisRunSpec, details: unknown, startedAt: number): { progress: Progress; resumed: boolean } {
  const fresh = (): Progress['metrics'] => Object.fromEntries(run.metrics.map((m) => [m.name, { measurements: [], tally: tally([]) }]));
  const d = details as Partial<Progress & LegacyProgress> | undefined;
  if (d?.metrics) return { progress: { startedAt: d.startedAt ?? startedAt, metrics: { ...fresh(), ...d.metrics }, inflight: d.inflight ?? {} }, resumed: true };
  const progress: Progress = { startedAt: d?.startedAt ?? startedAt, metrics: fresh(), inflight: {} };
  if (d?.measurements) {
    for (const m of run.metrics) {
      let rec: MetricRecord = { measurements: [] };
      for (const x of d.measurements[m.name] ?? []) rec = recordMeasurement(m, rec, x);
      progress.metrics[m.name] = { measurements: [...rec.measurements], tally: rec.tally ?? tally([]) };
    }
  }
  return { progress, resumed: d !== undefined };
}

export async function runAnalysis(deps: ActivityDeps, target: ReleaseTarget, run: AnalysisRunSpec, opts: { background: boolean }): Promise<AnalysisRunResult> {
  const now = deps.now ?? (() => new Date());
  const { progress, resumed } = resume(run, Context.current().info.heartbeatDetails, now().getTime());
  for (const m of run.metrics) providerOf(m, deps.metrics ?? {}); // fail fast on a provider this worker lacks
  const { args, secrets } = await resolveArgs(target, run, deps);
  try {
    return await analyse(deps, target, run, opts, { args, secrets, progress, resumed });
  } catch (err) {
    throw redactedFailure(err, secrets);
  }
}

interface Resolved {
  args: Record<string, string>;
  /** Resolved secretKeyRef values: redacted from every value, message and error that leaves. */
  secrets: string[];
  progress: Progress;
  resumed: boolean;
}

async function analyse(deps: ActivityDeps, target: ReleaseTarget, run: AnalysisRunSpec, opts: { background: boolean }, resolved: Resolved): Promise<AnalysisRunResult> {
  const ctx = Context.current();
  const now = deps.now ?? (() => new Date());
  const sleep = deps.sleep ?? defaultSleep;
  const providers = deps.metrics ?? {};
  const signal = ctx.cancellationSignal;
  const { args, secrets, resumed } = resolved;
  // An earlier attempt's heartbeat (an older worker's) may carry what this one redacts.
  const progress: Progress = { ...resolved.progress, metrics: redactValue(resolved.progress.metrics, secrets) };
  if (resumed) {
    // An earlier attempt died mid-measurement: delete what it left (its Job), then measure afresh.
    for (const m of run.metrics) {
      const handle = progress.inflight[m.name];
      if (handle !== undefined) await providerOf(m, providers).abandon?.(target.namespace, handle);
      delete progress.inflight[m.name];
    }
  }

  const nextDue = (metric: MetricSpec): number | undefined => {
    const rec = progress.metrics[metric.name] as Progress['metrics'][string];
    const want = effectiveCount(metric);
    if (want !== undefined && rec.tally.count >= want) return undefined;
    const last = rec.measurements[rec.measurements.length - 1];
    if (!last) return progress.startedAt + (metric.initialDelayMs ?? 0);
    const interval = metric.intervalMs ?? (last.phase === 'Error' ? DEFAULT_ERROR_RETRY_INTERVAL_MS : undefined);
    return interval === undefined ? undefined : Date.parse(last.finishedAt) + Math.max(interval, MIN_INTERVAL_MS);
  };

  const measureOne = async (metric: MetricSpec): Promise<Measurement> => {
    const startedAt = now().toISOString();
    const timeoutMs = measurementTimeoutMs(metric);
    const timeout = AbortSignal.timeout(timeoutMs);
    try {
      const rec = progress.metrics[metric.name] as Progress['metrics'][string];
      const measurement = rec.tally.count + rec.tally.error + 1;
      const onStarted = (handle: string): void => {
        progress.inflight[metric.name] = handle;
        ctx.heartbeat(progress);
      };
      const context = { args, signal: AbortSignal.any([signal, timeout]), namespace: target.namespace, releaseId: target.releaseId, measurement, onStarted };
      const value = await providerOf(metric, providers).measure(metric, context).finally(() => delete progress.inflight[metric.name]);
      const verdict = evaluateMeasurement(metric, value); // on the value as measured; what is recorded is redacted
      return { phase: verdict.phase, value: redactValue(value, secrets), ...(verdict.message ? { message: redact(verdict.message, secrets) } : {}), startedAt, finishedAt: now().toISOString() };
    } catch (err) {
      if (signal.aborted) throw err;
      if (timeout.aborted) return { phase: 'Error', message: `the measurement did not finish within ${Math.round(timeoutMs / 1000)}s`, startedAt, finishedAt: now().toISOString() };
      if (err instanceof ApplicationFailure && err.nonRetryable) throw err; // e.g. a query Prometheus rejects
      return { phase: 'Error', message: redact((err as Error).message, secrets), startedAt, finishedAt: now().toISOString() };
    }
  };

  /** Measures the due metrics together, heartbeating while they run. */
  const measureDue = async (ready: MetricSpec[]): Promise<void> => {
    const beat = setInterval(() => ctx.heartbeat(progress), HEARTBEAT_EVERY_MS);
    try {
      const results = await Promise.all(ready.map(measureOne));
      ready.forEach((m, i) => {
        progress.metrics[m.name] = recordMeasurement(m, progress.metrics[m.name] as MetricRecord, results[i] as Measurement);
      });
    } finally {
      clearInterval(beat);
    }
    ctx.heartbeat(progress);
  };

  const result = (terminated: boolean): AnalysisRunResult => ({
    metrics: run.metrics.map((m) => ({ name: m.name, ...(progress.metrics[m.name] as Progress['metrics'][string]) })),
    terminated,
  });

  for (;;) {
    const assessed = assessRun(run.metrics, progress.metrics);
    if (assessed.phase !== 'Running' && assessed.phase !== 'Pending') return result(false);
    const due = run.metrics.map((m) => ({ m, at: nextDue(m) })).filter((d): d is { m: MetricSpec; at: number } => d.at !== undefined);
    // Nothing left to measure while a metric still runs: only a plan the start check refuses gets here
    // (count > 1 without interval); verdictOf fails such a run closed.
    if (due.length === 0) return result(false);
    const earliest = Math.min(...due.map((d) => d.at));
    const wait = earliest - now().getTime();
    try {
      if (wait > 0) await sleep(Math.min(wait, HEARTBEAT_EVERY_MS), signal);
      if (earliest > now().getTime()) {
        ctx.heartbeat(progress);
        continue;
      }
      await measureDue(due.filter((d) => d.at <= now().getTime()).map((d) => d.m));
    } catch (err) {
      // What was measured goes with the cancellation: the workflow records the run as terminated with it.
      if (signal.aborted) throw new CancelledFailure(`analysis ${run.name} cancelled${opts.background ? ' (background)' : ''}`, [progress]);
      throw err;
    }
  }
}
