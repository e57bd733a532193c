/**
 * Analysis gating: one analysis run is one activity; the workflow records it in the status and
 * re-derives its verdict from the returned measurements. A gating analysis that fails rolls back;
 * an inconclusive one waits for a human.
 */
import * as wf from '@temporalio/workflow';
import { expectedRunMs, verdictOf } from '../../model/analysis.ts';
import type { AnalysisRunResult, AnalysisRunSpec, Measurement } from '../../model/types.ts';
import type { AnalysisRunStatus } from '../messages.ts';
import * as profiles from '../profiles.ts';
import { describeError } from './describe.ts';
import { now, type Activities, type ReleaseState } from './state.ts';

/** What a cancelled analysis activity measured: the progress it reports with its cancellation, if any. */
function measuredBeforeCancel(err: unknown): Record<string, Measurement[]> {
  const cause = err instanceof wf.ActivityFailure ? err.cause : err;
  const details = cause instanceof wf.CancelledFailure ? cause.details : [];
  const progress = details[0] as { measurements?: unknown } | undefined;
  const measurements = progress && typeof progress === 'object' ? progress.measurements : undefined;
  return measurements && typeof measurements === 'object' ? (measurements as Record<string, Measurement[]>) : {};
}

/** Ends a run's record that did not return a result: terminated (cancelled) with what it measured, or Error. */
function endRecord(r: ReleaseState, record: AnalysisRunStatus, run: AnalysisRunSpec, err: unknown): void {
  if (wf.isCancellation(err)) {
    const measured = measuredBeforeCancel(err);
    const verdict = verdictOf(run.metrics, { metrics: run.metrics.map((m) => ({ name: m.name, measurements: measured[m.name] ?? [] })), terminated: true });
    const why = r.stop ? r.stop.kind : r.promoteFull ? 'promote --full' : 'promotion';
    record.phase = verdict.phase;
    record.message = `terminated (${why})${verdict.message ? `: ${verdict.message}` : ''}`;
    record.metrics = verdict.metrics;
  } else {
    record.phase = 'Error';
    record.message = describeError(err);
  }
  record.finishedAt = now();
  r.audit('glidepath', 'analysis', true, undefined, `${record.at}: ${run.name} ${record.phase} (${record.message})`);
  r.notifier?.analysisEnded(record);
}

/** Runs one analysis and records it; returns its verdict, re-derived here from the measurements. */
export async function analyze(r: ReleaseState, run: AnalysisRunSpec, at: string, background: boolean): Promise<AnalysisRunStatus> {
  const record: AnalysisRunStatus = { name: run.name, at, attempt: r.status.attempt, phase: 'Running', startedAt: now(), metrics: [] };
  r.addRun(record);
  r.notifier?.analysisStarted(record);
  const acts = wf.proxyActivities<Activities>({ ...profiles.analysis(background ? undefined : expectedRunMs(run)), ...r.cancellation() });
  let result: AnalysisRunResult;
  try {
    result = await acts.runAnalysis(r.target, run, { background });
  } catch (err) {
    endRecord(r, record, run, err); // every run ends with a terminal phase and what it measured
    throw err;
  }
  const verdict = verdictOf(run.metrics, result);
  record.phase = verdict.phase;
  record.message = verdict.message;
  record.metrics = verdict.metrics;
  record.finishedAt = now();
  r.verdicts.add(1, { phase: verdict.phase });
  r.audit('glidepath', 'analysis', true, undefined, `${at}: ${run.name} ${verdict.phase}${verdict.message ? ` (${verdict.message})` : ''}`);
  r.notifier?.analysisEnded(record);
  return record;
}

/**
 * An analysis that gates progress: failure rolls back, inconclusive waits for a human. promote
 * --full cancels it (or skips it when already requested) and the release goes on.
 */
export async function gate(r: ReleaseState, run: AnalysisRunSpec, at: string): Promise<void> {
  if (r.v2 && r.promoteFull) {
    r.audit('glidepath', 'analysis', true, undefined, `${at}: ${run.name} skipped (promote --full)`);
    return;
  }
  r.setPhase('Analyzing', `${at}: analysis ${run.name} running`);
  let record: AnalysisRunStatus;
  if (r.v2) {
    const scope = new wf.CancellationScope();
    r.gateScope = scope;
    try {
      record = await scope.run(() => (r.gates ? r.gates.during(() => analyze(r, run, at, false)) : analyze(r, run, at, false)));
    } catch (err) {
      if (r.promoteFull && !r.stop && wf.isCancellation(err)) return; // promote --full: the release goes on
      throw err;
    } finally {
      r.gateScope = undefined;
    }
  } else {
    record = await (r.gates ? r.gates.during(() => analyze(r, run, at, false)) : analyze(r, run, at, false));
  }
  if (record.phase === 'Failed' || record.phase === 'Error') {
    r.halt({ kind: 'rollback', by: 'glidepath', reason: `analysis ${run.name} (${at}) ${record.phase}: ${record.message ?? ''}`.trim(), analysis: record });
  }
  if (record.phase === 'Inconclusive') {
    await r.waitForPromote(`analysis ${run.name} (${at}) inconclusive: ${record.message ?? ''}; promote to continue or abort`);
  }
}
