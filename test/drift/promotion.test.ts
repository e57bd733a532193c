/**
 * A promotion starts the workload's drift watch, under time skipping: the release workflow with its
 * activities stubbed (test/workflows/harness.ts), the real `driftFollowPromotion` (signal-with-start
 * against the test server) and the real `driftReleaseState`; only the watch's cluster reads are
 * stubbed. One watch per workload: the next promotion gives it a new reference and leaves its policy;
 * the worker's setting `off` starts none. RECORD_HISTORIES=1 records a release history for the replay test.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { createDriftActivities, driftOnPromotionFromEnv, type DriftActivities, type DriftDeps } from '../../activities/drift.ts';
import { compareDrift, driftWorkflowId, type DriftBaseline, type DriftDesired } from '../../model/drift.ts';
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
/** The watch's cluster reads, stubbed: the live state is what the reference says (in sync). */
const h = new Harness({
  driftFollowPromotion: (b: DriftBaseline) => acts().driftFollowPromotion(b),
  driftReleaseState: (id: string) => acts().driftReleaseState(id),
  driftDesired: async (b: DriftBaseline): Promise<DriftDesired> => ({ container: 'app', image: b.image, replicas: 4, role: 'canary', services: [] }),
  driftCheck: async (req: { desired: DriftDesired }) => compareDrift(req.desired, { image: req.desired.image, replicas: 4, hpa: false, roleExists: false, services: [] }),
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

test('GLIDEPATH_DRIFT_ON_PROMOTION and GLIDEPATH_DRIFT_INTERVAL: defaults, off, and bad values named', () => {
  assert.deepEqual(driftOnPromotionFromEnv({}), { policy: 'report', interval: '1m' });
  assert.deepEqual(driftOnPromotionFromEnv({ GLIDEPATH_DRIFT_ON_PROMOTION: 'revert', GLIDEPATH_DRIFT_INTERVAL: '30s' }), { policy: 'revert', interval: '30s' });
  assert.equal(driftOnPromotionFromEnv({ GLIDEPATH_DRIFT_ON_PROMOTION: 'off' }), 'off');
  assert.throws(() => driftOnPromotionFromEnv({ GLIDEPATH_DRIFT_ON_PROMOTION: 'fix' }), /GLIDEPATH_DRIFT_ON_PROMOTION: must be "off", "report" or "revert"/);
  assert.throws(() => driftOnPromotionFromEnv({ GLIDEPATH_DRIFT_INTERVAL: '5s' }), /GLIDEPATH_DRIFT_INTERVAL: at least 10s/);
});
