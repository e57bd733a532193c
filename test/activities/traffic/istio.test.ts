/**
 * The Istio router on the real control plane with Istio's CRDs (scripts/kube.sh up --crds): the
 * VirtualService read back after every step of a canary run through createActivities (real
 * workload activities too), after abort and after promotion; subset routing keeps the
 * DestinationRule's subsets on the stable and canary pods; a route added by hand survives every
 * call; verifyWeight sees a tampered weight; header and mirror routes; every call twice.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { roleSelector } from '../../../activities/kubernetes/index.ts';
import { createIstioRouter } from '../../../activities/traffic/istio.ts';
import { MANAGED_ROUTES_ANNOTATION } from '../../../activities/traffic/common.ts';
import type { ReleaseTarget } from '../../../activities/contract.ts';
import { routerActivities, TestCluster, target } from '../kubernetes/cluster.ts';

const cluster = new TestCluster();
const custom = cluster.kc.makeApiClient(CustomObjectsApi);
const router = createIstioRouter(cluster.kc);
const activities = routerActivities(cluster.kc, { istio: router });

after(() => cluster.cleanup());

const G = { group: 'networking.istio.io', version: 'v1' };

/** A route a user added by hand: it must come through every router call unchanged. */
const HAND_ROUTE = { name: 'admin', match: [{ uri: { prefix: '/admin' } }], route: [{ destination: { host: 'admin-svc' } }] };

interface Vs {
  metadata: { annotations?: Record<string, string>; resourceVersion?: string };
  spec: { http: { name?: string; route?: { destination: { host: string; subset?: string }; weight?: number }[]; [k: string]: unknown }[] };
}

async function createVs(ns: string, name: string, http: unknown[]): Promise<void> {
  await custom.createNamespacedCustomObject({ ...G, namespace: ns, plural: 'virtualservices', body: { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name }, spec: { hosts: ['web'], http } } });
}

async function readVs(ns: string, name = 'web-vs'): Promise<Vs> {
  return (await custom.getNamespacedCustomObject({ ...G, namespace: ns, plural: 'virtualservices', name })) as Vs;
}

/** {route name: [stable weight, canary weight]} for the routes that have two destinations. */
async function weights(ns: string, name = 'web-vs'): Promise<Record<string, [number | undefined, number | undefined]>> {
  const vs = await readVs(ns, name);
  const out: Record<string, [number | undefined, number | undefined]> = {};
  for (const r of vs.spec.http) if ((r.route ?? []).length === 2) out[r.name ?? ''] = [r.route?.[0]?.weight, r.route?.[1]?.weight];
  return out;
}

function handRoute(vs: Vs): unknown {
  return vs.spec.http.find((r) => r.name === 'admin');
}

async function hostSetup(prefix: string): Promise<{ ns: string; t: ReleaseTarget }> {
  const ns = await cluster.namespace(prefix);
  await cluster.stable(ns, { replicas: 4 });
  await cluster.service(ns, 'web-stable', { app: 'web' });
  await cluster.service(ns, 'web-canary', { app: 'web' });
  await createVs(ns, 'web-vs', [
    HAND_ROUTE,
    { name: 'primary', route: [{ destination: { host: 'web-stable' }, weight: 100 }, { destination: { host: 'web-canary' }, weight: 0 }] },
    { name: 'secondary', match: [{ uri: { prefix: '/api' } }], route: [{ destination: { host: 'web-stable.NS.svc.cluster.local'.replace('NS', ns), port: { number: 80 } }, weight: 100 }, { destination: { host: 'web-canary', port: { number: 80 } } }] },
  ]);
  const t = target(ns, {
    stableService: 'web-stable',
    canaryService: 'web-canary',
    trafficRouting: { istio: { virtualService: { name: 'web-vs', routes: ['primary', 'secondary'] } } },
  });
  return { ns, t };
}

describe('istio router', () => {
  test('host-based: 10/25/50/100 through setWeight, read back each time; promotion goes back to 100/0; the hand route survives', async () => {
    const { ns, t } = await hostSetup('istio-host');
    const before = handRoute(await readVs(ns));
    await activities.preflight(t);
    await activities.ensureCanary(t);
    for (const w of [10, 25, 50, 100]) {
      await activities.setWeight(t, w);
      await activities.setWeight(t, w); // a retry: converges to the same object
      assert.deepEqual(await weights(ns), { primary: [100 - w, w], secondary: [100 - w, w] }, `weights after setWeight ${w}`);
      assert.equal(await router.verifyWeight(t, w), true);
      assert.deepEqual(handRoute(await readVs(ns)), before, `hand route after setWeight ${w}`);
    }
    const vs = await readVs(ns);
    assert.deepEqual(vs.spec.http.find((r) => r.name === 'secondary')?.route?.[0]?.destination, { host: `web-stable.${ns}.svc.cluster.local`, port: { number: 80 } }, 'other destination fields kept');
    await activities.promoteCanary(t);
    assert.deepEqual(await weights(ns), { primary: [100, 0], secondary: [100, 0] }, 'after promotion');
    await router.removeManagedRoutes(t); // twice
    assert.deepEqual(await weights(ns), { primary: [100, 0], secondary: [100, 0] });
    assert.deepEqual(handRoute(await readVs(ns)), before, 'hand route after promotion');
  });

  test('abort at 50: VirtualService back to 100/0 (read back), canary gone, hand route intact', async () => {
    const { ns, t } = await hostSetup('istio-abort');
    await activities.preflight(t);
    await activities.ensureCanary(t);
    await activities.setWeight(t, 50);
    assert.deepEqual(await weights(ns), { primary: [50, 50], secondary: [50, 50] });
    await activities.abortCanary(t, undefined);
    await activities.abortCanary(t, undefined);
    assert.deepEqual(await weights(ns), { primary: [100, 0], secondary: [100, 0] }, 'after abort');
    assert.equal(await router.verifyWeight(t, 0), true);
    assert.ok(!(await cluster.deploymentNames(ns)).includes('web-canary'), 'canary Deployment removed');
    assert.deepEqual(handRoute(await readVs(ns)), HAND_ROUTE);
  });

  test('verifyWeight detects a tampered weight; setWeight repairs it; an unchanged call writes nothing', async () => {
    const { ns, t } = await hostSetup('istio-tamper');
    await router.setWeight(t, 25);
    const rv = (await readVs(ns)).metadata.resourceVersion;
    await router.setWeight(t, 25);
    assert.equal((await readVs(ns)).metadata.resourceVersion, rv, 'second identical setWeight did not write');
    const vs = await readVs(ns);
    const primary = vs.spec.http.find((r) => r.name === 'primary');
    assert.ok(primary?.route?.[0] && primary.route[1]);
    primary.route[0].weight = 40;
    primary.route[1].weight = 60;
    await custom.replaceNamespacedCustomObject({ ...G, namespace: ns, plural: 'virtualservices', name: 'web-vs', body: vs });
    assert.equal(await router.verifyWeight(t, 25), false, 'tampered 60 seen');
    await router.setWeight(t, 25);
    assert.equal(await router.verifyWeight(t, 25), true);
    assert.deepEqual(await weights(ns), { primary: [75, 25], secondary: [75, 25] });
  });

  test('subset-based with a DestinationRule: subsets select the stable and canary pods; weights on subsets', async () => {
    const ns = await cluster.namespace('istio-subset');
    await cluster.stable(ns, { replicas: 2 });
    await custom.createNamespacedCustomObject({
      ...G,
      namespace: ns,
      plural: 'destinationrules',
      body: { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'web-dr' }, spec: { host: 'web', subsets: [{ name: 'stable', labels: { app: 'web' } }, { name: 'canary', labels: { app: 'web' } }, { name: 'other', labels: { tier: 'x' } }] } },
    });
    await createVs(ns, 'web-vs', [HAND_ROUTE, { name: 'primary', route: [{ destination: { host: 'web', subset: 'stable' }, weight: 100 }, { destination: { host: 'web', subset: 'canary' }, weight: 0 }] }]);
    const t = target(ns, { trafficRouting: { istio: { virtualService: { name: 'web-vs' }, destinationRule: { name: 'web-dr', stableSubsetName: 'stable', canarySubsetName: 'canary' } } } });
    // routes omitted: the VirtualService has two routes, so the router refuses to guess
    await assert.rejects(router.setWeight(t, 10), /has 2 HTTP routes/);
    const t1 = { ...t, trafficRouting: { istio: { virtualService: { name: 'web-vs', routes: ['primary'] }, destinationRule: { name: 'web-dr', stableSubsetName: 'stable', canarySubsetName: 'canary' } } } };
    await activities.preflight(t1);
    await activities.ensureCanary(t1);
    await activities.setWeight(t1, 10);
    await activities.setWeight(t1, 10);
    assert.deepEqual(await weights(ns), { primary: [90, 10] });
    const dr = (await custom.getNamespacedCustomObject({ ...G, namespace: ns, plural: 'destinationrules', name: 'web-dr' })) as { spec: { subsets: { name: string; labels: Record<string, string> }[] } };
    const stable = await cluster.deployment(ns, 'web');
    assert.ok(stable);
    const canaryLabels = roleSelector(stable, 'canary');
    const stableLabels = dr.spec.subsets.find((s) => s.name === 'stable')?.labels ?? {};
    assert.deepEqual(Object.keys(stableLabels).sort(), ['app', 'pod-template-hash'], 'the stable subset: matchLabels and the stable ReplicaSet\'s hash');
    assert.equal(stableLabels.app, 'web');
    assert.deepEqual(dr.spec.subsets.find((s) => s.name === 'canary')?.labels, canaryLabels);
    assert.deepEqual(dr.spec.subsets.find((s) => s.name === 'other')?.labels, { tier: 'x' }, 'other subset untouched');
    // the subsets' labels select exactly the stable and the canary pods; both carry the host Service's app label
    const canaryPods = await cluster.livePods(ns, canaryLabels);
    const stablePods = await cluster.livePods(ns, stableLabels);
    assert.ok(canaryPods.length >= 1, 'canary pods exist');
    assert.equal(stablePods.length, 2);
    assert.ok(canaryPods.every((p) => p.metadata?.labels?.app === 'web'), 'canary pods are endpoints of the host Service web');
    assert.ok(stablePods.every((p) => p.metadata?.labels?.['rollouts.glidepath.dev/role'] === undefined));
    await activities.abortCanary(t1, undefined);
    assert.deepEqual(await weights(ns), { primary: [100, 0] });
    assert.deepEqual(handRoute(await readVs(ns)), HAND_ROUTE);
  });

  test('header and mirror routes: prepended, named, recorded; removed by removeManagedRoutes; twice each', async () => {
    const { ns, t } = await hostSetup('istio-hdr');
    await router.setWeight(t, 20);
    const header = { name: 'canary-header', match: [{ headerName: 'x-canary', headerValue: { exact: 'yes' } }] };
    await router.setHeaderRoute?.(t, header);
    const rv = (await readVs(ns)).metadata.resourceVersion;
    await router.setHeaderRoute?.(t, header);
    assert.equal((await readVs(ns)).metadata.resourceVersion, rv, 'an identical setHeaderRoute writes nothing');
    const mirror = { name: 'canary-mirror', percentage: 35, match: [{ method: { exact: 'GET' }, path: { prefix: '/api' } }] };
    await router.setMirrorRoute?.(t, mirror);
    await router.setMirrorRoute?.(t, mirror);
    let vs = await readVs(ns);
    assert.deepEqual(vs.spec.http.map((r) => r.name), ['canary-mirror', 'canary-header', 'admin', 'primary', 'secondary']);
    assert.deepEqual(JSON.parse(vs.metadata.annotations?.[MANAGED_ROUTES_ANNOTATION] ?? '[]'), ['canary-header', 'canary-mirror']);
    assert.deepEqual(vs.spec.http[1], { name: 'canary-header', match: [{ headers: { 'x-canary': { exact: 'yes' } } }], route: [{ destination: { host: 'web-canary' }, weight: 100 }] });
    assert.deepEqual(vs.spec.http[0]?.mirror, { host: 'web-canary' });
    assert.deepEqual(vs.spec.http[0]?.mirrorPercentage, { value: 35 });
    assert.deepEqual(vs.spec.http[0]?.match, [{ method: { exact: 'GET' }, uri: { prefix: '/api' } }]);
    await router.setWeight(t, 40);
    assert.deepEqual((await weights(ns))['canary-mirror'], [60, 40], 'the mirror route follows the weight');
    assert.equal(await router.verifyWeight(t, 40), true);
    // a name a user already uses is refused
    await assert.rejects(router.setHeaderRoute?.(t, { name: 'admin', match: header.match }) ?? Promise.resolve(), /did not add/);
    // an empty match removes that one header route
    await router.setHeaderRoute?.(t, { name: 'canary-header', match: [] });
    vs = await readVs(ns);
    assert.deepEqual(vs.spec.http.map((r) => r.name), ['canary-mirror', 'admin', 'primary', 'secondary']);
    await router.removeManagedRoutes(t);
    await router.removeManagedRoutes(t);
    vs = await readVs(ns);
    assert.deepEqual(vs.spec.http.map((r) => r.name), ['admin', 'primary', 'secondary']);
    assert.equal(vs.metadata.annotations?.[MANAGED_ROUTES_ANNOTATION], undefined);
    assert.deepEqual(await weights(ns), { primary: [100, 0], secondary: [100, 0] });
    assert.deepEqual(handRoute(vs), HAND_ROUTE);
  });

  test('lowering a weight moves traffic before the canary scales down; raising it scales the canary up first', async () => {
    const { ns, t } = await hostSetup('istio-order');
    // The real router, observed: the canary as it is at the moment the router takes each weight.
    const seen: Record<number, { replicas: number | undefined; available: number | undefined }> = {};
    const observed = {
      ...router,
      setWeight: async (tt: ReleaseTarget, weight: number) => {
        const c = await cluster.deployment(ns, 'web-canary');
        seen[weight] = { replicas: c?.spec?.replicas, available: c?.status?.availableReplicas };
        await router.setWeight(tt, weight);
      },
    };
    const acts = routerActivities(cluster.kc, { istio: observed });
    await acts.ensureCanary(t);
    assert.deepEqual(await acts.setWeight(t, 50), { canaryReplicas: 2 });
    assert.deepEqual(seen[50], { replicas: 2, available: 2 }, 'raising: 2 canary pods ready before 50 % went to them');
    assert.deepEqual(await acts.setWeight(t, 25), { canaryReplicas: 1 });
    assert.deepEqual(seen[25], { replicas: 2, available: 2 }, 'lowering: the canary kept its 2 pods until the router took 25 %');
    assert.equal((await cluster.deployment(ns, 'web-canary'))?.spec?.replicas, 1, 'then it went down to 1');
    assert.deepEqual(await weights(ns), { primary: [75, 25], secondary: [75, 25] });
    await acts.abortCanary(t, undefined);
  });

  test('the DestinationRule gets back the subset labels it was found with after abort and after promotion', async () => {
    const ns = await cluster.namespace('istio-dr');
    await cluster.stable(ns, { replicas: 2 });
    const found = [{ name: 'stable', labels: { app: 'web' } }, { name: 'canary', labels: { version: 'canary' } }, { name: 'other', labels: { tier: 'x' } }];
    await custom.createNamespacedCustomObject({
      ...G,
      namespace: ns,
      plural: 'destinationrules',
      body: { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'web-dr' }, spec: { host: 'web', subsets: found } },
    });
    await createVs(ns, 'web-vs', [{ name: 'primary', route: [{ destination: { host: 'web', subset: 'stable' }, weight: 100 }, { destination: { host: 'web', subset: 'canary' }, weight: 0 }] }]);
    const t = target(ns, { trafficRouting: { istio: { virtualService: { name: 'web-vs' }, destinationRule: { name: 'web-dr', stableSubsetName: 'stable', canarySubsetName: 'canary' } } } });
    const readDr = async () => (await custom.getNamespacedCustomObject({ ...G, namespace: ns, plural: 'destinationrules', name: 'web-dr' })) as { metadata: { annotations?: Record<string, string> }; spec: { subsets: unknown[] } };
    for (const end of ['abort', 'promote'] as const) {
      const tt = { ...t, releaseId: `${ns}/${end}` };
      await activities.ensureCanary(tt);
      await activities.setWeight(tt, 10);
      const during = await readDr();
      assert.notDeepEqual(during.spec.subsets, found, `${end}: the canary subset selects the canary pods during the release`);
      if (end === 'abort') await activities.abortCanary(tt, undefined);
      else await activities.promoteCanary(tt);
      const dr = await readDr();
      assert.deepEqual(dr.spec.subsets, found, `after ${end}: the subsets as they were found`);
      assert.equal(dr.metadata.annotations?.['glidepath.dev/original-subsets'], undefined, `after ${end}: no annotation left`);
    }
    assert.deepEqual(await weights(ns), { primary: [100, 0] });
  });

  test('misconfiguration is a named non-retryable failure', async () => {
    const { ns, t } = await hostSetup('istio-bad');
    await assert.rejects(router.setWeight({ ...t, trafficRouting: { istio: { virtualService: { name: 'nope' } } } }, 10), (err: Error & { type?: string; nonRetryable?: boolean }) => {
      assert.equal(err.type, 'NotFound');
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, new RegExp(`VirtualService ${ns}/nope not found`));
      return true;
    });
    await assert.rejects(router.setWeight({ ...t, trafficRouting: { istio: { virtualService: { name: 'web-vs', routes: ['missing'] } } } }, 10), /no HTTP route named "missing"/);
    await assert.rejects(router.setWeight({ ...t, canaryService: 'other' }, 10), /must have exactly two destinations/);
    assert.deepEqual(await weights(ns), { primary: [100, 0], secondary: [100, undefined] }, 'nothing written');
  });
});
