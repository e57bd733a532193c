/**
 * What the request-level suites share: the local control plane (KUBECONFIG), the data plane (a network
 * namespace with the pods' IPs and backends, dataplane/) and Traefik as the proxy, all for
 * one test file; and the checks on what the client measured. Each file skips with a named reason where a
 * part cannot run (no root for network namespaces, no Traefik binary, no control plane).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ApiextensionsV1Api, CustomObjectsApi, loadAllYaml, NetworkingV1Api, type KubeConfig, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { netnsUnavailable, startDataPlane, type DataPlane } from '../../dataplane/index.ts';
import { freePort } from '../support/daemon.ts';
import { runLoad, startLoad, totals, withinBinomial, type LoadOptions, type LoadResult, type RunningLoad } from '../../dataplane/load.ts';
import { startTraefik, traefikCrdFile, traefikUnavailable, GATEWAY_CLASS, INGRESS_CLASS, type Traefik } from '../../dataplane/traefik.ts';
import { TestCluster } from '../activities/kubernetes/cluster.ts';

export const STABLE_VERSION = '1.0.0';
export const CANARY_VERSION = '2.0.0';
/** The Host the routes of namespace `ns` match. */
export const hostOf = (ns: string): string => `${ns}.test`;

/** Why the request-level suites cannot run here, or undefined. */
export function dataPlaneSkip(): string | undefined {
  if (!process.env.KUBECONFIG) return 'KUBECONFIG is not set (the local control plane: scripts/kube.sh up --crds)';
  return traefikUnavailable() ?? netnsUnavailable();
}

export interface Rig {
  cluster: TestCluster;
  custom: CustomObjectsApi;
  net: NetworkingV1Api;
  dp: DataPlane;
  traefik: Traefik;
  /** A fresh namespace whose pods the data plane serves (deleted by close). */
  namespace(): Promise<string>;
  /** A bounded load through Traefik to namespace `ns`'s host. */
  load(ns: string, o: Omit<LoadOptions, 'url' | 'host'>): Promise<LoadResult>;
  /** The same, running in the background. */
  startLoad(ns: string, o: Omit<LoadOptions, 'url' | 'host'>): RunningLoad;
  close(): Promise<void>;
}

/** The data plane serving the pods of the namespaces the rig makes, and Traefik on free loopback ports (`crd`: with its kubernetesCRD provider; `h2cPorts`: the pods also serve gRPC there). */
/**
 * How long a deleted pod keeps serving in the suites: a 15 s preStop sleep, common in production. With
 * 5 s, Traefik under a load average near 20 still routed to deleted stable pods (3 × 502 in one
 * promotion), so the suites, which must not flake, drain longer; the bench passes 5 s to show the lag.
 */
export const SUITE_DRAIN_MS = 15_000;

export async function startRig(prefix: string, opts: { crd?: boolean; drainMs?: number; h2cPorts?: number[] } = {}): Promise<Rig> {
  const cluster = new TestCluster();
  const custom = cluster.kc.makeApiClient(CustomObjectsApi);
  const net = cluster.kc.makeApiClient(NetworkingV1Api);
  const namespaces = new Set<string>();
  const dp = await startDataPlane(cluster.kc, { namespaces: (ns) => namespaces.has(ns), ports: [80, 8080], h2cPorts: opts.h2cPorts, drainMs: opts.drainMs ?? SUITE_DRAIN_MS });
  let traefik: Traefik;
  try {
    await ensureClasses(custom, net);
    if (opts.crd) await ensureTraefikCrds(cluster.kc);
    traefik = await startTraefik({ kubeconfig: process.env.KUBECONFIG as string, port: await freePort(), adminPort: await freePort(), crd: opts.crd });
  } catch (err) {
    await dp.stop();
    await cluster.cleanup();
    throw err;
  }
  const t = traefik;
  return {
    cluster,
    custom,
    net,
    dp,
    traefik: t,
    async namespace() {
      const ns = await cluster.namespace(prefix);
      namespaces.add(ns);
      return ns;
    },
    load: (ns, o) => runLoad({ url: t.url, host: hostOf(ns), ...o }),
    startLoad: (ns, o) => startLoad({ url: t.url, host: hostOf(ns), ...o }),
    async close() {
      await t.stop();
      await dp.stop();
      await cluster.cleanup();
    },
  };
}

/** GatewayClass `traefik` and IngressClass `nginx` (cluster-scoped, shared by the suites: created when missing, never deleted). */
async function ensureClasses(custom: CustomObjectsApi, net: NetworkingV1Api): Promise<void> {
  const exists = (err: unknown) => (err as { code?: number }).code === 409;
  await custom
    .createClusterCustomObject({
      group: 'gateway.networking.k8s.io',
      version: 'v1',
      plural: 'gatewayclasses',
      body: { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: GATEWAY_CLASS.name }, spec: { controllerName: GATEWAY_CLASS.controllerName } },
    })
    .catch((err: unknown) => {
      if (!exists(err)) throw err;
    });
  await net.createIngressClass({ body: { metadata: { name: INGRESS_CLASS.name }, spec: { controller: INGRESS_CLASS.controller } } }).catch((err: unknown) => {
    if (!exists(err)) throw err;
  });
}

/**
 * Every Traefik CRD (its kubernetesCRD provider waits for all of them), from the definitions next to the
 * Traefik binary: created when missing, never deleted (cluster-scoped, shared like the classes).
 */
async function ensureTraefikCrds(kc: KubeConfig): Promise<void> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const crds = loadAllYaml(readFileSync(traefikCrdFile(), 'utf8')) as V1CustomResourceDefinition[];
  for (const crd of crds) {
    await ext.createCustomResourceDefinition({ body: crd }).catch((err: unknown) => {
      if ((err as { code?: number }).code !== 409) throw err;
    });
  }
  const end = Date.now() + 60_000;
  for (const crd of crds) {
    const name = crd.metadata?.name as string;
    for (;;) {
      const got = await ext.readCustomResourceDefinition({ name });
      if (got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > end) throw new Error(`CRD ${name} not Established after 60 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Polls small loads until every answer is 2xx from `version` (the proxy has caught up with the objects). */
export async function untilServedBy(rig: Rig, ns: string, version: string, what: string, headers?: Record<string, string>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last: LoadResult | undefined;
  for (;;) {
    last = await rig.load(ns, { requests: 20, concurrency: 4, ...(headers ? { headers } : {}) });
    const t = totals(last);
    if (t.ok === 20 && (last.byVersion[version] ?? 0) === 20) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: last 20 requests ${describe(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One line for a load result: answers per version, 5xx, connection errors. */
export function describe(r: LoadResult): string {
  return `${JSON.stringify(r.byVersion)} 5xx ${JSON.stringify(r.serverErrors)} conn ${JSON.stringify(r.connectionErrors)} other ${JSON.stringify(r.otherStatus)} in ${r.elapsedMs} ms`;
}

/** Asserts no request failed: zero 5xx, zero connection errors, no other non-2xx. With `traefik`, a failure names the failed requests' times and Traefik's log lines for them. */
export function assertNoFailures(r: LoadResult, what: string, traefik?: Traefik): void {
  const t = totals(r);
  const failed = t.serverErrors + t.connectionErrors + Object.keys(r.otherStatus).length;
  if (failed === 0) return;
  const t0 = r.samples.reduce((m, s) => Math.min(m, s.start), Infinity);
  const bad = r.samples.filter((s) => 'error' in s.outcome || s.outcome.status >= 300).slice(0, 20);
  const detail = bad.map((s) => `+${s.start - t0}..${s.end - t0} ms ${JSON.stringify(s.outcome)}`).join('; ');
  const log = traefik ? `\nTraefik: ${traefik.failedRequests().slice(-20).join('\n')}` : '';
  assert.fail(`${what}: ${describe(r)}; failed: ${detail}${log}`);
}

/** Asserts the canary share of `r` is `weight` % within the binomial tolerance, and nothing failed. */
export function assertSplit(r: LoadResult, weight: number, what: string): void {
  assertNoFailures(r, what);
  const n = totals(r).ok;
  const canary = r.byVersion[CANARY_VERSION] ?? 0;
  const other = Object.keys(r.byVersion).filter((v) => v !== CANARY_VERSION && v !== STABLE_VERSION);
  assert.deepEqual(other, [], `${what}: only ${STABLE_VERSION} and ${CANARY_VERSION} answer: ${describe(r)}`);
  const b = withinBinomial(canary, n, weight / 100);
  assert.ok(b.ok, `${what}: ${canary}/${n} to the canary, expected ${b.expected.toFixed(1)} ± ${b.tolerance.toFixed(1)} (4.5 σ): ${describe(r)}`);
}

/** Gateway `edge` in `ns` (class traefik, one HTTP listener on Traefik's entry point port, the namespace's host). */
export async function createGateway(rig: Rig, ns: string): Promise<void> {
  await rig.custom.createNamespacedCustomObject({
    group: 'gateway.networking.k8s.io',
    version: 'v1',
    plural: 'gateways',
    namespace: ns,
    body: {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'edge' },
      spec: { gatewayClassName: GATEWAY_CLASS.name, listeners: [{ name: 'web', protocol: 'HTTP', port: rig.traefik.port, hostname: hostOf(ns) }] },
    },
  });
}

interface TraefikService {
  name: string;
  weighted?: { services?: { name: string; weight?: number }[] };
}

/** The weights Traefik serves now for namespace `ns`'s web-stable/web-canary pair, or undefined when it has none. */
export async function proxyWeights(rig: Rig, ns: string): Promise<{ stable: number; canary: number } | undefined> {
  const res = await fetch(`${rig.traefik.apiUrl}/http/services?per_page=1000`, { signal: AbortSignal.timeout(5000) });
  const services = (await res.json()) as TraefikService[];
  for (const s of services) {
    const children = s.weighted?.services ?? [];
    const stable = children.find((c) => c.name.includes(`${ns}-web-stable`));
    const canary = children.find((c) => c.name.includes(`${ns}-web-canary`));
    if (stable) return { stable: stable.weight ?? 1, canary: canary ? (canary.weight ?? 1) : 0 };
  }
  return undefined;
}

/** Waits until Traefik serves canary weight `weight` for namespace `ns` (the proxy has caught up with the routing object). */
export async function untilProxyWeight(rig: Rig, ns: string, weight: number, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last: Awaited<ReturnType<typeof proxyWeights>>;
  for (;;) {
    last = await proxyWeights(rig, ns);
    if (last && last.canary === weight && last.stable === 100 - weight) return;
    if (Date.now() > end) throw new Error(`Traefik does not serve weight ${weight} for ${ns} after ${timeoutMs} ms: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls `pred` every 50 ms until it holds, or fails after `timeoutMs` naming `what`. */
export async function until(pred: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
