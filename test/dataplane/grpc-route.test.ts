/**
 * The Gateway API router on a GRPCRoute (`grpcRoute`, Argo's plugin field) proven on gRPC calls: the real
 * activities drive the local control plane, Traefik's Gateway API provider routes by the GRPCRoute, the
 * pods answer gRPC unary calls over h2c from the data plane's network namespace (backend.ts, `h2c:<port>`),
 * and @grpc/grpc-js counts who answered (test/support/grpc-load.ts). A header route sends exactly the calls
 * with matching metadata to the canary; after each setWeight step the measured canary share matches the
 * weight within 4.5 σ (binomial); an abort at 50 % under load fails no call and sends every call to stable.
 * Needs root, KUBECONFIG (scripts/kube.sh up --crds) and TRAEFIK_BIN (scripts/provision-traefik.sh); skips
 * with the reason otherwise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ReleaseTarget } from '../../activities/contract.ts';
import { createGatewayApiRouter, GATEWAY_API_PLUGIN } from '../../activities/traffic/gateway-api.ts';
import { routerActivities, target } from '../activities/kubernetes/cluster.ts';
import { createGrpcRoute } from '../support/gateway-api.ts';
import { runGrpcLoad, startGrpcLoad, type GrpcLoadOptions } from '../support/grpc-load.ts';
import { allServedBySince, lastServedBy, totals, type LoadResult } from '../../dataplane/load.ts';
import { assertNoFailures, assertSplit, CANARY_VERSION, createGateway, dataPlaneSkip, describe as show, hostOf, STABLE_VERSION, startRig, until, untilProxyWeight, type Rig } from './fixture.ts';

const skip = dataPlaneSkip();
/** The port the pods serve gRPC on (h2c), and the Services' port. */
const GRPC_PORT = 50051;
const METHOD = '/glidepath.test.Version/Get';

describe('Gateway API router on gRPC calls through Traefik (GRPCRoute)', { skip }, () => {
  let rig: Rig;
  let acts: ReturnType<typeof routerActivities>;

  before(async () => {
    rig = await startRig('dp-grpc', { h2cPorts: [GRPC_PORT] });
    acts = routerActivities(rig.cluster.kc, { plugins: createGatewayApiRouter(rig.cluster.kc) });
  });
  after(() => rig?.close());

  const grpcLoad = (ns: string, o: Omit<GrpcLoadOptions, 'target' | 'authority' | 'method'>) => ({ target: new URL(rig.traefik.url).host, authority: hostOf(ns), method: METHOD, ...o });
  const calls = (ns: string, o: Omit<GrpcLoadOptions, 'target' | 'authority' | 'method'>): Promise<LoadResult> => runGrpcLoad(grpcLoad(ns, o));

  /** Polls 20 calls until every one is OK from `version`. */
  async function untilCalledBy(ns: string, version: string, what: string, metadata?: Record<string, string>): Promise<void> {
    const end = Date.now() + 30_000;
    for (;;) {
      const r = await calls(ns, { requests: 20, concurrency: 4, ...(metadata ? { metadata } : {}) });
      if (totals(r).ok === 20 && (r.byVersion[version] ?? 0) === 20) return;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: last 20 calls ${show(r)}`);
      await new Promise((done) => setTimeout(done, 100));
    }
  }

  /** Traefik serves canary weight `weight`, and (above 0) the canary's service has servers: calls to it cannot find it empty. */
  async function untilServed(ns: string, weight: number): Promise<void> {
    await untilProxyWeight(rig, ns, weight);
    if (weight === 0) return;
    const end = Date.now() + 30_000;
    for (;;) {
      const res = await fetch(`${rig.traefik.apiUrl}/http/services?per_page=1000`, { signal: AbortSignal.timeout(5000) });
      const services = (await res.json()) as { name: string; loadBalancer?: { servers?: { url: string }[] } }[];
      const canaryServers = services.filter((s) => s.name.includes(`-svc-${ns}-web-canary-`)).reduce((n, s) => n + (s.loadBalancer?.servers?.length ?? 0), 0);
      if (canaryServers > 0) return;
      if (Date.now() > end) throw new Error(`Traefik has no server for ${ns}/web-canary after 30 s`);
      await new Promise((done) => setTimeout(done, 50));
    }
  }

  /** Namespace with Deployment web (4 × 1.0.0), h2c Services web-stable/web-canary, Gateway edge and GRPCRoute web (100/0); called through to stable. */
  async function setup(): Promise<{ ns: string; t: ReleaseTarget }> {
    const ns = await rig.namespace();
    await rig.cluster.stable(ns, { replicas: 4 });
    for (const name of ['web-stable', 'web-canary']) {
      await rig.cluster.core.createNamespacedService({
        namespace: ns,
        body: { metadata: { name }, spec: { selector: { app: 'web' }, ports: [{ name: 'grpc', port: GRPC_PORT, targetPort: GRPC_PORT, appProtocol: 'kubernetes.io/h2c' }] } },
      });
    }
    await createGateway(rig, ns);
    await createGrpcRoute(rig.custom, ns, 'web', {
      parentRefs: [{ name: 'edge' }],
      hostnames: [hostOf(ns)],
      rules: [{ backendRefs: [{ group: '', kind: 'Service', name: 'web-stable', port: GRPC_PORT, weight: 100 }, { group: '', kind: 'Service', name: 'web-canary', port: GRPC_PORT, weight: 0 }] }],
    });
    await rig.dp.until((s) => [...s.values()].filter((p) => p.namespace === ns).length === 4, `4 stable pods of ${ns} served`);
    await untilCalledBy(ns, STABLE_VERSION, 'the GRPCRoute served by stable');
    const t = target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { plugins: { [GATEWAY_API_PLUGIN]: { grpcRoute: 'web' } }, managedRoutes: [{ name: 'canary-header' }] } });
    await acts.preflight(t);
    await acts.ensureCanary(t);
    return { ns, t };
  }

  test('a header route sends exactly the calls with matching metadata to the canary; each setWeight step splits the calls as weighted', async () => {
    const { ns, t } = await setup();
    await acts.setCanaryScale(t, { replicas: 1 }, 0);
    await acts.setHeaderRoute(t, { name: 'canary-header', match: [{ headerName: 'x-canary', headerValue: { exact: 'yes' } }] });
    await untilCalledBy(ns, CANARY_VERSION, 'the header route in the proxy', { 'x-canary': 'yes' });
    const [matching, other, none] = await Promise.all([
      calls(ns, { requests: 300, concurrency: 4, metadata: { 'x-canary': 'yes' } }),
      calls(ns, { requests: 300, concurrency: 4, metadata: { 'x-canary': 'no' } }),
      calls(ns, { requests: 300, concurrency: 4 }),
    ]);
    assert.deepEqual(matching.byVersion, { [CANARY_VERSION]: 300 }, `x-canary: yes → canary: ${show(matching)}`);
    assert.deepEqual(other.byVersion, { [STABLE_VERSION]: 300 }, `x-canary: no → stable: ${show(other)}`);
    assert.deepEqual(none.byVersion, { [STABLE_VERSION]: 300 }, `no metadata → stable: ${show(none)}`);
    await acts.setHeaderRoute(t, { name: 'canary-header', match: [] });

    for (const weight of [10, 25, 50]) {
      await acts.setWeight(t, weight);
      await untilServed(ns, weight);
      const r = await calls(ns, { requests: 1000, concurrency: 8 });
      assertSplit(r, weight, `grpc setWeight ${weight}`);
      console.log(`grpc setWeight ${weight}: ${show(r)}`);
    }
  });

  test('abort at 50 % under load: every call is answered, all by stable once the routing call is made', async () => {
    const { ns, t } = await setup();
    await acts.setWeight(t, 50);
    await untilServed(ns, 50);
    const load = startGrpcLoad(grpcLoad(ns, { requests: 200_000, concurrency: 4, deadlineMs: Date.now() + 60_000 }));
    await until(() => (load.result.byVersion[CANARY_VERSION] ?? 0) > 50, 'canary answering before the abort', 10_000);
    const t0 = Date.now();
    await acts.abortCanary(t, undefined);
    await until(() => lastServedBy(load.result, STABLE_VERSION, 500), 'stable alone answering after the abort', 10_000);
    const result = await load.stop();
    assertNoFailures(result, 'grpc abort under load', rig.traefik);
    const since = allServedBySince(result.samples, STABLE_VERSION, t0 - 5_000);
    assert.ok(since !== undefined, `stable answers every call after the abort: ${show(result)}`);
    const ms = Math.max(0, since - t0);
    assert.ok(ms < 5000, `abort → 100 % stable took ${ms} ms`);
    const afterAbort = await calls(ns, { requests: 500, concurrency: 8 });
    assert.deepEqual(afterAbort.byVersion, { [STABLE_VERSION]: 500 }, `after the abort every call goes to stable: ${show(afterAbort)}`);
    console.log(`grpc abort → 100 % stable at the client: ${ms} ms after the routing call; ${show(result)}; then ${show(afterAbort)}`);
  });
});
