/**
 * The SMI router (Argo's trafficRouting.smi) on the real control plane with OSM's TrafficSplit CRD
 * (split.smi-spec.io, v1alpha2 served and stored; scripts/kube.sh crds). No mesh runs: the tests
 * assert the TrafficSplit a mesh would read. Weights after every step of a canary run through
 * createActivities, after abort and after promotion; a backend, labels and annotations added by hand
 * survive; a repeated call writes nothing; a TrafficSplit Glidepath did not create is refused.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { createSmiRouter } from '../../../activities/traffic/smi.ts';
import type { ReleaseTarget } from '../../../activities/contract.ts';
import { routerActivities, TestCluster, target } from '../kubernetes/cluster.ts';

const cluster = new TestCluster();
const custom = cluster.kc.makeApiClient(CustomObjectsApi);
const router = createSmiRouter(cluster.kc);
const activities = routerActivities(cluster.kc, { smi: router });

after(() => cluster.cleanup());

const S = { group: 'split.smi-spec.io', version: 'v1alpha2', plural: 'trafficsplits' };

interface Split {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string };
  spec: { service: string; backends: { service: string; weight: number }[] };
}

async function read(ns: string, name = 'web'): Promise<Split | undefined> {
  try {
    return (await custom.getNamespacedCustomObject({ ...S, namespace: ns, name })) as Split;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

async function weights(ns: string, name = 'web'): Promise<[number | undefined, number | undefined]> {
  const ts = await read(ns, name);
  return [ts?.spec.backends.find((b) => b.service === 'web-stable')?.weight, ts?.spec.backends.find((b) => b.service === 'web-canary')?.weight];
}

async function setup(prefix: string, block: Record<string, unknown> = {}): Promise<{ ns: string; t: ReleaseTarget }> {
  const ns = await cluster.namespace(prefix);
  await cluster.stable(ns, { replicas: 4 });
  await cluster.service(ns, 'web-stable', { app: 'web' });
  await cluster.service(ns, 'web-canary', { app: 'web' });
  return { ns, t: target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { smi: block } }) };
}

/** Adds, by hand, a backend, a label and an annotation to the TrafficSplit. */
async function handEdit(ns: string, name = 'web'): Promise<void> {
  const ts = (await read(ns, name)) as Split;
  ts.metadata.labels = { ...ts.metadata.labels, team: 'payments' };
  ts.metadata.annotations = { ...ts.metadata.annotations, 'example.com/owner': 'alice' };
  ts.spec.backends.push({ service: 'web-mirror', weight: 0 });
  await custom.replaceNamespacedCustomObject({ ...S, namespace: ns, name, body: ts });
}

function handParts(ts: Split | undefined): unknown {
  return { label: ts?.metadata.labels?.team, annotation: ts?.metadata.annotations?.['example.com/owner'], extra: ts?.spec.backends.filter((b) => b.service === 'web-mirror') };
}

describe('smi router', () => {
  test('created on the first setWeight; 10/25/50/100 after each step; promotion back to 100/0; hand edits survive', async () => {
    const { ns, t } = await setup('smi-steps');
    await activities.preflight(t);
    await activities.ensureCanary(t);
    assert.equal(await read(ns), undefined);
    await activities.setWeight(t, 10);
    const created = (await read(ns)) as Split;
    assert.equal(created.spec.service, 'web-stable', 'rootService defaults to stableService');
    assert.equal(created.metadata.labels?.['app.kubernetes.io/managed-by'], 'glidepath');
    await handEdit(ns);
    const hand = handParts(await read(ns));
    for (const w of [10, 25, 50, 100]) {
      await activities.setWeight(t, w);
      await activities.setWeight(t, w);
      assert.deepEqual(await weights(ns), [100 - w, w], `after setWeight ${w}`);
      assert.equal(await router.verifyWeight(t, w), true);
      assert.deepEqual(handParts(await read(ns)), hand, `hand edits after setWeight ${w}`);
    }
    await activities.promoteCanary(t);
    assert.deepEqual(await weights(ns), [100, 0], 'after promotion');
    assert.equal(await router.verifyWeight(t, 0), true);
    assert.deepEqual(handParts(await read(ns)), hand);
  });

  test('abort at 25: 100/0, twice', async () => {
    const { ns, t } = await setup('smi-abort');
    await activities.preflight(t);
    await activities.ensureCanary(t);
    await activities.setWeight(t, 25);
    await activities.abortCanary(t, undefined);
    await activities.abortCanary(t, undefined);
    assert.deepEqual(await weights(ns), [100, 0]);
    assert.equal(await router.verifyWeight(t, 0), true);
  });

  test('an identical setWeight writes nothing; tampering is seen and repaired; rootService and trafficSplitName', async () => {
    const { ns, t } = await setup('smi-idem', { rootService: 'web', trafficSplitName: 'web-split' });
    await router.setWeight(t, 50);
    const rv = (await read(ns, 'web-split'))?.metadata.resourceVersion;
    await router.setWeight(t, 50);
    assert.equal((await read(ns, 'web-split'))?.metadata.resourceVersion, rv, 'a repeated setWeight does not write');
    assert.equal((await read(ns, 'web-split'))?.spec.service, 'web');
    assert.equal(await read(ns, 'web'), undefined, 'trafficSplitName names the object');
    const ts = (await read(ns, 'web-split')) as Split;
    const canary = ts.spec.backends.find((b) => b.service === 'web-canary');
    assert.ok(canary);
    canary.weight = 7;
    await custom.replaceNamespacedCustomObject({ ...S, namespace: ns, name: 'web-split', body: ts });
    assert.equal(await router.verifyWeight(t, 50), false);
    await router.setWeight(t, 50);
    assert.equal(await router.verifyWeight(t, 50), true);
    assert.equal(router.setHeaderRoute, undefined, 'no header routes');
    assert.equal(router.setMirrorRoute, undefined, 'no mirror routes');
  });

  test('concurrent first setWeights: the creates that lose the race (409 AlreadyExists) re-read and update', async () => {
    const { ns, t } = await setup('smi-race');
    await Promise.all([10, 10, 10, 10, 10].map((w) => router.setWeight(t, w)));
    assert.deepEqual(await weights(ns), [90, 10]);
  });

  test('removeManagedRoutes creates nothing; a TrafficSplit Glidepath did not create is refused and not touched', async () => {
    const { ns, t } = await setup('smi-bad');
    await router.removeManagedRoutes(t);
    assert.equal(await read(ns), undefined);
    assert.equal(await router.verifyWeight(t, 0), false, 'no TrafficSplit: the weight cannot be read back');
    await custom.createNamespacedCustomObject({
      ...S,
      namespace: ns,
      body: { apiVersion: 'split.smi-spec.io/v1alpha2', kind: 'TrafficSplit', metadata: { name: 'web' }, spec: { service: 'web-stable', backends: [{ service: 'web-stable', weight: 100 }] } },
    });
    const before = await read(ns);
    await assert.rejects(router.setWeight(t, 10), (err: Error & { type?: string; nonRetryable?: boolean }) => err.type === 'InvalidSpec' && err.nonRetryable === true && /TrafficSplit .*\/web exists but Glidepath did not create it/.test(err.message));
    await assert.rejects(router.removeManagedRoutes(t), /did not create it/);
    assert.deepEqual(await read(ns), before);
  });
});
