/**
 * The Gateway API router on GRPCRoutes (`grpcRoute` / `grpcRoutes`, plugin form and native key) on the
 * real control plane with the Standard-channel GRPCRoute CRD: backendRef weights read back after every
 * step of a canary run through createActivities, after abort and after promotion; only the named routes
 * change (an HTTPRoute and a GRPCRoute the block does not name stay as they were, as does a rule added by
 * hand); an identical call writes nothing; verifyWeight sees a tampered weight; a header route rule on the
 * GRPCRoutes with useHeaderRoutes; mirror routes refused before anything is written; an HTTPRoute and a
 * GRPCRoute weighted together; a missing GRPCRoute is a non-retryable NotFound; preflight asks for
 * GRPCRoute access only when the block names one.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { createGatewayApiRouter, GATEWAY_API_PLUGIN } from '../../../activities/traffic/gateway-api.ts';
import { MANAGED_ROUTES_ANNOTATION } from '../../../activities/traffic/common.ts';
import type { ReleaseTarget } from '../../../activities/contract.ts';
import { describeAccess, requiredAccess } from '../../../activities/kubernetes/access.ts';
import { routerActivities, TestCluster, target } from '../kubernetes/cluster.ts';
import { createGrpcRoute, createHttpRoute, GRPCROUTES, HTTPROUTES } from '../../support/gateway-api.ts';

const cluster = new TestCluster();
const custom = cluster.kc.makeApiClient(CustomObjectsApi);
const router = createGatewayApiRouter(cluster.kc);
const native = createGatewayApiRouter(cluster.kc, { key: 'gatewayAPI' });
const activities = routerActivities(cluster.kc, { plugins: router, gatewayAPI: native });

after(() => cluster.cleanup());

interface Route {
  metadata: { annotations?: Record<string, string>; resourceVersion?: string };
  spec: { rules: { name?: string; matches?: unknown[]; filters?: unknown[]; backendRefs?: { name: string; weight?: number }[] }[] };
}

const HAND_RULE = { name: 'admin', matches: [{ method: { service: 'admin.Admin' } }], backendRefs: [{ name: 'admin-svc', port: 50051 }] };
const BOTH = (stable?: number, canary?: number) => [
  { name: 'web-stable', port: 50051, ...(stable === undefined ? {} : { weight: stable }) },
  { name: 'web-canary', port: 50051, ...(canary === undefined ? {} : { weight: canary }) },
];

async function readGrpc(ns: string, name = 'web-grpc'): Promise<Route> {
  return (await custom.getNamespacedCustomObject({ ...GRPCROUTES, namespace: ns, name })) as Route;
}

async function readHttp(ns: string, name: string): Promise<Route> {
  return (await custom.getNamespacedCustomObject({ ...HTTPROUTES, namespace: ns, name })) as Route;
}

/** [stable, canary] weights of every rule of `r` that has both backends. */
function weightsOf(r: Route): [number | undefined, number | undefined][] {
  return r.spec.rules
    .filter((x) => (x.backendRefs ?? []).length === 2)
    .map((x) => [x.backendRefs?.find((b) => b.name === 'web-stable')?.weight, x.backendRefs?.find((b) => b.name === 'web-canary')?.weight]);
}

const weights = async (ns: string, name = 'web-grpc') => weightsOf(await readGrpc(ns, name));
const handRule = (r: Route): unknown => r.spec.rules.find((x) => x.name === 'admin');

/**
 * Namespace with Deployment web, Services web-stable/web-canary, GRPCRoute web-grpc (a hand rule, a
 * weighted rule for every method, one for service glidepath.Echo without a stable weight), GRPCRoute
 * other-grpc and HTTPRoute web-http with the same backends (named by no test block unless it says so).
 */
async function setup(prefix: string, block: Record<string, unknown> = { grpcRoute: 'web-grpc' }): Promise<{ ns: string; t: ReleaseTarget }> {
  const ns = await cluster.namespace(prefix);
  await cluster.stable(ns, { replicas: 4 });
  await cluster.service(ns, 'web-stable', { app: 'web' });
  await cluster.service(ns, 'web-canary', { app: 'web' });
  await createGrpcRoute(custom, ns, 'web-grpc', {
    parentRefs: [{ name: 'gw' }],
    rules: [HAND_RULE, { backendRefs: BOTH(100, 0) }, { matches: [{ method: { service: 'glidepath.Echo' } }], backendRefs: BOTH(undefined, 0) }],
  });
  await createGrpcRoute(custom, ns, 'other-grpc', { parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: BOTH(100, 0) }] });
  await createHttpRoute(custom, ns, 'web-http', { parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: BOTH(100, 0) }] });
  return { ns, t: target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { plugins: { [GATEWAY_API_PLUGIN]: block } } }) };
}

describe('gateway API router on GRPCRoutes', () => {
  test('10/25/50/100 read back after each step; promotion back to 100/0; routes the block does not name and the hand rule unchanged', async () => {
    const { ns, t } = await setup('grpc-steps');
    const before = handRule(await readGrpc(ns));
    const otherRv = (await readGrpc(ns, 'other-grpc')).metadata.resourceVersion;
    const httpRv = (await readHttp(ns, 'web-http')).metadata.resourceVersion;
    await activities.preflight(t);
    await activities.ensureCanary(t);
    for (const w of [10, 25, 50, 100]) {
      await activities.setWeight(t, w);
      const rv = (await readGrpc(ns)).metadata.resourceVersion;
      await activities.setWeight(t, w);
      assert.equal((await readGrpc(ns)).metadata.resourceVersion, rv, `an identical setWeight ${w} writes nothing`);
      assert.deepEqual(await weights(ns), [[100 - w, w], [100 - w, w]], `after setWeight ${w}`);
      assert.equal(await router.verifyWeight(t, w), true);
      assert.deepEqual(handRule(await readGrpc(ns)), before);
    }
    await activities.promoteCanary(t);
    await router.removeManagedRoutes(t);
    assert.deepEqual(await weights(ns), [[100, 0], [100, 0]], 'after promotion');
    assert.deepEqual(handRule(await readGrpc(ns)), before);
    assert.equal((await readGrpc(ns, 'other-grpc')).metadata.resourceVersion, otherRv, 'a GRPCRoute the block does not name is not written');
    assert.equal((await readHttp(ns, 'web-http')).metadata.resourceVersion, httpRv, 'an HTTPRoute the block does not name is not written');
  });

  test('abort at 25: back to 100/0, twice', async () => {
    const { ns, t } = await setup('grpc-abort');
    const before = handRule(await readGrpc(ns));
    await activities.preflight(t);
    await activities.ensureCanary(t);
    await activities.setWeight(t, 25);
    assert.deepEqual(await weights(ns), [[75, 25], [75, 25]]);
    await activities.abortCanary(t, undefined);
    await activities.abortCanary(t, undefined);
    assert.deepEqual(await weights(ns), [[100, 0], [100, 0]]);
    assert.equal(await router.verifyWeight(t, 0), true);
    assert.deepEqual(handRule(await readGrpc(ns)), before);
  });

  test('verifyWeight detects a tampered weight; setWeight repairs it', async () => {
    const { ns, t } = await setup('grpc-tamper');
    await router.setWeight(t, 50);
    const r = await readGrpc(ns);
    const canary = r.spec.rules[2]?.backendRefs?.find((b) => b.name === 'web-canary');
    assert.ok(canary);
    canary.weight = 7;
    await custom.replaceNamespacedCustomObject({ ...GRPCROUTES, namespace: ns, name: 'web-grpc', body: r });
    assert.equal(await router.verifyWeight(t, 50), false);
    await router.setWeight(t, 50);
    assert.equal(await router.verifyWeight(t, 50), true);
  });

  test('header route: a named rule first on the GRPCRoutes with useHeaderRoutes, canary only, every method; removed by removeManagedRoutes', async () => {
    const { ns, t } = await setup('grpc-header', { grpcRoutes: [{ name: 'web-grpc', useHeaderRoutes: true }, { name: 'other-grpc' }] });
    await router.setWeight(t, 10);
    const otherRv = (await readGrpc(ns, 'other-grpc')).metadata.resourceVersion;
    const spec = { name: 'canary-header', match: [{ headerName: 'x-canary', headerValue: { exact: 'yes' } }, { headerName: 'x-user', headerValue: { regex: '^qa-.*' } }] };
    await router.setHeaderRoute?.(t, spec);
    const rv = (await readGrpc(ns)).metadata.resourceVersion;
    await router.setHeaderRoute?.(t, spec);
    let r = await readGrpc(ns);
    assert.equal(r.metadata.resourceVersion, rv, 'an identical setHeaderRoute writes nothing');
    assert.deepEqual(r.spec.rules[0], {
      name: 'canary-header',
      matches: [{ headers: [{ type: 'Exact', name: 'x-canary', value: 'yes' }, { type: 'RegularExpression', name: 'x-user', value: '^qa-.*' }] }],
      backendRefs: [{ group: '', kind: 'Service', name: 'web-canary', port: 50051, weight: 1 }],
    });
    assert.deepEqual(JSON.parse(r.metadata.annotations?.[MANAGED_ROUTES_ANNOTATION] ?? '[]'), ['canary-header']);
    assert.equal((await readGrpc(ns, 'other-grpc')).metadata.resourceVersion, otherRv, 'a GRPCRoute without useHeaderRoutes gets no header rule');
    await router.setWeight(t, 30);
    assert.deepEqual(await weights(ns), [[70, 30], [70, 30]], 'setWeight leaves the header rule alone');
    assert.equal(await router.verifyWeight(t, 30), true);
    await assert.rejects(router.setHeaderRoute?.(t, { name: 'x', match: [{ headerName: 'a', headerValue: { prefix: 'b' } }] }) ?? Promise.resolve(), /not by prefix/);
    await assert.rejects(router.setHeaderRoute?.(t, { name: 'admin', match: [{ headerName: 'a', headerValue: { exact: 'b' } }] }) ?? Promise.resolve(), /GRPCRoute .*\/web-grpc already has a rule "admin" that Glidepath did not add/);
    await router.removeManagedRoutes(t);
    await router.removeManagedRoutes(t);
    r = await readGrpc(ns);
    assert.deepEqual(r.spec.rules.map((x) => x.name ?? null), ['admin', null, null]);
    assert.equal(r.metadata.annotations?.[MANAGED_ROUTES_ANNOTATION], undefined);
    assert.deepEqual(await weights(ns), [[100, 0], [100, 0]]);
    assert.deepEqual(await weights(ns, 'other-grpc'), [[100, 0]]);
  });

  test('a mirror route is refused by name when the block names GRPCRoutes, before anything is written', async () => {
    const { ns, t } = await setup('grpc-mirror', { httpRoute: 'web-http', grpcRoute: 'web-grpc' });
    const rvs = [(await readGrpc(ns)).metadata.resourceVersion, (await readHttp(ns, 'web-http')).metadata.resourceVersion];
    await assert.rejects(router.setMirrorRoute?.(t, { name: 'm', percentage: 10, match: [{ path: { prefix: '/' } }] }) ?? Promise.resolve(), (err: Error & { type?: string; nonRetryable?: boolean }) => {
      assert.match(err.message, /mirror routes are not supported on GRPCRoutes \(grpcRoute\/grpcRoutes: web-grpc\)/);
      assert.equal(err.type, 'InvalidSpec');
      assert.equal(err.nonRetryable, true);
      return true;
    });
    assert.deepEqual([(await readGrpc(ns)).metadata.resourceVersion, (await readHttp(ns, 'web-http')).metadata.resourceVersion], rvs);
  });

  test('native trafficRouting.gatewayAPI with an httpRoute and grpcRoutes: both weighted together, both back at 100/0 on abort', async () => {
    const { ns, t: pluginTarget } = await setup('grpc-native');
    const t: ReleaseTarget = { ...pluginTarget, trafficRouting: { gatewayAPI: { httpRoute: 'web-http', grpcRoutes: [{ name: 'web-grpc' }, { name: 'other-grpc' }] } } };
    await activities.preflight(t);
    await activities.ensureCanary(t);
    await activities.setWeight(t, 40);
    assert.deepEqual(await weights(ns), [[60, 40], [60, 40]]);
    assert.deepEqual(await weights(ns, 'other-grpc'), [[60, 40]]);
    assert.deepEqual(weightsOf(await readHttp(ns, 'web-http')), [[60, 40]]);
    assert.equal(await native.verifyWeight(t, 40), true);
    await activities.abortCanary(t, undefined);
    assert.deepEqual(await weights(ns), [[100, 0], [100, 0]]);
    assert.deepEqual(await weights(ns, 'other-grpc'), [[100, 0]]);
    assert.deepEqual(weightsOf(await readHttp(ns, 'web-http')), [[100, 0]]);
    assert.equal(native.type, 'gatewayAPI');
  });

  test('a GRPCRoute without both Services is InvalidSpec naming it; a missing one is a non-retryable NotFound', async () => {
    const { ns, t } = await setup('grpc-bad');
    await assert.rejects(router.setWeight({ ...t, canaryService: 'nope' }, 10), (err: Error & { type?: string }) => {
      assert.match(err.message, new RegExp(`GRPCRoute ${ns}/web-grpc has no rule with backendRefs to both Services web-stable and nope`));
      assert.equal(err.type, 'InvalidSpec');
      return true;
    });
    await assert.rejects(router.setWeight({ ...t, trafficRouting: { plugins: { [GATEWAY_API_PLUGIN]: { grpcRoute: 'absent' } } } }, 10), (err: Error & { type?: string; nonRetryable?: boolean }) => {
      assert.equal(err.type, 'NotFound', err.message);
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, /absent/);
      return true;
    });
    assert.deepEqual(await weights(ns), [[100, 0], [1, 0]], 'nothing written (the stable backendRef without weight stored with the default 1)');
  });

  test('preflight needs get/update on grpcroutes only when the block names a GRPCRoute', () => {
    const grpc = ['get grpcroutes.gateway.networking.k8s.io', 'update grpcroutes.gateway.networking.k8s.io'];
    const names = (trafficRouting: Record<string, unknown>) => requiredAccess(target('ns', { stableService: 'a', canaryService: 'b', trafficRouting })).map(describeAccess);
    for (const tr of [{ plugins: { [GATEWAY_API_PLUGIN]: { grpcRoute: 'g' } } }, { gatewayAPI: { httpRoute: 'h', grpcRoutes: [{ name: 'g' }] } }]) {
      assert.deepEqual(grpc.filter((g) => names(tr).includes(g)), grpc, JSON.stringify(tr));
    }
    assert.deepEqual(grpc.filter((g) => names({ gatewayAPI: { httpRoute: 'h' } }).includes(g)), []);
  });
});
