/**
 * The Gateway API router (Argo's argoproj-labs/gatewayAPI plugin block) on the real control plane
 * with the Gateway API CRDs: HTTPRoute backendRef weights read back after every step of a canary
 * run through createActivities, after abort and after promotion; a rule added by hand survives;
 * verifyWeight sees a tampered weight; a header route rule; every call twice.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { createGatewayApiRouter } from '../../../activities/traffic/gateway-api.ts';
import { MANAGED_ROUTES_ANNOTATION } from '../../../activities/traffic/common.ts';
import type { ReleaseTarget } from '../../../activities/contract.ts';
import { routerActivities, TestCluster, target } from '../kubernetes/cluster.ts';
import { createHttpRoute } from '../../support/gateway-api.ts';

const cluster = new TestCluster();
const custom = cluster.kc.makeApiClient(CustomObjectsApi);
const router = createGatewayApiRouter(cluster.kc);
const activities = routerActivities(cluster.kc, { plugins: router });

after(() => cluster.cleanup());

const G = { group: 'gateway.networking.k8s.io', version: 'v1' };

const HAND_RULE = { name: 'admin', matches: [{ path: { type: 'PathPrefix', value: '/admin' } }], backendRefs: [{ name: 'admin-svc', port: 80 }] };

interface Route {
  metadata: { annotations?: Record<string, string>; resourceVersion?: string };
  spec: { rules: { name?: string; matches?: unknown[]; backendRefs?: { name: string; weight?: number }[] }[] };
}

async function readRoute(ns: string): Promise<Route> {
  return (await custom.getNamespacedCustomObject({ ...G, namespace: ns, plural: 'httproutes', name: 'web-route' })) as Route;
}

/** [stable, canary] weights of every rule that has both backends. */
async function weights(ns: string): Promise<[number | undefined, number | undefined][]> {
  const r = await readRoute(ns);
  return r.spec.rules
    .filter((x) => (x.backendRefs ?? []).length === 2)
    .map((x) => [x.backendRefs?.find((b) => b.name === 'web-stable')?.weight, x.backendRefs?.find((b) => b.name === 'web-canary')?.weight]);
}

function handRule(r: Route): unknown {
  return r.spec.rules.find((x) => x.name === 'admin');
}

async function setup(prefix: string): Promise<{ ns: string; t: ReleaseTarget }> {
  const ns = await cluster.namespace(prefix);
  await cluster.stable(ns, { replicas: 4 });
  await cluster.service(ns, 'web-stable', { app: 'web' });
  await cluster.service(ns, 'web-canary', { app: 'web' });
  await createHttpRoute(custom, ns, 'web-route', {
    parentRefs: [{ name: 'gw' }],
    rules: [
      HAND_RULE,
      { backendRefs: [{ name: 'web-stable', port: 80, weight: 100 }, { name: 'web-canary', port: 80, weight: 0 }] },
      { matches: [{ path: { type: 'PathPrefix', value: '/api' } }], backendRefs: [{ name: 'web-stable', port: 80 }, { name: 'web-canary', port: 80, weight: 0 }] },
    ],
  });
  return { ns, t: target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { plugins: { 'argoproj-labs/gatewayAPI': { httpRoute: 'web-route' } } } }) };
}

describe('gateway API router', () => {
  test('10/25/50/100 read back after each step; promotion back to 100/0; hand rule unchanged', async () => {
    const { ns, t } = await setup('gw-steps');
    const before = handRule(await readRoute(ns));
    await activities.preflight(t);
    await activities.ensureCanary(t);
    for (const w of [10, 25, 50, 100]) {
      await activities.setWeight(t, w);
      await activities.setWeight(t, w);
      assert.deepEqual(await weights(ns), [[100 - w, w], [100 - w, w]], `after setWeight ${w}`);
      assert.equal(await router.verifyWeight(t, w), true);
      assert.deepEqual(handRule(await readRoute(ns)), before);
    }
    await activities.promoteCanary(t);
    await router.removeManagedRoutes(t);
    assert.deepEqual(await weights(ns), [[100, 0], [100, 0]], 'after promotion');
    assert.deepEqual(handRule(await readRoute(ns)), before);
  });

  test('abort at 25: back to 100/0, twice', async () => {
    const { ns, t } = await setup('gw-abort');
    const before = handRule(await readRoute(ns)); // as the apiserver stored it (CRD defaults filled in)
    await activities.preflight(t);
    await activities.ensureCanary(t);
    await activities.setWeight(t, 25);
    await activities.abortCanary(t, undefined);
    await activities.abortCanary(t, undefined);
    assert.deepEqual(await weights(ns), [[100, 0], [100, 0]]);
    assert.equal(await router.verifyWeight(t, 0), true);
    assert.deepEqual(handRule(await readRoute(ns)), before);
  });

  test('verifyWeight detects tampering; an identical setWeight writes nothing', async () => {
    const { ns, t } = await setup('gw-tamper');
    await router.setWeight(t, 50);
    const rv = (await readRoute(ns)).metadata.resourceVersion;
    await router.setWeight(t, 50);
    assert.equal((await readRoute(ns)).metadata.resourceVersion, rv);
    const r = await readRoute(ns);
    const canary = r.spec.rules[2]?.backendRefs?.find((b) => b.name === 'web-canary');
    assert.ok(canary);
    canary.weight = 7;
    await custom.replaceNamespacedCustomObject({ ...G, namespace: ns, plural: 'httproutes', name: 'web-route', body: r });
    assert.equal(await router.verifyWeight(t, 50), false);
    await router.setWeight(t, 50);
    assert.equal(await router.verifyWeight(t, 50), true);
  });

  test('header route: a named rule first, canary only; removed by removeManagedRoutes', async () => {
    const { ns, t } = await setup('gw-header');
    await router.setWeight(t, 10);
    const spec = { name: 'canary-header', match: [{ headerName: 'x-canary', headerValue: { exact: 'yes' } }, { headerName: 'x-user', headerValue: { regex: '^qa-.*' } }] };
    await router.setHeaderRoute?.(t, spec);
    const rv = (await readRoute(ns)).metadata.resourceVersion;
    await router.setHeaderRoute?.(t, spec);
    let r = await readRoute(ns);
    assert.equal(r.metadata.resourceVersion, rv, 'an identical setHeaderRoute writes nothing');
    assert.equal(r.spec.rules.length, 4);
    assert.deepEqual(r.spec.rules[0], {
      name: 'canary-header',
      matches: [{ headers: [{ type: 'Exact', name: 'x-canary', value: 'yes' }, { type: 'RegularExpression', name: 'x-user', value: '^qa-.*' }], path: { type: 'PathPrefix', value: '/' } }],
      backendRefs: [{ group: '', kind: 'Service', name: 'web-canary', port: 80, weight: 1 }],
    });
    assert.deepEqual(JSON.parse(r.metadata.annotations?.[MANAGED_ROUTES_ANNOTATION] ?? '[]'), ['canary-header']);
    await assert.rejects(router.setHeaderRoute?.(t, { name: 'x', match: [{ headerName: 'a', headerValue: { prefix: 'b' } }] }) ?? Promise.resolve(), /not by prefix/);
    await router.removeManagedRoutes(t);
    await router.removeManagedRoutes(t);
    r = await readRoute(ns);
    assert.deepEqual(r.spec.rules.map((x) => x.name ?? null), ['admin', null, null]);
    assert.equal(r.metadata.annotations?.[MANAGED_ROUTES_ANNOTATION], undefined);
    assert.deepEqual(await weights(ns), [[100, 0], [100, 0]]);
  });

  test('an unknown plugin is refused as UnsupportedRouter; a route without both Services is refused', async () => {
    const { t } = await setup('gw-bad');
    await assert.rejects(router.setWeight({ ...t, trafficRouting: { plugins: { 'acme/other': {} } } }, 10), (err: Error & { type?: string }) => err.type === 'UnsupportedRouter');
    await assert.rejects(router.setWeight({ ...t, canaryService: 'nope' }, 10), /no rule with backendRefs to both Services/);
  });
});
