/**
 * The drift watch's decisions under time skipping, its activities stubbed by a scripted cluster
 * (Temporal's convention for workflow tests; the activities run against a real control plane in
 * activities.test.ts): in sync; drift reported under `report` (status, audit, nothing written);
 * drift put back and verified under `revert`; a revert that does not take is RevertFailed; a failed
 * read is Unreadable and the watch keeps checking on its durable timer; a new reference (a later
 * promotion) is taken at once; continue-as-new carries the status; a deleted Deployment (WorkloadGone,
 * at a check or while the reference is read) ends the watch. RECORD_HISTORIES=1 records histories for
 * the replay test.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import type { DriftActivities } from '../../activities/drift.ts';
import type { ReleaseTarget } from '../../activities/contract.ts';
import { WORKLOAD_GONE, compareDrift, driftWorkflowId, type DriftBaseline, type DriftDesired, type DriftLive, type DriftPolicy } from '../../model/drift.ts';
import { driftConfigureSignal, driftStatusQuery, type DriftReleaseState, type DriftRevertRequest, type DriftStatus, type DriftWatchInput } from '../../workflows/drift/messages.ts';
import { createTimeSkippingEnv } from '../support/time-skipping.ts';
import { cachedWorkflowBundle } from '../support/workflow-bundle.ts';
import { recordHistory } from '../workflows/harness.ts';

const TASK_QUEUE = 'drift-tests';

/** One scripted workload per watch: its live state, the reverts asked for, and whether a revert takes. */
class Cluster {
  live: DriftLive = { image: 'app:v2', replicas: 3, hpa: false, roleExists: false, services: [{ name: 'web', selector: { app: 'web' } }], routerAtRest: true };
  reverts: DriftRevertRequest[] = [];
  checks = 0;
  failReads = false;
  revertTakes = true;
  /** The stable Deployment is deleted: the reads fail as the activities do (WorkloadGone). */
  deleted = false;
  /** The workload's release: promoted v2 unless a test says otherwise. */
  release: DriftReleaseState = { state: 'settled', phase: 'Promoted', promotedImage: 'app:v2' };
  reverted(req: DriftRevertRequest): void {
    this.reverts.push(req);
    if (!this.revertTakes) return;
    const d = req.desired;
    this.live = { ...this.live, image: d.image, ...(d.replicas !== undefined ? { replicas: d.replicas } : {}), roleExists: false, routerAtRest: true, services: d.services.map((s) => ({ ...s })) };
  }
}

const clusters = new Map<string, Cluster>();
const clusterOf = (): Cluster => {
  const id = Context.current().info.workflowExecution?.workflowId ?? '';
  const c = clusters.get(id);
  if (!c) throw new Error(`no scripted cluster for ${id}`);
  return c;
};

const activities: DriftActivities = {
  async driftFollowPromotion() {
    return { skipped: 'called by releases, not by the watch' };
  },
  async driftReleaseState() {
    return clusterOf().release;
  },
  async driftDesired(b: DriftBaseline): Promise<DriftDesired> {
    if (clusterOf().deleted) throw ApplicationFailure.nonRetryable(`Deployment shop/${b.target.workload.name} not found`, WORKLOAD_GONE);
    return { container: 'app', image: b.image, replicas: 3, role: 'canary', services: [{ name: 'web', selector: { app: 'web' } }], router: 'nginx' };
  },
  async driftCheck(req) {
    const c = clusterOf();
    c.checks++;
    if (c.failReads) throw new Error('connect ECONNREFUSED 127.0.0.1:6443');
    if (c.deleted) throw ApplicationFailure.nonRetryable(`Deployment shop/${req.baseline.target.workload.name} not found`, WORKLOAD_GONE);
    return compareDrift(req.desired, c.live);
  },
  async driftRevert(req) {
    clusterOf().reverted(req);
  },
};

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;

before(async () => {
  const [e, workflowBundle] = await Promise.all([createTimeSkippingEnv(), cachedWorkflowBundle()]);
  env = e;
  worker = await Worker.create({ connection: env.nativeConnection, taskQueue: TASK_QUEUE, workflowBundle, activities, shutdownGraceTime: '2s', shutdownForceTime: '5s' });
  running = worker.run();
});
after(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

let n = 0;
const target = (workload: string): ReleaseTarget => ({ releaseId: `release_shop_${workload}`, namespace: 'shop', workload: { kind: 'Deployment', name: workload }, image: 'app:v2', strategy: 'canary', progressDeadlineSeconds: 600, trafficRouting: { nginx: { stableIngress: 'web' } } as ReleaseTarget['trafficRouting'] });

async function startWatch(cluster: Cluster, policy: DriftPolicy, extra: Partial<DriftWatchInput> = {}): Promise<WorkflowHandle> {
  const workload = `web${++n}`;
  const input: DriftWatchInput = { baseline: { releaseId: `release_shop_${workload}`, target: target(workload), image: 'app:v2' }, policy, interval: '1m', ...extra };
  const workflowId = driftWorkflowId({ namespace: 'shop', workload });
  clusters.set(workflowId, cluster);
  return env.client.workflow.start('driftWatch', { taskQueue: TASK_QUEUE, workflowId, args: [input] });
}

/** Queries until `pred` holds (a query sent to a run that is continuing as new may go unanswered; the next reaches the new run). */
async function until(h: WorkflowHandle, pred: (s: DriftStatus) => boolean, what: string, timeoutMs = 20_000): Promise<DriftStatus> {
  const end = Date.now() + timeoutMs;
  let last: DriftStatus | undefined;
  while (Date.now() < end) {
    try {
      last = await h.client.withDeadline(Date.now() + 1_000, () => h.query(driftStatusQuery));
      if (pred(last)) return last;
    } catch {
      // answered by the next attempt
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last?.condition)} ${last?.message}`);
}

test('in sync: the reference is taken, checks run on the durable timer, nothing is reverted', async () => {
  const c = new Cluster();
  const h = await startWatch(c, 'revert');
  let s = await until(h, (x) => x.checks >= 1, 'the first check');
  assert.equal(s.condition, 'InSync');
  assert.deepEqual(s.drift, []);
  assert.equal(s.desired?.replicas, 3);
  assert.ok(s.audit.some((a) => a.action === 'reference' && /app=app:v2, 3 replica\(s\), no canary, nginx at weight 0, Service web/.test(a.detail)), JSON.stringify(s.audit));
  await env.sleep('61s');
  s = await until(h, (x) => x.checks >= 2, 'the timed check');
  assert.equal(s.condition, 'InSync');
  assert.equal(c.reverts.length, 0);
  await h.terminate();
});

test('report: a hand edit of the image and a canary left behind are reported in status and audit, and nothing is written', async () => {
  const c = new Cluster();
  const h = await startWatch(c, 'report');
  await until(h, (x) => x.condition === 'InSync', 'in sync');
  c.live = { ...c.live, image: 'app:hotfix', roleExists: true };
  await env.sleep('61s');
  const s = await until(h, (x) => x.condition === 'Drifted', 'the drift');
  assert.deepEqual(s.drift.map((f) => [f.field, f.desired, f.live]), [['image', 'app:v2', 'app:hotfix'], ['canary', 'absent', 'present']]);
  assert.match(s.message, /image: app:hotfix \(expected app:v2\); canary: present \(expected absent\)/);
  assert.ok(s.audit.some((a) => a.action === 'Drifted' && /app:hotfix/.test(a.detail)));
  assert.equal(s.drifted, 1);
  assert.equal(c.reverts.length, 0, 'report writes nothing');
  // The drift stays reported at the next check; an unchanged drift is not audited again.
  await env.sleep('61s');
  const again = await until(h, (x) => x.checks > s.checks, 'the next check');
  assert.equal(again.condition, 'Drifted');
  assert.equal(again.audit.filter((a) => a.action === 'Drifted').length, 1);
  // Put right by hand: in sync again, audited.
  c.live = { ...c.live, image: 'app:v2', roleExists: false };
  await env.sleep('61s');
  const back = await until(h, (x) => x.condition === 'InSync', 'in sync again');
  assert.deepEqual(back.drift, []);
  assert.ok(back.audit.some((a) => a.action === 'InSync'));
  await h.terminate();
});

test('revert: drifted replicas, router and Service selector are put back, verified and audited', async () => {
  const c = new Cluster();
  const h = await startWatch(c, 'revert');
  await until(h, (x) => x.condition === 'InSync', 'in sync');
  c.live = { ...c.live, replicas: 7, routerAtRest: false, services: [{ name: 'web', selector: { app: 'other' } }] };
  await env.sleep('61s');
  const s = await until(h, (x) => x.condition === 'Reverted', 'the revert');
  assert.deepEqual(c.reverts.map((r) => r.findings.map((f) => f.field)), [['replicas', 'router', 'service/web']]);
  assert.deepEqual(s.drift, [], 'verified by a second check');
  assert.equal(s.reverted, 1);
  assert.match(s.message, /put back and verified: replicas: 7 \(expected 3\); router: .*; service\/web: app=other \(expected app=web\)/);
  assert.ok(s.audit.some((a) => a.action === 'Drifted') && s.audit.some((a) => a.action === 'Reverted'));
  assert.equal(c.live.replicas, 3);
  await recordHistory(h, 'drift-revert');
  await h.terminate();
});

test('revert that does not take is RevertFailed; a failed read is Unreadable; both keep checking', async () => {
  const c = new Cluster();
  c.revertTakes = false;
  c.live = { ...c.live, image: 'app:hotfix' };
  const h = await startWatch(c, 'revert');
  let s = await until(h, (x) => x.condition === 'RevertFailed', 'the failed revert');
  assert.match(s.message, /still drifted after the revert: image: app:hotfix/);
  assert.equal(s.reverted, 0);
  c.failReads = true;
  await env.sleep('61s');
  s = await until(h, (x) => x.condition === 'Unreadable', 'the failed read');
  assert.match(s.message, /ECONNREFUSED/);
  c.failReads = false;
  c.revertTakes = true;
  await env.sleep('61s');
  await until(h, (x) => x.condition === 'Reverted', 'the revert at the next check');
  assert.equal(c.live.image, 'app:v2');
  await h.terminate();
});

test('a later promotion is a new reference, taken at once; a configure for another workload is refused', async () => {
  const c = new Cluster();
  const h = await startWatch(c, 'report');
  const first = await until(h, (x) => x.condition === 'InSync', 'in sync');
  c.live = { ...c.live, image: 'app:v3' };
  c.release = { state: 'settled', phase: 'Promoted', promotedImage: 'app:v3' }; // drift start refuses a reference the release did not promote
  const b = (await h.query(driftStatusQuery)).workload;
  await h.signal(driftConfigureSignal, { baseline: { releaseId: `release_shop_${b}`, target: { ...target(b), image: 'app:v3' }, image: 'app:v3' }, policy: 'revert', interval: '2m' });
  const s = await until(h, (x) => x.image === 'app:v3' && x.checks > first.checks, 'the new reference');
  assert.equal(s.condition, 'InSync', 'v3 is the reference now: not drift');
  assert.equal(s.policy, 'revert');
  assert.equal(s.intervalMs, 120_000);
  assert.ok(s.audit.some((a) => a.action === 'new-reference' && /app:v3/.test(a.detail)));
  await h.signal(driftConfigureSignal, { baseline: { releaseId: 'release_shop_other', target: target('other'), image: 'app:v9' }, policy: 'report', interval: '1m' });
  const refused = await until(h, (x) => x.audit.some((a) => a.action === 'configure-refused'), 'the refusal');
  assert.match(refused.audit.find((a) => a.action === 'configure-refused')?.detail ?? '', /shop\/other is not this watch's workload/);
  assert.equal(refused.image, 'app:v3');
  await h.terminate();
});

test('while a release of the workload runs nothing is compared or reverted; its promotion is the new reference', async () => {
  const c = new Cluster();
  const h = await startWatch(c, 'revert');
  const first = await until(h, (x) => x.condition === 'InSync', 'in sync');
  c.release = { state: 'in-flight', phase: 'Paused' };
  c.live = { ...c.live, roleExists: true, routerAtRest: false };
  await env.sleep('61s');
  let s = await until(h, (x) => x.condition === 'ReleaseInFlight', 'the release in flight');
  assert.match(s.message, /is Paused: nothing is compared until it settles/);
  assert.equal(s.checks, first.checks, 'no comparison while it runs');
  assert.equal(c.reverts.length, 0, 'its canary is not reverted');
  c.release = { state: 'settled', phase: 'Promoted', promotedImage: 'app:v3' };
  c.live = { ...c.live, image: 'app:v3', roleExists: false, routerAtRest: true };
  await env.sleep('61s');
  s = await until(h, (x) => x.condition === 'InSync' && x.image === 'app:v3', 'the new reference');
  assert.equal(s.desired?.image, 'app:v3');
  assert.ok(s.audit.some((a) => a.action === 'new-reference' && /promoted app:v3/.test(a.detail)));
  assert.equal(c.reverts.length, 0, 'the promoted image is not reverted');
  await h.terminate();
});

test('continue-as-new carries the status and the reference; the new run keeps checking', async () => {
  const c = new Cluster();
  c.live = { ...c.live, image: 'app:hotfix' };
  const h = await startWatch(c, 'report', { checksPerRun: 2 });
  await until(h, (x) => x.checks >= 1, 'the first check');
  await env.sleep('61s');
  const s = await until(h, (x) => x.continuedAsNew >= 1 && x.checks >= 3, 'a check in the new run', 30_000);
  assert.equal(s.condition, 'Drifted');
  assert.equal(s.desired?.image, 'app:v2', 'the reference is carried, not read again');
  assert.equal(s.audit.filter((a) => a.action === 'reference').length, 1);
  assert.ok(s.audit.some((a) => a.action === 'continue-as-new'));
  assert.ok(s.audit.length <= 50);
  await h.terminate();
});

test('an invalid watch fails at its start, naming the field', async () => {
  const c = new Cluster();
  const h = await startWatch(c, 'fix' as DriftPolicy, { interval: '1s' });
  await assert.rejects(h.result(), (err: Error) => /policy: must be "report" or "revert", got "fix"; interval: at least 10s/.test(String((err as { cause?: Error }).cause?.message ?? err.message)));
});

test('a deleted Deployment ends the watch: WorkloadGone at a check completes the workflow, audited', async () => {
  const c = new Cluster();
  c.live = { ...c.live, image: 'app:hotfix' };
  const h = await startWatch(c, 'report');
  await until(h, (x) => x.condition === 'Drifted', 'the drift');
  c.deleted = true;
  await env.sleep('61s');
  const s = await until(h, (x) => x.condition === 'WorkloadGone', 'the end of the watch');
  assert.match(s.message, /Deployment shop\/web\d+ not found; a later promotion of the workload starts a new watch/);
  assert.deepEqual(s.drift, [], 'nothing is reported for a deleted workload');
  assert.ok(s.audit.some((a) => a.action === 'WorkloadGone'), JSON.stringify(s.audit));
  await h.result();
  assert.equal((await h.describe()).status.name, 'COMPLETED');
  const checks = c.checks;
  await env.sleep('5m');
  assert.equal(c.checks, checks, 'no check after the end');
  await recordHistory(h, 'drift-workload-gone');
});

test('a Deployment deleted before the reference is read ends the watch too', async () => {
  const c = new Cluster();
  c.deleted = true;
  const h = await startWatch(c, 'revert');
  const s = await until(h, (x) => x.condition === 'WorkloadGone', 'the end of the watch');
  assert.match(s.message, /Deployment shop\/web\d+ not found/);
  assert.equal(s.desired, undefined);
  await h.result();
  assert.equal((await h.describe()).status.name, 'COMPLETED');
  assert.equal(c.checks, 0);
});
