/**
 * deploy/rbac.yaml against the real apiserver (RBAC enforced): the activities run as the
 * glidepath-worker ServiceAccount with a TokenRequest token and succeed in a namespace the worker
 * serves (a RoleBinding added as rbac.yaml says); in a namespace it does not serve, preflight is a
 * non-retryable Forbidden naming every missing permission and the namespace's Secrets cannot be
 * read. A ClusterRole missing a verb makes preflight fail naming that verb. The API-version
 * activities run as the same ServiceAccount. Also checks that the ClusterRole grants exactly what
 * activities/kubernetes/access.ts says the activities use, and that nothing binds it cluster-wide.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { AuthorizationV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, KubernetesObjectApi, NetworkingV1Api, PatchStrategy, type KubernetesObject, type V1ClusterRole, type V1Deployment, type V1PolicyRule } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { parseAllDocuments } from 'yaml';
import { ALL_ACCESS, createKubernetesExperiments, createKubernetesWorkload } from '../../../activities/kubernetes/index.ts';
import { WORKER_EXTRA_ACCESS, describeAccess, requiredAccess, type Access } from '../../../activities/kubernetes/access.ts';
import { NEW_IMAGE, STABLE_IMAGE, TestCluster, eventually, imageOf, target } from './cluster.ts';
import { createVersioningActivities } from '../../../activities/versioning/index.ts';
import { createJobProvider } from '../../../activities/metrics/job.ts';
import type { MetricSpec } from '../../../model/types.ts';
import { parseApiVersion, type ApiVersionPlan } from '../../../model/api-version.ts';

const cluster = new TestCluster();
const objects = KubernetesObjectApi.makeApiClient(cluster.kc);
const customApi = cluster.kc.makeApiClient(CustomObjectsApi);
const netApi = cluster.kc.makeApiClient(NetworkingV1Api);
const deployDir = new URL('../../../deploy/', import.meta.url);
const created: KubernetesObject[] = []; // cluster-scoped or outside test namespaces: deleted at the end

async function manifests(file: string): Promise<KubernetesObject[]> {
  const text = await readFile(new URL(file, deployDir), 'utf8');
  return parseAllDocuments(text).map((d) => d.toJS() as KubernetesObject).filter(Boolean);
}

async function apply(obj: KubernetesObject, track = true): Promise<void> {
  let existed = true;
  try {
    await objects.read(obj as KubernetesObject & { metadata: { name: string } });
  } catch {
    existed = false;
  }
  await objects.patch(obj, undefined, undefined, 'glidepath-test', true, PatchStrategy.ServerSideApply);
  if (track && !existed) created.push(obj);
}

/** A KubeConfig that authenticates with a TokenRequest token of `namespace/name`. */
async function tokenKubeConfig(namespace: string, name: string): Promise<KubeConfig> {
  const tr = await cluster.core.createNamespacedServiceAccountToken({ name, namespace, body: { spec: { audiences: [], expirationSeconds: 600 } } });
  const token = tr.status?.token;
  assert.ok(token, 'TokenRequest returned a token');
  const c = cluster.kc.getCurrentCluster();
  assert.ok(c);
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: c.server, skipTLSVerify: false, ...(c.caData ? { caData: c.caData } : {}), ...(c.caFile ? { caFile: c.caFile } : {}) }],
    users: [{ name: `${namespace}:${name}`, token }],
    contexts: [{ name: 'sa', cluster: 'local', user: `${namespace}:${name}` }],
    currentContext: 'sa',
  });
  return kc;
}

function grants(rules: V1PolicyRule[]): string[] {
  return rules.flatMap((r) => (r.apiGroups ?? []).flatMap((g) => (r.resources ?? []).flatMap((res) => r.verbs.map((v) => `${g}/${res}/${v}`)))).sort();
}
const key = (a: Access): string => `${a.group}/${a.resource}/${a.verb}`;

let role: V1ClusterRole;
let rbacDocs: KubernetesObject[];

before(async () => {
  rbacDocs = await manifests('rbac.yaml');
  const docs = [...(await manifests('namespace.yaml')), ...rbacDocs];
  for (const d of docs) await apply(d);
  role = docs.find((d) => d.kind === 'ClusterRole') as V1ClusterRole;
});

/** Makes the worker serve `namespace` the way deploy/rbac.yaml says: its RoleBinding, in that namespace. */
async function serve(namespace: string): Promise<void> {
  const binding = rbacDocs.find((d) => d.kind === 'RoleBinding' && d.metadata?.name === 'glidepath-worker');
  assert.ok(binding, 'deploy/rbac.yaml has a glidepath-worker RoleBinding to copy');
  await apply({ ...binding, metadata: { ...binding.metadata, namespace } } as KubernetesObject, false);
  const authz = cluster.kc.makeApiClient(AuthorizationV1Api);
  await eventually(`the worker's RoleBinding in ${namespace} in effect`, async () => {
    const review = await authz.createSubjectAccessReview({
      body: { spec: { user: 'system:serviceaccount:glidepath-system:glidepath-worker', groups: ['system:serviceaccounts', 'system:serviceaccounts:glidepath-system', 'system:authenticated'], resourceAttributes: { namespace, group: 'apps', resource: 'deployments', verb: 'get' } } },
    });
    return review.status?.allowed ? true : undefined;
  }, 15_000, 100);
}

// Every authenticated identity may create SelfSubjectAccessReviews (system:basic-user), so the rule set leaves it out.
const SSAR = 'authorization.k8s.io/selfsubjectaccessreviews/create';

after(async () => {
  await cluster.cleanup();
  for (const obj of created.reverse()) await objects.delete(obj).catch(() => undefined);
});

describe('RBAC (deploy/rbac.yaml)', () => {
  test('the ClusterRole grants exactly what the activities use', () => {
    assert.deepEqual(grants(role.rules ?? []), [...ALL_ACCESS, ...WORKER_EXTRA_ACCESS].map(key).filter((k) => k !== SSAR).sort());
  });

  test('nothing binds the worker cluster-wide: one RoleBinding per served namespace', () => {
    assert.deepEqual(rbacDocs.map((d) => d.kind).sort(), ['ClusterRole', 'RoleBinding', 'ServiceAccount']);
    for (const b of rbacDocs.filter((d) => d.kind === 'RoleBinding') as (KubernetesObject & { roleRef: { kind: string; name: string } })[]) {
      assert.ok(b.metadata?.namespace, 'a RoleBinding names its namespace');
      assert.deepEqual(b.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'glidepath-worker' });
    }
  });

  test('as the worker, a release in a namespace it does not serve is refused by preflight naming each permission, and its Secrets cannot be read', async () => {
    const ns = await cluster.namespace('rbacout');
    await cluster.stable(ns, { replicas: 1 });
    await cluster.service(ns, 'web', { app: 'web' });
    await cluster.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'db' }, stringData: { password: 'not-for-the-worker' } } });
    const kc = await tokenKubeConfig('glidepath-system', 'glidepath-worker');
    const t = target(ns, { stableService: 'web' });
    const names = requiredAccess(t).map(describeAccess);
    assert.ok(names.includes('get deployments.apps') && names.includes('patch services'), names.join(', '));
    await assert.rejects(createKubernetesWorkload(kc, { heartbeat: () => undefined }).preflight(t), (e: unknown) => {
      assert.ok(e instanceof ApplicationFailure, String(e));
      assert.equal(e.type, 'Forbidden');
      assert.equal(e.nonRetryable, true);
      assert.equal(e.message, `not allowed in namespace ${ns}: ${names.join(', ')} (grant them to the worker's identity; see deploy/rbac.yaml)`);
      return true;
    });
    await assert.rejects(kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name: 'db', namespace: ns }), (e: unknown) => {
      assert.equal((e as { code?: number }).code, 403, String(e));
      return true;
    });

    // Served (the RoleBinding rbac.yaml documents): the same preflight passes and the Secret is readable by name.
    await serve(ns);
    const served = createKubernetesWorkload(kc, { heartbeat: () => undefined });
    const pre = await served.preflight(t);
    assert.equal(pre.stableImage, STABLE_IMAGE);
    const secret = await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name: 'db', namespace: ns });
    assert.equal(secret.metadata?.name, 'db');
  });

  test('deploy/worker.yaml is accepted by the apiserver (server-side dry run) and runs as glidepath-worker', async () => {
    const docs = await manifests('worker.yaml');
    assert.deepEqual(docs.map((d) => d.kind).sort(), ['Deployment', 'PodDisruptionBudget']);
    for (const d of docs) await objects.create(d, undefined, 'All');
    const worker = docs.find((d) => d.kind === 'Deployment') as V1Deployment;
    const pod = worker.spec?.template?.spec;
    assert.equal(pod?.serviceAccountName, 'glidepath-worker');
    const c = pod?.containers[0];
    assert.equal(c?.image, 'glidepath/worker:latest');
    assert.deepEqual(c?.readinessProbe?.httpGet, { path: '/metrics', port: 'metrics' });
    assert.equal(c?.ports?.find((p) => p.name === 'metrics')?.containerPort, 9464);
    const env = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));
    assert.ok(env.TEMPORAL_ADDRESS);
    assert.equal(env.GLIDEPATH_METRICS_ADDRESS, '0.0.0.0:9464');
  });

  test('as the glidepath-worker ServiceAccount (TokenRequest), the canary and blue/green activities work', async () => {
    const ns = await cluster.namespace('rbac');
    await serve(ns);
    await cluster.stable(ns, { replicas: 2 });
    await cluster.service(ns, 'web', { app: 'web' });
    await cluster.service(ns, 'web-preview', { app: 'web' });
    const kc = await tokenKubeConfig('glidepath-system', 'glidepath-worker');
    const asWorker = createKubernetesWorkload(kc, { heartbeat: () => undefined, pollIntervalMs: 200 });

    const t = target(ns, { canaryService: 'web-preview' });
    const pre = await asWorker.preflight(t);
    assert.equal(pre.stableImage, STABLE_IMAGE);
    await asWorker.ensureCanary(t);
    await asWorker.scaleCanaryForWeight(t, 50);
    assert.equal((await cluster.deployment(ns, 'web-canary'))?.status?.availableReplicas, 1);
    await asWorker.promoteCanary(t);
    assert.equal(imageOf(await cluster.deployment(ns, 'web')), NEW_IMAGE);
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);

    const t2 = target(ns, { releaseId: `${ns}/bg`, image: 'example/web:3.0.0', strategy: 'blueGreen', activeService: 'web', previewService: 'web-preview' });
    await asWorker.preflight(t2);
    await asWorker.deployPreview(t2, undefined);
    await asWorker.switchActive(t2, 'preview');
    await asWorker.switchActive(t2, 'stable');
    await asWorker.abortBlueGreen(t2, NEW_IMAGE);
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);
    assert.deepEqual(await cluster.serviceSelector(ns, 'web'), { app: 'web' });
  });

  test('as the glidepath-worker ServiceAccount, an experiment step\'s workloads and weighted template\'s Service start and go', async () => {
    const ns = await cluster.namespace('rbacexp');
    await serve(ns);
    await cluster.stable(ns, { replicas: 1 });
    const kc = await tokenKubeConfig('glidepath-system', 'glidepath-worker');
    const asWorker = createKubernetesExperiments(kc, { heartbeat: () => undefined, pollIntervalMs: 200 });
    const t = target(ns);
    const running = await asWorker.startExperiment(t, 0, [{ name: 'baseline', specRef: 'stable', replicas: 1, weight: 10 }]);
    assert.equal(running[0]?.service, 'web-exp-baseline');
    assert.deepEqual((await asWorker.removeExperiment(t)).removed.sort(), ['Service web-exp-baseline', 'web-exp-baseline']);
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);
  });

  test('as the glidepath-worker ServiceAccount, the API-version activities work (HTTPRoute rule and own Ingress)', async () => {
    const ns = await cluster.namespace('rbacapi');
    await serve(ns);
    await cluster.stable(ns, { name: 'orders-v1', replicas: 2, labels: { app: 'orders', version: 'v1' } });
    await cluster.service(ns, 'orders-v1', { app: 'orders', version: 'v1' });
    await customApi.createNamespacedCustomObject({
      group: 'gateway.networking.k8s.io',
      version: 'v1',
      plural: 'httproutes',
      namespace: ns,
      body: { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'orders' }, spec: { parentRefs: [{ name: 'gw' }], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/v1' } }], backendRefs: [{ name: 'orders-v1', port: 80 }] }] } },
    });
    await netApi.createNamespacedIngress({
      namespace: ns,
      body: { metadata: { name: 'orders' }, spec: { rules: [{ host: 'api.example.com', http: { paths: [{ path: '/v1', pathType: 'Prefix', backend: { service: { name: 'orders-v1', port: { number: 80 } } } }] } }] } },
    });
    const asWorker = createVersioningActivities(await tokenKubeConfig('glidepath-system', 'glidepath-worker'), { heartbeat: () => undefined, pollIntervalMs: 200 });
    const version = (v: string, route: Record<string, unknown>, extra: Record<string, unknown>) => {
      const { plan, problems } = parseApiVersion('rbac', { apiVersion: 'glidepath.dev/v1alpha1', kind: 'ApiVersion', metadata: { name: `orders-${v}`, namespace: ns }, spec: { api: 'orders', version: v, route, ...extra } });
      assert.deepEqual(problems, []);
      return plan as ApiVersionPlan;
    };
    const v1 = version('v1', { pathPrefix: '/v1', httpRoute: { name: 'orders' } }, { existing: { deployment: 'orders-v1', service: 'orders-v1' } });
    const v2 = version('v2', { pathPrefix: '/v2', httpRoute: { name: 'orders' } }, { image: NEW_IMAGE, templateFrom: { deployment: 'orders-v1' }, replicas: 1 });
    const v3 = version('v3', { pathPrefix: '/v3', ingress: { name: 'orders' } }, { image: NEW_IMAGE, templateFrom: { deployment: 'orders-v1' }, replicas: 1 });

    assert.deepEqual(await asWorker.registerVersion(v1), { replicas: 2 });
    assert.deepEqual(await asWorker.deployVersion(v2), { replicas: 1 }); // creates Deployment and Service
    assert.deepEqual(await asWorker.addVersionRoute(v2), { changed: true }); // HTTPRoute update
    assert.equal((await asWorker.setDeprecationHeaders(v1, { Deprecation: '@1767225600', Sunset: 'Thu, 01 Jan 2026 00:00:00 GMT' })).supported, true);
    assert.deepEqual(await asWorker.removeVersionRoute(v1), { changed: true });
    assert.deepEqual(await asWorker.scaleDownVersion(v1), { previousReplicas: 2 });
    assert.deepEqual(await asWorker.deployVersion(v3), { replicas: 1 });
    assert.deepEqual(await asWorker.addVersionRoute(v3), { changed: true }); // the version's own Ingress (create)
    assert.deepEqual(await asWorker.removeVersionRoute(v3), { changed: true }); // ... and delete
    assert.deepEqual(
      (await netApi.listNamespacedIngress({ namespace: ns })).items.map((i) => i.metadata?.name),
      ['orders'],
      'the version Ingress was created and deleted as the worker; the API Ingress stays',
    );
  });

  test('as the glidepath-worker ServiceAccount, the job metric provider creates, polls and deletes its Job', async () => {
    const ns = await cluster.namespace('rbacjob');
    await serve(ns);
    for (let i = 0; i < 100; i++) {
      if ((await cluster.core.listNamespacedServiceAccount({ namespace: ns })).items.some((a) => a.metadata?.name === 'default')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const provider = createJobProvider(await tokenKubeConfig('glidepath-system', 'glidepath-worker'), { pollIntervalMs: 250 });
    const metric: MetricSpec = {
      name: 'smoke',
      failureLimit: 0,
      inconclusiveLimit: 0,
      consecutiveErrorLimit: 4,
      dryRun: false,
      provider: { job: { spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'smoke', image: 'registry.local/smoke:1' }] } } } } },
    };
    const value = await provider.measure(metric, { args: {}, signal: new AbortController().signal, namespace: ns, releaseId: `release-${ns}-web`, measurement: 1 });
    assert.equal(value, 1, 'the Job completed and was read as the worker');
    const left = await cluster.kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: ns });
    assert.deepEqual(left.items.filter((j) => !j.metadata?.deletionTimestamp).map((j) => j.metadata?.name), [], 'deleted as the worker');
  });

  for (const [missing, routing] of [
    [[{ group: 'apps', resource: 'deployments', verb: 'delete' }]],
    [[{ group: 'apps', resource: 'deployments', verb: 'create' }]],
    [
      [
        { group: 'apps', resource: 'deployments', verb: 'patch' },
        { group: '', resource: 'services', verb: 'patch' },
      ],
    ],
    [[{ group: 'networking.istio.io', resource: 'virtualservices', verb: 'update' }], { istio: { virtualService: { name: 'web' } } }],
  ] as [Access[], Record<string, unknown>?][]) {
    const names = missing.map((a) => `${a.verb} ${a.group ? `${a.resource}.${a.group}` : a.resource}`);
    test(`a ClusterRole without ${names.join(' and ')}: preflight is a non-retryable Forbidden naming it`, async () => {
      const ns = await cluster.namespace('rbacdeny');
      await cluster.stable(ns, { replicas: 2 });
      await cluster.service(ns, 'web', { app: 'web' });
      const suffix = randomBytes(3).toString('hex');
      // One rule per group and resource, then the missing verbs taken out of just those.
      const rules: V1PolicyRule[] = (role.rules ?? []).flatMap((r) =>
        (r.apiGroups ?? []).flatMap((group) =>
          (r.resources ?? []).map((resource) => ({
            apiGroups: [group],
            resources: [resource],
            verbs: r.verbs.filter((v) => !missing.some((m) => m.group === group && m.resource === resource && m.verb === v)),
          })),
        ),
      );
      const limited = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: `glidepath-worker-limited-${suffix}` }, rules } as KubernetesObject;
      await apply(limited);
      await apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'limited', namespace: ns } } as KubernetesObject, false);
      await apply(
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: 'limited', namespace: ns },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `glidepath-worker-limited-${suffix}` },
          subjects: [{ kind: 'ServiceAccount', name: 'limited', namespace: ns }],
        } as KubernetesObject,
        false,
      );
      const asLimited = createKubernetesWorkload(await tokenKubeConfig(ns, 'limited'), { heartbeat: () => undefined });
      const t = target(ns, { stableService: 'web', trafficRouting: routing });
      await assert.rejects(asLimited.preflight(t), (e: unknown) => {
        assert.ok(e instanceof ApplicationFailure, String(e));
        assert.equal(e.type, 'Forbidden');
        assert.equal(e.nonRetryable, true);
        assert.equal(e.message, `not allowed in namespace ${ns}: ${names.join(', ')} (grant them to the worker's identity; see deploy/rbac.yaml)`);
        return true;
      });
      if (missing.some((m) => m.verb === 'create')) {
        // Server-side apply of a new object needs `create` as well as `patch`: the apiserver says so, classified.
        await assert.rejects(asLimited.ensureCanary(t), (e: unknown) => {
          assert.ok(e instanceof ApplicationFailure);
          assert.equal(e.type, 'Forbidden');
          assert.equal(e.nonRetryable, true);
          assert.match(e.message, new RegExp(`^apply deployments.apps ${ns}/web-canary: .*forbidden.*cannot create resource "deployments".*\\(HTTP 403 Forbidden\\)$`));
          return true;
        });
      }
    });
  }
});
