/**
 * The release group workflow: every member in every cluster is a child `release` workflow on the
 * cluster's task queue (`glidepath@<cluster>`), run by that cluster's own worker. Waves in order,
 * members in dependency order, a gate after each wave; on failure the policy decides: roll the whole
 * group back (a saga: promoted members back to the images they ran before, dependants first), leave
 * only the failed member rolled back, or pause for a retry.
 *
 * Rooms: group/messages.ts (contract), group/state.ts (status, flags), group/actions.ts (handlers),
 * group/waves.ts (clusters, dependency order, worker watch), group/cells.ts (one child; compensation),
 * group/gates.ts (soak, analysis, approval).
 */
import * as wf from '@temporalio/workflow';
import { groupWorkflowId } from '../model/group-plan.ts';
import { legacyGroupPlanProblems } from '../model/legacy-start-check.ts';
import { registerGroupHandlers } from './group/actions.ts';
import { compensateCell } from './group/cells.ts';
import { runGate } from './group/gates.ts';
import { decidePatchesFirst } from './patches-first.ts';
import { GROUP_LATER_PATCHES, GROUP_PATCHES_FIRST } from './group/patches-first.ts';
import { groupNotifierFor } from './group/notify.ts';
import { GROUP_ATTRIBUTE, type GroupInput, type GroupResult } from './group/messages.ts';
import { GroupState, type GroupActivities } from './group/state.ts';
import { runWave } from './group/waves.ts';

const validation = wf.proxyLocalActivities<Pick<GroupActivities, 'validateGroup'>>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 3 } });

/**
 * The group's start-time check, recorded once in history by a local activity: a rule tightened later
 * never changes what a running group replays, and the model's schemas never run in the workflow
 * (on the production worker its preloaded modules are frozen, and zod cannot run on frozen schemas).
 * Groups started before the check moved keep checking inline, without the schemas (model/legacy-start-check.ts).
 */
async function startProblems(group: GroupInput['group']): Promise<string[]> {
  return wf.patched('glidepath-group-validate-once') ? [...(await validation.validateGroup(group))] : legacyGroupPlanProblems(group);
}

export async function releaseGroup(input: GroupInput): Promise<GroupResult> {
  const { group, initiator } = input;
  const info = wf.workflowInfo();
  const g = new GroupState(group, initiator, info.workflowId);
  registerGroupHandlers(g);
  decidePatchesFirst(GROUP_PATCHES_FIRST, GROUP_LATER_PATCHES);

  const problems = await startProblems(group);
  if (problems.length === 0 && info.workflowId !== groupWorkflowId(group)) problems.push(`workflow ID must be ${groupWorkflowId(group)} (one run per group), got ${info.workflowId}`);
  if (problems.length > 0) {
    g.setPhase('Failed', `invalid release group: ${problems.join('; ')}`);
    throw wf.ApplicationFailure.nonRetryable(g.status.message, 'InvalidSpec');
  }
  wf.upsertSearchAttributes([{ key: GROUP_ATTRIBUTE, value: g.groupKey }]);
  await g.identity.read();
  g.audit(initiator, 'start', true, undefined, `${group.members.length} member(s) over ${group.waves.map((w) => `${w.name} (${w.clusters.join(', ')})`).join(' → ')}`);
  g.notifier = groupNotifierFor(g);
  g.notifier?.started(false);

  const result = await run(g);
  for (const c of g.status.cells) if (c.phase === 'Pending' || c.phase === 'Waiting') g.setCell(c, 'Skipped', `not started: ${result.reason}`);
  result.cells = cellsOf(g);
  g.status.result = result;
  g.setPhase(result.outcome, result.reason);
  if (g.notifier) await g.notifier.drain();
  await wf.condition(wf.allHandlersFinished);
  if (result.outcome !== 'Promoted') throw wf.ApplicationFailure.create({ type: result.outcome, message: result.reason, details: [result], nonRetryable: true });
  return result;
}

async function runWaves(g: GroupState): Promise<void> {
  for (let i = g.status.wave; i < g.group.waves.length; i++) {
    const wave = g.group.waves[i] as (typeof g.group.waves)[number];
    g.status.wave = i;
    g.setPhase('Running', `wave ${wave.name}: ${wave.clusters.join(', ')}`);
    g.audit('glidepath', 'wave', true, undefined, `${wave.name} starts`);
    if (!(await runWave(g, wave))) return;
    const failure = await runGate(g, wave);
    if (failure) g.fail(`gate ${wave.name}`, failure);
    if (g.halted) return;
    g.notifier?.waveCompleted(i);
  }
}

async function run(g: GroupState): Promise<GroupResult> {
  for (;;) {
    await runWaves(g);
    if (!g.halted) return result('Promoted', `all ${g.group.members.length} member(s) promoted in ${g.status.clusters.length} cluster(s)`);
    if (g.abort) {
      const why = `aborted by ${g.abort.by}${g.abort.reason ? `: ${g.abort.reason}` : ''}`;
      if (g.group.onFailure !== 'rollback-failed') await compensate(g, why);
      return result('Aborted', why);
    }
    const failure = g.failure as NonNullable<GroupState['failure']>;
    if (g.group.onFailure === 'rollback-group') {
      await compensate(g, failure.reason);
      return result('RolledBack', `${failure.reason}; the group was rolled back`);
    }
    if (g.group.onFailure === 'rollback-failed') return result('Failed', failure.reason);
    // pause: wait for retry (the failed members start again) or abort (compensation).
    g.retryRequested = false;
    g.setPhase('Paused', `${failure.reason}; retry or abort`);
    await wf.condition(() => g.retryRequested || g.abort !== undefined);
    if (g.abort) continue;
    g.failure = undefined;
    for (const c of g.status.cells) if (c.phase !== 'Promoted') g.setCell(c, 'Pending', 'retry');
    g.notifier?.started(true);
  }
}

/** Saga: every promoted cell back on its previous image, members in reverse dependency order (dependants first). */
async function compensate(g: GroupState, why: string): Promise<void> {
  g.setPhase('Compensating', `rolling back promoted members: ${why}`);
  for (const member of [...g.group.members].reverse()) {
    const cells = g.status.cells.filter((c) => c.member === member.name && c.phase === 'Promoted');
    await Promise.all(cells.map((c) => compensateCell(g, member, c, why)));
  }
}

function cellsOf(g: GroupState): GroupResult['cells'] {
  return g.status.cells.map((c) => ({ member: c.member, cluster: c.cluster, phase: c.phase, ...(c.image ? { image: c.image } : {}) }));
}

function result(outcome: GroupResult['outcome'], reason: string): GroupResult {
  return { outcome, reason, cells: [] };
}
