/**
 * Abort and rollback against the real control plane (and Istio's CRDs, scripts/kube.sh up --crds):
 * only what Glidepath wrote is put back (a hotfix made meanwhile stays, reported as drift); the
 * healthy side keeps serving until the stable is ready after a failed promotion or finalize; and
 * cleanup does every part it can, failing with one retryable error that lists the parts that failed.
 *
 * A stable rollout is stalled with a ResourceQuota whose status the test writes as full: without the
 * resource-quota controller (not run by scripts/kube.sh) nothing recomputes it, so the apiserver
 * refuses every new pod in the namespace while the running ones stay.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type { ReleaseTarget, TrafficRouter } from '../../../activities/contract.ts';
import { createKubernetesWorkload, roleSelector, rolloutState } from '../../../activities/kubernetes/index.ts';
import { createIstioRouter } from '../../../activities/traffic/istio.ts';
import { NEW_IMAGE, STABLE_IMAGE, TestCluster, imageOf, routerActivities, target } from './cluster.ts';

const cluster = new TestCluster();
const custom = cluster.kc.makeApiClient(CustomObjectsApi);
const workload = createKubernetesWorkload(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 });
const G = { group: 'networking.istio.io', version: 'v1' };
const HOTFIX = 'example/web:1.0.1-hotfix';

after(() => cluster.cleanup());

/** From now on the apiserver refuses new pods in `ns` (see the header). */
async function refuseNewPods(ns: string): Promise<void> {
  await cluster.core.createNamespacedResourceQuota({ namespace: ns, body: { metadata: { name: 'no-new-pods' }, spec: { hard: { pods: '1' } } } });
  await cluster.core.patchNamespacedResourceQuotaStatus(
    { name: 'no-new-pods', namespace: ns, body: { status: { hard: { pods: '1' }, used: { pods: '1' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

/** A stable of `replicas` that replaces pods one at a time with a surge pod (so a refused pod stalls its rollout). */
async function surgingStable(ns: string, replicas: number): Promise<void> {
  await cluster.stable(ns, { replicas });
  await cluster.apps.patchNamespacedDeployment({ name: 'web', namespace: ns, body: [{ op: 'add', path: '/spec/strategy', value: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } }] });
}

/** Host-based Istio routing between web-stable and web-canary. */
async function istioSetup(ns: string, o: Partial<ReleaseTarget> = {}): Promise<ReleaseTarget> {
  await cluster.service(ns, 'web-stable', { app: 'web' });
  await cluster.service(ns, 'web-canary', { app: 'web' });
  await custom.createNamespacedCustomObject({
    ...G,
    namespace: ns,
    plural: 'virtualservices',
    body: { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'web-vs' }, spec: { hosts: ['web'], http: [{ name: 'primary', route: [{ destination: { host: 'web-stable' }, weight: 100 }, { destination: { host: 'web-canary' }, weight: 0 }] }] } },
  });
  return target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { istio: { virtualService: { name: 'web-vs', routes: ['primary'] } } }, ...o });
}

describe('ownership and rollback', () => {
  test('abort undoes only what Glidepath wrote: a hotfix made to the stable during the release stays, reported as drift', async () => {
    const ns = await cluster.namespace('hotfix');
    await cluster.stable(ns, { replicas: 3 });
    const t = target(ns);
    await workload.ensureCanary(t);
    await workload.scaleCanaryForWeight(t, 50);
    // Someone else (kubectl set image) ships a hotfix to the stable while the canary runs.
    await cluster.apps.patchNamespacedDeployment({ name: 'web', namespace: ns, body: [{ op: 'replace', path: '/spec/template/spec/containers/0/image', value: HOTFIX }] });
    const report = await workload.abortCanary(t, STABLE_IMAGE);
    assert.equal(imageOf(await cluster.deployment(ns, 'web')), HOTFIX, 'the hotfix is left as it is');
    assert.equal(report?.drift.length, 1, JSON.stringify(report));
    assert.match(report.drift[0] ?? '', new RegExp(`Deployment ${ns}/web container app runs ${HOTFIX}, set by someone else during the release`));
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);
  });

  test('rollback after a failed promotion keeps the healthy canary serving until the stable is put back and ready', async () => {
    const ns = await cluster.namespace('failpromo');
    await surgingStable(ns, 3);
    const t = await istioSetup(ns, { progressDeadlineSeconds: 3 });
    // The router's setWeight, observed: what the cluster looks like when traffic is sent back to stable.
    const istio = createIstioRouter(cluster.kc);
    const seen: { weight: number; stableImage: string | undefined; stableReady: boolean; canaryAvailable: number | undefined }[] = [];
    const observed: TrafficRouter = {
      ...istio,
      type: 'istio',
      setWeight: async (tt, weight) => {
        const s = await cluster.deployment(ns, 'web');
        const c = await cluster.deployment(ns, 'web-canary');
        seen.push({ weight, stableImage: imageOf(s), stableReady: s ? rolloutState(s).done : false, canaryAvailable: c?.status?.availableReplicas });
        await istio.setWeight(tt, weight);
      },
    };
    const acts = routerActivities(cluster.kc, { istio: observed });
    await acts.ensureCanary(t);
    await acts.setWeight(t, 100);
    await refuseNewPods(ns);
    await assert.rejects(acts.promoteCanary(t), (e: unknown) => e instanceof ApplicationFailure && e.type === 'ProgressDeadlineExceeded');
    const half = await cluster.deployment(ns, 'web');
    assert.equal(imageOf(half), NEW_IMAGE);
    assert.equal(half && rolloutState(half).done, false, 'the promotion left the stable half-updated');

    seen.length = 0;
    await acts.abortCanary(t, STABLE_IMAGE);
    assert.deepEqual(seen[0], { weight: 0, stableImage: STABLE_IMAGE, stableReady: true, canaryAvailable: 3 }, 'traffic left the canary only for a stable put back and ready');
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);
    assert.equal(imageOf(await cluster.deployment(ns, 'web')), STABLE_IMAGE);
  });

  test('blue/green: a failed finalize leaves the preview serving; rolling back switches only to a stable put back and ready', async () => {
    const ns = await cluster.namespace('failfinal');
    await surgingStable(ns, 3);
    await cluster.service(ns, 'web', { app: 'web' });
    const t = target(ns, { strategy: 'blueGreen', activeService: 'web', progressDeadlineSeconds: 3 });
    await workload.deployPreview(t, undefined);
    await workload.switchActive(t, 'preview');
    const stable0 = await cluster.deployment(ns, 'web');
    assert.ok(stable0);
    const previewPods = roleSelector(stable0, 'preview');
    await refuseNewPods(ns);
    await assert.rejects(workload.finalizeBlueGreen(t), (e: unknown) => {
      assert.ok(e instanceof ApplicationFailure, String(e));
      assert.equal(e.type, 'ProgressDeadlineExceeded');
      assert.match(e.message, /the active Service stays on the preview/);
      return true;
    });
    assert.deepEqual(await cluster.serviceSelector(ns, 'web'), previewPods, 'the preview keeps serving');

    await workload.switchActive(t, 'stable'); // the workflow's rollback
    const s = await cluster.deployment(ns, 'web');
    assert.equal(imageOf(s), STABLE_IMAGE, 'the stable was put back before traffic came to it');
    assert.equal(s && rolloutState(s).done, true, 'and is ready');
    const active = await cluster.serviceSelector(ns, 'web');
    assert.deepEqual(Object.keys(active).sort(), ['app', 'pod-template-hash'], 'on the stable\'s own pods (pinned to its ReplicaSet)');
    const report = await workload.abortBlueGreen(t, STABLE_IMAGE);
    assert.deepEqual(report.drift, []);
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);
  });

  test('cleanup does every part it can: a missing routing object does not keep the canary; one retryable error lists each failed part', async () => {
    const ns = await cluster.namespace('partial');
    await cluster.stable(ns, { replicas: 2 });
    const t = await istioSetup(ns);
    const acts = routerActivities(cluster.kc, { istio: createIstioRouter(cluster.kc) });
    await acts.ensureCanary(t);
    await acts.setWeight(t, 50);
    await custom.deleteNamespacedCustomObject({ ...G, namespace: ns, plural: 'virtualservices', name: 'web-vs' }); // someone deleted it
    await assert.rejects(acts.abortCanary(t, STABLE_IMAGE), (e: unknown) => {
      assert.ok(e instanceof ApplicationFailure, String(e));
      assert.equal(e.nonRetryable, false, 'the cleanup stays retryable');
      assert.equal(e.type, 'CleanupIncomplete');
      assert.match(e.message, /2 parts failed/);
      assert.match(e.message, new RegExp(`istio weight 0: NotFound: VirtualService ${ns}/web-vs not found`));
      assert.match(e.message, /istio managed routes removed: NotFound/);
      return true;
    });
    assert.deepEqual(await cluster.deploymentNames(ns), ['web'], 'the canary was removed all the same');
    assert.deepEqual(await cluster.serviceSelector(ns, 'web-canary'), { app: 'web' }, 'canary Service restored');
    assert.deepEqual(await cluster.serviceSelector(ns, 'web-stable'), { app: 'web' });
  });
});
