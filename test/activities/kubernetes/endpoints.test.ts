/**
 * Which pods serve a Service, read from its EndpointSlices on the real control plane (kwok pods have
 * IPs; the endpointslice controller runs): the user's own Service selecting the workload has the
 * canary pods as endpoints in the replica ratio (no router); a stableService reaches only the
 * stable's pods and a canaryService only the canary's; through a promotion the stable Service never
 * runs out of endpoints; Istio's canary subset selects pods that are endpoints of the
 * DestinationRule's host Service; the stable and canary Deployments do not fight over pods; the
 * blue/green active Service reaches only one side at a time.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { CustomObjectsApi, DiscoveryV1Api, type V1Pod } from '@kubernetes/client-node';
import { createIstioRouter } from '../../../activities/traffic/istio.ts';
import { routerActivities, TestCluster, eventually, sleep, target } from './cluster.ts';

const cluster = new TestCluster();
const discovery = cluster.kc.makeApiClient(DiscoveryV1Api);
const custom = cluster.kc.makeApiClient(CustomObjectsApi);
const activities = routerActivities(cluster.kc, { istio: createIstioRouter(cluster.kc) });

after(() => cluster.cleanup());

/** The ready endpoint addresses of a Service, from its EndpointSlices. */
async function endpointIps(ns: string, service: string): Promise<string[]> {
  const slices = await discovery.listNamespacedEndpointSlice({ namespace: ns, labelSelector: `kubernetes.io/service-name=${service}` });
  return slices.items
    .flatMap((s) => s.endpoints ?? [])
    .filter((e) => e.conditions?.ready !== false)
    .flatMap((e) => e.addresses)
    .sort();
}

const ips = (pods: V1Pod[]): string[] => pods.map((p) => p.status?.podIP ?? '').filter((ip) => ip !== '').sort();

/** The live pods of a Deployment (those its own ReplicaSets control). */
async function podsOf(ns: string, deployment: string): Promise<V1Pod[]> {
  const rsUids = new Set(
    (await cluster.apps.listNamespacedReplicaSet({ namespace: ns })).items
      .filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.controller && o.name === deployment && o.kind === 'Deployment'))
      .map((rs) => rs.metadata?.uid),
  );
  return (await cluster.core.listNamespacedPod({ namespace: ns })).items.filter(
    (p) => !p.metadata?.deletionTimestamp && p.metadata?.ownerReferences?.some((o) => o.controller && rsUids.has(o.uid)),
  );
}

/** Waits until the Service's endpoints are exactly `expected` (the endpointslice controller catches up), then returns them. */
async function endpointsBecome(ns: string, service: string, expected: () => Promise<string[]>, what: string): Promise<string[]> {
  let last: { got: string[]; want: string[] } = { got: [], want: [] };
  try {
    return await eventually(what, async () => {
      const want = await expected();
      const got = await endpointIps(ns, service);
      last = { got, want };
      return want.length > 0 && JSON.stringify(got) === JSON.stringify(want) ? got : undefined;
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}: endpoints ${JSON.stringify(last.got)}, expected ${JSON.stringify(last.want)}`, { cause: err });
  }
}

describe('endpoints of the user\'s Services', () => {
  test('no router: the user\'s Service has stable and canary pods as endpoints in the replica ratio; the Deployments do not fight over pods', async () => {
    const ns = await cluster.namespace('ep-plain');
    await cluster.stable(ns, { replicas: 4 });
    await cluster.service(ns, 'web', { app: 'web' });
    const t = target(ns);
    await activities.preflight(t);
    await activities.ensureCanary(t);
    const { canaryReplicas } = await activities.setWeight(t, 50);
    assert.equal(canaryReplicas, 2);
    const all = await endpointsBecome(ns, 'web', async () => ips([...(await podsOf(ns, 'web')), ...(await podsOf(ns, 'web-canary'))]), 'Service web on stable and canary pods');
    const canaryIps = ips(await podsOf(ns, 'web-canary'));
    assert.equal(all.length, 6, `4 stable + 2 canary endpoints, got ${all.length}`);
    assert.equal(canaryIps.filter((ip) => all.includes(ip)).length, 2, 'both canary pods are endpoints of the user\'s Service');

    // No fight: after a few controller resyncs each Deployment still owns exactly its pods.
    await sleep(3_000);
    const stable = await cluster.deployment(ns, 'web');
    const canary = await cluster.deployment(ns, 'web-canary');
    assert.equal(stable?.status?.replicas, 4, 'the stable counts only its own pods');
    assert.equal(stable?.status?.availableReplicas, 4);
    assert.equal(canary?.status?.replicas, 2);
    assert.equal((await podsOf(ns, 'web')).length, 4);
    assert.equal((await podsOf(ns, 'web-canary')).length, 2);
    assert.equal((await cluster.livePods(ns, { app: 'web' })).length, 6, 'no pod was deleted or added by either controller');

    await activities.promoteCanary(t);
    await endpointsBecome(ns, 'web', async () => ips(await podsOf(ns, 'web')), 'Service web on the promoted stable only');
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);
  });

  test('stableService and canaryService: each reaches only its side; through promotion the stable Service keeps endpoints', async () => {
    const ns = await cluster.namespace('ep-svc');
    await cluster.stable(ns, { replicas: 4 });
    for (const name of ['web', 'web-stable', 'web-canary']) await cluster.service(ns, name, { app: 'web' });
    const t = target(ns, { stableService: 'web-stable', canaryService: 'web-canary' });
    await activities.preflight(t);
    await activities.ensureCanary(t);
    await activities.setCanaryScale(t, { replicas: 1 }, 0);
    const stableIps = async () => ips(await podsOf(ns, 'web'));
    const canaryIps = async () => ips(await podsOf(ns, 'web-canary'));
    await endpointsBecome(ns, 'web-stable', stableIps, 'web-stable on stable pods only');
    await endpointsBecome(ns, 'web-canary', canaryIps, 'web-canary on canary pods only');
    await endpointsBecome(ns, 'web', async () => [...(await stableIps()), ...(await canaryIps())].sort(), 'web on both');

    // The stable Service is pinned to the stable's current ReplicaSet; a promotion replaces those pods,
    // so the Service must select the whole workload while it happens (never zero endpoints).
    let emptySeen = 0;
    let polls = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        polls++;
        if ((await endpointIps(ns, 'web-stable')).length === 0) emptySeen++;
        await sleep(50);
      }
    })();
    try {
      await activities.promoteCanary(t);
    } finally {
      watching = false;
      await watcher;
    }
    assert.ok(polls > 5, `the promotion was watched (${polls} polls)`);
    assert.equal(emptySeen, 0, `web-stable had no endpoints in ${emptySeen} of ${polls} polls during the promotion`);
    assert.deepEqual(await cluster.serviceSelector(ns, 'web-stable'), { app: 'web' }, 'the stable Service is given back its own selector');
    await endpointsBecome(ns, 'web-stable', stableIps, 'web-stable on the promoted stable');
  });

  test('Istio subsets: the canary subset\'s pods are endpoints of the DestinationRule\'s host Service; the stable subset selects only stable pods', async () => {
    const ns = await cluster.namespace('ep-istio');
    await cluster.stable(ns, { replicas: 4 });
    await cluster.service(ns, 'web', { app: 'web' });
    const G = { group: 'networking.istio.io', version: 'v1', namespace: ns };
    await custom.createNamespacedCustomObject({
      ...G,
      plural: 'destinationrules',
      body: { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'web-dr' }, spec: { host: 'web', subsets: [{ name: 'stable', labels: { app: 'web' } }, { name: 'canary', labels: { app: 'web' } }] } },
    });
    await custom.createNamespacedCustomObject({
      ...G,
      plural: 'virtualservices',
      body: { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'web-vs' }, spec: { hosts: ['web'], http: [{ name: 'primary', route: [{ destination: { host: 'web', subset: 'stable' }, weight: 100 }, { destination: { host: 'web', subset: 'canary' }, weight: 0 }] }] } },
    });
    const t = target(ns, { trafficRouting: { istio: { virtualService: { name: 'web-vs' }, destinationRule: { name: 'web-dr', stableSubsetName: 'stable', canarySubsetName: 'canary' } } } });
    await activities.preflight(t);
    await activities.ensureCanary(t);
    await activities.setWeight(t, 25);

    const dr = (await custom.getNamespacedCustomObject({ ...G, plural: 'destinationrules', name: 'web-dr' })) as { spec: { host: string; subsets: { name: string; labels: Record<string, string> }[] } };
    const subset = (name: string): Record<string, string> => dr.spec.subsets.find((s) => s.name === name)?.labels ?? {};
    const host = await endpointsBecome(ns, dr.spec.host, async () => ips([...(await podsOf(ns, 'web')), ...(await podsOf(ns, 'web-canary'))]), 'host Service web on stable and canary pods');
    const canarySubsetPods = ips(await cluster.livePods(ns, subset('canary')));
    const stableSubsetPods = ips(await cluster.livePods(ns, subset('stable')));
    assert.ok(canarySubsetPods.length >= 1, 'the canary subset selects pods');
    assert.deepEqual(canarySubsetPods, ips(await podsOf(ns, 'web-canary')), 'the canary subset selects exactly the canary pods');
    assert.ok(canarySubsetPods.every((ip) => host.includes(ip)), 'every canary subset pod is an endpoint of the host Service');
    assert.deepEqual(stableSubsetPods, ips(await podsOf(ns, 'web')), 'the stable subset selects exactly the stable pods');
    assert.ok(stableSubsetPods.every((ip) => host.includes(ip)), 'every stable subset pod is an endpoint of the host Service');

    await activities.promoteCanary(t);
    const after = (await custom.getNamespacedCustomObject({ ...G, plural: 'destinationrules', name: 'web-dr' })) as typeof dr;
    assert.deepEqual(after.spec.subsets.map((s) => s.labels), [{ app: 'web' }, { app: 'web' }], 'the subsets are given back their own labels');
  });

  test('blue/green: the active Service reaches the stable pods until the switch, then only the preview pods; the preview Service only the preview pods', async () => {
    const ns = await cluster.namespace('ep-bg');
    await cluster.stable(ns, { replicas: 2 });
    for (const name of ['web', 'web-preview']) await cluster.service(ns, name, { app: 'web' });
    const t = target(ns, { strategy: 'blueGreen', activeService: 'web', previewService: 'web-preview' });
    await activities.preflight(t);
    await activities.deployPreview(t, undefined);
    const stableIps = async () => ips(await podsOf(ns, 'web'));
    const previewIps = async () => ips(await podsOf(ns, 'web-preview'));
    await endpointsBecome(ns, 'web', stableIps, 'active on stable pods only');
    await endpointsBecome(ns, 'web-preview', previewIps, 'preview Service on preview pods only');
    await activities.switchActive(t, 'preview');
    await endpointsBecome(ns, 'web', previewIps, 'active on preview pods only');
    await activities.finalizeBlueGreen(t);
    await endpointsBecome(ns, 'web', stableIps, 'active on the new stable');
    assert.deepEqual(await cluster.serviceSelector(ns, 'web'), { app: 'web' });
  });
});
