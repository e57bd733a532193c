/**
 * A canary without traffic routing whose release sets maxSurge/maxUnavailable, on the real control
 * plane: each setWeight moves pods from the stable to the canary until the split is Argo's
 * (model/basic-canary.ts, checked there against Argo's own tables), never more than spec + maxSurge
 * pods asked for nor fewer than spec − maxUnavailable available, as a watch on both Deployments sees
 * it; promotion and abort return the stable to its full size within the same limits.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Watch, type V1Deployment } from '@kubernetes/client-node';
import { SPEC_REPLICAS_ANNOTATION } from '../../../activities/kubernetes/basic-canary.ts';
import { createKubernetesWorkload, type Heartbeat } from '../../../activities/kubernetes/index.ts';
import { resolveLimits, targetCounts, type BasicCanaryLimits } from '../../../model/basic-canary.ts';
import { NEW_IMAGE, STABLE_IMAGE, TestCluster, imageOf, target } from './cluster.ts';

const cluster = new TestCluster();
const heartbeat: Heartbeat = () => undefined;
const workload = createKubernetesWorkload(cluster.kc, { heartbeat, pollIntervalMs: 100 });

after(() => cluster.cleanup());

interface Seen {
  /** Whether the canary Deployment exists in this state. */
  canaryExists: boolean;
  canary: { replicas: number; available: number };
  stable: { replicas: number; available: number };
}

/** Every state of the two Deployments a watch reports while `run` runs. */
async function watched<T>(ns: string, run: () => Promise<T>): Promise<{ result: T; seen: Seen[] }> {
  const seen: Seen[] = [];
  const now: Seen = { canaryExists: false, canary: { replicas: 0, available: 0 }, stable: { replicas: 0, available: 0 } };
  for (const [role, name] of [['stable', 'web'], ['canary', 'web-canary']] as const) {
    const d = await cluster.deployment(ns, name);
    now[role] = { replicas: d?.spec?.replicas ?? 0, available: d?.status?.availableReplicas ?? 0 };
    if (role === 'canary') now.canaryExists = d !== undefined;
  }
  seen.push(structuredClone(now));
  const req = await new Watch(cluster.kc).watch(`/apis/apps/v1/namespaces/${ns}/deployments`, {}, (type: string, d: V1Deployment) => {
    const role = d.metadata?.name === 'web' ? 'stable' : d.metadata?.name === 'web-canary' ? 'canary' : undefined;
    if (!role) return;
    now[role] = type === 'DELETED' ? { replicas: 0, available: 0 } : { replicas: d.spec?.replicas ?? 0, available: d.status?.availableReplicas ?? 0 };
    if (role === 'canary') now.canaryExists = type !== 'DELETED';
    seen.push(structuredClone(now));
  }, () => undefined);
  try {
    const result = await run();
    await new Promise((r) => setTimeout(r, 300)); // the last events
    return { result, seen };
  } finally {
    req.abort();
  }
}

/** The states stay within the limits: pods asked for ≤ spec + surge, available ≥ spec − unavailable. */
function assertWithin(seen: Seen[], spec: number, limits: BasicCanaryLimits, what: string): void {
  const { surge, unavailable } = resolveLimits(limits, spec);
  const trail = seen.map((s) => `${s.canary.replicas}/${s.stable.replicas} (avail ${s.canary.available}/${s.stable.available})`).join(' → ');
  for (const s of seen) {
    assert.ok(s.canary.replicas + s.stable.replicas <= spec + surge, `${what}: more than ${spec} + ${surge} pods: ${trail}`);
    assert.ok(s.canary.available + s.stable.available >= spec - unavailable, `${what}: fewer than ${spec} − ${unavailable} available: ${trail}`);
  }
}

async function counts(ns: string): Promise<{ canary: number | undefined; stable: number | undefined }> {
  return { canary: (await cluster.deployment(ns, 'web-canary'))?.spec?.replicas, stable: (await cluster.deployment(ns, 'web'))?.spec?.replicas };
}

describe('basic canary with maxSurge/maxUnavailable', () => {
  test('10 replicas, maxSurge 0 / maxUnavailable 1: setWeight 20/50/80 split the pods as Argo does, promotion ends at 10 new', async () => {
    const ns = await cluster.namespace('surge');
    await cluster.stable(ns, { replicas: 10 });
    const limits = { maxSurge: 0, maxUnavailable: 1 };
    const t = target(ns, { replicaLimits: limits });
    await workload.ensureCanary(t);
    const splits: string[] = [];
    for (const weight of [20, 50, 80]) {
      const { result, seen } = await watched(ns, () => workload.scaleCanaryForWeight(t, weight));
      assertWithin(seen, 10, limits, `weight ${weight}`);
      const got = await counts(ns);
      assert.deepEqual(got, targetCounts(10, weight, limits));
      assert.equal(result.canaryReplicas, got.canary);
      splits.push(`${weight}%: ${got.canary}/${got.stable} in ${seen.length} states`);
    }
    assert.deepEqual((await counts(ns)), { canary: 8, stable: 2 });
    const again = await workload.scaleCanaryForWeight(t, 80);
    assert.equal(again.canaryReplicas, 8, 'idempotent');
    const stable = await cluster.deployment(ns, 'web');
    assert.deepEqual(JSON.parse(stable?.metadata?.annotations?.[SPEC_REPLICAS_ANNOTATION] ?? '{}'), { release: t.releaseId, replicas: 10 });

    const { seen } = await watched(ns, () => workload.promoteCanary(t));
    assertWithin(seen, 10, limits, 'promotion');
    const after = await cluster.deployment(ns, 'web');
    assert.equal(after?.spec?.replicas, 10);
    assert.equal(imageOf(after), NEW_IMAGE);
    assert.equal(after?.metadata?.annotations?.[SPEC_REPLICAS_ANNOTATION], undefined);
    assert.equal(await cluster.deployment(ns, 'web-canary'), undefined);
    await workload.promoteCanary(t); // a retry changes nothing
    assert.equal((await cluster.deployment(ns, 'web'))?.spec?.replicas, 10);
    console.log(`basic canary (10, maxSurge 0, maxUnavailable 1): ${splits.join('; ')}; promotion in ${seen.length} states`);
  });

  test('10 replicas, maxSurge 1 / maxUnavailable 0: weight 20 then abort puts the stable back at 10 before the canary goes', async () => {
    const ns = await cluster.namespace('surge-abort');
    await cluster.stable(ns, { replicas: 10 });
    const limits = { maxSurge: 1, maxUnavailable: 0 };
    const t = target(ns, { replicaLimits: limits });
    await workload.ensureCanary(t);
    const up = await watched(ns, () => workload.scaleCanaryForWeight(t, 20));
    assertWithin(up.seen, 10, limits, 'weight 20');
    assert.deepEqual(await counts(ns), { canary: 2, stable: 8 });
    const down = await watched(ns, () => workload.abortCanary(t, STABLE_IMAGE));
    assert.deepEqual(down.result.drift, []);
    assertWithin(down.seen, 10, limits, 'abort');
    const stable = await cluster.deployment(ns, 'web');
    assert.equal(stable?.spec?.replicas, 10);
    assert.equal(imageOf(stable), STABLE_IMAGE);
    assert.equal(stable?.metadata?.annotations?.[SPEC_REPLICAS_ANNOTATION], undefined);
    assert.equal(await cluster.deployment(ns, 'web-canary'), undefined);
  });

  test('abort with the canary Deployment already gone: the stable grows back to its full size, no canary is made again', async () => {
    const ns = await cluster.namespace('surge-gone');
    await cluster.stable(ns, { replicas: 4 });
    const limits = { maxSurge: 1, maxUnavailable: 1 };
    const t = target(ns, { replicaLimits: limits });
    await workload.ensureCanary(t);
    await workload.scaleCanaryForWeight(t, 50);
    assert.deepEqual(await counts(ns), { canary: 2, stable: 2 });
    await cluster.apps.deleteNamespacedDeployment({ name: 'web-canary', namespace: ns });
    const { seen } = await watched(ns, () => workload.abortCanary(t, STABLE_IMAGE));
    assert.ok(seen.every((s) => !s.canaryExists), `no canary Deployment made again: ${JSON.stringify(seen)}`);
    assert.equal((await cluster.deployment(ns, 'web'))?.spec?.replicas, 4);
    assert.equal(await cluster.deployment(ns, 'web-canary'), undefined);
  });

  test('5 replicas without steps (Argo\'s rolling-update shape, maxSurge 25% / maxUnavailable 0): promotion is a rolling update within the limits', async () => {
    const ns = await cluster.namespace('surge-roll');
    await cluster.stable(ns, { replicas: 5 });
    const limits = { maxSurge: '25%', maxUnavailable: 0 };
    const t = target(ns, { replicaLimits: limits });
    await workload.ensureCanary(t);
    const { seen } = await watched(ns, () => workload.promoteCanary(t));
    assertWithin(seen, 5, limits, 'promotion');
    assert.ok(seen.some((s) => s.canary.replicas === 5 && s.stable.replicas <= 2), `the canary carried the workload: ${JSON.stringify(seen)}`);
    const stable = await cluster.deployment(ns, 'web');
    assert.equal(stable?.spec?.replicas, 5);
    assert.equal(imageOf(stable), NEW_IMAGE);
    assert.equal(await cluster.deployment(ns, 'web-canary'), undefined);
  });

  test('an autoscaled stable is refused by name: the canary would fight the HorizontalPodAutoscaler', async () => {
    const ns = await cluster.namespace('surge-hpa');
    await cluster.stable(ns, { replicas: 4 });
    await cluster.kc.makeApiClient((await import('@kubernetes/client-node')).AutoscalingV2Api).createNamespacedHorizontalPodAutoscaler({
      namespace: ns,
      body: { metadata: { name: 'web' }, spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, minReplicas: 2, maxReplicas: 8 } },
    });
    await assert.rejects(workload.ensureCanary(target(ns, { replicaLimits: { maxSurge: 1, maxUnavailable: 0 } })), /maxSurge\/maxUnavailable: HorizontalPodAutoscaler web scales Deployment/);
    assert.equal((await cluster.deployment(ns, 'web'))?.spec?.replicas, 4);
  });
});
