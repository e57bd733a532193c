/**
 * Analysis gating: one analysis run is one activity; the workflow records it in the status and
 * re-derives its verdict from the returned measurements. A gating analysis that fails rolls back;
 * an inconclusive one waits for a human.
 */
import * as wf from '@temporalio/workflow';
import { verdictOf } from '../../spec/analysis.ts';
import type { AnalysisRunSpec } from '../../spec/types.ts';
import type { AnalysisRunStatus } from '../messages.ts';
import * as profiles from '../profiles.ts';
import { now, type Activities, type ReleaseState } from './state.ts';

/** How long a bounded run measures (the longest metric schedule); undefined for an unbounded one. */
function expectedAnalysisMs(run: AnalysisRunSpec): number | undefined {
  let longest = 0;
  for (const m of run.metrics) {
    if (m.dryRun) continue;
    const count = m.count ?? (m.intervalMs === undefined ? 1 : undefined);
    if (count === undefined) return undefined;
    longest = Math.max(longest, (m.initialDelayMs ?? 0) + count * (m.intervalMs ?? 0));
  }
  return longest;
}

/** Runs one analysis and records it; returns its verdict, re-derived here from the measurements. */
export async function analyze(r: ReleaseState, run: AnalysisRunSpec, at: string, background: boolean): Promise<AnalysisRunStatus> {
  const record: AnalysisRunStatus = { name: run.name, at, attempt: r.status.attempt, phase: 'Running', startedAt: now(), metrics: [] };
  r.status.analysisRuns.push(record);
  const acts = wf.proxyActivities<Activities>(profiles.analysis(background ? undefined : expectedAnalysisMs(run)));
  const result = await acts.runAnalysis(r.target, run, { background });
  const verdict = verdictOf(run.metrics, result);
  record.phase = verdict.phase;
  record.message = verdict.message;
  record.metrics = verdict.metrics;
  record.finishedAt = now();
  r.verdicts.add(1, { phase: verdict.phase });
  r.audit('glidepath', 'analysis', true, undefined, `${at}: ${run.name} ${verdict.phase}${verdict.message ? ` (${verdict.message})` : ''}`);
  return record;
}

/** An analysis that gates progress: failure rolls back, inconclusive waits for a human. */
export async function gate(r: ReleaseState, run: AnalysisRunSpec, at: string): Promise<void> {
  r.setPhase('Analyzing', `${at}: analysis ${run.name} running`);
  const record = await analyze(r, run, at, false);
  if (record.phase === 'Failed' || record.phase === 'Error') {
    r.halt({ kind: 'rollback', by: 'glidepath', reason: `analysis ${run.name} (${at}) ${record.phase}: ${record.message ?? ''}`.trim(), analysis: record });
  }
  if (record.phase === 'Inconclusive') {
    await r.waitForPromote(`analysis ${run.name} (${at}) inconclusive: ${record.message ?? ''}; promote to continue or abort`);
  }
}
