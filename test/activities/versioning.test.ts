/**
 * The API-versioning activities on the real control plane (Gateway API CRDs, built-in Ingress):
 * a new version's Deployment and Service, its HTTPRoute rule or Ingress, deprecation headers,
 * removing routes and scaling down. Every call is made twice (the second writes nothing: the
 * resourceVersion does not move); routes of other versions and a hand-added rule stay byte-identical.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CustomObjectsApi, NetworkingV1Api, type V1Ingress } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { createVersioningActivities } from '../../activities/versioning/index.ts';
import { API_ANNOTATIONS, API_LABELS } from '../../activities/versioning/objects.ts';
import { parseApiVersion, type ApiVersionPlan } from '../../model/api-version.ts';
import { createHttpRoute } from '../support/gateway-api.ts';
import { TestCluster, eventually } from './kubernetes/cluster.ts';

const cluster = new TestCluster();
const custom = cluster.kc.makeApiClient(CustomObjectsApi);
const net = cluster.kc.makeApiClient(NetworkingV1Api);
const acts = createVersioningActivities(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 });
const G = { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes' };

after(() => cluster.cleanup());

interface Route {
  metadata: { annotations?: Record<string, string>; resourceVersion?: string };
  spec: { rules: { name?: string; matches?: { path?: { value?: string } }[]; filters?: unknown[]; backendRefs?: { name: string }[] }[] };
}

const HAND_RULE = { name: 'admin', matches: [{ path: { type: 'PathPrefix', value: '/admin' } }], backendRefs: [{ name: 'admin-svc', port: 80 }] };
const V1_RULE = { matches: [{ path: { type: 'PathPrefix', value: '/v1' } }], backendRefs: [{ name: 'orders-v1', port: 80 }] };

function plan(ns: string, yaml: Record<string, unknown>): ApiVersionPlan {
  const { plan: p, problems } = parseApiVersion('test', { apiVersion: 'glidepath.dev/v1alpha1', kind: 'ApiVersion', metadata: { name: `orders-${String(yaml.version)}`, namespace: ns }, spec: { api: 'orders', ...yaml } });
  assert.deepEqual(problems, []);
  return p as ApiVersionPlan;
}

const readRoute = async (ns: string): Promise<Route> => (await custom.getNamespacedCustomObject({ ...G, namespace: ns, name: 'orders' })) as Route;
const readIngress = (ns: string, name: string): Promise<V1Ingress> => net.readNamespacedIngress({ name, namespace: ns });
const ruleFor = (r: Route, path: string) => r.spec.rules.find((x) => x.matches?.some((m) => m.path?.value === path));
const json = (v: unknown): string => JSON.stringify(v);

/** Namespace with v1 running as users run it: Deployment and Service orders-v1, an HTTPRoute and an Ingress routing /v1 and /admin. */
async function setup(prefix: string): Promise<string> {
  const ns = await cluster.namespace(prefix);
  await cluster.stable(ns, { name: 'orders-v1', replicas: 4, labels: { app: 'orders', version: 'v1' } });
  await cluster.service(ns, 'orders-v1', { app: 'orders', version: 'v1' });
  await createHttpRoute(custom, ns, 'orders', { parentRefs: [{ name: 'gw' }], hostnames: ['api.example.com'], rules: [HAND_RULE, V1_RULE] });
  await net.createNamespacedIngress({
    namespace: ns,
    body: {
      metadata: { name: 'orders' },
      spec: {
        ingressClassName: 'nginx',
        rules: [
          {
            host: 'api.example.com',
            http: {
              paths: [
                { path: '/v1', pathType: 'Prefix', backend: { service: { name: 'orders-v1', port: { number: 80 } } } },
                { path: '/admin', pathType: 'Prefix', backend: { service: { name: 'admin-svc', port: { number: 80 } } } },
              ],
            },
          },
        ],
      },
    },
  });
  return ns;
}

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a failure');
}

let ns: string;
let v2: ApiVersionPlan;
let v1: ApiVersionPlan;

describe('HTTPRoute versions', () => {
  before(async () => {
    ns = await setup('apiv-gw');
    v1 = plan(ns, { version: 'v1', existing: { deployment: 'orders-v1', service: 'orders-v1' }, route: { pathPrefix: '/v1', httpRoute: { name: 'orders' } } });
    v2 = plan(ns, { version: 'v2', image: 'example/orders:2.0.0', templateFrom: { deployment: 'orders-v1', container: 'app' }, replicas: 2, route: { pathPrefix: '/v2', httpRoute: { name: 'orders' } } });
  });

  test('deployVersion: its own Deployment and Service, disjoint from v1; a repeat writes nothing', async () => {
    const v1Before = await cluster.deployment(ns, 'orders-v1');
    assert.deepEqual(await acts.deployVersion(v2), { replicas: 2 });
    const d = await cluster.deployment(ns, 'orders-v2');
    assert.equal(d?.spec?.template.spec?.containers.find((c) => c.name === 'app')?.image, 'example/orders:2.0.0');
    assert.equal(d?.spec?.template.spec?.containers.find((c) => c.name === 'sidecar')?.image, 'example/proxy:1', 'other containers as in the template');
    assert.deepEqual(d?.spec?.selector.matchLabels, { [API_LABELS.api]: 'orders', [API_LABELS.version]: 'v2' });
    const podLabels = d?.spec?.template.metadata?.labels ?? {};
    assert.equal(podLabels.app, undefined, 'the template selector labels are dropped, so orders-v1 never selects v2 pods');
    assert.equal(podLabels.tier, 'frontend', 'other template labels kept');
    assert.equal(d?.metadata?.annotations?.[API_ANNOTATIONS.templateFrom], 'orders-v1');
    assert.equal(d?.status?.availableReplicas, 2);
    assert.deepEqual(await cluster.serviceSelector(ns, 'orders-v2'), { [API_LABELS.api]: 'orders', [API_LABELS.version]: 'v2' });
    const svc = await cluster.core.readNamespacedService({ name: 'orders-v2', namespace: ns });
    assert.equal(svc.spec?.ports?.[0]?.port, 80);
    assert.equal(svc.spec?.ports?.[0]?.targetPort, 8080, "the container's first port");
    assert.equal((await cluster.livePods(ns, { app: 'orders', version: 'v1' })).length, 4, 'v1 pods only under the v1 selector');
    const rv = [d?.metadata?.resourceVersion, svc.metadata?.resourceVersion];
    await acts.deployVersion(v2);
    const again = [(await cluster.deployment(ns, 'orders-v2'))?.metadata?.resourceVersion, (await cluster.core.readNamespacedService({ name: 'orders-v2', namespace: ns })).metadata?.resourceVersion];
    assert.deepEqual(again, rv, 'a repeat writes nothing');
    assert.equal((await cluster.deployment(ns, 'orders-v1'))?.metadata?.resourceVersion, v1Before?.metadata?.resourceVersion, 'v1 untouched');
  });

  test('registerVersion: v1 as it runs; writes nothing', async () => {
    const rv = (await readRoute(ns)).metadata.resourceVersion;
    assert.deepEqual(await acts.registerVersion(v1), { replicas: 4 });
    assert.equal((await readRoute(ns)).metadata.resourceVersion, rv);
    const wrongPath = { ...v1, route: { ...v1.route, pathPrefix: '/v9' } };
    const err = await failure(acts.registerVersion(wrongPath));
    assert.equal(err.type, 'InvalidSpec');
    assert.match(err.message, /HTTPRoute .*\/orders has no rule routing \/v9 to Service orders-v1/);
  });

  test('addVersionRoute: a named /v2 rule; other rules byte-identical; a repeat writes nothing', async () => {
    const before = await readRoute(ns);
    const others = json(before.spec.rules);
    assert.deepEqual(await acts.addVersionRoute(v2), { changed: true });
    const after1 = await readRoute(ns);
    assert.equal(json(after1.spec.rules.filter((r) => r.name !== 'orders-v2')), others, 'existing rules byte-identical');
    assert.deepEqual(ruleFor(after1, '/v2'), {
      name: 'orders-v2',
      matches: [{ path: { type: 'PathPrefix', value: '/v2' } }],
      backendRefs: [{ group: '', kind: 'Service', name: 'orders-v2', port: 80, weight: 1 }],
    });
    assert.equal(after1.metadata.annotations?.[API_ANNOTATIONS.versionRoutes], '["orders-v2"]');
    assert.deepEqual(await acts.addVersionRoute(v2), { changed: false });
    assert.equal((await readRoute(ns)).metadata.resourceVersion, after1.metadata.resourceVersion, 'a repeat writes nothing');
  });

  test('a path already routed by a rule Glidepath did not add is refused', async () => {
    const clash = plan(ns, { version: 'v3', image: 'example/orders:3.0.0', templateFrom: { deployment: 'orders-v1' }, route: { pathPrefix: '/admin', httpRoute: { name: 'orders' } } });
    const err = await failure(acts.addVersionRoute(clash));
    assert.equal(err.type, 'InvalidSpec');
    assert.match(err.message, /already routes \/admin \(rule admin\)/);
    assert.equal(err.nonRetryable, true);
  });

  test('deprecation headers on the v1 rule only; a repeat writes nothing; clear restores the rule byte for byte', async () => {
    const before = await readRoute(ns);
    const v1Rule = json(ruleFor(before, '/v1'));
    const headers = { Deprecation: '@1795000000', Sunset: 'Sun, 13 Dec 2026 00:00:00 GMT', Link: '<https://docs.example.com/v1>; rel="deprecation"; type="text/html"' };
    assert.deepEqual(await acts.setDeprecationHeaders(v1, headers), { supported: true, changed: true });
    const withHeaders = await readRoute(ns);
    assert.deepEqual(ruleFor(withHeaders, '/v1')?.filters, [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { set: Object.entries(headers).map(([name, value]) => ({ name, value })) } }]);
    assert.equal(json(withHeaders.spec.rules.filter((r) => ruleFor(withHeaders, '/v1') !== r)), json(before.spec.rules.filter((r) => ruleFor(before, '/v1') !== r)), 'other rules byte-identical');
    assert.deepEqual(await acts.setDeprecationHeaders(v1, headers), { supported: true, changed: false });
    assert.equal((await readRoute(ns)).metadata.resourceVersion, withHeaders.metadata.resourceVersion);
    assert.deepEqual(await acts.clearDeprecationHeaders(v1, headers), { changed: true });
    assert.equal(json(ruleFor(await readRoute(ns), '/v1')), v1Rule, 'the rule as it was');
    assert.deepEqual(await acts.clearDeprecationHeaders(v1, headers), { changed: false });
  });

  test('removeVersionRoute (registered v1): its rule goes, v2 and the hand rule stay; scaleDownVersion keeps the Deployment at 0', async () => {
    const before = await readRoute(ns);
    assert.deepEqual(await acts.removeVersionRoute(v1), { changed: true });
    const after1 = await readRoute(ns);
    assert.equal(ruleFor(after1, '/v1'), undefined);
    assert.equal(json(after1.spec.rules), json(before.spec.rules.filter((r) => ruleFor(before, '/v1') !== r)), 'the others byte-identical');
    assert.deepEqual(await acts.removeVersionRoute(v1), { changed: false });
    assert.equal((await readRoute(ns)).metadata.resourceVersion, after1.metadata.resourceVersion);

    assert.deepEqual(await acts.scaleDownVersion(v1), { previousReplicas: 4 });
    const d = await cluster.deployment(ns, 'orders-v1');
    assert.equal(d?.spec?.replicas, 0);
    assert.equal(d?.metadata?.annotations?.[API_ANNOTATIONS.retiredReplicas], '4');
    await eventually('v1 pods gone', async () => ((await cluster.livePods(ns, { app: 'orders', version: 'v1' })).length === 0 ? true : undefined));
    // The controller writes status while pods go; compare once it has settled.
    const settled = await eventually('v1 status settled', async () => {
      const x = await cluster.deployment(ns, 'orders-v1');
      return (x?.status?.replicas ?? 0) === 0 && x?.status?.observedGeneration === x?.metadata?.generation ? x : undefined;
    });
    await new Promise((r) => setTimeout(r, 500));
    const rv = (await cluster.deployment(ns, 'orders-v1'))?.metadata?.resourceVersion;
    assert.ok(settled);
    assert.deepEqual(await acts.scaleDownVersion(v1), { previousReplicas: 4 });
    assert.equal((await cluster.deployment(ns, 'orders-v1'))?.metadata?.resourceVersion, rv, 'a repeat writes nothing');
    assert.ok(await cluster.core.readNamespacedService({ name: 'orders-v1', namespace: ns }), 'the Service is kept');
    assert.equal((await cluster.deployment(ns, 'orders-v2'))?.status?.availableReplicas, 2, 'v2 untouched');
  });

  test('removeVersionRoute (new v2): its rule and its annotation entry go', async () => {
    assert.deepEqual(await acts.removeVersionRoute(v2), { changed: true });
    const r = await readRoute(ns);
    assert.deepEqual(r.spec.rules.map((x) => x.name ?? null), ['admin']);
    assert.equal(r.metadata.annotations?.[API_ANNOTATIONS.versionRoutes], undefined);
    assert.deepEqual(await acts.removeVersionRoute(v2), { changed: false });
  });

  test('refusals: an object of that name Glidepath did not create, a missing template', async () => {
    await cluster.stable(ns, { name: 'orders-v7', replicas: 1 });
    const v7 = plan(ns, { version: 'v7', image: 'example/orders:7.0.0', templateFrom: { deployment: 'orders-v1' }, route: { pathPrefix: '/v7', httpRoute: { name: 'orders' } } });
    const taken = await failure(acts.deployVersion(v7));
    assert.equal(taken.type, 'InvalidSpec');
    assert.match(taken.message, /Deployment .*\/orders-v7 already exists and was not created by Glidepath/);
    const v8 = plan(ns, { version: 'v8', image: 'example/orders:8.0.0', templateFrom: { deployment: 'nope' }, route: { pathPrefix: '/v8', httpRoute: { name: 'orders' } } });
    const missing = await failure(acts.deployVersion(v8));
    assert.equal(missing.type, 'NotFound');
    assert.match(missing.message, /Deployment .*\/nope \(templateFrom\) not found/);
  });
});

describe('Ingress versions', () => {
  let ins: string;
  before(async () => {
    ins = await setup('apiv-ing');
  });

  test('v2 gets an Ingress of its own (host and class of the API Ingress); the API Ingress is not written; headers unsupported; removal', async () => {
    const v2i = plan(ins, { version: 'v2', image: 'example/orders:2.0.0', templateFrom: { deployment: 'orders-v1' }, route: { pathPrefix: '/v2', ingress: { name: 'orders' } } });
    const v1i = plan(ins, { version: 'v1', existing: { deployment: 'orders-v1', service: 'orders-v1' }, route: { pathPrefix: '/v1', ingress: { name: 'orders' } } });
    const api = await readIngress(ins, 'orders');
    await acts.registerVersion(v1i);
    assert.deepEqual(await acts.addVersionRoute(v2i), { changed: true });
    const own = await readIngress(ins, 'orders-v2');
    assert.equal(own.spec?.ingressClassName, 'nginx');
    assert.deepEqual(JSON.parse(json(own.spec?.rules)), [{ host: 'api.example.com', http: { paths: [{ path: '/v2', pathType: 'Prefix', backend: { service: { name: 'orders-v2', port: { number: 80 } } } }] } }]);
    assert.equal(own.metadata?.labels?.[API_LABELS.version], 'v2');
    assert.deepEqual(await acts.addVersionRoute(v2i), { changed: false });
    assert.equal((await readIngress(ins, 'orders-v2')).metadata?.resourceVersion, own.metadata?.resourceVersion, 'a repeat writes nothing');
    assert.equal((await readIngress(ins, 'orders')).metadata?.resourceVersion, api.metadata?.resourceVersion, 'the API Ingress is never written');

    const headers = await acts.setDeprecationHeaders(v1i, { Deprecation: '@1795000000', Sunset: 'Sun, 13 Dec 2026 00:00:00 GMT' });
    assert.equal(headers.supported, false);
    assert.match(headers.note ?? '', /Ingress has no portable way to set response headers/);
    assert.equal((await readIngress(ins, 'orders')).metadata?.resourceVersion, api.metadata?.resourceVersion);

    // Retiring the registered v1: its path leaves the API Ingress; /admin stays as it was.
    assert.deepEqual(await acts.removeVersionRoute(v1i), { changed: true });
    const after1 = await readIngress(ins, 'orders');
    assert.deepEqual(JSON.parse(json(after1.spec?.rules)), [{ host: 'api.example.com', http: { paths: [{ path: '/admin', pathType: 'Prefix', backend: { service: { name: 'admin-svc', port: { number: 80 } } } }] } }]);
    assert.deepEqual(await acts.removeVersionRoute(v1i), { changed: false });
    assert.equal((await readIngress(ins, 'orders')).metadata?.resourceVersion, after1.metadata?.resourceVersion);

    // Retiring v2: its own Ingress is deleted.
    assert.deepEqual(await acts.removeVersionRoute(v2i), { changed: true });
    await eventually('orders-v2 Ingress deleted', async () => {
      try {
        await readIngress(ins, 'orders-v2');
        return undefined;
      } catch (err) {
        return (err as { code?: number }).code === 404 ? true : undefined;
      }
    });
    assert.deepEqual(await acts.removeVersionRoute(v2i), { changed: false });
  });

  test('a path the API Ingress already routes is refused', async () => {
    const clash = plan(ins, { version: 'v3', image: 'example/orders:3.0.0', templateFrom: { deployment: 'orders-v1' }, route: { pathPrefix: '/admin', ingress: { name: 'orders' } } });
    const err = await failure(acts.addVersionRoute(clash));
    assert.equal(err.type, 'InvalidSpec');
    assert.match(err.message, /Ingress .*\/orders already routes api\.example\.com\/admin/);
  });
});
