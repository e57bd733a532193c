/**
 * An experiment step's weights through the Istio and SMI routers on the real control plane (scripts/
 * kube.sh up --crds): the templates' Services created with the workloads (selecting exactly their
 * pods), the VirtualService / TrafficSplit carrying each Service at its weight and the stable at
 * 100 − canary − experiment weights while the step runs, then, when the step ends, the destinations
 * gone (canary weight kept) before the Services and workloads go; an abort's weight 0 removes them
 * too. Every call twice (idempotent). Needs KUBECONFIG.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { createActivities } from '../../../activities/index.ts';
import { createKubernetesExperiments, createKubernetesWorkload } from '../../../activities/kubernetes/index.ts';
import { serviceSelectorMatches } from '../../../activities/kubernetes/objects.ts';
import { EXPERIMENT_LABEL } from '../../../activities/kubernetes/experiment.ts';
import { createIstioRouter } from '../../../activities/traffic/istio.ts';
import { createSmiRouter } from '../../../activities/traffic/smi.ts';
import { createNginxRouter } from '../../../activities/traffic/nginx.ts';
import { EXPERIMENT_DESTINATIONS_ANNOTATION } from '../../../activities/traffic/common.ts';
import type { ReleaseTarget } from '../../../activities/contract.ts';
import { weightDestinations, type ExperimentTemplate } from '../../../model/experiment.ts';
import { TestCluster, target } from '../kubernetes/cluster.ts';

const cluster = new TestCluster();
const custom = cluster.kc.makeApiClient(CustomObjectsApi);
const opts = { heartbeat: () => undefined, pollIntervalMs: 200 };
const activities = createActivities({
  workload: createKubernetesWorkload(cluster.kc, opts),
  experiments: createKubernetesExperiments(cluster.kc, opts),
  routers: { istio: createIstioRouter(cluster.kc), smi: createSmiRouter(cluster.kc) },
});

after(() => cluster.cleanup());

const TEMPLATES: ExperimentTemplate[] = [
  { name: 'baseline', specRef: 'stable', replicas: 1, weight: 10 },
  { name: 'canary', specRef: 'canary', replicas: 1, weight: 15, service: { name: 'web-judged' } },
  { name: 'quiet', specRef: 'stable', replicas: 1 },
];

const VS = { group: 'networking.istio.io', version: 'v1', plural: 'virtualservices' };
const TS = { group: 'split.smi-spec.io', version: 'v1alpha2', plural: 'trafficsplits' };

interface Routed {
  annotations: Record<string, string>;
  /** host/service → weight, in order. */
  weights: [string, number | undefined][];
}

async function istioRoute(ns: string): Promise<Routed> {
  const vs = (await custom.getNamespacedCustomObject({ ...VS, namespace: ns, name: 'web-vs' })) as { metadata: { annotations?: Record<string, string> }; spec: { http: { name: string; route: { destination: { host: string }; weight?: number }[] }[] } };
  const primary = vs.spec.http.find((r) => r.name === 'primary');
  return { annotations: vs.metadata.annotations ?? {}, weights: (primary?.route ?? []).map((d) => [d.destination.host, d.weight]) };
}

async function smiSplit(ns: string): Promise<Routed> {
  const ts = (await custom.getNamespacedCustomObject({ ...TS, namespace: ns, name: 'web' })) as { metadata: { annotations?: Record<string, string> }; spec: { backends: { service: string; weight: number }[] } };
  return { annotations: ts.metadata.annotations ?? {}, weights: ts.spec.backends.map((b) => [b.service, b.weight]) };
}

async function setup(prefix: string, router: 'istio' | 'smi'): Promise<{ ns: string; t: ReleaseTarget }> {
  const ns = await cluster.namespace(prefix);
  await cluster.stable(ns, { replicas: 4 });
  await cluster.service(ns, 'web-stable', { app: 'web' });
  await cluster.service(ns, 'web-canary', { app: 'web' });
  if (router === 'istio') {
    await custom.createNamespacedCustomObject({
      ...VS,
      namespace: ns,
      body: { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'web-vs' }, spec: { hosts: ['web'], http: [{ name: 'primary', route: [{ destination: { host: 'web-stable' }, weight: 100 }, { destination: { host: 'web-canary' }, weight: 0 }] }] } },
    });
  }
  const trafficRouting = router === 'istio' ? { istio: { virtualService: { name: 'web-vs', routes: ['primary'] } } } : { smi: {} };
  return { ns, t: target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting }) };
}

const serviceNames = async (ns: string): Promise<string[]> => (await cluster.core.listNamespacedService({ namespace: ns })).items.map((s) => s.metadata?.name as string).sort();

for (const [router, read] of [
  ['istio', istioRoute],
  ['smi', smiSplit],
] as const) {
  describe(`experiment weights through ${router}`, () => {
    test('the templates\' Services carry their weights while the step runs; then the destinations go, then the Services and pods', async () => {
      const { ns, t } = await setup(`expw-${router}`, router);
      await activities.preflight(t);
      await activities.ensureCanary(t);
      await activities.setWeight(t, 20);
      const running = await activities.startExperiment(t, 1, TEMPLATES);
      assert.deepEqual(running.map((r) => [r.name, r.service]), [['baseline', 'web-exp-baseline'], ['canary', 'web-judged'], ['quiet', undefined]]);
      assert.deepEqual(await serviceNames(ns), ['web-canary', 'web-exp-baseline', 'web-judged', 'web-stable']);
      for (const [service, template] of [['web-exp-baseline', 'baseline'], ['web-judged', 'canary']] as const) {
        const selector = (await cluster.core.readNamespacedService({ namespace: ns, name: service })).spec?.selector;
        const pods = await cluster.livePods(ns, { app: 'web' });
        const selected = pods.filter((p) => serviceSelectorMatches(selector, p.metadata?.labels ?? {}));
        assert.ok(selected.length > 0 && selected.every((p) => p.metadata?.labels?.[EXPERIMENT_LABEL] === template), `Service ${service} selects exactly template ${template}'s pods`);
      }

      const destinations = weightDestinations(TEMPLATES, running);
      assert.deepEqual(destinations, [{ service: 'web-exp-baseline', weight: 10 }, { service: 'web-judged', weight: 15 }]);
      await activities.routeExperiment(t, 20, destinations);
      await activities.routeExperiment(t, 20, destinations);
      const during = await read(ns);
      assert.deepEqual(new Map(during.weights), new Map([['web-stable', 55], ['web-canary', 20], ['web-exp-baseline', 10], ['web-judged', 15]]), JSON.stringify(during));
      assert.equal(during.weights.length, 4);
      assert.deepEqual(JSON.parse(during.annotations[EXPERIMENT_DESTINATIONS_ANNOTATION] ?? '[]'), ['web-exp-baseline', 'web-judged']);

      // The step ends: traffic first (the canary keeps 20), then the Services and pods.
      await activities.routeExperiment(t, 20, []);
      await activities.routeExperiment(t, 20, []);
      const afterStep = await read(ns);
      assert.deepEqual(new Map(afterStep.weights), new Map([['web-stable', 80], ['web-canary', 20]]), JSON.stringify(afterStep));
      assert.equal(afterStep.annotations[EXPERIMENT_DESTINATIONS_ANNOTATION], undefined);
      const { removed } = await activities.removeExperiment(t);
      assert.deepEqual(removed.sort(), ['Service web-exp-baseline', 'Service web-judged', 'web-exp-baseline', 'web-exp-canary', 'web-exp-quiet']);
      assert.deepEqual(await serviceNames(ns), ['web-canary', 'web-stable']);
      assert.deepEqual(await activities.removeExperiment(t), { removed: [] });
    });

    test('an abort during the step sends everything to stable and drops the experiment\'s destinations', async () => {
      const { ns, t } = await setup(`expw-${router}-abort`, router);
      await activities.preflight(t);
      await activities.ensureCanary(t);
      await activities.setWeight(t, 20);
      const running = await activities.startExperiment(t, 1, TEMPLATES);
      await activities.routeExperiment(t, 20, weightDestinations(TEMPLATES, running));
      await activities.routeToStable(t);
      const routed = await read(ns);
      assert.deepEqual(new Map(routed.weights), new Map([['web-stable', 100], ['web-canary', 0]]), JSON.stringify(routed));
      assert.equal(routed.annotations[EXPERIMENT_DESTINATIONS_ANNOTATION], undefined);
      await activities.removeExperiment(t);
      await activities.abortCanary(t, undefined);
      assert.deepEqual(await serviceNames(ns), ['web-canary', 'web-stable']);
    });
  });
}

test('istio subset routing: the experiment destination is its Service\'s host next to the stable and canary subsets, then gone', async () => {
  const ns = await cluster.namespace('expw-subset');
  await cluster.stable(ns, { replicas: 4 });
  await custom.createNamespacedCustomObject({
    group: 'networking.istio.io',
    version: 'v1',
    namespace: ns,
    plural: 'destinationrules',
    body: { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'web-dr' }, spec: { host: 'web', subsets: [{ name: 'stable', labels: { app: 'web' } }, { name: 'canary', labels: { app: 'web' } }] } },
  });
  await custom.createNamespacedCustomObject({
    ...VS,
    namespace: ns,
    body: { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'web-vs' }, spec: { hosts: ['web'], http: [{ name: 'primary', route: [{ destination: { host: 'web', subset: 'stable' }, weight: 100 }, { destination: { host: 'web', subset: 'canary' }, weight: 0 }] }] } },
  });
  const t = target(ns, { trafficRouting: { istio: { virtualService: { name: 'web-vs', routes: ['primary'] }, destinationRule: { name: 'web-dr', stableSubsetName: 'stable', canarySubsetName: 'canary' } } } });
  await activities.preflight(t);
  await activities.ensureCanary(t);
  await activities.setWeight(t, 30);
  const running = await activities.startExperiment(t, 1, [{ name: 'baseline', specRef: 'stable', replicas: 1, weight: 20 }]);
  await activities.routeExperiment(t, 30, weightDestinations([{ name: 'baseline', specRef: 'stable', replicas: 1, weight: 20 }], running));
  const route = async () => {
    const vs = (await custom.getNamespacedCustomObject({ ...VS, namespace: ns, name: 'web-vs' })) as { spec: { http: { route: { destination: { host: string; subset?: string }; weight?: number }[] }[] } };
    return vs.spec.http[0]?.route.map((d) => `${d.destination.host}${d.destination.subset ? `/${d.destination.subset}` : ''}=${d.weight}`);
  };
  assert.deepEqual(await route(), ['web/stable=50', 'web/canary=30', 'web-exp-baseline=20']);
  await activities.routeExperiment(t, 30, []);
  assert.deepEqual(await route(), ['web/stable=70', 'web/canary=30']);
  await activities.removeExperiment(t);
  await activities.abortCanary(t, undefined);
});

test('a router that does not carry experiment weights is refused by name', async () => {
  const ns = await cluster.namespace('expw-nginx');
  const t = target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { nginx: { stableIngress: 'web' } } });
  const nginx = createActivities({ workload: createKubernetesWorkload(cluster.kc, opts), routers: { nginx: createNginxRouter(cluster.kc) } });
  await assert.rejects(nginx.routeExperiment(t, 20, [{ service: 'web-exp-baseline', weight: 10 }]), /experiment weights: the nginx traffic router does not carry them/);
});
