/**
 * One member in one cluster: read the image the cluster runs now (the compensation target, pinned to
 * its digest), then run the member's release as a child workflow on the cluster's task queue, and
 * record how it ended. Compensation runs a second child that promotes the previous image.
 */
import * as wf from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { clusterTaskQueue, memberPlan, rollbackPlan, type GroupMember } from '../../model/group-plan.ts';
import type { ReleasePlan } from '../../model/types.ts';
import { abortSignal, type Outcome, type ReleaseResult } from '../messages.ts';
import type { release } from '../release.ts';
import { describeError } from '../release/describe.ts';
import { targetOf } from '../release/target.ts';
import { GROUP_ATTRIBUTE, type GroupCell } from './messages.ts';
import { WORKFLOW_TASK_TIMEOUT } from '../start-options.ts';
import type { GroupState } from './state.ts';

/**
 * A member's child ends as soon as it does not promote: the group decides what happens next (its
 * own retry starts the member again), so the child's own retry window is one second.
 */
export const CHILD_RETRY_WINDOW_SECONDS = 1;

/** Runs `fn` until it settles or the group is aborted (then its activities are cancelled); undefined when aborted. */
export async function unlessAborted<T>(g: GroupState, fn: () => Promise<T>): Promise<T | undefined> {
  const scope = new wf.CancellationScope();
  const run = scope.run(fn);
  const settled = await Promise.race([run.then(() => true, () => true), wf.condition(() => g.abort !== undefined).then(() => false)]);
  if (settled) return await run;
  scope.cancel();
  await run.catch(() => undefined);
  return undefined;
}

/**
 * Groups started with this patch take a stable image already given by digest as it is (no registry
 * call), and give up pinning a tag after a few attempts: an unreachable registry (a transient error)
 * used to hold the member before its start for ever.
 */
export const PIN_PREVIOUS_PATCH = 'glidepath-group-pin-previous';

const DIGEST_REF = /@sha256:[0-9a-f]{64}$/;

/** The image the cluster runs now, pinned to its digest when its registry resolves it, and the Deployment's replica count. */
async function currentState(g: GroupState, plan: ReleasePlan, cell: GroupCell): Promise<{ image: string; replicas: number }> {
  const acts = g.clusterActivities(cell.cluster);
  const target = targetOf(plan, cell.workflowId);
  const pre = await acts.preflight(target);
  const bounded = wf.patched(PIN_PREVIOUS_PATCH);
  if (bounded && DIGEST_REF.test(pre.stableImage)) return { image: pre.stableImage, replicas: pre.replicas };
  try {
    return { image: (await (bounded ? g.clusterPinning(cell.cluster) : acts).verifyImage(target, pre.stableImage)).image, replicas: pre.replicas };
  } catch (err) {
    if (wf.isCancellation(err)) throw err;
    g.audit('glidepath', 'previous-image', true, undefined, `${cell.member}@${cell.cluster}: ${pre.stableImage} not pinned (${describeError(err)}); compensation returns to the reference as written`);
    return { image: pre.stableImage, replicas: pre.replicas };
  }
}

/** A child's result: returned (promoted, or an older release) or carried by its failure. */
function resultOf(err: unknown): ReleaseResult | undefined {
  if (!(err instanceof wf.ChildWorkflowFailure)) return undefined;
  const cause = err.cause;
  if (cause instanceof wf.ApplicationFailure && cause.details?.[0] && typeof cause.details[0] === 'object') return cause.details[0] as ReleaseResult;
  return undefined;
}

/** Runs one child release to its end; the result, or why it has none. */
async function runChild(g: GroupState, cell: GroupCell, plan: ReleasePlan, abortable: boolean): Promise<ReleaseResult | { outcome: 'Failed'; reason: string }> {
  let handle: wf.ChildWorkflowHandle<typeof release>;
  try {
    handle = await wf.startChild<typeof release>('release', {
      workflowId: cell.workflowId,
      taskQueue: clusterTaskQueue(cell.cluster),
      args: [{ plan, initiator: g.status.initiator }],
      // The child runs to its own end (a release half-done is worse than one the group compensates).
      parentClosePolicy: wf.ParentClosePolicy.ABANDON,
      // As the CLI starts a release. Not behind a patch: a replay matches the child's start by its id
      // and type, so a group recorded before this replays as it ran (test/replay).
      workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
      typedSearchAttributes: [{ key: GROUP_ATTRIBUTE, value: g.groupKey }],
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return { outcome: 'Failed', reason: `workload ${plan.namespace}/${plan.workload.name} in ${cell.cluster} is in flight in another release or group (${cell.workflowId})` };
    }
    throw err;
  }
  if (abortable) g.inFlight.add(cell.workflowId);
  try {
    if (abortable && (g.abort || stopsSiblings(g))) await signalAbort(g, cell.workflowId);
    return await handle.result();
  } catch (err) {
    return resultOf(err) ?? { outcome: 'Failed', reason: describeError(err) };
  } finally {
    g.inFlight.delete(cell.workflowId);
  }
}

/** Under rollback-group a failure aborts the members in flight; the other policies let them finish. */
function stopsSiblings(g: GroupState): boolean {
  return g.failure !== undefined && g.group.onFailure === 'rollback-group';
}

export async function signalAbort(g: GroupState, workflowId: string): Promise<void> {
  const reason = g.abort ? `group aborted by ${g.abort.by}${g.abort.reason ? `: ${g.abort.reason}` : ''}` : `group stopped: ${g.failure?.reason ?? ''}`;
  try {
    await wf.getExternalWorkflowHandle(workflowId).signal(abortSignal, { by: 'glidepath', reason });
  } catch {
    // the child has ended already
  }
}

const CELL_PHASE: Record<Outcome, GroupCell['phase']> = { Promoted: 'Promoted', Aborted: 'Aborted', RolledBack: 'RolledBack', Failed: 'Failed' };

/** Releases one member in one cluster; true when it promoted (or had already). */
export async function runCell(g: GroupState, member: GroupMember, cluster: string): Promise<boolean> {
  const cell = g.cell(member.name, cluster);
  if (cell.phase === 'Promoted') return true;
  if (g.halted) {
    g.setCell(cell, 'Skipped', g.abort ? 'group aborted' : `not started: ${g.failure?.reason ?? ''}`);
    return false;
  }
  const plan: ReleasePlan = { ...memberPlan(g.group, member, cluster), retryWindowSeconds: CHILD_RETRY_WINDOW_SECONDS };
  g.setCell(cell, 'Waiting', `reading the image ${cluster} runs now`);
  let previous: string | undefined;
  try {
    if (cell.previousImage !== undefined) previous = cell.previousImage;
    else {
      const now = await unlessAborted(g, () => currentState(g, plan, cell));
      previous = now?.image;
      // The count compensation returns to, when the member's release sets one in this cluster.
      if (now && plan.replicas !== undefined) cell.previousReplicas = now.replicas;
    }
  } catch (err) {
    g.setCell(cell, 'Failed', `preflight in ${cluster}: ${describeError(err)}`);
    g.fail(`${member.name}@${cluster}`, `${member.name} in ${cluster}: ${cell.message}`);
    return false;
  }
  if (previous === undefined || g.halted) {
    g.setCell(cell, 'Skipped', g.abort ? 'group aborted' : `not started: ${g.failure?.reason ?? ''}`);
    return false;
  }
  cell.previousImage = previous;
  const count = plan.replicas !== undefined ? ` at ${plan.replicas} replicas (was ${cell.previousReplicas ?? '?'})` : '';
  g.setCell(cell, 'Running', `release of ${plan.image}${count} (was ${previous})`);
  g.audit('glidepath', 'start-member', true, undefined, `${member.name}@${cluster}: ${cell.workflowId} on ${clusterTaskQueue(cluster)}`);
  const result = await runChild(g, cell, plan, true);
  if (result.outcome === 'Promoted') {
    cell.image = (result as ReleaseResult).image;
    g.setCell(cell, 'Promoted', `promoted ${cell.image}`);
    return true;
  }
  g.setCell(cell, CELL_PHASE[result.outcome], result.reason);
  if (!g.abort) {
    g.fail(`${member.name}@${cluster}`, `${member.name} in ${cluster}: ${result.outcome}: ${result.reason}`);
    // The group rolls back as a whole: members still in flight stop now instead of promoting first.
    if (stopsSiblings(g)) await Promise.all([...g.inFlight].map((id) => signalAbort(g, id)));
  }
  return false;
}

/**
 * Puts a promoted cell back on the image it ran before the group (and on the replica count it had,
 * when the member's release set one), through a release of that image.
 */
export async function compensateCell(g: GroupState, member: GroupMember, cell: GroupCell, why: string): Promise<void> {
  const previous = cell.previousImage;
  const forward = memberPlan(g.group, member, cell.cluster);
  const count = cell.previousReplicas !== undefined && cell.previousReplicas !== forward.replicas ? cell.previousReplicas : undefined;
  if (previous === undefined || (previous === cell.image && count === undefined)) {
    g.setCell(cell, 'Compensated', `already on ${previous ?? 'its previous image'}`);
    return;
  }
  const back = `${previous}${count !== undefined ? ` at ${count} replicas` : ''}`;
  g.setCell(cell, 'Compensating', `back to ${back}`);
  g.audit('glidepath', 'compensate', true, why, `${cell.member}@${cell.cluster}: ${cell.image ?? '?'}${forward.replicas !== undefined ? ` at ${forward.replicas} replicas` : ''} → ${back}`);
  const plan = rollbackPlan({ ...forward, retryWindowSeconds: CHILD_RETRY_WINDOW_SECONDS }, previous, count);
  const result = await runChild(g, cell, plan, false);
  if (result.outcome === 'Promoted') {
    cell.image = (result as ReleaseResult).image;
    g.setCell(cell, 'Compensated', `back on ${cell.image}`);
    g.audit('glidepath', 'compensated', true, why, `${cell.member}@${cell.cluster}: ${cell.image}`);
  } else {
    g.setCell(cell, 'Failed', `compensation to ${previous} did not complete: ${result.reason}`);
    g.audit('glidepath', 'compensated', false, why, `${cell.member}@${cell.cluster}: ${cell.message}`);
  }
}
