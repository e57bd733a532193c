/**
 * A promotion starts the workload's drift watch, under time skipping: the release workflow with its
 * activities stubbed (test/workflows/harness.ts), the real `driftFollowPromotion` (signal-with-start
 * against the test server) and the real `driftReleaseState`; only the watch's cluster reads are
 * stubbed. One watch per workload: the next promotion gives it a new reference and leaves its policy;
 * the worker's setting `off` starts none; a watch that ended because its Deployment was deleted is
 * started anew by the promotion of a re-created one. RECORD_HISTORIES=1 records a release history for the replay test.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { createDriftActivities, driftOnPromotionFromEnv, type DriftActivities, type DriftDeps } from '../../activities/drift.ts';
import { ApplicationFailure } from '@temporalio/common';
import { WORKLOAD_GONE, compareDrift, driftWorkflowId, type DriftBaseline, type DriftDesired } from '../../model/drift.ts';
import { driftConfigureSignal, driftStatusQuery, type DriftStatus } from '../../workflows/drift/messages.ts';
import { statusQuery } from '../../workflows/messages.ts';
import { Harness, NEW_IMAGE, analysis, canary, measurement, metric, recordHistory, releaseResult } from '../workflows/harness.ts';

const kubeConfig = new KubeConfig();
kubeConfig.loadFromOptions({ clusters: [{ name: 'none', server: 'https://127.0.0.1:1' }], users: [{ name: 'none' }], contexts: [{ name: 'none', cluster: 'none', user: 'none' }], currentContext: 'none' });

const deps: DriftDeps = { kubeConfig, workload: { removeCanary: async () => {} } };
let real: DriftActivities | undefined;
const acts = (): DriftActivities => {
  real ??= createDriftActivities(deps);
  return real;
};
/** Workloads whose stable Deployment is deleted: the reads fail as the activities do. */
const deleted = new Set<string>();
const gone = (b: DriftBaseline): void => {
  if (deleted.has(b.target.workload.name)) throw ApplicationFailure.nonRetryable(`Deployment ${b.target.namespace}/${b.target.workload.name} not found`, WORKLOAD_GONE);
};
/** The watch's cluster reads, stubbed: the live state is what the reference says (in sync). */
const h = new Harness({
  driftFollowPromotion: (b: DriftBaseline) => acts().driftFollowPromotion(b),
  driftReleaseState: (id: string) => acts().driftReleaseState(id),
  driftDesired: async (b: DriftBaseline): Promise<DriftDesired> => {
    gone(b);
    return { container: 'app', image: b.image, replicas: 4, role: 'canary', services: [] };
  },
  driftCheck: async (req: { baseline: DriftBaseline; desired: DriftDesired }) => {
    gone(req.baseline);
    return compareDrift(req.desired, { image: req.desired.image, replicas: 4, hpa: false, roleExists: false, services: [] });
  },
  driftRevert: async () => {},
});

before(async () => {
  await h.start();
  deps.client = h.env.client;
  deps.taskQueue = h.taskQueue;
});
after(() => h.stop());

async function until(handle: WorkflowHandle, pred: (s: DriftStatus) => boolean, what: string): Promise<DriftStatus> {
  const end = Date.now() + 20_000;
  let last: DriftStatus | undefined;
  while (Date.now() < end) {
    try {
      last = await handle.query(driftStatusQuery);
      if (pred(last)) return last;
    } catch {
      // not started yet, or continuing as new
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}: ${last?.condition} ${last?.message} ${JSON.stringify(last?.audit)}`);
}

test('a promotion starts the workload\'s watch; the next one gives it a new reference and keeps its policy', async () => {
  deps.onPromotion = { policy: 'report', interval: '1m' };
  const p = canary('promoted', [{ kind: 'setWeight', weight: 50 }, { kind: 'setWeight', weight: 100 }]);
  const first = await h.begin(p);
  assert.equal((await releaseResult(first)).outcome, 'Promoted');
  const audit = (await first.query(statusQuery)).audit.find((a) => a.action === 'drift-watch');
  const id = driftWorkflowId({ namespace: p.namespace, workload: p.workload.name });
  assert.equal(audit?.accepted, true, JSON.stringify(audit));
  assert.match(audit?.detail ?? '', new RegExp(`${id} watches ${NEW_IMAGE.replace(/\./g, '\\.')} \\(a new watch: policy report, every 1m\\)`));
  await recordHistory(first, 'drift-on-promotion');

  const watch = h.env.client.workflow.getHandle(id);
  const s = await until(watch, (x) => x.condition === 'InSync', 'the first check against the promotion');
  assert.equal(s.releaseId, first.workflowId);
  assert.equal(s.image, NEW_IMAGE);
  assert.equal(s.policy, 'report');
  const runId = (await watch.describe()).runId;

  await watch.signal(driftConfigureSignal, { baseline: { releaseId: first.workflowId, target: { releaseId: first.workflowId, namespace: p.namespace, workload: p.workload, image: NEW_IMAGE, strategy: 'canary', progressDeadlineSeconds: 600 }, image: NEW_IMAGE }, policy: 'revert', interval: '30s' });
  await until(watch, (x) => x.policy === 'revert', 'the policy set by hand');

  const v3 = 'registry.local/app:v3';
  const second = await h.begin({ ...p, image: v3 });
  assert.equal((await releaseResult(second)).outcome, 'Promoted');
  const again = await until(watch, (x) => x.image === v3 && x.condition === 'InSync', 'the second promotion as the new reference');
  assert.equal(again.policy, 'revert', 'a running watch keeps its policy');
  assert.equal(again.intervalMs, 30_000);
  assert.ok(again.audit.some((a) => a.action === 'new-reference' && a.detail === `${second.workflowId} promoted ${v3}`), JSON.stringify(again.audit));
  assert.equal((await watch.describe()).runId, runId, 'one watch per workload: the same run');
  await watch.terminate('test over'); // its timer would otherwise be skipped through while later tests wait
});

test('the worker\'s setting off starts no watch; a release that does not promote starts none either', async () => {
  deps.onPromotion = 'off';
  const p = canary('unwatched', [{ kind: 'setWeight', weight: 100 }]);
  const handle = await h.begin(p);
  assert.equal((await releaseResult(handle)).outcome, 'Promoted');
  assert.equal((await handle.query(statusQuery)).audit.find((a) => a.action === 'drift-watch'), undefined, 'a skipped watch is not audited');
  await assert.rejects(h.env.client.workflow.getHandle(driftWorkflowId({ namespace: p.namespace, workload: p.workload.name })).describe(), WorkflowNotFoundError);

  deps.onPromotion = { policy: 'report', interval: '1m' };
  const failed = canary('rolled-back', [{ kind: 'setWeight', weight: 10 }, { kind: 'analysis', analysis: analysis('success-rate', [metric('error-rate')]) }], { retryWindowSeconds: 1 });
  const rolledBack = await h.begin(failed, { runAnalysis: async (_t, run) => ({ metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Failed', [0.5])] })), terminated: false }) });
  assert.equal((await releaseResult(rolledBack)).outcome, 'RolledBack');
  assert.equal((await rolledBack.query(statusQuery)).audit.find((a) => a.action === 'drift-watch'), undefined);
  await assert.rejects(h.env.client.workflow.getHandle(driftWorkflowId({ namespace: failed.namespace, workload: failed.workload.name })).describe(), WorkflowNotFoundError);
});

test('a watch ended by a deleted Deployment is started anew by the promotion of a re-created one (same ID)', async () => {
  deps.onPromotion = { policy: 'report', interval: '1m' };
  const namespace = 'shop';
  const workload = { kind: 'Deployment' as const, name: 'recreated' };
  const baseline = (releaseId: string, image: string): DriftBaseline => ({ releaseId, image, target: { releaseId, namespace, workload, image, strategy: 'canary', progressDeadlineSeconds: 600 } });
  const id = driftWorkflowId({ namespace, workload: workload.name });
  const watch = h.env.client.workflow.getHandle(id);

  assert.deepEqual(await acts().driftFollowPromotion(baseline('release_shop_recreated', NEW_IMAGE)), { watchId: id, policy: 'report', interval: '1m' });
  await until(watch, (x) => x.condition === 'InSync', 'the first check');
  deleted.add(workload.name);
  await h.env.sleep('61s');
  const ended = await until(watch, (x) => x.condition === 'WorkloadGone', 'the end of the watch');
  assert.match(ended.message, /Deployment shop\/recreated not found/);
  await watch.result();
  const first = await watch.describe();
  assert.equal(first.status.name, 'COMPLETED');

  deleted.delete(workload.name); // re-created, and promoted again
  const v3 = 'registry.local/app:v3';
  assert.deepEqual(await acts().driftFollowPromotion(baseline('release_shop_recreated', v3)), { watchId: id, policy: 'report', interval: '1m' });
  const again = await until(h.env.client.workflow.getHandle(id), (x) => x.condition === 'InSync' && x.image === v3, 'the new watch');
  assert.equal(again.audit.filter((a) => a.action === 'WorkloadGone').length, 0, 'a new run with a fresh status');
  const second = await h.env.client.workflow.getHandle(id).describe();
  assert.notEqual(second.runId, first.runId);
  assert.equal(second.status.name, 'RUNNING');
  await h.env.client.workflow.getHandle(id).terminate('test over');
});

test('GLIDEPATH_DRIFT_ON_PROMOTION and GLIDEPATH_DRIFT_INTERVAL: defaults, off, and bad values named', () => {
  assert.deepEqual(driftOnPromotionFromEnv({}), { policy: 'report', interval: '1m' });
  assert.deepEqual(driftOnPromotionFromEnv({ GLIDEPATH_DRIFT_ON_PROMOTION: 'revert', GLIDEPATH_DRIFT_INTERVAL: '30s' }), { policy: 'revert', interval: '30s' });
  assert.equal(driftOnPromotionFromEnv({ GLIDEPATH_DRIFT_ON_PROMOTION: 'off' }), 'off');
  assert.throws(() => driftOnPromotionFromEnv({ GLIDEPATH_DRIFT_ON_PROMOTION: 'fix' }), /GLIDEPATH_DRIFT_ON_PROMOTION: must be "off", "report" or "revert"/);
  assert.throws(() => driftOnPromotionFromEnv({ GLIDEPATH_DRIFT_INTERVAL: '5s' }), /GLIDEPATH_DRIFT_INTERVAL: at least 10s/);
});
