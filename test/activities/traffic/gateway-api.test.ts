/**
 * The Gateway API router (Argo's argoproj-labs/gatewayAPI plugin block) on the real control plane
 * with the Gateway API CRDs: HTTPRoute backendRef weights read back after every step of a canary
 * run through createActivities, after abort and after promotion; a rule added by hand survives;
 * verifyWeight sees a tampered weight; a header route rule; a percentage mirror rule (RequestMirror
 * with `percent`, accepted by the Standard-channel CRD); the native `trafficRouting.gatewayAPI` key;
 * every call twice.
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
const native = createGatewayApiRouter(cluster.kc, { key: 'gatewayAPI' });
const activities = routerActivities(cluster.kc, { plugins: router, gatewayAPI: native });

after(() => cluster.cleanup());

const G = { group: 'gateway.networking.k8s.io', version: 'v1' };

const HAND_RULE = { name: 'admin', matches: [{ path: { type: 'PathPrefix', value: '/admin' } }], backendRefs: [{ name: 'admin-svc', port: 80 }] };

interface Route {
  metadata: { annotations?: Record<string, string>; resourceVersion?: string };
  spec: { rules: { name?: string; matches?: unknown[]; filters?: unknown[]; backendRefs?: { name: string; weight?: number }[] }[] };
}

async function readRoute(ns: string): Promise<Route> {
  return (await custom.getNamespacedCustomObject({ ...G, namespace: ns, plural: 'httproutes', name: 'web-route' })) as Route;
}

/** [stable, canary] weights of every rule that has both backends (and no mirror filter). */
async function weights(ns: string): Promise<[number | undefined, number | undefined][]> {
  const r = await readRoute(ns);
  return r.spec.rules
    .filter((x) => (x.backendRefs ?? []).length === 2 && !x.filters?.length)
    .map((x) => [x.backendRefs?.find((b) => b.name === 'web-stable')?.weight, x.backendRefs?.find((b) => b.name === 'web-canary')?.weight]);
}

function handRule(r: Route): unknown {
  return r.spec.rules.find((x) => x.name === 'admin');
}

/** HAND_RULE as the apiserver stores it (CRD defaults filled in). */
const HAND_RULE_STORED = { ...HAND_RULE, backendRefs: [{ group: '', kind: 'Service', name: 'admin-svc', port: 80, weight: 1 }] };

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

  test('mirror route: a named rule first, RequestMirror with percent to the canary, served at the weights (and following them); removed by removeManagedRoutes', async () => {
    const { ns, t } = await setup('gw-mirror');
    await router.setWeight(t, 20);
    const spec = { name: 'mirror-api', percentage: 35, match: [{ method: { exact: 'GET' }, path: { prefix: '/api' } }, { headers: { 'x-mirror': { regex: '^y' } } }] };
    await router.setMirrorRoute?.(t, spec);
    const rv = (await readRoute(ns)).metadata.resourceVersion;
    await router.setMirrorRoute?.(t, spec);
    let r = await readRoute(ns);
    assert.equal(r.metadata.resourceVersion, rv, 'an identical setMirrorRoute writes nothing');
    assert.deepEqual(r.spec.rules[0], {
      name: 'mirror-api',
      matches: [
        { method: 'GET', path: { type: 'PathPrefix', value: '/api' } },
        { headers: [{ type: 'RegularExpression', name: 'x-mirror', value: '^y' }], path: { type: 'PathPrefix', value: '/' } },
      ],
      filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { group: '', kind: 'Service', name: 'web-canary', port: 80 }, percent: 35 } }],
      backendRefs: [
        { group: '', kind: 'Service', name: 'web-stable', port: 80, weight: 80 },
        { group: '', kind: 'Service', name: 'web-canary', port: 80, weight: 20 },
      ],
    }, 'read back from the apiserver: the Standard-channel CRD keeps percent');
    assert.deepEqual(JSON.parse(r.metadata.annotations?.[MANAGED_ROUTES_ANNOTATION] ?? '[]'), ['mirror-api']);
    assert.deepEqual(handRule(r), HAND_RULE_STORED);

    await router.setWeight(t, 50);
    r = await readRoute(ns);
    assert.deepEqual(r.spec.rules[0]?.backendRefs?.map((b) => b.weight), [50, 50], 'the mirror rule follows setWeight');
    assert.equal(await router.verifyWeight(t, 50), true);
    await router.setMirrorRoute?.(t, { ...spec, percentage: 5 });
    assert.equal(((await readRoute(ns)).spec.rules[0]?.filters?.[0] as { requestMirror: { percent: number } }).requestMirror.percent, 5, 'a new percentage replaces the rule');
    await assert.rejects(router.setMirrorRoute?.(t, { ...spec, percentage: 101 }) ?? Promise.resolve(), /percentage must be a whole number from 0 to 100/);
    await assert.rejects(router.setMirrorRoute?.(t, { name: 'm2', percentage: 10, match: [{ method: { prefix: 'G' } }] }) ?? Promise.resolve(), /matches a method exactly/);
    await assert.rejects(router.setMirrorRoute?.(t, { name: 'admin', percentage: 10, match: [{ path: { exact: '/x' } }] }) ?? Promise.resolve(), /already has a rule "admin" that Glidepath did not add/);

    await router.setMirrorRoute?.(t, { name: 'mirror-api', percentage: 5, match: [] });
    r = await readRoute(ns);
    assert.deepEqual(r.spec.rules.map((x) => x.name ?? null), ['admin', null, null], 'an empty match removes it');
    await router.setMirrorRoute?.(t, spec);
    await router.removeManagedRoutes(t);
    await router.removeManagedRoutes(t);
    r = await readRoute(ns);
    assert.deepEqual(r.spec.rules.map((x) => x.name ?? null), ['admin', null, null]);
    assert.equal(r.metadata.annotations?.[MANAGED_ROUTES_ANNOTATION], undefined);
    assert.deepEqual(await weights(ns), [[100, 0], [100, 0]]);
  });

  test('native trafficRouting.gatewayAPI: the same block drives the same router (weights, header and mirror rules) through the activities', async () => {
    const { ns, t: pluginTarget } = await setup('gw-native');
    const t: ReleaseTarget = { ...pluginTarget, trafficRouting: { gatewayAPI: { httpRoute: 'web-route' }, managedRoutes: [{ name: 'hdr' }, { name: 'mirror' }] } };
    await activities.preflight(t);
    await activities.ensureCanary(t);
    await activities.setWeight(t, 30);
    assert.deepEqual(await weights(ns), [[70, 30], [70, 30]]);
    assert.equal(await native.verifyWeight(t, 30), true);
    await activities.setHeaderRoute(t, { name: 'hdr', match: [{ headerName: 'x-canary', headerValue: { exact: '1' } }] });
    await activities.setMirrorRoute(t, { name: 'mirror', percentage: 50, match: [{ path: { prefix: '/api' } }] });
    let r = await readRoute(ns);
    assert.deepEqual(r.spec.rules.map((x) => x.name ?? null), ['mirror', 'hdr', 'admin', null, null]);
    await assert.rejects(native.setWeight({ ...t, trafficRouting: { gatewayAPI: {} } }, 10), /trafficRouting.gatewayAPI needs httpRoute, httpRoutes, grpcRoute or grpcRoutes/);
    await activities.abortCanary(t, undefined);
    r = await readRoute(ns);
    assert.deepEqual(r.spec.rules.map((x) => x.name ?? null), ['admin', null, null]);
    assert.deepEqual(await weights(ns), [[100, 0], [100, 0]]);
    assert.equal(native.type, 'gatewayAPI');
  });

  test('an unknown plugin is refused as UnsupportedRouter; a route without both Services is refused', async () => {
    const { t } = await setup('gw-bad');
    await assert.rejects(router.setWeight({ ...t, trafficRouting: { plugins: { 'acme/other': {} } } }, 10), (err: Error & { type?: string }) => err.type === 'UnsupportedRouter');
    await assert.rejects(router.setWeight({ ...t, canaryService: 'nope' }, 10), /no rule with backendRefs to both Services/);
  });
});
