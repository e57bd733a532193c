/**
 * Release group notifications under time skipping (children stubbed as in group.test.ts, the
 * delivery activity stubbed on the group's queue): the group's own events under Argo's trigger names
 * (started, each wave completed, completed or aborted) in order, with the group as the event's
 * release and the wave as its step; a receiver down for the whole group never holds it; a trigger a
 * group never emits is refused at lint naming the field.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundlePath } from '@temporalio/worker';
import { buildGroup, parseGroup } from '../../model/group.ts';
import { groupWorkflowId, type GroupPlan } from '../../model/group-plan.ts';
import { groupPlanProblems } from '../../model/group-plan-schema.ts';
import { SpecError, formatProblem } from '../../model/normalize.ts';
import type { NotificationEvent, NotificationSpec } from '../../model/notifications.ts';
import { GROUP_UPDATES, groupStatusQuery, type GroupResult } from '../../workflows/group/messages.ts';
import type { Outcome } from '../../workflows/messages.ts';
import { registerSearchAttributes } from '../../workers/search-attributes.ts';
import { holdSharedTimeSkippingEnv, releaseSharedTimeSkippingEnv } from '../support/time-skipping.ts';
import { cachedWorkflowBundle } from '../support/workflow-bundle.ts';
import { recordHistory } from './harness.ts';
import type { ChildScript } from './group/stub-workflows.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const PARENT_QUEUE = 'group-notify-tests';
const CLUSTERS = ['staging', 'eu'];
const DIGEST = `sha256:${'ab'.repeat(32)}`;

interface Delivery {
  sub: string;
  event: NotificationEvent;
}
const deliveries: Delivery[] = [];
/** Per test: the child's outcome by cluster. */
let outcomeIn: (cluster: string) => Outcome = () => 'Promoted';

let env: TestWorkflowEnvironment;
const workers: Worker[] = [];
const running: Promise<void>[] = [];

async function startWorker(taskQueue: string, activities: object, workflowBundle: WorkflowBundlePath): Promise<void> {
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle, activities, shutdownGraceTime: '2s', shutdownForceTime: '5s' });
  workers.push(worker);
  running.push(worker.run());
}

before(async () => {
  const [e, bundle] = await Promise.all([
    holdSharedTimeSkippingEnv(),
    cachedWorkflowBundle(path.join(here, 'group/stub-workflows.ts')), // as test/workflows/group.test.ts: bundled once, cached on disk
  ]);
  env = e;
  await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  await startWorker(
    PARENT_QUEUE,
    {
      taskQueuePollers: async () => ({ pollers: 1 }),
      identityPolicy: async () => null,
      validateGroup: async (g: unknown) => groupPlanProblems(g),
      deliverNotification: async (_ns: string, sub: NotificationSpec, event: NotificationEvent) => {
        deliveries.push({ sub: sub.name, event });
        if (sub.name === 'down') throw new Error('receiver answered 503');
        return { status: 200, attempt: 1 };
      },
    },
    bundle,
  );
  for (const c of CLUSTERS) {
    await startWorker(
      `glidepath@${c}`,
      {
        preflight: async () => ({ stableImage: 'registry.local/web:1', replicas: 2, warnings: [] }),
        verifyImage: async (_t: unknown, image: string) => ({ image: `registry.local/web@${DIGEST}`, digest: DIGEST, requested: image }),
        childStarted: async (): Promise<ChildScript> => ({ outcome: outcomeIn(c), durationMs: 60_000 }),
        childEnded: async () => {},
      },
      bundle,
    );
  }
});

after(async () => {
  for (const w of workers) w.shutdown();
  await Promise.all(running);
  if (env) await releaseSharedTimeSkippingEnv();
});

function groupDoc(ns: string, notifications: unknown, onFailure = 'rollback-group') {
  const release = { apiVersion: 'glidepath.dev/v1alpha1', kind: 'Release', metadata: { name: 'web', namespace: ns }, spec: { workloadRef: { kind: 'Deployment', name: 'web' }, image: 'registry.local/web:2', strategy: { canary: { steps: [{ setWeight: 50 }] } } } };
  return {
    apiVersion: 'glidepath.dev/v1alpha1',
    kind: 'ReleaseGroup',
    metadata: { name: 'shop', namespace: ns },
    spec: { members: [{ name: 'web', inline: [release] }], waves: [{ name: 'staging', clusters: ['staging'] }, { name: 'prod', clusters: ['eu'] }], onFailure, notifications },
  };
}

const group = (ns: string, notifications: unknown, onFailure?: string): GroupPlan => buildGroup('g.yaml', parseGroup('g.yaml', groupDoc(ns, notifications, onFailure)));
const ops: NotificationSpec = { name: 'ops', type: 'webhook', triggers: ['on-rollout-updated', 'on-rollout-step-completed', 'on-rollout-paused', 'on-rollout-aborted', 'on-rollout-completed'], url: 'https://hooks.example/ops' };

async function run(g: GroupPlan): Promise<{ handle: WorkflowHandle & { firstExecutionRunId: string }; result: GroupResult }> {
  const handle = await env.client.workflow.start('releaseGroup', { taskQueue: PARENT_QUEUE, workflowId: groupWorkflowId(g), args: [{ group: g, initiator: 'carol' }] });
  try {
    return { handle, result: (await handle.result()) as GroupResult };
  } catch (err) {
    if (err instanceof WorkflowFailedError && err.cause && 'details' in err.cause) return { handle, result: (err.cause as { details: unknown[] }).details[0] as GroupResult };
    throw err;
  }
}

const of = (id: string, sub: string): string[] =>
  deliveries.filter((d) => d.event.release.id === id && d.sub === sub).map((d) => `${d.event.sequence} ${d.event.trigger}${d.event.trigger === 'on-rollout-step-completed' ? ` (${d.event.step.kind} ${d.event.step.number}/${d.event.step.total})` : ''} ${d.event.phase}`);

test('a group delivers its own events in order: started, each wave completed, completed; the group is the event', async () => {
  const g = group('gn-happy', [ops]);
  const { handle, result } = await run(g);
  await recordHistory(handle, 'group-notify-happy');
  assert.equal(result.outcome, 'Promoted');
  const id = groupWorkflowId(g);
  assert.deepEqual(of(id, 'ops'), ['1 on-rollout-updated Running', '2 on-rollout-step-completed (wave staging 1/2) Running', '3 on-rollout-step-completed (wave prod 2/2) Running', '4 on-rollout-completed Promoted']);
  const last = deliveries.filter((d) => d.event.release.id === id).at(-1)?.event;
  assert.deepEqual(last?.release, { id, runId: handle.firstExecutionRunId, namespace: 'gn-happy', name: 'shop', workload: 'shop', attempt: 1 });
  assert.equal(last?.weight, 100, 'every (member, cluster) promoted');
  const s = await handle.query(groupStatusQuery);
  assert.deepEqual(s.notifications, { emitted: 4, delivered: 4, undelivered: 0, pending: 0, lastUndelivered: [] });
  // The member's own release notifies by its own spec (none here): no delivery names a member's workflow.
  assert.ok(deliveries.every((d) => d.event.release.id.startsWith('group_')));
});

test('a member failing in the second wave: the group announces the rollback as aborted; a receiver down throughout never holds it', async () => {
  outcomeIn = (c) => (c === 'eu' ? 'RolledBack' : 'Promoted');
  try {
    const down: NotificationSpec = { ...ops, name: 'down', url: 'https://hooks.example/down' };
    const g = group('gn-fail', [ops, down]);
    const { handle, result } = await run(g);
    assert.equal(result.outcome, 'RolledBack');
    const id = groupWorkflowId(g);
    assert.deepEqual(of(id, 'ops'), ['1 on-rollout-updated Running', '2 on-rollout-step-completed (wave staging 1/2) Running', '3 on-rollout-aborted RolledBack']);
    const s = await handle.query(groupStatusQuery);
    assert.equal(s.notifications?.delivered, 3);
    assert.equal(s.notifications?.undelivered, 3);
    assert.deepEqual(s.notifications?.lastUndelivered.map((u) => `${u.subscription} ${u.trigger}`), ['down on-rollout-updated', 'down on-rollout-step-completed', 'down on-rollout-aborted']);
    assert.ok(s.audit.some((a) => a.action === 'notification-undelivered' && a.detail?.startsWith('down: on-rollout-updated #1')));
  } finally {
    outcomeIn = () => 'Promoted';
  }
});

test('onFailure pause: the pause is announced, a retry starts attempt 2 (updated), then the group completes', async () => {
  let euRuns = 0;
  outcomeIn = (c) => (c === 'eu' && ++euRuns === 1 ? 'RolledBack' : 'Promoted');
  try {
    const g = group('gn-pause', [ops], 'pause');
    const handle = await env.client.workflow.start('releaseGroup', { taskQueue: PARENT_QUEUE, workflowId: groupWorkflowId(g), args: [{ group: g, initiator: 'carol' }] });
    const id = groupWorkflowId(g);
    for (let i = 0; i < 200 && (await handle.query(groupStatusQuery)).phase !== 'Paused'; i++) await env.sleep('5s');
    await handle.executeUpdate(GROUP_UPDATES.retry, { args: [{ by: 'dave' }] });
    await handle.result();
    assert.deepEqual(of(id, 'ops'), [
      '1 on-rollout-updated Running',
      '2 on-rollout-step-completed (wave staging 1/2) Running',
      '3 on-rollout-paused Paused',
      '4 on-rollout-updated Paused',
      '5 on-rollout-step-completed (wave prod 2/2) Running',
      '6 on-rollout-completed Promoted',
    ]);
    assert.deepEqual(
      deliveries.filter((d) => d.event.release.id === id).map((d) => d.event.release.attempt),
      [1, 1, 1, 2, 2, 2],
    );
  } finally {
    outcomeIn = () => 'Promoted';
  }
});

test('a trigger a group never emits is refused at lint naming the field', () => {
  try {
    buildGroup('g.yaml', parseGroup('g.yaml', groupDoc('gn-lint', [{ ...ops, triggers: ['on-rollout-completed', 'on-analysis-run-failed'] }])));
    assert.fail('accepted');
  } catch (err) {
    assert.ok(err instanceof SpecError, String(err));
    assert.deepEqual(err.problems.map(formatProblem), [
      'g.yaml: spec.notifications[0].triggers[1]: "on-analysis-run-failed" is not a release group event; a ReleaseGroup\'s triggers are on-rollout-updated, on-rollout-step-completed, on-rollout-paused, on-rollout-aborted, on-rollout-completed',
    ]);
  }
});
