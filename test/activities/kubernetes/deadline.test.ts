/**
 * The progress deadline as Kubernetes and Argo Rollouts mean it: no progress for N seconds (not a
 * cap on the total time), enforced by the activity with the cause Kubernetes gives, and carried
 * across a retried attempt by the heartbeat.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createKubernetesWorkload } from '../../../activities/kubernetes/index.ts';
import { rollout } from '../../../workflows/profiles.ts';
import { NEW_IMAGE, STABLE_IMAGE, TestCluster, imageOf, target } from './cluster.ts';

const cluster = new TestCluster();
const workload = createKubernetesWorkload(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 });

after(() => cluster.cleanup());

/** A Temporal duration string of the profiles ('90s', '1m') in seconds. */
function seconds(d: unknown): number {
  const m = /^(\d+)(s|m|h)$/.exec(String(d));
  assert.ok(m, `duration ${String(d)}`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'];
}

/** A stable whose pod template (not its running pods) changes by `patch`: canaries copy the template. */
async function stableWithTemplatePatch(ns: string, patch: object[]): Promise<void> {
  await cluster.stable(ns, { replicas: 2 });
  await cluster.apps.patchNamespacedDeployment({ name: 'web', namespace: ns, body: [{ op: 'add', path: '/spec/paused', value: true }, ...patch] });
}

describe('progress deadline', () => {
  test('progressDeadline is no progress for N seconds, not a total-time cap: a slow but progressing promotion completes', async () => {
    const ns = await cluster.namespace('slow');
    // Six pods that each take a second to become ready, replaced one at a time: about 8 s in all, progress every second.
    await cluster.stable(ns, { replicas: 6, podAnnotations: { 'glidepath.local/ready-delay': '1s' } });
    await cluster.apps.patchNamespacedDeployment({ name: 'web', namespace: ns, body: [{ op: 'add', path: '/spec/strategy', value: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } }] });
    const t = target(ns, { progressDeadlineSeconds: 3 });
    await workload.ensureCanary(t);
    const started = Date.now();
    await workload.promoteCanary(t);
    const tookSeconds = (Date.now() - started) / 1000;
    const s = await cluster.deployment(ns, 'web');
    assert.equal(imageOf(s), NEW_IMAGE);
    assert.equal(s?.status?.updatedReplicas, 6);
    assert.ok(tookSeconds > 3, `the promotion took ${tookSeconds} s, longer than the 3 s progress deadline`);
    // Temporal's own bounds on the activity must not cut it short either.
    const profile = rollout(3);
    assert.ok(seconds(profile.scheduleToCloseTimeout) > tookSeconds, `scheduleToCloseTimeout ${String(profile.scheduleToCloseTimeout)} outlasts a ${tookSeconds} s progressing promotion`);
    assert.ok(seconds(profile.startToCloseTimeout) > tookSeconds, `startToCloseTimeout ${String(profile.startToCloseTimeout)} outlasts it`);
  });

  test('the progress-deadline failure names the Deployment and the cause Kubernetes gives (Pending/Unschedulable)', async () => {
    const ns = await cluster.namespace('unsched');
    await stableWithTemplatePatch(ns, [{ op: 'add', path: '/spec/template/spec/nodeSelector', value: { 'glidepath.test/no-such-node': 'true' } }]);
    const t = target(ns, { progressDeadlineSeconds: 3 });
    await workload.ensureCanary(t);
    await assert.rejects(workload.scaleCanaryForWeight(t, 50), (e: unknown) => {
      assert.ok(e instanceof ApplicationFailure, String(e));
      assert.equal(e.type, 'ProgressDeadlineExceeded');
      assert.equal(e.nonRetryable, true);
      assert.match(e.message, new RegExp(`Deployment ${ns}/web-canary exceeded its progress deadline \\(3s\\)`));
      assert.match(e.message, /pods: 1 Pending \(Unschedulable: 0\/\d+ nodes are available: .*node affinity\/selector/);
      return true;
    });
    await workload.abortCanary(t, STABLE_IMAGE);
  });

  test('the progress-deadline failure says pods are running but not ready', async () => {
    const ns = await cluster.namespace('notready');
    await stableWithTemplatePatch(ns, [{ op: 'add', path: '/spec/template/metadata/annotations', value: { 'glidepath.local/never-ready': 'true' } }]);
    const t = target(ns, { progressDeadlineSeconds: 3 });
    await workload.ensureCanary(t);
    await assert.rejects(workload.scaleCanaryForWeight(t, 100), (e: unknown) => {
      assert.ok(e instanceof ApplicationFailure, String(e));
      assert.equal(e.type, 'ProgressDeadlineExceeded');
      assert.match(e.message, /pods: 2 Running but not ready/);
      return true;
    });
    await workload.abortCanary(t, STABLE_IMAGE);
  });

  test('a retried attempt continues the stall clock from the previous attempt\'s heartbeat', async () => {
    const ns = await cluster.namespace('resume');
    await stableWithTemplatePatch(ns, [{ op: 'add', path: '/spec/template/metadata/annotations', value: { 'glidepath.local/never-ready': 'true' } }]);
    const t = target(ns, { progressDeadlineSeconds: 4 });
    const inActivity = createKubernetesWorkload(cluster.kc, { pollIntervalMs: 200 }); // the activity's heartbeat
    await workload.ensureCanary(t);
    const first = new MockActivityEnvironment();
    let last: unknown;
    first.on('heartbeat', (d: unknown) => (last = d));
    await assert.rejects(first.run(() => inActivity.scaleCanaryForWeight(t, 50)), /exceeded its progress deadline/);
    assert.match(JSON.stringify(last), /"progress":"[^"]+","progressAt":\d+/, 'the heartbeat carries the progress');
    // The next attempt sees the same stalled Deployment: it fails at once instead of waiting another 4 s.
    const retry = new MockActivityEnvironment({ heartbeatDetails: last, attempt: 2 });
    const started = Date.now();
    await assert.rejects(retry.run(() => inActivity.scaleCanaryForWeight(t, 50)), /exceeded its progress deadline/);
    const took = Date.now() - started;
    assert.ok(took < 2500, `the retry failed after ${took} ms (the deadline is 4 s and had already passed)`);
    await workload.abortCanary(t, STABLE_IMAGE);
  });
});
