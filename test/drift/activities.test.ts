/**
 * The drift activities against the real control plane: a release promoted through the normal
 * activities is the reference; a hand edit of the stable Deployment (image and replicas, by another
 * field manager) is found by the read-only check and exported as `glidepath_drift`, then put back by
 * the revert (server-side apply by Glidepath's field manager) and read back; a canary left at rest and
 * a hand-edited Service selector are found and put back; replicas an HPA owns are not compared; an
 * API version's path route (its HTTPRoute rule, its Ingress) is part of the reference: a hand edit or
 * removal is found and put back, the route's other rules untouched; the router's weight at rest, read
 * from a real HTTPRoute through the Gateway API router, is found drifted and put back; a deleted
 * Deployment fails the reads as WorkloadGone and takes its `glidepath_drift` series away.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { CustomObjectsApi, NetworkingV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { createDriftActivities } from '../../activities/drift.ts';
import { createKubernetesWorkload } from '../../activities/kubernetes/index.ts';
import { createGatewayApiRouter } from '../../activities/traffic/gateway-api.ts';
import { createVersioningActivities } from '../../activities/versioning/index.ts';
import { routerKey } from '../../model/traffic-routing.ts';
import { parseApiVersion, type ApiVersionPlan } from '../../model/api-version.ts';
import { WORKLOAD_GONE, type DriftBaseline } from '../../model/drift.ts';
import { createHttpRoute } from '../support/gateway-api.ts';
import { NEW_IMAGE, STABLE_IMAGE, TestCluster, imageOf, target } from '../activities/kubernetes/cluster.ts';

const cluster = new TestCluster();
const workload = createKubernetesWorkload(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 });
const registry = new Registry();
/** The API versions these tests introduce, as the API's workflow would answer for them (serving). */
const serving = new Map<string, ApiVersionPlan>();
const drift = createDriftActivities({ kubeConfig: cluster.kc, workload, registry, versionRoute: async (ns, api, version) => serving.get(`${ns}/${api}/${version}`)?.route });
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
async function metricOf(ns: string, workload: string, field: string): Promise<number | undefined> {
  const m = await registry.getSingleMetric('glidepath_drift')?.get();
  return m?.values.find((v) => v.labels.namespace === ns && v.labels.workload === workload && v.labels.field === field)?.value;
}
const metric = (ns: string, field: string): Promise<number | undefined> => metricOf(ns, 'web', field);

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

type Failure = Error & { type?: string; nonRetryable?: boolean };

test('the reference of a workload that is gone is a named, non-retryable WorkloadGone failure', async () => {
  const ns = await cluster.namespace('drift-gone');
  const baseline: DriftBaseline = { releaseId: `release_${ns}_web`, target: target(ns), image: NEW_IMAGE };
  await assert.rejects(drift.driftDesired(baseline), (err: Failure) => err.type === WORKLOAD_GONE && err.nonRetryable === true && new RegExp(`Deployment ${ns}/web not found`).test(err.message));
});

test('a deleted Deployment makes the check fail as WorkloadGone and removes its glidepath_drift series', async () => {
  const { ns, baseline } = await promoted('drift-deleted');
  const desired = await drift.driftDesired(baseline);
  const req = { watchId: `drift_${ns}_web`, baseline, desired };
  await cluster.apps.patchNamespacedDeployment({ name: 'web', namespace: ns, fieldManager: 'kubectl-edit', body: { spec: { template: { spec: { containers: [{ name: 'app', image: 'example/web:hotfix' }] } } } } }, STRATEGIC);
  assert.deepEqual((await drift.driftCheck(req)).map((f) => f.field), ['image']);
  assert.equal(await metric(ns, 'image'), 1);
  assert.equal(await metric(ns, 'replicas'), 0);
  const series = async (mine: boolean): Promise<number> => ((await registry.getSingleMetric('glidepath_drift')?.get())?.values ?? []).filter((v) => (v.labels.namespace === ns) === mine).length;
  const others = await series(false);
  await cluster.apps.deleteNamespacedDeployment({ name: 'web', namespace: ns });
  await assert.rejects(drift.driftCheck(req), (err: Failure) => err.type === WORKLOAD_GONE && err.nonRetryable === true && new RegExp(`Deployment ${ns}/web not found`).test(err.message));
  assert.equal(await series(true), 0, 'no glidepath_drift series of the deleted workload');
  assert.equal(await series(false), others, 'the other workloads keep theirs');
  await assert.rejects(drift.driftDesired(baseline), (err: Failure) => err.type === WORKLOAD_GONE);
});

// ---- API-version routes ---------------------------------------------------------------------------

const custom = cluster.kc.makeApiClient(CustomObjectsApi);
const net = cluster.kc.makeApiClient(NetworkingV1Api);
const versioning = createVersioningActivities(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 });
const HTTPROUTES = { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes' };
const V1_RULE = { matches: [{ path: { type: 'PathPrefix', value: '/v1' } }], backendRefs: [{ name: 'orders-v1', port: 80 }] };
type Route = { metadata: { resourceVersion?: string }; spec: { rules: { name?: string; matches?: { path?: { value?: string } }[]; backendRefs?: { name: string; port?: number }[] }[] } };

/** orders-v1 running with its route; v2 introduced through the versioning activities (Deployment, Service, route); the drift baseline of orders-v2. */
async function apiVersion(prefix: string, via: 'httpRoute' | 'ingress'): Promise<{ ns: string; baseline: DriftBaseline }> {
  const ns = await cluster.namespace(prefix);
  await cluster.stable(ns, { name: 'orders-v1', replicas: 1, labels: { app: 'orders', version: 'v1' } });
  await cluster.service(ns, 'orders-v1', { app: 'orders', version: 'v1' });
  if (via === 'httpRoute') await createHttpRoute(custom, ns, 'orders', { parentRefs: [{ name: 'gw' }], rules: [V1_RULE] });
  else await net.createNamespacedIngress({ namespace: ns, body: { metadata: { name: 'orders' }, spec: { ingressClassName: 'nginx', rules: [{ host: 'api.example.com', http: { paths: [{ path: '/v1', pathType: 'Prefix', backend: { service: { name: 'orders-v1', port: { number: 80 } } } }] } }] } } });
  const route = via === 'httpRoute' ? { pathPrefix: '/v2', httpRoute: { name: 'orders' } } : { pathPrefix: '/v2', ingress: { name: 'orders' } };
  const { plan, problems } = parseApiVersion('test', { apiVersion: 'glidepath.dev/v1alpha1', kind: 'ApiVersion', metadata: { name: 'orders-v2', namespace: ns }, spec: { api: 'orders', version: 'v2', image: NEW_IMAGE, templateFrom: { deployment: 'orders-v1', container: 'app' }, route } });
  assert.deepEqual(problems, []);
  await versioning.deployVersion(plan as ApiVersionPlan);
  await versioning.addVersionRoute(plan as ApiVersionPlan);
  serving.set(`${ns}/orders/v2`, plan as ApiVersionPlan);
  const t = target(ns, { workload: { kind: 'Deployment', name: 'orders-v2' }, strategy: 'rolling', releaseId: `release_${ns}_orders-v2` });
  return { ns, baseline: { releaseId: t.releaseId, target: t, image: NEW_IMAGE } };
}

const readRoute = async (ns: string): Promise<Route> => (await custom.getNamespacedCustomObject({ ...HTTPROUTES, namespace: ns, name: 'orders' })) as Route;
const putRules = async (ns: string, rules: Route['spec']['rules']): Promise<void> => {
  const r = await readRoute(ns);
  await custom.replaceNamespacedCustomObject({ ...HTTPROUTES, namespace: ns, name: 'orders', body: { ...r, spec: { ...r.spec, rules } } });
};

test('an API version\'s HTTPRoute rule is in the reference: a hand edit and a removal are reported, then put back; the other rules stay', async () => {
  const { ns, baseline } = await apiVersion('drift-apigw', 'httpRoute');
  const desired = await drift.driftDesired(baseline);
  assert.equal(desired.apiRoute?.kind, 'HTTPRoute');
  assert.equal(desired.apiRoute?.rule, 'orders-v2');
  assert.equal(desired.apiRoute?.path, '/v2');
  const req = { watchId: `drift_${ns}_orders-v2`, baseline, desired };
  assert.deepEqual(await drift.driftCheck(req), []);
  const atRest = JSON.stringify((await readRoute(ns)).spec.rules);

  // A hand edit: /v2 sent to v1's Service.
  await putRules(ns, (await readRoute(ns)).spec.rules.map((r) => (r.name === 'orders-v2' ? { ...r, backendRefs: [{ name: 'orders-v1', port: 80 }] } : r)));
  let found = await drift.driftCheck(req);
  assert.deepEqual(found.map((f) => f.field), ['route']);
  assert.match(found[0]?.desired ?? '', /HTTPRoute .*\/orders rule orders-v2 \(\/v2\) as the version left it/);
  assert.match(found[0]?.live ?? '', /changed .*orders-v1/);
  assert.equal(await metricOf(ns, 'orders-v2', 'route'), 1);
  await drift.driftRevert({ ...req, findings: found });
  assert.equal(JSON.stringify((await readRoute(ns)).spec.rules), atRest, 'the rule is back byte for byte, the other rules untouched');
  assert.deepEqual(await drift.driftCheck(req), []);
  assert.equal(await metricOf(ns, 'orders-v2', 'route'), 0);

  // The rule removed by hand.
  await putRules(ns, (await readRoute(ns)).spec.rules.filter((r) => r.name !== 'orders-v2'));
  found = await drift.driftCheck(req);
  assert.deepEqual(found.map((f) => [f.field, f.live]), [['route', 'rule gone']]);
  await drift.driftRevert({ ...req, findings: found });
  assert.equal(JSON.stringify((await readRoute(ns)).spec.rules), atRest);
  assert.deepEqual(await drift.driftCheck(req), []);

  // The retirement flow's deprecation headers are not drift; its removal of the route is not either (the version no longer serves).
  const plan = serving.get(`${ns}/orders/v2`) as ApiVersionPlan;
  await versioning.setDeprecationHeaders(plan, { Deprecation: '@1767225600', Sunset: 'Thu, 31 Dec 2026 00:00:00 GMT' });
  assert.deepEqual(await drift.driftCheck(req), []);
  serving.delete(`${ns}/orders/v2`);
  await versioning.removeVersionRoute(plan);
  assert.deepEqual(await drift.driftCheck(req), [], 'a retired version\'s route is meant to be gone');
});

test('an API version\'s Ingress is in the reference: a hand edit of its path is reported, then put back', async () => {
  const { ns, baseline } = await apiVersion('drift-aping', 'ingress');
  const desired = await drift.driftDesired(baseline);
  assert.deepEqual([desired.apiRoute?.kind, desired.apiRoute?.name, desired.apiRoute?.path], ['Ingress', 'orders-v2', '/v2']);
  const req = { watchId: `drift_${ns}_orders-v2`, baseline, desired };
  assert.deepEqual(await drift.driftCheck(req), []);
  const atRest = JSON.stringify((await net.readNamespacedIngress({ name: 'orders-v2', namespace: ns })).spec);
  await net.patchNamespacedIngress({ name: 'orders-v2', namespace: ns, fieldManager: 'kubectl-edit', body: [{ op: 'replace', path: '/spec/rules/0/http/paths/0/path', value: '/v3' }] }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
  const found = await drift.driftCheck(req);
  assert.deepEqual(found.map((f) => f.field), ['route']);
  assert.match(found[0]?.live ?? '', /\/v3/);
  await drift.driftRevert({ ...req, findings: found });
  assert.equal(JSON.stringify((await net.readNamespacedIngress({ name: 'orders-v2', namespace: ns })).spec), atRest);
  assert.deepEqual(await drift.driftCheck(req), []);
});

test('no route in the reference of a workload that is no API version, or of a version the API does not serve', async () => {
  const { baseline } = await promoted('drift-noapi');
  assert.equal((await drift.driftDesired(baseline)).apiRoute, undefined);
  const { ns, baseline: v2 } = await apiVersion('drift-apiret', 'httpRoute');
  serving.delete(`${ns}/orders/v2`); // retiring or retired: its route is meant to go
  assert.equal((await drift.driftDesired(v2)).apiRoute, undefined);
});

// ---- the router at rest ------------------------------------------------------------------------------

test('the router at rest: a hand-set canary weight on the HTTPRoute is reported, then put back to 100/0 and verified', async () => {
  const ns = await cluster.namespace('drift-router');
  await cluster.stable(ns, { replicas: 2 });
  await cluster.service(ns, 'web-stable', { app: 'web' });
  await cluster.service(ns, 'web-canary', { app: 'web' });
  const other = { name: 'admin', matches: [{ path: { type: 'PathPrefix', value: '/admin' } }], backendRefs: [{ name: 'admin-svc', port: 80 }] };
  await createHttpRoute(custom, ns, 'web-route', { parentRefs: [{ name: 'gw' }], rules: [other, { backendRefs: [{ name: 'web-stable', port: 80, weight: 100 }, { name: 'web-canary', port: 80, weight: 0 }] }] });
  const trafficRouting = { plugins: { 'argoproj-labs/gatewayAPI': { httpRoute: 'web-route' } } };
  const own = new Registry(); // one glidepath_drift per registry
  const sample = async (): Promise<number | undefined> => (await own.getSingleMetric('glidepath_drift')?.get())?.values.find((v) => v.labels.namespace === ns && v.labels.field === 'router')?.value;
  const routed = createDriftActivities({ kubeConfig: cluster.kc, workload, registry: own, routers: { [routerKey(trafficRouting) as string]: createGatewayApiRouter(cluster.kc) } });
  const t = target(ns, { stableService: 'web-stable', canaryService: 'web-canary', image: STABLE_IMAGE, trafficRouting } as Partial<ReturnType<typeof target>>);
  const baseline: DriftBaseline = { releaseId: `release_${ns}_web`, target: t, image: STABLE_IMAGE };
  const desired = await routed.driftDesired(baseline);
  assert.equal(desired.router, routerKey(trafficRouting));
  const req = { watchId: `drift_${ns}_web`, baseline, desired };
  assert.deepEqual(await routed.driftCheck(req), []);

  const weights = async (): Promise<unknown> => ((await custom.getNamespacedCustomObject({ ...HTTPROUTES, namespace: ns, name: 'web-route' })) as Route).spec.rules[1]?.backendRefs?.map((b) => (b as { weight?: number }).weight);
  const r = (await custom.getNamespacedCustomObject({ ...HTTPROUTES, namespace: ns, name: 'web-route' })) as Route;
  await custom.replaceNamespacedCustomObject({ ...HTTPROUTES, namespace: ns, name: 'web-route', body: { ...r, spec: { ...r.spec, rules: [other, { backendRefs: [{ name: 'web-stable', port: 80, weight: 70 }, { name: 'web-canary', port: 80, weight: 30 }] }] } } });
  const found = await routed.driftCheck(req);
  assert.deepEqual(found.map((f) => f.field), ['router']);
  assert.equal(await sample(), 1);
  await routed.driftRevert({ ...req, findings: found });
  assert.deepEqual(await weights(), [100, 0], 'read back from the apiserver');
  assert.deepEqual(await routed.driftCheck(req), []);
  assert.equal(await sample(), 0);
});
