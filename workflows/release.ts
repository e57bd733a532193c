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
import { planProblems } from '../spec/plan.ts';
import { releaseWorkflowId } from '../spec/types.ts';
import { SERVICE_ATTRIBUTE, type ReleaseInput, type ReleaseResult } from './messages.ts';
import { registerHandlers } from './release/actions.ts';
import { attempt } from './release/attempt.ts';
import { ReleaseState } from './release/state.ts';

export async function release(input: ReleaseInput): Promise<ReleaseResult> {
  const { plan, initiator } = input;
  const info = wf.workflowInfo();
  const r = new ReleaseState(plan, initiator, info.workflowId);
  const status = r.status;
  registerHandlers(r);

  // ---- validate again at the start: a workflow can be started by any client ----------------------

  const problems = planProblems(plan);
  if (problems.length > 0) {
    status.phase = 'Failed';
    status.message = `invalid release plan: ${problems.join('; ')}`;
    throw wf.ApplicationFailure.nonRetryable(status.message, 'InvalidSpec');
  }
  if (info.workflowId !== releaseWorkflowId(plan)) {
    status.phase = 'Failed';
    status.message = `workflow ID must be ${releaseWorkflowId(plan)} (one release in flight per workload), got ${info.workflowId}`;
    throw wf.ApplicationFailure.nonRetryable(status.message, 'InvalidSpec');
  }
  r.prepare();
  wf.upsertSearchAttributes([{ key: SERVICE_ATTRIBUTE, value: status.service }]);
  r.syncAttributes();
  r.audit(initiator, 'start', true, undefined, `image ${plan.image}${plan.source ? ` from ${plan.source}` : ''}`);

  let result: ReleaseResult;
  for (;;) {
    result = await attempt(r);
    status.result = result;
    if (result.outcome === 'Promoted' || result.outcome === 'Failed') break;
    // Aborted or rolled back: a retry starts again from step 0, within the retry window.
    r.retryRequested = false;
    r.closeRequested = false;
    const woke = await wf.condition(() => r.retryRequested || r.closeRequested, plan.retryWindowSeconds * 1000);
    if (!woke || r.closeRequested || !r.retryRequested) break;
    status.attempt++;
    r.audit('glidepath', 'retry', true, undefined, `attempt ${status.attempt} starts from step 0`);
  }
  await wf.condition(wf.allHandlersFinished);
  return result;
}
