/**
 * The release group workflow under time skipping, children stubbed (a stub `release` in the test
 * bundle, one worker per cluster task queue): dependency order, waves and maxParallel, gates,
 * saga compensation in reverse dependency order to the pinned previous images, abort, pause and
 * retry, and a cluster with no worker.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WorkflowFailedError, type WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundlePath } from '@temporalio/worker';
import { buildGroup, parseGroup } from '../../model/group.ts';
import { groupWorkflowId, type GroupPlan } from '../../model/group-plan.ts';
import { groupPlanProblems } from '../../model/group-plan-schema.ts';
import type { Outcome } from '../../workflows/messages.ts';
import { GROUP_UPDATES, groupStatusQuery, type GroupResult, type GroupStatus } from '../../workflows/group/messages.ts';
import type { releaseGroup } from '../../workflows/group.ts';
import { registerSearchAttributes } from '../../workers/search-attributes.ts';
import { holdSharedTimeSkippingEnv, releaseSharedTimeSkippingEnv } from '../support/time-skipping.ts';
import { untilQuery } from '../support/poll.ts';
import { cachedWorkflowBundle } from '../support/workflow-bundle.ts';
import type { ChildScript } from './group/stub-workflows.ts';
import { generateKeyPairSync } from 'node:crypto';
import { msToNumber, tsToMs } from '@temporalio/common/lib/time.js';
import { WORKFLOW_TASK_TIMEOUT } from '../../workflows/start-options.ts';
import type { IdentityPolicy } from '../../model/identity.ts';
import { AssertionSigner } from '../../starters/identity-signer.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const PARENT_QUEUE = 'group-tests';
const DIGEST = (s: string) => `sha256:${Buffer.from(s).toString('hex').padEnd(64, '0').slice(0, 64)}`;

interface Event {
  kind: 'start' | 'end';
  id: string;
  image: string;
  queue: string;
  steps?: number;
  /** The child plan's desired replica count, when it has one. */
  replicas?: number;
  outcome?: Outcome;
}

const events: Event[] = [];
/** Per test: how a child behaves, by workflow ID and image. */
let script: (id: string, image: string) => ChildScript = () => ({ outcome: 'Promoted', durationMs: 60_000 });
let pollers: (queue: string) => number = () => 1;
let analysisFails: (cluster: string) => boolean = () => false;
/** The image each cluster runs now (preflight), and whether its registry answers (verifyImage). */
let stableImage: (workload: string) => string = (w) => `registry.local/${w}:1`;
let registryDown = false;
/** The parent worker's identity policy (its `identityPolicy` local activity). */
let identityPolicy: IdentityPolicy | null = null;
const verified: string[] = [];

let env: TestWorkflowEnvironment;
const workers: Worker[] = [];
const running: Promise<void>[] = [];
let bundle: WorkflowBundlePath;

function clusterActivities(queue: string) {
  return {
    preflight: async (target: { workload: { name: string } }) => ({ stableImage: stableImage(target.workload.name), replicas: 2, warnings: [] }),
    verifyImage: async (_t: unknown, image: string) => {
      verified.push(image);
      if (registryDown) throw new Error('registry registry.local unreachable (ENOTFOUND)'); // transient, as the real activity classifies it
      return { image: `${image.replace(/:[^:/]+$/, '')}@${DIGEST(image)}`, digest: DIGEST(image) };
    },
    runAnalysis: async (_t: unknown, run: { metrics: { name: string }[] }) => ({
      metrics: run.metrics.map((m) => ({ name: m.name, measurements: [{ phase: analysisFails(queue.split('@')[1] ?? '') ? 'Failed' : 'Successful', value: [1], startedAt: new Date().toISOString(), finishedAt: new Date().toISOString() }] })),
      terminated: false,
    }),
    childStarted: async (id: string, image: string, q: string, steps: number, replicas?: number) => {
      events.push({ kind: 'start', id, image, queue: q, steps, ...(replicas !== undefined ? { replicas } : {}) });
      return script(id, image);
    },
    childEnded: async (id: string, outcome: Outcome) => {
      events.push({ kind: 'end', id, image: '', queue, outcome });
    },
  };
}

async function startWorker(taskQueue: string, activities: object): Promise<Worker> {
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: bundle, activities, shutdownGraceTime: '2s', shutdownForceTime: '5s' });
  workers.push(worker);
  running.push(worker.run());
  return worker;
}

before(async () => {
  [env, bundle] = await Promise.all([
    holdSharedTimeSkippingEnv(),
    cachedWorkflowBundle(path.join(here, 'group/stub-workflows.ts')),
  ]);
  await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  await startWorker(PARENT_QUEUE, { taskQueuePollers: async (queue: string) => ({ pollers: pollers(queue) }), identityPolicy: async () => identityPolicy, validateGroup: async (g: unknown) => groupPlanProblems(g) });
  for (const c of ['staging', 'eu']) await startWorker(`glidepath@${c}`, clusterActivities(`glidepath@${c}`));
});

after(async () => {
  for (const w of workers) w.shutdown();
  await Promise.all(running);
  if (env) await releaseSharedTimeSkippingEnv();
});

function release(ns: string, name: string) {
  return { apiVersion: 'glidepath.dev/v1alpha1', kind: 'Release', metadata: { name, namespace: ns }, spec: { workloadRef: { kind: 'Deployment', name }, image: `registry.local/${name}:2`, strategy: { canary: { steps: [{ setWeight: 50 }] } } } };
}

/** ledger ← payments ← web, and search (independent); waves staging, then eu + us. */
function groupPlan(ns: string, spec: Record<string, unknown> = {}): GroupPlan {
  const doc = {
    apiVersion: 'glidepath.dev/v1alpha1',
    kind: 'ReleaseGroup',
    metadata: { name: 'checkout', namespace: ns },
    spec: {
      members: [
        { name: 'ledger', inline: [release(ns, 'ledger')] },
        { name: 'payments', inline: [release(ns, 'payments')], dependsOn: ['ledger'] },
        { name: 'web', inline: [release(ns, 'web')], dependsOn: ['payments'] },
        { name: 'search', inline: [release(ns, 'search')] },
      ],
      waves: [{ name: 'staging', clusters: ['staging'] }, { name: 'prod', clusters: ['eu', 'us'], maxParallel: 1 }],
      ...spec,
    },
  };
  return buildGroup('g.yaml', parseGroup('g.yaml', doc));
}

/** Queries until `pred` holds, letting workflow time pass between queries (bounded: 200 rounds). */
async function untilStatus(handle: WorkflowHandle, pred: (s: GroupStatus) => boolean, what: string, step = '5s'): Promise<GroupStatus> {
  let last: GroupStatus | undefined;
  for (let i = 0; i < 200; i++) {
    last = await handle.query(groupStatusQuery);
    if (pred(last)) return last;
    await env.sleep(step);
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
}

/**
 * Queries until `pred` holds while the server skips time on its own, as while a test awaits a result
 * (no fixed steps): for a state that, once reached, holds until the test acts. A cluster whose queue
 * no worker polls is such a state; there the server holds its clock (the child's workflow task is
 * pending), so the fixed steps of `untilStatus` would each be waited out in real time.
 */
async function untilSettled(handle: WorkflowHandle, pred: (s: GroupStatus) => boolean, what: string): Promise<GroupStatus> {
  const clock = env.connection.testService;
  if (!clock) throw new Error('the test environment has no time-skipping service');
  await clock.unlockTimeSkipping({});
  try {
    return await untilQuery(handle, groupStatusQuery, pred, what, { timeoutMs: 120_000, intervalMs: 50, show: (last) => JSON.stringify(last) });
  } finally {
    await clock.lockTimeSkipping({});
  }
}

async function startGroup(group: GroupPlan): Promise<WorkflowHandle<typeof releaseGroup>> {
  return env.client.workflow.start('releaseGroup', { taskQueue: PARENT_QUEUE, workflowId: groupWorkflowId(group), args: [{ group, initiator: 'carol' }] });
}

async function outcomeOf(handle: WorkflowHandle): Promise<GroupResult> {
  try {
    return (await handle.result()) as GroupResult;
  } catch (err) {
    if (err instanceof WorkflowFailedError && err.cause && 'details' in err.cause) return (err.cause as { details: unknown[] }).details[0] as GroupResult;
    throw err;
  }
}

const ofNs = (ns: string) => events.filter((e) => e.id.startsWith(`release_${ns}_`));
const label = (e: Event) => `${e.kind} ${e.id.replace(/^release_[^_]+_/, '')}${e.kind === 'start' ? ` ${e.image}` : ` ${e.outcome}`}`;
const at = (list: Event[], kind: Event['kind'], id: string) => list.findIndex((e) => e.kind === kind && e.id.endsWith(`_${id}`));

// The us cluster's worker starts in the first test, after the group has waited for it.
test('dependency order per cluster, waves in order, maxParallel 1, a cluster with no worker waits', async () => {
  pollers = (q) => (q === 'glidepath@us' && !workers.some((w) => w.options.taskQueue === 'glidepath@us') ? 0 : 1);
  const handle = await startGroup(groupPlan('order'));
  const waiting = await untilSettled(handle, (s) => s.clusters.some((c) => c.worker === 'no worker polling glidepath@us') && s.cells.some((c) => c.cluster === 'us' && c.phase === 'Waiting'), 'us waits for a worker');
  assert.equal(waiting.phase, 'Running');
  assert.ok(waiting.cells.filter((c) => c.cluster === 'eu').every((c) => c.phase === 'Promoted'), JSON.stringify(waiting.cells));
  await startWorker('glidepath@us', clusterActivities('glidepath@us'));
  const result = await outcomeOf(handle);
  assert.equal(result.outcome, 'Promoted', result.reason);
  const list = ofNs('order');
  for (const c of ['staging', 'eu', 'us']) {
    assert.ok(at(list, 'end', `ledger@${c}`) < at(list, 'start', `payments@${c}`), `ledger before payments in ${c}: ${list.map(label).join('\n')}`);
    assert.ok(at(list, 'end', `payments@${c}`) < at(list, 'start', `web@${c}`), `payments before web in ${c}`);
    assert.ok(at(list, 'start', `search@${c}`) < at(list, 'end', `ledger@${c}`), `search runs beside ledger in ${c}`);
    for (const m of ['ledger', 'payments', 'web', 'search']) {
      assert.equal(list.find((e) => e.kind === 'start' && e.id.endsWith(`_${m}@${c}`))?.queue, `glidepath@${c}`, `${m} in ${c} runs on its cluster's queue`);
    }
  }
  assert.ok(at(list, 'end', 'web@staging') < at(list, 'start', 'ledger@eu'), 'wave prod after wave staging');
  assert.ok(at(list, 'end', 'web@eu') < at(list, 'start', 'ledger@us'), 'maxParallel 1: us after eu');
  const status = await handle.query(groupStatusQuery);
  assert.ok(status.cells.every((c) => c.phase === 'Promoted' && c.image === `registry.local/${c.member}:2` && c.previousImage === `registry.local/${c.member}@${DIGEST(`registry.local/${c.member}:1`)}`), JSON.stringify(status.cells));
  assert.ok(status.audit.some((a) => a.action === 'worker' && a.detail === 'us: no worker polling glidepath@us'));
  assert.equal(status.clusters.find((c) => c.name === 'us')?.worker, undefined);
  // Each member release is started as the CLI starts one: room for a long workflow task (workflows/start-options.ts).
  for (const cell of status.cells) {
    const child = await env.client.workflow.getHandle(cell.workflowId).describe();
    assert.equal(tsToMs(child.raw.executionConfig?.defaultWorkflowTaskTimeout), msToNumber(WORKFLOW_TASK_TIMEOUT), `${cell.workflowId}: its workflow task timeout`);
  }
});

test('a failure in wave 2 stops the wave and rolls the group back, dependants first, to the pinned previous images', async () => {
  pollers = () => 1;
  // search is still in flight in us when payments fails there.
  script = (id, image) =>
    id.endsWith('_payments@us') && image.endsWith(':2') ? { outcome: 'RolledBack', durationMs: 30_000 } : { outcome: 'Promoted', durationMs: id.endsWith('_search@us') ? 600_000 : 60_000 };
  const handle = await startGroup(groupPlan('saga'));
  const result = await outcomeOf(handle);
  assert.equal(result.outcome, 'RolledBack');
  assert.match(result.reason, /payments in us: RolledBack: stub RolledBack/);
  const list = ofNs('saga');
  assert.equal(at(list, 'start', 'web@us'), -1, 'web never starts in us (its dependency failed there)');
  // search@us was in flight when payments failed: aborted.
  assert.equal(list.find((e) => e.kind === 'end' && e.id.endsWith('_search@us'))?.outcome, 'Aborted');
  const rollbacks = list.filter((e) => e.kind === 'start' && e.steps === 0);
  const order = rollbacks.map((e) => e.id.replace(/^release_saga_/, ''));
  assert.deepEqual(new Set(order), new Set(['web@staging', 'web@eu', 'payments@staging', 'payments@eu', 'ledger@staging', 'ledger@eu', 'ledger@us', 'search@staging', 'search@eu']));
  const pos = (m: string) => order.map((o, i) => (o.startsWith(`${m}@`) ? i : -1)).filter((i) => i >= 0);
  assert.ok(Math.max(...pos('web')) < Math.min(...pos('payments')), `web before payments: ${order.join(', ')}`);
  assert.ok(Math.max(...pos('payments')) < Math.min(...pos('ledger')), `payments before ledger: ${order.join(', ')}`);
  for (const e of rollbacks) {
    const member = e.id.replace(/^release_saga_/, '').split('@')[0] as string;
    assert.equal(e.image, `registry.local/${member}@${DIGEST(`registry.local/${member}:1`)}`, `${e.id} goes back to its pinned previous image`);
    assert.equal(e.queue, `glidepath@${e.id.split('@')[1]}`);
  }
  const status = await handle.query(groupStatusQuery);
  assert.equal(status.cells.find((c) => c.member === 'payments' && c.cluster === 'us')?.phase, 'RolledBack');
  assert.equal(status.cells.filter((c) => c.phase === 'Compensated').length, 9);
  assert.equal(status.audit.filter((a) => a.action === 'compensate' && a.reason?.includes('payments in us')).length, 9);
});

test('a per-cluster replica count reaches that member\'s child in that cluster only; compensation returns to the count preflight saw', async () => {
  pollers = () => 1;
  script = (id, image) => (id.endsWith('_payments@us') && image.endsWith(':2') ? { outcome: 'RolledBack', durationMs: 30_000 } : { outcome: 'Promoted', durationMs: 10_000 });
  const handle = await startGroup(groupPlan('counts', { clusters: { eu: { replicas: { ledger: 6, web: 3 } } } }));
  const result = await outcomeOf(handle);
  assert.equal(result.outcome, 'RolledBack', result.reason);
  const list = ofNs('counts');
  const forward = list.filter((e) => e.kind === 'start' && e.steps === 1);
  const counts = Object.fromEntries(forward.map((e) => [e.id.replace(/^release_counts_/, ''), e.replicas]));
  assert.deepEqual(
    Object.entries(counts).filter(([, n]) => n !== undefined).sort(),
    [['ledger@eu', 6], ['web@eu', 3]],
    `only ledger and web in eu carry a count: ${JSON.stringify(counts)}`,
  );
  assert.ok(['ledger@staging', 'ledger@us', 'payments@eu', 'search@eu'].every((c) => c in counts && counts[c] === undefined), JSON.stringify(counts));
  const back = list.filter((e) => e.kind === 'start' && e.steps === 0);
  const backCounts = Object.fromEntries(back.map((e) => [e.id.replace(/^release_counts_/, ''), e.replicas]));
  assert.equal(backCounts['ledger@eu'], 2, `ledger in eu goes back to the 2 replicas preflight saw: ${JSON.stringify(backCounts)}`);
  assert.equal(backCounts['web@eu'], 2);
  assert.ok(['ledger@staging', 'ledger@us', 'payments@eu'].every((c) => c in backCounts && backCounts[c] === undefined), JSON.stringify(backCounts));
  const status = await handle.query(groupStatusQuery);
  const cell = (m: string, c: string) => status.cells.find((x) => x.member === m && x.cluster === c);
  assert.equal(cell('ledger', 'eu')?.previousReplicas, 2);
  assert.equal(cell('ledger', 'us')?.previousReplicas, undefined);
  assert.ok(status.audit.some((a) => a.action === 'compensate' && a.detail?.startsWith('ledger@eu: registry.local/ledger:2 at 6 replicas → registry.local/ledger@') && a.detail.endsWith(' at 2 replicas')), JSON.stringify(status.audit.filter((a) => a.action === 'compensate')));
});

test('gates: soak, analysis in every cluster of the wave, approval with the four-eyes rule', async () => {
  script = () => ({ outcome: 'Promoted', durationMs: 10_000 });
  const template = { apiVersion: 'argoproj.io/v1alpha1', kind: 'AnalysisTemplate', metadata: { name: 'errors' }, spec: { metrics: [{ name: 'errors', successCondition: 'result[0] == 1', provider: { prometheus: { address: 'http://127.0.0.1:9090', query: 'up' } } }] } };
  const group = groupPlan('gates', {
    members: [{ name: 'ledger', inline: [release('gates', 'ledger')] }],
    waves: [
      { name: 'staging', clusters: ['staging', 'eu'], gate: { soak: '2h', analysis: { templates: [{ templateName: 'errors' }] }, approval: { approvers: ['alice', 'bob', 'carol'] } } },
      { name: 'prod', clusters: ['us'] },
    ],
    analysisTemplates: [template],
  });
  const handle = await startGroup(group);
  const waiting = await untilStatus(handle, (s) => s.gates[0]?.phase === 'AwaitingApproval', 'approval gate', '10m');
  assert.deepEqual(waiting.gates[0]?.analysisRuns.map((r) => [r.cluster, r.phase]).sort(), [['eu', 'Successful'], ['staging', 'Successful']]);
  assert.ok(waiting.gates[0]?.soakUntil);
  assert.equal(at(ofNs('gates'), 'start', 'ledger@us'), -1, 'wave prod waits for the gate');
  await assert.rejects(handle.executeUpdate(GROUP_UPDATES.approve, { args: [{ by: 'carol' }] }), (err: WorkflowUpdateFailedError) => /four-eyes/.test(String(err.cause?.message)));
  await assert.rejects(handle.executeUpdate(GROUP_UPDATES.approve, { args: [{ by: 'mallory' }] }), (err: WorkflowUpdateFailedError) => /not an approver/.test(String(err.cause?.message)));
  await assert.rejects(handle.executeUpdate(GROUP_UPDATES.approve, { args: [{ by: 'bob', wave: 'prod' }] }), (err: WorkflowUpdateFailedError) => /wave staging's, not prod's/.test(String(err.cause?.message)));
  await handle.executeUpdate(GROUP_UPDATES.approve, { args: [{ by: 'bob', reason: 'dashboards green' }] });
  const result = await outcomeOf(handle);
  assert.equal(result.outcome, 'Promoted', result.reason);
  const status = await handle.query(groupStatusQuery);
  assert.equal(status.gates[0]?.phase, 'Passed');
  assert.ok(status.audit.some((a) => a.by === 'bob' && a.action === 'approve'));
});

test('a failing gate analysis stops the group before the next wave and compensates', async () => {
  analysisFails = (c) => c === 'eu';
  script = () => ({ outcome: 'Promoted', durationMs: 10_000 });
  const template = { apiVersion: 'argoproj.io/v1alpha1', kind: 'AnalysisTemplate', metadata: { name: 'errors' }, spec: { metrics: [{ name: 'errors', successCondition: 'result[0] == 1', provider: { prometheus: { address: 'http://127.0.0.1:9090', query: 'up' } } }] } };
  const group = groupPlan('gatefail', {
    members: [{ name: 'ledger', inline: [release('gatefail', 'ledger')] }],
    waves: [{ name: 'staging', clusters: ['staging', 'eu'], gate: { analysis: { templates: [{ templateName: 'errors' }] } } }, { name: 'prod', clusters: ['us'] }],
    analysisTemplates: [template],
    clusters: { eu: { analysisAddress: 'http://127.0.0.2:9090' } },
  });
  const result = await outcomeOf(await startGroup(group));
  analysisFails = () => false;
  assert.equal(result.outcome, 'RolledBack');
  assert.match(result.reason, /gate analysis errors after wave staging did not pass: eu: Failed/);
  const list = ofNs('gatefail');
  assert.equal(at(list, 'start', 'ledger@us'), -1);
  assert.deepEqual(list.filter((e) => e.kind === 'start' && e.steps === 0).map((e) => e.id.split('@')[1]).sort(), ['eu', 'staging']);
});

test('abort during a gate compensates; pause waits for retry; rollback-failed leaves the others promoted', async () => {
  script = () => ({ outcome: 'Promoted', durationMs: 10_000 });
  const aborted = await startGroup(groupPlan('abort', { members: [{ name: 'ledger', inline: [release('abort', 'ledger')] }], waves: [{ name: 'staging', clusters: ['staging'], gate: { soak: '24h' } }, { name: 'prod', clusters: ['eu'] }] }));
  await untilStatus(aborted, (s) => s.gates[0]?.phase === 'Soaking', 'soak');
  await aborted.executeUpdate(GROUP_UPDATES.abort, { args: [{ by: 'dave', reason: 'freeze' }] });
  const r1 = await outcomeOf(aborted);
  assert.equal(r1.outcome, 'Aborted');
  assert.equal(r1.reason, 'aborted by dave: freeze');
  assert.deepEqual(r1.cells.map((c) => [c.cluster, c.phase]), [['staging', 'Compensated'], ['eu', 'Skipped']]);

  let failures = 1;
  script = (id, image) => (id.endsWith('_ledger@eu') && image.endsWith(':2') && failures-- > 0 ? { outcome: 'RolledBack', durationMs: 5_000 } : { outcome: 'Promoted', durationMs: 10_000 });
  const paused = await startGroup(groupPlan('pause', { onFailure: 'pause' }));
  const p = await untilStatus(paused, (s) => s.phase === 'Paused', 'paused');
  assert.match(p.message, /ledger in eu: RolledBack/);
  await paused.executeUpdate(GROUP_UPDATES.retry, { args: [{ by: 'dave' }] });
  const r2 = await outcomeOf(paused);
  assert.equal(r2.outcome, 'Promoted', r2.reason);

  script = (id, image) => (id.endsWith('_web@eu') && image.endsWith(':2') ? { outcome: 'RolledBack', durationMs: 5_000 } : { outcome: 'Promoted', durationMs: 10_000 });
  const r3 = await outcomeOf(await startGroup(groupPlan('failed', { onFailure: 'rollback-failed' })));
  assert.equal(r3.outcome, 'Failed');
  assert.equal(ofNs('failed').filter((e) => e.kind === 'start' && e.steps === 0).length, 0, 'no compensation');
  assert.equal(r3.cells.find((c) => c.member === 'web' && c.cluster === 'eu')?.phase, 'RolledBack');
  assert.equal(r3.cells.find((c) => c.member === 'payments' && c.cluster === 'eu')?.phase, 'Promoted');
  assert.ok(r3.cells.filter((c) => c.cluster === 'us').every((c) => c.phase === 'Skipped'));
});

test('a group plan that any client could start wrongly is refused at the start', async () => {
  const group = groupPlan('invalid');
  group.members[0]!.dependsOn = ['web'];
  const result = env.client.workflow.execute('releaseGroup', { taskQueue: PARENT_QUEUE, workflowId: groupWorkflowId(group), args: [{ group, initiator: 'carol' }] });
  await assert.rejects(result, (err: WorkflowFailedError) => /dependency cycle ledger → web → payments → ledger/.test(String(err.cause?.message)));
});

test('previous images: a digest reference is taken as it is, a tag its registry cannot resolve is kept as written after a few attempts', async () => {
  script = () => ({ outcome: 'Promoted', durationMs: 10_000 });
  const pinned = `registry.local/ledger@sha256:${'a'.repeat(64)}`;
  stableImage = (w) => (w === 'ledger' ? pinned : `registry.local/${w}:1`);
  registryDown = true;
  verified.length = 0;
  try {
    const group = groupPlan('pins', { members: [{ name: 'ledger', inline: [release('pins', 'ledger')] }, { name: 'search', inline: [release('pins', 'search')] }], waves: [{ name: 'staging', clusters: ['staging'] }] });
    const handle = await startGroup(group);
    const result = await outcomeOf(handle);
    assert.equal(result.outcome, 'Promoted', result.reason);
    const cells = (await handle.query(groupStatusQuery)).cells;
    assert.equal(cells.find((c) => c.member === 'ledger')?.previousImage, pinned);
    assert.equal(cells.find((c) => c.member === 'search')?.previousImage, 'registry.local/search:1', 'kept as written');
    assert.deepEqual(verified, Array(3).fill('registry.local/search:1'), 'no registry call for the digest; three attempts for the tag');
    assert.ok((await handle.query(groupStatusQuery)).audit.some((a) => a.action === 'previous-image' && a.detail?.includes('search@staging')));
  } finally {
    stableImage = (w) => `registry.local/${w}:1`;
    registryDown = false;
  }
});

test('gate approval under an identity policy: only a valid proof for this group and wave counts, as its subject, once', async () => {
  script = () => ({ outcome: 'Promoted', durationMs: 10_000 });
  const signer = new AssertionSigner(generateKeyPairSync('ed25519').privateKey, 120);
  const forger = new AssertionSigner(generateKeyPairSync('ed25519').privateKey, 120);
  identityPolicy = { mode: 'required', publicKeys: [signer.publicKeyPem] };
  try {
    const group = groupPlan('proofs', { members: [{ name: 'ledger', inline: [release('proofs', 'ledger')] }], waves: [{ name: 'staging', clusters: ['staging'], gate: { approval: { approvers: ['alice', 'bob'], minApprovals: 2 } } }, { name: 'prod', clusters: ['eu'] }] });
    const handle = await startGroup(group);
    await untilStatus(handle, (s) => s.gates[0]?.phase === 'AwaitingApproval', 'approval gate');
    const id = groupWorkflowId(group);
    const proof = async (s: AssertionSigner, sub: string, over: Record<string, unknown> = {}) => s.sign({ sub, action: 'approve', releaseId: id, namespace: 'proofs', step: 0, ...over } as never, await env.currentTimeMs()).assertion;
    const refused = async (input: Record<string, unknown>): Promise<string> => {
      try {
        await handle.executeUpdate(GROUP_UPDATES.approve, { args: [input as never] });
      } catch (err) {
        return String((err as WorkflowUpdateFailedError).cause?.message);
      }
      return assert.fail(`accepted: ${JSON.stringify(input)}`);
    };
    assert.match(await refused({ by: 'bob' }), /this group requires a proof of identity \(glidepath group approve/);
    assert.match(await refused({ by: 'bob', proof: await proof(forger, 'bob') }), /signature/);
    assert.match(await refused({ by: 'bob', proof: await proof(signer, 'alice') }), /"by" is bob, but the proof is for alice/);
    assert.match(await refused({ by: 'bob', proof: await proof(signer, 'bob', { step: 1 }) }), /step/);
    assert.match(await refused({ by: 'bob', proof: await proof(signer, 'bob', { releaseId: 'group_other_x' }) }), /not group_proofs_checkout/);
    assert.match(await refused({ by: 'carol', proof: await proof(signer, 'carol') }), /four-eyes/, 'the proven initiator');
    const bobs = await proof(signer, 'bob');
    await handle.executeUpdate(GROUP_UPDATES.approve, { args: [{ proof: bobs, reason: 'proven' } as never] });
    assert.match(await refused({ proof: bobs }), /already been used|already approved/);
    const after = await handle.query(groupStatusQuery);
    assert.deepEqual(after.gates[0]?.approval?.granted.map((x) => x.by), ['bob'], 'counted once, as the proof subject');
    await handle.executeUpdate(GROUP_UPDATES.approve, { args: [{ by: 'alice', proof: await proof(signer, 'alice') }] });
    const result = await outcomeOf(handle);
    assert.equal(result.outcome, 'Promoted', result.reason);
  } finally {
    identityPolicy = null;
  }
});
