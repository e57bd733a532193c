/**
 * The experiment step (Argo's): its workloads started and ready, its analyses run side by side over
 * them (args may name what each template runs), the step decided as Argo decides an Experiment
 * (model/experiment.ts: `duration`, `requiredForCompletion`, the worst completed analysis), then the
 * workloads removed — also when the step fails, is aborted or rolled back (the attempt's cleanup
 * removes them again if that removal failed). Templates with a `weight` get that share of the
 * router's traffic once they are ready (the canary keeps its weight, the stable the rest), and lose
 * it before any of their pods go: traffic first, then pods. A Failed or Error experiment rolls back; an Inconclusive
 * one waits for a human, like an analysis step. `promote` ends a running experiment (Argo: the next step).
 */
import * as wf from '@temporalio/workflow';
import { formatDuration } from '../../model/duration.ts';
import { bindTemplateArgs, experimentOutcome, weightDestinations, type ExperimentOutcome, type ExperimentStep, type RunningTemplate } from '../../model/experiment.ts';
import type { AnalysisPhase } from '../../model/types.ts';
import type { AnalysisRunStatus } from '../messages.ts';
import { analyze } from './analysis.ts';
import { describeError } from './describe.ts';
import { judgeFigures } from './judge-figures.ts';
import { stepNumber, type ReleaseState } from './state.ts';
import { releasePatched } from './patch-epoch.ts';

/** Histories of releases that ran an experiment step carry this marker (a later change to the step can branch on it). */
export const EXPERIMENT_PATCH = 'glidepath-experiment-step';
/** Histories of releases whose experiment gave its templates a share of the router's traffic (the routeExperiment calls). */
export const EXPERIMENT_WEIGHTS_PATCH = 'glidepath-experiment-weights';

/** A decided step, with the analysis run that decided it. */
type Decided = Exclude<ExperimentOutcome, { phase: 'Running' }> & { record?: AnalysisRunStatus };

export async function runExperiment(r: ReleaseState, i: number, step: ExperimentStep): Promise<void> {
  releasePatched(EXPERIMENT_PATCH);
  const at = `step ${stepNumber(i)}`;
  const names = step.templates.map((t) => `${t.name} (${t.specRef}, ${t.replicas})`).join(', ');
  r.promoteRequested = false;
  let outcome: Decided;
  try {
    r.setPhase('Progressing', `${at}: experiment: starting ${names}`);
    r.experimentStarted = true;
    const running = await r.rollout.startExperiment(r.target, i, step.templates);
    r.audit('glidepath', 'experiment', true, undefined, `${at}: running ${running.map((t) => `${t.name} as ${t.workload} (pod-template-hash ${t.podTemplateHash})${t.service ? `, Service ${t.service}` : ''}`).join(', ')}`);
    const destinations = weightDestinations(step.templates, running);
    if (destinations.length > 0 && releasePatched(EXPERIMENT_WEIGHTS_PATCH)) {
      r.experimentRouted = true;
      await r.rollout.routeExperiment(r.target, r.status.canaryWeight, destinations);
      r.audit('glidepath', 'experiment', true, undefined, `${at}: traffic: canary ${r.status.canaryWeight}%, ${destinations.map((d) => `${d.service} ${d.weight}%`).join(', ')}, stable the rest`);
    }
    outcome = await measure(r, at, step, running);
  } finally {
    await wf.CancellationScope.nonCancellable(() => removeWorkloads(r, at));
  }
  r.audit('glidepath', 'experiment', true, undefined, `${at}: experiment ${outcome.phase}: ${outcome.message}`);
  if (outcome.phase === 'Failed' || outcome.phase === 'Error') {
    r.halt({ kind: 'rollback', by: 'glidepath', reason: `experiment (${at}) ${outcome.phase}: ${outcome.message}`, ...(outcome.record ? { analysis: outcome.record } : {}) });
  }
  if (outcome.phase === 'Inconclusive') await r.waitForPromote(`experiment (${at}) inconclusive: ${outcome.message}; promote to continue or abort`);
}

/**
 * The experiment's share of the traffic taken back (the router without its destinations, the canary
 * at its weight), then its workloads removed (verified); a failure is left to the attempt's cleanup,
 * which calls this again, so pods never go while the router still sends them traffic.
 */
export async function removeWorkloads(r: ReleaseState, at: string): Promise<void> {
  if (r.experimentRouted) {
    await r.cleanup.routeExperiment(r.target, r.status.canaryWeight, []);
    r.experimentRouted = false;
    r.audit('glidepath', 'experiment', true, undefined, `${at}: traffic: the experiment's destinations removed, canary ${r.status.canaryWeight}%`);
  }
  if (!r.experimentStarted) return;
  const { removed } = await r.cleanup.removeExperiment(r.target);
  r.experimentStarted = false;
  if (removed.length > 0) r.audit('glidepath', 'experiment', true, undefined, `${at}: removed ${removed.join(', ')}`);
}

/** Runs the analyses until the step is decided; the ones still running then are terminated. */
async function measure(r: ReleaseState, at: string, step: ExperimentStep, running: RunningTemplate[]): Promise<Decided> {
  const phases: Record<string, AnalysisPhase> = {};
  const records: Record<string, AnalysisRunStatus> = {};
  const scope = new wf.CancellationScope();
  const runs = step.analyses.map((a) =>
    scope
      .run(() => analyze(r, bindTemplateArgs(a.run, running), `${at} experiment`, false))
      .then((record) => {
        records[a.name] = record;
        phases[a.name] = record.phase;
        for (const line of judgeFigures(record)) r.audit('glidepath', 'judge', true, undefined, `${at}: ${a.name}: ${line}`);
      })
      .catch((err: unknown) => {
        if (wf.isCancellation(err)) return;
        phases[a.name] = 'Error';
        records[a.name] = { name: a.name, at: `${at} experiment`, attempt: r.status.attempt, phase: 'Error', message: describeError(err), startedAt: '', metrics: [] };
      }),
  );
  let durationPassed = false;
  const decided = (): boolean => experimentOutcome(step, phases, durationPassed).phase !== 'Running' || r.promoteRequested || r.promoteFull;
  r.setPhase('Analyzing', `${at}: experiment running ${step.templates.map((t) => t.name).join(', ')}${step.durationMs !== undefined ? ` for ${formatDuration(step.durationMs)}` : step.analyses.length > 0 ? ' until its analyses complete' : ' until promoted'}`);
  if (step.durationMs !== undefined && !(await wf.condition(decided, step.durationMs))) durationPassed = true;
  await wf.condition(decided);
  const outcome = experimentOutcome(step, phases, durationPassed);
  scope.cancel(); // analyses still running are terminated, as Argo terminates them
  await Promise.all(runs);
  if (outcome.phase === 'Running') return { phase: 'Successful', message: r.promoteFull ? 'ended by promote --full' : 'ended by promote' };
  const record = 'analysis' in outcome && outcome.analysis !== undefined ? records[outcome.analysis] : undefined;
  return record ? { ...outcome, message: `${outcome.message}${record.message ? `: ${record.message}` : ''}`, record } : outcome;
}
