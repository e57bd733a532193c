/**
 * Helpers for tests of the Kubernetes activities against the real local control plane
 * (scripts/kube.sh up; KUBECONFIG exported by the test script). Each test file makes its own
 * namespaces through {@link TestCluster} and deletes them at the end.
 */
import { randomBytes } from 'node:crypto';
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  PolicyV1Api,
  RbacAuthorizationV1Api,
  type V1Container,
  type V1Deployment,
  type V1Pod,
  type V1Service,
} from '@kubernetes/client-node';
import type { ActivityDeps, ReleaseTarget } from '../../../activities/contract.ts';
import { createActivities } from '../../../activities/index.ts';
import { createKubernetesWorkload, rolloutState } from '../../../activities/kubernetes/index.ts';

export const STABLE_IMAGE = 'example/web:1.0.0';
export const NEW_IMAGE = 'example/web:2.0.0';

/** The admin kubeconfig from $KUBECONFIG; a clear error when it is not set. */
export function loadKubeConfig(): KubeConfig {
  const path = process.env.KUBECONFIG;
  if (!path) {
    throw new Error(
      'KUBECONFIG is not set: these tests need the local control plane. Start it with `bash scripts/kube.sh up --crds`, ' +
        'then `eval "$(bash scripts/kube.sh env)"` (or run them through scripts/test.sh, which does both).',
    );
  }
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs` with `what`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

export interface StableOptions {
  name?: string;
  replicas?: number;
  image?: string;
  labels?: Record<string, string>;
  /** Extra pod-template labels beyond the selector's. */
  podLabels?: Record<string, string>;
  podAnnotations?: Record<string, string>;
  readinessProbe?: boolean;
  progressDeadlineSeconds?: number;
  containers?: V1Container[];
}

export class TestCluster {
  readonly kc: KubeConfig;
  readonly apps: AppsV1Api;
  readonly core: CoreV1Api;
  readonly policy: PolicyV1Api;
  readonly rbac: RbacAuthorizationV1Api;
  private readonly namespaces: string[] = [];

  constructor(kc: KubeConfig = loadKubeConfig()) {
    this.kc = kc;
    this.apps = kc.makeApiClient(AppsV1Api);
    this.core = kc.makeApiClient(CoreV1Api);
    this.policy = kc.makeApiClient(PolicyV1Api);
    this.rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  }

  /** A fresh namespace `gp-<prefix>-<random>`, deleted by {@link cleanup}. */
  async namespace(prefix: string): Promise<string> {
    const name = `gp-${prefix}-${randomBytes(3).toString('hex')}`.slice(0, 63);
    await this.core.createNamespace({ body: { metadata: { name, labels: { 'glidepath.dev/test': 'true' } } } });
    this.namespaces.push(name);
    // The namespace's default ServiceAccount is created asynchronously; pods need it.
    await eventually(`default ServiceAccount in ${name}`, async () => (await this.core.readNamespacedServiceAccount({ name: 'default', namespace: name })) ?? undefined);
    return name;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.namespaces.splice(0).map((name) => this.core.deleteNamespace({ name }).catch(() => undefined)));
  }

  /** Creates the stable Deployment (selector app=<name>) and waits until it is rolled out. */
  async stable(namespace: string, o: StableOptions = {}): Promise<V1Deployment> {
    const name = o.name ?? 'web';
    const selector = o.labels ?? { app: name };
    const containers: V1Container[] = o.containers ?? [
      {
        name: 'app',
        image: o.image ?? STABLE_IMAGE,
        ports: [{ containerPort: 8080, name: 'http' }],
        ...(o.readinessProbe === false ? {} : { readinessProbe: { httpGet: { path: '/healthz', port: 8080 } } }),
      },
      { name: 'sidecar', image: 'example/proxy:1', ports: [{ containerPort: 15001 }] },
    ];
    await this.apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name, labels: { 'app.kubernetes.io/name': name } },
        spec: {
          replicas: o.replicas ?? 4,
          selector: { matchLabels: selector },
          ...(o.progressDeadlineSeconds !== undefined ? { progressDeadlineSeconds: o.progressDeadlineSeconds } : {}),
          template: {
            metadata: { labels: { ...selector, tier: 'frontend', ...(o.podLabels ?? {}) }, ...(o.podAnnotations ? { annotations: o.podAnnotations } : {}) },
            spec: { containers },
          },
        },
      },
    });
    return this.rolledOut(namespace, name);
  }

  async rolledOut(namespace: string, name: string, timeoutMs = 60_000): Promise<V1Deployment> {
    return eventually(`Deployment ${namespace}/${name} rolled out`, async () => {
      const d = await this.apps.readNamespacedDeployment({ name, namespace });
      return rolloutState(d).done ? d : undefined;
    }, timeoutMs);
  }

  async service(namespace: string, name: string, selector: Record<string, string>): Promise<V1Service> {
    return this.core.createNamespacedService({ namespace, body: { metadata: { name }, spec: { selector, ports: [{ port: 80, targetPort: 8080 }] } } });
  }

  async deployment(namespace: string, name: string): Promise<V1Deployment | undefined> {
    try {
      return await this.apps.readNamespacedDeployment({ name, namespace });
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  async serviceSelector(namespace: string, name: string): Promise<Record<string, string>> {
    const s = await this.core.readNamespacedService({ name, namespace });
    return { ...(s.spec?.selector ?? {}) };
  }

  async deploymentNames(namespace: string): Promise<string[]> {
    const list = await this.apps.listNamespacedDeployment({ namespace });
    return list.items.map((d) => d.metadata?.name ?? '').sort();
  }

  /** Pods matching a selector map that are not being deleted. */
  async livePods(namespace: string, selector: Record<string, string>): Promise<V1Pod[]> {
    const labelSelector = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
    const list = await this.core.listNamespacedPod({ namespace, labelSelector });
    return list.items.filter((p) => !p.metadata?.deletionTimestamp);
  }
}

export function target(namespace: string, o: Partial<ReleaseTarget> = {}): ReleaseTarget {
  return {
    releaseId: `${namespace}/web`,
    namespace,
    workload: { kind: 'Deployment', name: 'web' },
    image: NEW_IMAGE,
    strategy: 'canary',
    progressDeadlineSeconds: 120,
    ...o,
  };
}

export function imageOf(d: V1Deployment | undefined, container = 'app'): string | undefined {
  return d?.spec?.template?.spec?.containers?.find((c) => c.name === container)?.image;
}

/** The fields of the stable Deployment that a canary must never change. */
export function stableFingerprint(d: V1Deployment | undefined): unknown {
  return {
    replicas: d?.spec?.replicas,
    generation: d?.metadata?.generation,
    images: d?.spec?.template?.spec?.containers?.map((c) => c.image),
    labels: d?.spec?.template?.metadata?.labels,
    selector: d?.spec?.selector?.matchLabels,
  };
}

/** The activities as the worker composes them: the real Kubernetes workload on `kc` (no heartbeats, 200 ms polls) and `routers`. */
export function routerActivities(kc: KubeConfig, routers: ActivityDeps['routers']): ReturnType<typeof createActivities> {
  return createActivities({ workload: createKubernetesWorkload(kc, { heartbeat: () => undefined, pollIntervalMs: 200 }), routers });
}
