/**
 * Capacity during a release, against the real control plane: a real autoscaling/v2
 * HorizontalPodAutoscaler on the stable (its effect applied by the test, writing the scale
 * subresource as the HPA controller would: kube-controller-manager here runs no HPA controller and
 * there are no metrics), the blue/green preview re-sized at the switch, and the user's
 * PodDisruptionBudget extended to the canary/preview pods.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { AutoscalingV2Api } from '@kubernetes/client-node';
import { createKubernetesWorkload, roleSelector } from '../../../activities/kubernetes/index.ts';
import { STABLE_IMAGE, TestCluster, eventually, target } from './cluster.ts';

const cluster = new TestCluster();
const autoscaling = cluster.kc.makeApiClient(AutoscalingV2Api);
const workload = createKubernetesWorkload(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 });

after(() => cluster.cleanup());

async function hpa(ns: string, minReplicas: number, maxReplicas: number): Promise<void> {
  await autoscaling.createNamespacedHorizontalPodAutoscaler({
    namespace: ns,
    body: {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'web' },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' },
        minReplicas,
        maxReplicas,
        metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }],
      },
    },
  });
}

/**
 * One HPA sync as the controller does it, for a load that needs `wanted` pods: the count clamped to
 * the HPA's [minReplicas, maxReplicas], written to the Deployment's scale subresource.
 */
async function autoscale(ns: string, wanted: number): Promise<number> {
  const h = await autoscaling.readNamespacedHorizontalPodAutoscaler({ name: 'web', namespace: ns });
  const replicas = Math.min(h.spec?.maxReplicas ?? 1, Math.max(h.spec?.minReplicas ?? 1, wanted));
  const scale = await cluster.apps.readNamespacedDeploymentScale({ name: 'web', namespace: ns });
  await cluster.apps.replaceNamespacedDeploymentScale({ name: 'web', namespace: ns, body: { ...scale, spec: { replicas } } });
  return replicas;
}

async function minReplicas(ns: string): Promise<{ min: number | undefined; held: string | undefined }> {
  const h = await autoscaling.readNamespacedHorizontalPodAutoscaler({ name: 'web', namespace: ns });
  return { min: h.spec?.minReplicas, held: h.metadata?.annotations?.['glidepath.dev/held-min-replicas'] };
}

async function pdb(ns: string, name: string) {
  try {
    return await cluster.policy.readNamespacedPodDisruptionBudget({ name, namespace: ns });
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

describe('capacity', () => {
  test('HPA: a canary is sized from the stable held at its size, not from an HPA-shrunk stable; the floor is given back at promotion', async () => {
    const ns = await cluster.namespace('hpa-canary');
    await cluster.stable(ns, { replicas: 4 });
    await hpa(ns, 1, 10);
    const t = target(ns);
    await workload.ensureCanary(t);
    assert.equal((await minReplicas(ns)).min, 4, 'minReplicas held at the stable\'s replicas');
    await workload.scaleCanaryForWeight(t, 50);
    // Half the traffic went to the canary: the stable's load halves and its HPA wants 1 pod.
    assert.equal(await autoscale(ns, 1), 4, 'the HPA cannot shrink the stable below the floor');
    assert.equal((await cluster.deployment(ns, 'web'))?.spec?.replicas, 4);
    const { canaryReplicas } = await workload.scaleCanaryForWeight(t, 75);
    assert.equal(canaryReplicas, 3, '75% of the stable\'s 4');
    await workload.promoteCanary(t);
    assert.deepEqual(await minReplicas(ns), { min: 1, held: undefined }, 'the user\'s minReplicas is back');
  });

  test('HPA: a blue/green stable idle behind the switch keeps its size for a rollback; the floor is given back at abort', async () => {
    const ns = await cluster.namespace('hpa-bg');
    await cluster.stable(ns, { replicas: 4 });
    await cluster.service(ns, 'web', { app: 'web' });
    await hpa(ns, 2, 10);
    const t = target(ns, { strategy: 'blueGreen', activeService: 'web' });
    await workload.deployPreview(t, undefined);
    await workload.switchActive(t, 'preview');
    // The stable serves nothing now: its HPA wants the fewest pods it may have.
    assert.equal(await autoscale(ns, 0), 4);
    await workload.switchActive(t, 'stable'); // post-promotion analysis failed: the stable takes 100 % back
    const s = await cluster.rolledOut(ns, 'web');
    assert.equal(s.spec?.replicas, 4, 'the stable takes the traffic back at full size');
    const report = await workload.abortBlueGreen(t, STABLE_IMAGE);
    assert.deepEqual(report.drift, []);
    assert.deepEqual(await minReplicas(ns), { min: 2, held: undefined });
  });

  test('HPA: a minReplicas someone changed during the release is left as it is and reported as drift', async () => {
    const ns = await cluster.namespace('hpa-drift');
    await cluster.stable(ns, { replicas: 3 });
    await hpa(ns, 1, 10);
    const t = target(ns);
    await workload.ensureCanary(t);
    await autoscaling.patchNamespacedHorizontalPodAutoscaler({ name: 'web', namespace: ns, body: [{ op: 'replace', path: '/spec/minReplicas', value: 5 }] });
    const report = await workload.abortCanary(t, STABLE_IMAGE);
    assert.deepEqual(await minReplicas(ns), { min: 5, held: undefined });
    assert.equal(report.drift.length, 1);
    assert.match(report.drift[0] ?? '', /HorizontalPodAutoscaler .*\/web minReplicas is 5, changed by someone else during the release/);
  });

  test('blue/green preview sized at the switch: a stable scaled up during the release gets a preview of its new size', async () => {
    const ns = await cluster.namespace('resize');
    await cluster.stable(ns, { replicas: 2 });
    await cluster.service(ns, 'web', { app: 'web' });
    const t = target(ns, { strategy: 'blueGreen', activeService: 'web' });
    await workload.deployPreview(t, undefined);
    assert.equal((await cluster.deployment(ns, 'web-preview'))?.spec?.replicas, 2);
    const scale = await cluster.apps.readNamespacedDeploymentScale({ name: 'web', namespace: ns });
    await cluster.apps.replaceNamespacedDeploymentScale({ name: 'web', namespace: ns, body: { ...scale, spec: { replicas: 5 } } }); // a user scales up
    await cluster.rolledOut(ns, 'web');
    const stable = await cluster.deployment(ns, 'web');
    assert.ok(stable);
    await eventually('the switch (retried until the re-sized preview is ready)', async () => {
      await workload.switchActive(t, 'preview');
      return true;
    });
    const preview = await cluster.deployment(ns, 'web-preview');
    assert.equal(preview?.spec?.replicas, 5, 'preview re-sized to the stable\'s 5');
    assert.equal(preview?.status?.availableReplicas, 5, 'and ready before the switch');
    assert.deepEqual(await cluster.serviceSelector(ns, 'web'), roleSelector(stable, 'preview'));
    await workload.abortBlueGreen(t, STABLE_IMAGE);
  });

  test('PodDisruptionBudget: a user\'s budget covering the workload covers the canary and preview pods too (no second budget: such pods stay evictable)', async () => {
    const ns = await cluster.namespace('pdb');
    await cluster.stable(ns, { replicas: 4 });
    await cluster.service(ns, 'web', { app: 'web' });
    await cluster.policy.createNamespacedPodDisruptionBudget({ namespace: ns, body: { metadata: { name: 'web' }, spec: { minAvailable: 3, selector: { matchLabels: { app: 'web' } } } } });
    const t = target(ns);
    await workload.ensureCanary(t);
    await workload.scaleCanaryForWeight(t, 100);
    assert.equal(await pdb(ns, 'web-canary'), undefined, 'no canary budget: the user\'s selects the canary pods');
    const [canaryPod] = await cluster.livePods(ns, { 'rollouts.glidepath.dev/role': 'canary' });
    assert.ok(canaryPod?.metadata?.name);
    // This control plane runs no disruption controller: the budget's status is written as it would (8 healthy, 3 required).
    const user = await pdb(ns, 'web');
    await cluster.policy.replaceNamespacedPodDisruptionBudgetStatus({
      name: 'web',
      namespace: ns,
      body: { ...user, status: { observedGeneration: user?.metadata?.generation ?? 1, currentHealthy: 8, desiredHealthy: 3, expectedPods: 8, disruptionsAllowed: 5 } },
    });
    // A pod under two budgets cannot be evicted at all (the eviction API answers 500); under one it can.
    await cluster.core.createNamespacedPodEviction({ name: canaryPod.metadata.name, namespace: ns, body: { metadata: { name: canaryPod.metadata.name, namespace: ns } } });
    await workload.abortCanary(t, STABLE_IMAGE);
    assert.ok(await pdb(ns, 'web'), 'the user\'s PDB stays');

    const bg = target(ns, { releaseId: `${ns}/bg`, strategy: 'blueGreen', activeService: 'web' });
    await workload.deployPreview(bg, undefined);
    assert.equal(await pdb(ns, 'web-preview'), undefined);
    await workload.abortBlueGreen(bg, STABLE_IMAGE);
  });

  test('PodDisruptionBudget: a user\'s budget that excludes the role pods gives the canary one of its own, owned by it and removed with it', async () => {
    const ns = await cluster.namespace('pdbown');
    const stable = await cluster.stable(ns, { replicas: 4 });
    const selector = { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'rollouts.glidepath.dev/role', operator: 'DoesNotExist' }] };
    await cluster.policy.createNamespacedPodDisruptionBudget({ namespace: ns, body: { metadata: { name: 'web' }, spec: { minAvailable: 3, selector } } });
    const t = target(ns);
    await workload.ensureCanary(t);
    await workload.scaleCanaryForWeight(t, 100);
    const c = await pdb(ns, 'web-canary');
    assert.ok(c, 'web-canary PodDisruptionBudget exists');
    assert.deepEqual(c.spec?.selector?.matchLabels, roleSelector(stable, 'canary'), 'it selects the canary pods');
    assert.equal(c.spec?.maxUnavailable, 1, 'the user\'s budget: 4 replicas with minAvailable 3 allow 1 disruption at a time');
    assert.equal(c.metadata?.labels?.['app.kubernetes.io/managed-by'], 'glidepath');
    assert.equal(c.metadata?.ownerReferences?.[0]?.name, 'web-canary');
    await workload.abortCanary(t, STABLE_IMAGE);
    assert.equal(await pdb(ns, 'web-canary'), undefined, 'removed with the canary');
    assert.ok(await pdb(ns, 'web'), 'the user\'s PDB stays');
  });
});
