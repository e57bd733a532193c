/**
 * One release target per router proven on requests (Gateway API, NGINX, Traefik), set up the same way:
 * a namespace of the rig with Deployment web (4 × 1.0.0), Services web-stable/web-canary, the router's
 * routing objects (Gateway + HTTPRoute; Ingress of class nginx; TraefikService + IngressRoute) at 100/0,
 * served by stable, the canary ensured; and a wait for the weight Traefik serves for that router. Used by
 * the NGINX and Traefik suites and the traffic benchmarks (bench/traffic.ts); the abort under load is
 * shared by the Gateway API, NGINX and Traefik suites, as are the splits per step and the promotion under load.
 */
import type { ReleaseTarget } from '../../activities/contract.ts';
import { createGatewayApiRouter, GATEWAY_API_PLUGIN } from '../../activities/traffic/gateway-api.ts';
import { createNginxRouter } from '../../activities/traffic/nginx.ts';
import { createTraefikRouter } from '../../activities/traffic/traefik.ts';
import { routerActivities, target } from '../activities/kubernetes/cluster.ts';
import { createHttpRoute } from '../support/gateway-api.ts';
import { INGRESS_CLASS } from '../../dataplane/traefik.ts';
import assert from 'node:assert/strict';
import { allServedBySince, lastServedBy, totals } from '../../dataplane/load.ts';
import { assertNoFailures, assertSplit, CANARY_VERSION, createGateway, describe as show, hostOf, proxyWeights, STABLE_VERSION, SUITE_DRAIN_MS, until, untilServedBy, type Rig } from './fixture.ts';

export type RouterName = 'gatewayAPI' | 'nginx' | 'traefik';
export const ROUTERS: RouterName[] = ['gatewayAPI', 'nginx', 'traefik'];

export interface RouterRelease {
  ns: string;
  t: ReleaseTarget;
  acts: ReturnType<typeof routerActivities>;
  /** Resolves once Traefik serves canary weight `weight` for this release. */
  untilWeight(weight: number, timeoutMs?: number): Promise<void>;
}

const TRAEFIK_API = { group: 'traefik.io', version: 'v1alpha1' };
const BACKENDS = [
  { name: 'web-stable', port: 80, weight: 100 },
  { name: 'web-canary', port: 80, weight: 0 },
];

/** The canary weight Traefik serves for `ns` through the NGINX provider (services `<ns>-<ingress>-<service>-<port>[-wrr|-canary]`). */
async function nginxWeight(rig: Rig, ns: string): Promise<number | undefined> {
  const res = await fetch(`${rig.traefik.apiUrl}/http/services?per_page=1000`, { signal: AbortSignal.timeout(5000) });
  const services = (await res.json()) as { name: string; weighted?: { services?: { name: string; weight?: number }[] } }[];
  const wrr = services.find((s) => s.name.startsWith(`${ns}-web-web-stable-80-wrr@`));
  if (!wrr) return undefined;
  return wrr.weighted?.services?.find((c) => c.name.startsWith(`${ns}-web-web-stable-80-canary`))?.weight ?? 0;
}

async function routingObjects(rig: Rig, router: RouterName, ns: string): Promise<Record<string, unknown>> {
  const host = hostOf(ns);
  if (router === 'gatewayAPI') {
    await createGateway(rig, ns);
    await createHttpRoute(rig.custom, ns, 'web', { parentRefs: [{ name: 'edge' }], hostnames: [host], rules: [{ backendRefs: BACKENDS.map((b) => ({ group: '', kind: 'Service', ...b })) }] });
    return { plugins: { [GATEWAY_API_PLUGIN]: { httpRoute: 'web' } } };
  }
  if (router === 'nginx') {
    await rig.net.createNamespacedIngress({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: { ingressClassName: INGRESS_CLASS.name, rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web-stable', port: { number: 80 } } } }] } }] },
      },
    });
    return { nginx: { stableIngress: 'web' } };
  }
  await rig.custom.createNamespacedCustomObject({
    ...TRAEFIK_API,
    plural: 'traefikservices',
    namespace: ns,
    body: { apiVersion: 'traefik.io/v1alpha1', kind: 'TraefikService', metadata: { name: 'web-wts' }, spec: { weighted: { services: BACKENDS } } },
  });
  await rig.custom.createNamespacedCustomObject({
    ...TRAEFIK_API,
    plural: 'ingressroutes',
    namespace: ns,
    body: {
      apiVersion: 'traefik.io/v1alpha1',
      kind: 'IngressRoute',
      metadata: { name: 'web' },
      spec: { entryPoints: ['web'], routes: [{ match: `Host(\`${host}\`)`, kind: 'Rule', services: [{ name: 'web-wts', kind: 'TraefikService' }] }] },
    },
  });
  return { traefik: { weightedTraefikServiceName: 'web-wts' } };
}

/** A release of `router` in a fresh namespace of the rig (which must run Traefik's CRD provider for `traefik`). */
export async function routerRelease(rig: Rig, router: RouterName): Promise<RouterRelease> {
  const kc = rig.cluster.kc;
  const acts = routerActivities(kc, { plugins: createGatewayApiRouter(kc), nginx: createNginxRouter(kc), traefik: createTraefikRouter(kc) });
  const ns = await rig.namespace();
  await rig.cluster.stable(ns, { replicas: 4 });
  await rig.cluster.service(ns, 'web-stable', { app: 'web' });
  await rig.cluster.service(ns, 'web-canary', { app: 'web' });
  const trafficRouting = await routingObjects(rig, router, ns);
  await rig.dp.until((s) => [...s.values()].filter((p) => p.namespace === ns).length === 4, `4 stable pods of ${ns} served`);
  await untilServedBy(rig, ns, STABLE_VERSION, `${router}: served by stable`);
  const t = target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting });
  await acts.preflight(t);
  await acts.ensureCanary(t);
  const served = async (): Promise<number | undefined> => {
    if (router === 'nginx') return nginxWeight(rig, ns);
    return (await proxyWeights(rig, ns))?.canary;
  };
  return {
    ns,
    t,
    acts,
    async untilWeight(weight, timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const now = await served();
        if (now === weight) return;
        if (Date.now() > end) throw new Error(`${router}: Traefik does not serve canary weight ${weight} for ${ns} after ${timeoutMs} ms (serves ${now})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

/**
 * Abort at 50 % under load, as the workflow aborts with a router: traffic to stable first, the canary
 * removed after, the load kept flowing until the removed pods' drain has ended. Asserts that no request
 * failed and that stable alone answered from some moment on; returns that moment in ms after the routing
 * call (the caller bounds it).
 */
export async function abortUnderLoad(rig: Rig, r: Pick<RouterRelease, 'ns' | 't' | 'acts' | 'untilWeight'>, label: string): Promise<number> {
  const { ns, t, acts } = r;
  await acts.setWeight(t, 50);
  await r.untilWeight(50);
  const load = rig.startLoad(ns, { requests: 200_000, concurrency: 4, deadlineMs: Date.now() + 60_000 });
  await until(() => (load.result.byVersion[CANARY_VERSION] ?? 0) > 50, 'canary answering before the abort', 10_000);
  const t0 = Date.now();
  await acts.routeToStable(t);
  await until(() => lastServedBy(load.result, STABLE_VERSION, 200), 'stable alone answering after the abort', 10_000);
  await acts.abortCanary(t, undefined);
  await new Promise((done) => setTimeout(done, SUITE_DRAIN_MS + 500)); // the deleted pods' drain ends while requests still flow
  const result = await load.stop();
  assertNoFailures(result, 'abort under load', rig.traefik);
  const since = allServedBySince(result.samples, STABLE_VERSION, t0 - 5_000);
  assert.ok(since !== undefined, `stable answers everything after the abort: ${show(result)}`);
  const ms = Math.max(0, since - t0);
  console.log(`${label} abort → 100 % stable at the client: ${ms} ms after the routing call; ${show(result)}`);
  return ms;
}

type Steered = Pick<RouterRelease, 'ns' | 't' | 'acts' | 'untilWeight'>;

/** setWeight 10, 25, 50: once the proxy serves each weight, 1,000 requests split as weighted (binomial tolerance). */
export async function splitsFollowWeights(rig: Rig, r: Steered, label: string): Promise<void> {
  for (const weight of [10, 25, 50]) {
    await r.acts.setWeight(r.t, weight);
    await r.untilWeight(weight);
    const result = await rig.load(r.ns, { requests: 1000, concurrency: 8 });
    assertSplit(result, weight, `setWeight ${weight}`);
    console.log(`${label} setWeight ${weight}: ${show(result)}`);
  }
}

/**
 * Promotion with requests flowing (stable rolls to the new image, traffic to stable, the canary goes),
 * the load kept until the old pods' drain has ended: no request fails, and requests did flow.
 */
export async function promotionUnderLoad(rig: Rig, r: Steered, label: string): Promise<void> {
  const load = rig.startLoad(r.ns, { requests: 200_000, concurrency: 4, deadlineMs: Date.now() + 90_000 });
  await r.acts.promoteCanary(r.t);
  await until(() => lastServedBy(load.result, CANARY_VERSION, 200), 'the new version alone answering after promotion', 30_000);
  await new Promise((done) => setTimeout(done, SUITE_DRAIN_MS + 500)); // the old pods' drain ends while requests still flow
  const result = await load.stop();
  assertNoFailures(result, 'promotion under load', rig.traefik);
  assert.ok(totals(result).ok > 200, `requests flowed during promotion: ${show(result)}`);
  console.log(`${label} promotion under load: ${show(result)}`);
}
