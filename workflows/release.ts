/**
 * The release workflow: one progressive delivery of one workload, canary or blue/green, with
 * pauses, analyses and approvals as durable waits; abort, rollback and retry; and a status query
 * that is true in every phase. Deterministic: activities are imported as types only, time comes
 * from the workflow clock, and every side effect is an activity.
 *
 * Rooms: release/state.ts (status, audit, flags), release/actions.ts (signals, updates, query),
 * release/attempt.ts (one attempt and its cleanup), release/canary.ts and release/blue-green.ts (the
 * runners), release/analysis.ts (analysis gating), release/describe.ts (messages).
 */
import * as wf from '@temporalio/workflow';
import { legacyPlanProblems } from '../model/legacy-start-check.ts';
import { legacyReleaseWorkflowId, releaseWorkflowId, type ReleasePlan } from '../model/types.ts';
import { SERVICE_ATTRIBUTE, type ReleaseInput, type ReleaseResult } from './messages.ts';
import { registerHandlers } from './release/actions.ts';
import { attempt } from './release/attempt.ts';
import { configFor } from './release/config.ts';
import { FREEZE_PATCH, freezeFor } from './release/freeze.ts';
import { DRIFT_ON_PROMOTION_PATCH, followPromotion } from './drift/promotion.ts';
import { gatesFor } from './release/gates.ts';
import { notifierFor } from './release/notify.ts';
import { decidePatchesFirst, RELEASE_LATER_PATCHES, RELEASE_PATCHES_FIRST } from './patches-first.ts';
import { PROMOTE_ONCE_PATCH, RELEASE_OUTCOME_FAILS, RELEASE_V2, ReleaseState, type Activities } from './release/state.ts';
import { decideLaterPatches, decideReleaseEpoch, releasePatched } from './release/patch-epoch.ts';

const validation = wf.proxyLocalActivities<Pick<Activities, 'validatePlan'>>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 3 } });

/**
 * The start-time validation. Releases started with RELEASE_V2 run it once (a local activity whose
 * answer is recorded), so tightening a rule never breaks their replay; earlier releases re-run it,
 * without the schemas (zod cannot run on the worker's frozen model): see model/legacy-start-check.ts.
 */
async function validate(plan: ReleasePlan, initiator: string, v2: boolean): Promise<string[]> {
  return v2 ? validation.validatePlan(plan, initiator) : legacyPlanProblems(plan);
}

export async function release(input: ReleaseInput): Promise<ReleaseResult> {
  const { plan, initiator } = input;
  const info = wf.workflowInfo();
  const r = new ReleaseState(plan, initiator, info.workflowId);
  const status = r.status;
  // The patch epoch first: a release started with it asks no other patch it covers (workflows/release/patch-epoch.ts).
  const epoch = decideReleaseEpoch();
  const identity = registerHandlers(r);
  const v2 = releasePatched(RELEASE_V2);
  const outcomeFails = releasePatched(RELEASE_OUTCOME_FAILS);
  r.promoteOncePerPause = releasePatched(PROMOTE_ONCE_PATCH);
  // With the epoch, the later patches it covers write nothing; one added after it is decided here, at the start.
  if (epoch) decideLaterPatches(RELEASE_LATER_PATCHES);
  else decidePatchesFirst(RELEASE_PATCHES_FIRST, RELEASE_LATER_PATCHES);
  await identity.read(); // the worker's identity policy, recorded; actions wait for it

  // ---- validate again at the start: a workflow can be started by any client ----------------------

  const problems = await validate(plan, initiator, v2);
  if (problems.length > 0) {
    status.phase = 'Failed';
    status.message = `invalid release plan: ${problems.join('; ')}`;
    throw wf.ApplicationFailure.nonRetryable(status.message, 'InvalidSpec');
  }
  // One release in flight per workload: the ID is derived from it (releases started under the earlier ID form keep theirs).
  if (info.workflowId !== releaseWorkflowId(plan) && info.workflowId !== legacyReleaseWorkflowId(plan)) {
    status.phase = 'Failed';
    status.message = `workflow ID must be ${releaseWorkflowId(plan)} (one release in flight per workload), got ${info.workflowId}`;
    throw wf.ApplicationFailure.nonRetryable(status.message, 'InvalidSpec');
  }
  r.prepare(v2);
  wf.upsertSearchAttributes([{ key: SERVICE_ATTRIBUTE, value: status.service }]);
  r.syncAttributes();
  r.audit(initiator, 'start', true, undefined, `image ${plan.image}${plan.source ? ` from ${plan.source}` : ''}`);
  const notifier = (r.notifier = notifierFor(r));
  notifier?.emit('on-rollout-updated');
  r.gates = gatesFor(r);
  if (releasePatched(FREEZE_PATCH)) r.freeze = await freezeFor(r);
  r.config = configFor(r);

  let result: ReleaseResult;
  for (;;) {
    result = await attempt(r);
    status.result = result;
    await r.gates?.postRollout();
    if (result.outcome === 'Promoted' || result.outcome === 'Failed') break;
    // Aborted or rolled back: a retry starts again from the first step, within the retry window.
    r.retryRequested = false;
    r.closeRequested = false;
    const woke = await wf.condition(() => r.retryRequested || r.closeRequested, plan.retryWindowSeconds * 1000);
    if (!woke || r.closeRequested || !r.retryRequested) break;
    status.attempt++;
    r.audit('glidepath', 'retry', true, undefined, `attempt ${status.attempt} starts from step 1`);
    notifier?.emit('on-rollout-updated');
  }
  await r.config?.collect();
  if (result.outcome === 'Promoted' && releasePatched(DRIFT_ON_PROMOTION_PATCH)) {
    const followed = await followPromotion(r.target, result.image);
    if (followed) r.audit('glidepath', 'drift-watch', followed.ok, followed.ok ? undefined : followed.detail, followed.ok ? followed.detail : undefined);
  }
  await notifier?.drain();
  await wf.condition(wf.allHandlersFinished);
  if (outcomeFails && result.outcome !== 'Promoted') throw outcomeFailure(result);
  return result;
}

/** A release that did not promote ends failed (red in the Temporal UI): type = outcome, details = the result. */
export function outcomeFailure(result: ReleaseResult): wf.ApplicationFailure {
  return wf.ApplicationFailure.create({ type: result.outcome, message: result.reason, details: [result], nonRetryable: true });
}
