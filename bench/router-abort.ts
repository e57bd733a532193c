/**
 * Abort latency of each traffic router on the local control plane (scripts/kube.sh up --crds):
 * the routing object is put at canary 50 % with a managed header route, then the abort's router
 * sequence runs (what activities/index.ts abortCanary does before touching the workload:
 * router.setWeight(0), then removeManagedRoutes) and the clock stops when an independent read of
 * the object (CustomObjectsApi, not the router) shows canary weight 0, stable 100 and no managed
 * route. Workload scale-down is NOT included. Routers: Istio host-based, Istio subset-based
 * (DestinationRule), Gateway API HTTPRoute, NGINX (the canary Ingress's canary-weight), ALB (the
 * forward action annotation), SMI (the TrafficSplit; no header route: SMI has none). No ingress
 * controller or mesh runs: the clock stops at the object the controller would read.
 * Env: BENCH_RUNS (25, at least 20), KUBECONFIG.
 */
import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, NetworkingV1Api } from '@kubernetes/client-node';
import type { ReleaseTarget, TrafficRouter } from '../activities/contract.ts';
import { createAlbRouter, forwardTargetGroups } from '../activities/traffic/alb.ts';
import { createGatewayApiRouter } from '../activities/traffic/gateway-api.ts';
import { createIstioRouter } from '../activities/traffic/istio.ts';
import { canaryIngressName, createNginxRouter } from '../activities/traffic/nginx.ts';
import { createSmiRouter } from '../activities/traffic/smi.ts';

const RUNS = Math.max(20, Number(process.env['BENCH_RUNS'] ?? 25));
const kc = new KubeConfig();
kc.loadFromDefault();
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const net = kc.makeApiClient(NetworkingV1Api);
const ISTIO = { group: 'networking.istio.io', version: 'v1' };
const GW = { group: 'gateway.networking.k8s.io', version: 'v1' };

const ns = `gp-bench-router-${randomBytes(3).toString('hex')}`;
await core.createNamespace({ body: { metadata: { name: ns } } });
await apps.createNamespacedDeployment({
  namespace: ns,
  body: {
    metadata: { name: 'web' },
    spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image: 'example/web:1' }] } } },
  },
});

const base = { namespace: ns, workload: { kind: 'Deployment' as const, name: 'web' }, image: 'example/web:2', strategy: 'canary' as const, progressDeadlineSeconds: 60 };
const header = { name: 'canary-header', match: [{ headerName: 'x-canary', headerValue: { exact: 'yes' } }] };

interface Case {
  name: string;
  router: TrafficRouter;
  target: ReleaseTarget;
  create: () => Promise<void>;
  /** Whether the router takes a header route (SMI does not). */
  headers?: false;
  /** [stable, canary, managed route count] as the apiserver has them. */
  read: () => Promise<[number | undefined, number | undefined, number]>;
}

const vsRead = (name: string) => async (): Promise<[number | undefined, number | undefined, number]> => {
  const vs = (await custom.getNamespacedCustomObject({ ...ISTIO, namespace: ns, plural: 'virtualservices', name })) as { spec: { http: { name: string; route: { weight?: number }[] }[] } };
  const primary = vs.spec.http.find((r) => r.name === 'primary');
  return [primary?.route[0]?.weight, primary?.route[1]?.weight ?? 0, vs.spec.http.filter((r) => r.name === header.name).length];
};

const cases: Case[] = [
  {
    name: 'istio (host)',
    router: createIstioRouter(kc),
    target: { ...base, releaseId: 'bench-host', stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { istio: { virtualService: { name: 'vs-host', routes: ['primary'] } } } },
    create: async () => {
      await custom.createNamespacedCustomObject({
        ...ISTIO,
        namespace: ns,
        plural: 'virtualservices',
        body: { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'vs-host' }, spec: { hosts: ['web'], http: [{ name: 'primary', route: [{ destination: { host: 'web-stable' }, weight: 100 }, { destination: { host: 'web-canary' }, weight: 0 }] }] } },
      });
    },
    read: vsRead('vs-host'),
  },
  {
    name: 'istio (subset)',
    router: createIstioRouter(kc),
    target: { ...base, releaseId: 'bench-subset', trafficRouting: { istio: { virtualService: { name: 'vs-subset', routes: ['primary'] }, destinationRule: { name: 'dr', stableSubsetName: 'stable', canarySubsetName: 'canary' } } } },
    create: async () => {
      await custom.createNamespacedCustomObject({
        ...ISTIO,
        namespace: ns,
        plural: 'destinationrules',
        body: { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'dr' }, spec: { host: 'web', subsets: [{ name: 'stable', labels: { app: 'web' } }, { name: 'canary', labels: { app: 'web' } }] } },
      });
      await custom.createNamespacedCustomObject({
        ...ISTIO,
        namespace: ns,
        plural: 'virtualservices',
        body: { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'vs-subset' }, spec: { hosts: ['web'], http: [{ name: 'primary', route: [{ destination: { host: 'web', subset: 'stable' }, weight: 100 }, { destination: { host: 'web', subset: 'canary' }, weight: 0 }] }] } },
      });
    },
    read: vsRead('vs-subset'),
  },
  {
    name: 'gateway API',
    router: createGatewayApiRouter(kc),
    target: { ...base, releaseId: 'bench-gw', stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { plugins: { 'argoproj-labs/gatewayAPI': { httpRoute: 'route' } } } },
    create: async () => {
      await custom.createNamespacedCustomObject({
        ...GW,
        namespace: ns,
        plural: 'httproutes',
        body: { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'route' }, spec: { parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: [{ name: 'web-stable', port: 80, weight: 100 }, { name: 'web-canary', port: 80, weight: 0 }] }] } },
      });
    },
    read: async () => {
      const r = (await custom.getNamespacedCustomObject({ ...GW, namespace: ns, plural: 'httproutes', name: 'route' })) as { spec: { rules: { name?: string; backendRefs: { name: string; weight?: number }[] }[] } };
      const main = r.spec.rules.find((x) => x.backendRefs.length === 2);
      return [main?.backendRefs.find((b) => b.name === 'web-stable')?.weight, main?.backendRefs.find((b) => b.name === 'web-canary')?.weight, r.spec.rules.filter((x) => x.name === header.name).length];
    },
  },
  {
    name: 'nginx',
    router: createNginxRouter(kc),
    target: { ...base, releaseId: 'bench-nginx', stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { nginx: { stableIngress: 'ing-nginx' } } },
    create: async () => {
      await net.createNamespacedIngress({
        namespace: ns,
        body: { metadata: { name: 'ing-nginx' }, spec: { rules: [{ host: 'web.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web-stable', port: { number: 80 } } } }] } }] } },
      });
    },
    read: async () => {
      const a = (await net.readNamespacedIngress({ namespace: ns, name: canaryIngressName('web', 'ing-nginx') })).metadata?.annotations ?? {};
      const w = Number(a['nginx.ingress.kubernetes.io/canary-weight']);
      return [100 - w, w, a['nginx.ingress.kubernetes.io/canary-by-header'] === undefined ? 0 : 1];
    },
  },
  {
    name: 'alb',
    router: createAlbRouter(kc),
    target: { ...base, releaseId: 'bench-alb', stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { alb: { ingress: 'ing-alb', servicePort: 80 } } },
    create: async () => {
      await net.createNamespacedIngress({
        namespace: ns,
        body: { metadata: { name: 'ing-alb' }, spec: { rules: [{ http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web-stable', port: { name: 'use-annotation' } } } }] } }] } },
      });
    },
    read: async () => {
      const ing = await net.readNamespacedIngress({ namespace: ns, name: 'ing-alb' });
      const a = ing.metadata?.annotations ?? {};
      const groups = forwardTargetGroups(a['alb.ingress.kubernetes.io/actions.web-stable']);
      const paths = (ing.spec?.rules ?? []).flatMap((r) => r.http?.paths ?? []).filter((p) => p.backend.service?.name === header.name).length;
      const managed = (a[`alb.ingress.kubernetes.io/actions.${header.name}`] === undefined ? 0 : 1) + paths;
      return [groups?.find((g) => g.serviceName === 'web-stable')?.weight, groups?.find((g) => g.serviceName === 'web-canary')?.weight, managed === 2 ? 1 : managed];
    },
  },
  {
    name: 'smi',
    router: createSmiRouter(kc),
    target: { ...base, releaseId: 'bench-smi', stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { smi: { trafficSplitName: 'split' } } },
    headers: false,
    create: async () => undefined, // the router creates the TrafficSplit on its first setWeight
    read: async () => {
      const ts = (await custom.getNamespacedCustomObject({ group: 'split.smi-spec.io', version: 'v1alpha2', namespace: ns, plural: 'trafficsplits', name: 'split' })) as { spec: { backends: { service: string; weight: number }[] } };
      return [ts.spec.backends.find((b) => b.service === 'web-stable')?.weight, ts.spec.backends.find((b) => b.service === 'web-canary')?.weight, 0];
    },
  },
];

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

try {
  for (const c of cases) {
    await c.create();
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await c.router.setWeight(c.target, 50);
      if (c.headers !== false) await c.router.setHeaderRoute?.(c.target, header);
      const [s0, n0, m0] = await c.read();
      if (s0 !== 50 || n0 !== 50 || m0 !== (c.headers === false ? 0 : 1)) throw new Error(`${c.name}: setup not at 50/50${c.headers === false ? '' : ' with a header route'}: ${s0}/${n0}/${m0}`);
      const t0 = performance.now();
      await c.router.setWeight(c.target, 0);
      await c.router.removeManagedRoutes(c.target);
      for (;;) {
        const [s, n, m] = await c.read();
        if (s === 100 && n === 0 && m === 0) break;
      }
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    console.log(
      `router-abort ${c.name.padEnd(15)} runs=${RUNS} p50=${pct(times, 50).toFixed(1)} ms p95=${pct(times, 95).toFixed(1)} ms min=${(times[0] as number).toFixed(1)} ms max=${(times[times.length - 1] as number).toFixed(1)} ms`,
    );
  }
} finally {
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
}
