/**
 * The drift activities against the real control plane: a release promoted through the normal
 * activities is the reference; a hand edit of the stable Deployment (image and replicas, by another
 * field manager) is found by the read-only check and exported as `glidepath_drift`, then put back by
 * the revert (server-side apply by Glidepath's field manager) and read back; a canary left at rest and
 * a hand-edited Service selector are found and put back; replicas an HPA owns are not compared.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { createDriftActivities } from '../../activities/drift.ts';
import { createKubernetesWorkload } from '../../activities/kubernetes/index.ts';
import type { DriftBaseline } from '../../model/drift.ts';
import { NEW_IMAGE, STABLE_IMAGE, TestCluster, imageOf, target } from '../activities/kubernetes/cluster.ts';

const cluster = new TestCluster();
const workload = createKubernetesWorkload(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 });
const registry = new Registry();
const drift = createDriftActivities({ kubeConfig: cluster.kc, workload, registry });
const STRATEGIC = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

after(() => cluster.cleanup());

/** A namespace with the stable `web` (2 replicas), its Services, and a canary release of NEW_IMAGE promoted through the normal activities. */
async function promoted(prefix: string): Promise<{ ns: string; baseline: DriftBaseline }> {
  const ns = await cluster.namespace(prefix);
  await cluster.stable(ns, { replicas: 2 });
  await cluster.service(ns, 'web-stable', { app: 'web' });
  await cluster.service(ns, 'web-canary', { app: 'web' });
  const t = target(ns, { stableService: 'web-stable', canaryService: 'web-canary' });
  await workload.ensureCanary(t);
  await workload.scaleCanaryForWeight(t, 50);
  await workload.promoteCanary(t);
  assert.equal(imageOf(await cluster.deployment(ns, 'web')), NEW_IMAGE, 'the release promoted');
  return { ns, baseline: { releaseId: t.releaseId, target: t, image: NEW_IMAGE } };
}

/** The sample of `glidepath_drift` for a field, or undefined. */
async function metric(ns: string, field: string): Promise<number | undefined> {
  const m = await registry.getSingleMetric('glidepath_drift')?.get();
  return m?.values.find((v) => v.labels.namespace === ns && v.labels.workload === 'web' && v.labels.field === field)?.value;
}

test('a hand edit of the stable Deployment is reported, then reverted by server-side apply and read back', async () => {
  const { ns, baseline } = await promoted('drift-edit');
  const desired = await drift.driftDesired(baseline);
  assert.deepEqual(desired, {
    container: 'app',
    image: NEW_IMAGE,
    replicas: 2,
    role: 'canary',
    services: [{ name: 'web-stable', selector: { app: 'web' } }, { name: 'web-canary', selector: { app: 'web' } }],
  });
  const req = { watchId: `drift_${ns}_web`, baseline, desired };
  assert.deepEqual(await drift.driftCheck(req), [], 'in sync right after the promotion');
  assert.equal(await metric(ns, 'image'), 0);

  // A person edits the live Deployment (kubectl edit/scale, another field manager).
  await cluster.apps.patchNamespacedDeployment({ name: 'web', namespace: ns, fieldManager: 'kubectl-edit', body: { spec: { replicas: 3, template: { spec: { containers: [{ name: 'app', image: 'example/web:hotfix' }] } } } } }, STRATEGIC);
  const found = await drift.driftCheck(req);
  assert.deepEqual(found, [
    { field: 'image', desired: NEW_IMAGE, live: 'example/web:hotfix' },
    { field: 'replicas', desired: '2', live: '3' },
  ]);
  assert.equal(await metric(ns, 'image'), 1);
  assert.equal(await metric(ns, 'replicas'), 1);
  assert.equal(await metric(ns, 'canary'), 0);
  assert.match(await registry.metrics(), new RegExp(`glidepath_drift\\{namespace="${ns}",workload="web",field="image"\\} 1`));

  await drift.driftRevert({ ...req, findings: found });
  const back = await cluster.deployment(ns, 'web');
  assert.equal(imageOf(back), NEW_IMAGE, 'image put back');
  assert.equal(imageOf(back, 'sidecar'), 'example/proxy:1', 'the other container untouched');
  assert.equal(back?.spec?.replicas, 2, 'replicas put back');
  const owner = back?.metadata?.managedFields?.find((f) => f.manager === 'glidepath' && f.operation === 'Apply');
  assert.ok(owner && JSON.stringify(owner.fieldsV1).includes('"f:image"'), 'Glidepath\'s field manager owns the image again (server-side apply)');
  assert.deepEqual(await drift.driftCheck(req), [], 'in sync after the revert');
  assert.equal(await metric(ns, 'image'), 0);
  assert.equal(await metric(ns, 'replicas'), 0);
  await cluster.rolledOut(ns, 'web');
  assert.notEqual(STABLE_IMAGE, NEW_IMAGE);
});

test('a canary left at rest and hand-edited Service selectors are reported, then removed and put back', async () => {
  const { ns, baseline } = await promoted('drift-canary');
  const desired = await drift.driftDesired(baseline);
  const req = { watchId: `drift_${ns}_web`, baseline, desired };
  // A selector edit of web-stable, and a canary made again by hand from the last release (it points web-canary at its pods).
  await cluster.core.patchNamespacedService({ name: 'web-stable', namespace: ns, fieldManager: 'kubectl-edit', body: { spec: { selector: { app: 'web', tier: 'backend' } } } }, MERGE);
  await workload.ensureCanary(baseline.target);
  const found = await drift.driftCheck(req);
  assert.deepEqual(found.map((f) => f.field), ['canary', 'service/web-stable', 'service/web-canary']);
  assert.equal(found[1]?.live, 'app=web,tier=backend');
  assert.match(found[2]?.live ?? '', /rollouts\.glidepath\.dev\/role=canary/);
  assert.equal(await metric(ns, 'canary'), 1);

  await drift.driftRevert({ ...req, findings: found });
  assert.equal(await cluster.deployment(ns, 'web-canary'), undefined, 'the canary is gone');
  assert.deepEqual(await cluster.serviceSelector(ns, 'web-stable'), { app: 'web' });
  assert.deepEqual(await cluster.serviceSelector(ns, 'web-canary'), { app: 'web' });
  assert.deepEqual(await drift.driftCheck(req), []);
  assert.equal(await metric(ns, 'canary'), 0);
});

test('replicas an HPA owns are not part of the reference and not compared', async () => {
  const ns = await cluster.namespace('drift-hpa');
  await cluster.stable(ns, { replicas: 2 });
  await cluster.kc.makeApiClient((await import('@kubernetes/client-node')).AutoscalingV2Api).createNamespacedHorizontalPodAutoscaler({
    namespace: ns,
    body: { metadata: { name: 'web' }, spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, minReplicas: 2, maxReplicas: 5, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }] } },
  });
  const baseline: DriftBaseline = { releaseId: `release_${ns}_web`, target: target(ns, { image: STABLE_IMAGE, strategy: 'rolling' }), image: STABLE_IMAGE };
  const desired = await drift.driftDesired(baseline);
  assert.equal(desired.replicas, undefined);
  assert.equal(desired.role, undefined, 'a rolling release leaves no canary to look for');
  await cluster.apps.patchNamespacedDeployment({ name: 'web', namespace: ns, fieldManager: 'hpa-like', body: { spec: { replicas: 4 } } }, MERGE);
  assert.deepEqual(await drift.driftCheck({ watchId: `drift_${ns}_web`, baseline, desired }), []);
});

test('the reference of a workload that is gone is a named, non-retryable failure', async () => {
  const ns = await cluster.namespace('drift-gone');
  const baseline: DriftBaseline = { releaseId: `release_${ns}_web`, target: target(ns), image: NEW_IMAGE };
  await assert.rejects(drift.driftDesired(baseline), (err: Error & { type?: string; nonRetryable?: boolean }) => err.type === 'NotFound' && err.nonRetryable === true && /Deployment .*\/web not found/.test(err.message));
});
