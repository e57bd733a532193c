/**
 * The rolling runner (strategy.rolling): the workload's own rolling update in batches, with the
 * canary's gates between them. The new template goes in with no pod moved (a StatefulSet's
 * partition above every ordinal); each batch puts that many replicas on the new revision and waits
 * until they are ready; pauses, analyses and approvals are the canary's; promotion updates the rest.
 * Abort and rollback are the attempt's (attempt.ts): the old template back, the updated pods rolled
 * back by the controller.
 */
import * as wf from '@temporalio/workflow';
import { formatDuration } from '../../model/duration.ts';
import { describeBatch, type RollingStep, type RollingStrategy } from '../../model/rolling.ts';
import { gate } from './analysis.ts';
import { awaitApproval } from './canary.ts';
import { stepNumber, type ReleaseState } from './state.ts';

/** Records how many replicas run the new revision (status.rolling, and canaryWeight as their share). */
function recordProgress(r: ReleaseState, progress: { updated: number; replicas: number }): void {
  r.status.rolling = { updated: progress.updated, replicas: progress.replicas };
  r.status.canaryWeight = progress.replicas > 0 ? Math.round((100 * progress.updated) / progress.replicas) : 0;
}

async function runStep(r: ReleaseState, i: number, step: RollingStep): Promise<void> {
  switch (step.kind) {
    case 'batch': {
      r.setPhase('Progressing', `step ${stepNumber(i)}: batch ${describeBatch(step)} of the replicas on the new revision`);
      recordProgress(r, await r.rollout.rollBatch(r.target, step));
      r.setPhase('Progressing', `step ${stepNumber(i)}: ${r.status.rolling?.updated} of ${r.status.rolling?.replicas} replicas on the new revision and ready`);
      break;
    }
    case 'pause':
      if (step.durationMs === 0) break;
      await r.waitForPromote(step.durationMs === undefined ? `step ${stepNumber(i)}: paused until promoted` : `step ${stepNumber(i)}: paused for ${formatDuration(step.durationMs)}`, step.durationMs);
      break;
    case 'analysis':
      await gate(r, step.analysis, `step ${stepNumber(i)}`);
      break;
    case 'approval':
      await awaitApproval(r, i, step);
      break;
  }
}

export async function runRolling(r: ReleaseState, s: RollingStrategy): Promise<void> {
  r.setPhase('Progressing', 'new template in place, no pod moved yet');
  const { replicas } = await r.rollout.beginRolling(r.target);
  recordProgress(r, { updated: 0, replicas });

  for (let i = 0; i < s.steps.length; i++) {
    const step = s.steps[i] as RollingStep;
    if (r.freeze?.mayHold(`step-${stepNumber(i)}`)) await r.freeze.hold(`step-${stepNumber(i)}`);
    r.enterStep(i, step.kind);
    if (r.promoteFull && step.kind !== 'approval') continue;
    await runStep(r, i, step);
    if (r.stop) r.halt(r.stop);
  }

  if (r.freeze?.mayHold('promotion')) await r.freeze.hold('promotion');
  r.enterStep(s.steps.length, 'promote');
  r.setPhase('Promoting', 'promoting: the remaining replicas take the new revision');
  recordProgress(r, await wf.CancellationScope.nonCancellable(() => r.rollout.completeRolling(r.target)));
}
