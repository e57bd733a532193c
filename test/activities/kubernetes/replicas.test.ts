/**
 * A release with a desired replica count (a release group's per-cluster override) against the real
 * control plane: the canary and the preview are sized from it, promotion ends the stable at it,
 * abort and a compensating release put back the count it had, a count someone else set meanwhile is
 * drift, and an HPA on the Deployment is refused at preflight.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { AutoscalingV2Api } from '@kubernetes/client-node';
import { createKubernetesWorkload, type Heartbeat } from '../../../activities/kubernetes/index.ts';
import { NEW_IMAGE, STABLE_IMAGE, TestCluster, imageOf, target } from './cluster.ts';

const cluster = new TestCluster();
const heartbeat: Heartbeat = () => undefined;
const workload = createKubernetesWorkload(cluster.kc, { heartbeat, pollIntervalMs: 200 });

after(() => cluster.cleanup());

async function stableState(ns: string): Promise<{ image?: string | undefined; replicas?: number | undefined; available?: number | undefined; updated?: number | undefined }> {
  const s = await cluster.deployment(ns, 'web');
  return { image: imageOf(s), replicas: s?.spec?.replicas, available: s?.status?.availableReplicas, updated: s?.status?.updatedReplicas };
}

describe('a desired replica count', () => {
  test('canary: sized from the desired count, the promoted Deployment ends at it; a compensating release puts the count back', async () => {
    const ns = await cluster.namespace('rep-canary');
    await cluster.stable(ns, { replicas: 2 });
    const t = target(ns, { replicas: 6 });
    assert.equal((await workload.preflight(t)).replicas, 2, 'preflight reports the live count');
    await workload.ensureCanary(t);
    assert.deepEqual(await workload.scaleCanaryForWeight(t, 50), { canaryReplicas: 3 }, '50 % of 6, not of the live 2');
    assert.equal((await cluster.deployment(ns, 'web-canary'))?.status?.availableReplicas, 3);
    assert.equal((await stableState(ns)).replicas, 2, 'the stable keeps its count until promotion');
    await workload.promoteCanary(t);
    assert.deepEqual(await stableState(ns), { image: NEW_IMAGE, replicas: 6, available: 6, updated: 6 });
    const promoted = await cluster.deployment(ns, 'web');
    assert.equal(promoted?.metadata?.annotations?.['glidepath.dev/previous-replicas'], '2');
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);

    // A release group's compensation: a release of the previous image at the previous count.
    const back = target(ns, { image: STABLE_IMAGE, replicas: 2 });
    await workload.ensureCanary(back);
    await workload.promoteCanary(back);
    assert.deepEqual(await stableState(ns), { image: STABLE_IMAGE, replicas: 2, available: 2, updated: 2 });
    const again = (await cluster.deployment(ns, 'web'))?.metadata?.resourceVersion;
    await workload.promoteCanary(back);
    assert.equal((await cluster.deployment(ns, 'web'))?.metadata?.resourceVersion, again, 'run twice, the second promotion writes nothing');
  });

  test('abort after the stable took the new image and count: both back to what preflight saw, waited for; a second abort writes nothing', async () => {
    const ns = await cluster.namespace('rep-abort');
    await cluster.stable(ns, { replicas: 3 });
    const t = target(ns, { replicas: 5 });
    await workload.preflight(t);
    await workload.ensureCanary(t);
    await workload.scaleCanaryForWeight(t, 20);
    assert.equal((await cluster.deployment(ns, 'web-canary'))?.spec?.replicas, 1, '20 % of 5');
    // The promotion fails once the stable is rolled forward (the router could not take the traffic).
    await assert.rejects(workload.promoteCanary(t, { beforeCanaryRemoved: () => Promise.reject(new Error('router down')) }), /router down/);
    assert.deepEqual(await stableState(ns), { image: NEW_IMAGE, replicas: 5, available: 5, updated: 5 });
    const report = await workload.abortCanary(t, STABLE_IMAGE);
    assert.deepEqual(report.drift, []);
    const s = await stableState(ns);
    assert.equal(s.image, STABLE_IMAGE);
    assert.equal(s.replicas, 3, 'the count the stable had before the release');
    assert.equal(s.updated, 3, 'abort waited for the stable');
    assert.equal(s.available, 3);
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);
    const rv = (await cluster.deployment(ns, 'web'))?.metadata?.resourceVersion;
    await workload.abortCanary(t, STABLE_IMAGE);
    assert.equal((await cluster.deployment(ns, 'web'))?.metadata?.resourceVersion, rv);
  });

  test('abort with a count someone else set during the release: left as it is, reported as drift, the image still put back', async () => {
    const ns = await cluster.namespace('rep-drift');
    await cluster.stable(ns, { replicas: 2 });
    const t = target(ns, { replicas: 4 });
    await workload.ensureCanary(t);
    await assert.rejects(workload.promoteCanary(t, { beforeCanaryRemoved: () => Promise.reject(new Error('router down')) }), /router down/);
    await cluster.apps.patchNamespacedDeployment({ name: 'web', namespace: ns, body: [{ op: 'replace', path: '/spec/replicas', value: 7 }] });
    const report = await workload.abortCanary(t, STABLE_IMAGE);
    assert.deepEqual(report.drift, [`Deployment ${ns}/web has 7 replicas, set by someone else during the release (Glidepath had set 4; it had 2 before): left as it is`]);
    const s = await cluster.rolledOut(ns, 'web');
    assert.equal(imageOf(s), STABLE_IMAGE);
    assert.equal(s.spec?.replicas, 7);
  });

  test('blue/green: the preview sized from the desired count, finalize ends the stable at it, abort after finalize puts the count back', async () => {
    const ns = await cluster.namespace('rep-bg');
    await cluster.stable(ns, { replicas: 2 });
    await cluster.service(ns, 'web-active', { app: 'web' });
    const t = target(ns, { strategy: 'blueGreen', activeService: 'web-active', replicas: 3 });
    await workload.preflight(t);
    await workload.deployPreview(t, undefined);
    assert.equal((await cluster.deployment(ns, 'web-preview'))?.status?.availableReplicas, 3);
    await workload.switchActive(t, 'preview');
    await workload.finalizeBlueGreen(t);
    assert.deepEqual(await stableState(ns), { image: NEW_IMAGE, replicas: 3, available: 3, updated: 3 });
    await workload.abortBlueGreen(t, STABLE_IMAGE);
    assert.deepEqual(await stableState(ns), { image: STABLE_IMAGE, replicas: 2, available: 2, updated: 2 });
  });

  test('an HPA scaling the Deployment owns its count: preflight refuses the release by name, nothing written', async () => {
    const ns = await cluster.namespace('rep-hpa');
    await cluster.stable(ns, { replicas: 2 });
    await cluster.kc.makeApiClient(AutoscalingV2Api).createNamespacedHorizontalPodAutoscaler({
      namespace: ns,
      body: {
        apiVersion: 'autoscaling/v2',
        kind: 'HorizontalPodAutoscaler',
        metadata: { name: 'web-hpa' },
        spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, minReplicas: 2, maxReplicas: 10, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }] },
      },
    });
    const before = (await cluster.deployment(ns, 'web'))?.metadata?.resourceVersion;
    await assert.rejects(workload.preflight(target(ns, { replicas: 6 })), (e: unknown) => {
      assert.ok(e instanceof ApplicationFailure && e.nonRetryable && e.type === 'PreflightFailed', String(e));
      assert.match(e.message, new RegExp(`^HorizontalPodAutoscaler ${ns}/web-hpa scales Deployment ${ns}/web and owns its replica count: a release with a desired count \\(replicas: 6\\) would fight it`));
      return true;
    });
    assert.equal((await cluster.deployment(ns, 'web'))?.metadata?.resourceVersion, before);
    assert.equal((await workload.preflight(target(ns))).replicas, 2, 'without a desired count the HPA is fine');
  });
});
