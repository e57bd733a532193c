/**
 * One release target per router proven on requests (Gateway API, NGINX, Traefik), set up the same way:
 * a namespace of the rig with Deployment web (4 × 1.0.0), Services web-stable/web-canary, the router's
 * routing objects (Gateway + HTTPRoute; Ingress of class nginx; TraefikService + IngressRoute) at 100/0,
 * served by stable, the canary ensured; and a wait for the weight Traefik serves for that router. Used by
 * the NGINX and Traefik suites and the traffic benchmarks (bench/traffic.ts).
 */
import type { ReleaseTarget } from '../../activities/contract.ts';
import { createGatewayApiRouter, GATEWAY_API_PLUGIN } from '../../activities/traffic/gateway-api.ts';
import { createNginxRouter } from '../../activities/traffic/nginx.ts';
import { createTraefikRouter } from '../../activities/traffic/traefik.ts';
import { routerActivities, target } from '../activities/kubernetes/cluster.ts';
import { createHttpRoute } from '../support/gateway-api.ts';
import { INGRESS_CLASS } from '../support/traefik.ts';
import { createGateway, hostOf, proxyWeights, STABLE_VERSION, untilServedBy, type Rig } from './fixture.ts';

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
