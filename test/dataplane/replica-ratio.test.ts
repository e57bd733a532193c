/**
 * A canary without a traffic router, proven on requests: the user's own Service (`web`, selecting
 * `app: web`, as it did before any release) and an ordinary HTTPRoute to it that Glidepath never touches.
 * The canary's pods carry the stable's template labels, so they are endpoints of that Service, and the
 * share of requests they answer follows the replica ratio: with the stable kept at 4, setWeight 25 adds
 * ⌈4 · 25 %⌉ = 1 canary pod (1 of 5 endpoints: 20 %) and setWeight 50 adds 2 (2 of 6: 33.3 %). An abort
 * puts every request back on the stable. Needs root, KUBECONFIG and TRAEFIK_BIN; skips with the reason
 * otherwise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DiscoveryV1Api } from '@kubernetes/client-node';
import { routerActivities, target } from '../activities/kubernetes/cluster.ts';
import { createHttpRoute } from '../support/gateway-api.ts';
import { CANARY_VERSION, assertNoFailures, assertSplit, createGateway, dataPlaneSkip, describe as show, hostOf, STABLE_VERSION, startRig, untilServedBy, type Rig } from './fixture.ts';

const skip = dataPlaneSkip();

describe('a canary without a router on requests through the user\'s own Service', { skip }, () => {
  let rig: Rig;
  let acts: ReturnType<typeof routerActivities>;

  before(async () => {
    rig = await startRig('dp-ratio');
    acts = routerActivities(rig.cluster.kc, {});
  });
  after(() => rig?.close());

  /** Ready endpoints of Service `name` over its EndpointSlices. */
  async function readyEndpoints(ns: string, name: string): Promise<number> {
    const slices = await rig.cluster.kc.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({ namespace: ns, labelSelector: `kubernetes.io/service-name=${name}` });
    return slices.items.flatMap((x) => x.endpoints ?? []).filter((e) => e.conditions?.ready !== false).length;
  }
  async function until(pred: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await pred())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const served = (ns: string, version: string): number => [...rig.dp.served().values()].filter((p) => p.namespace === ns && p.version === version).length;

  test('the canary\'s share follows the replica ratio at each step, and an abort puts every request back on stable', async () => {
    const ns = await rig.namespace();
    await rig.cluster.stable(ns, { replicas: 4 });
    await rig.cluster.service(ns, 'web', { app: 'web' });
    await createGateway(rig, ns);
    await createHttpRoute(rig.custom, ns, 'web', {
      parentRefs: [{ name: 'edge' }],
      hostnames: [hostOf(ns)],
      rules: [{ backendRefs: [{ group: '', kind: 'Service', name: 'web', port: 80 }] }],
    });
    await rig.dp.until((s) => [...s.values()].filter((p) => p.namespace === ns).length === 4, `4 stable pods of ${ns} served`);
    await untilServedBy(rig, ns, STABLE_VERSION, 'the user\'s route served by stable');
    const t = target(ns);
    await acts.preflight(t);
    await acts.ensureCanary(t);

    for (const [weight, canaryPods] of [
      [25, 1],
      [50, 2],
    ] as const) {
      const { canaryReplicas } = await acts.setWeight(t, weight);
      assert.equal(canaryReplicas, canaryPods, `setWeight ${weight}: ⌈4 · ${weight} %⌉ canary pods`);
      await rig.dp.until(() => served(ns, CANARY_VERSION) === canaryPods && served(ns, STABLE_VERSION) === 4, `${canaryPods} canary pod(s) next to 4 stable ones`);
      // The Service's EndpointSlices list every pod ready (what Traefik reads), then a moment for Traefik.
      await until(async () => (await readyEndpoints(ns, 'web')) === 4 + canaryPods, `Service web with ${4 + canaryPods} ready endpoints`);
      await new Promise((r) => setTimeout(r, 1500));
      const share = (100 * canaryPods) / (4 + canaryPods);
      const r = await rig.load(ns, { requests: 1000, concurrency: 8 });
      console.log(`setWeight ${weight} without a router: ${show(r)}`);
      assertSplit(r, share, `setWeight ${weight} without a router (${canaryPods} of ${4 + canaryPods} endpoints)`);
      assert.ok((r.byVersion[CANARY_VERSION] ?? 0) > 0, `the canary's pods answer through the user's Service: ${show(r)}`);
    }

    await acts.abortCanary(t, undefined);
    await rig.dp.until(() => served(ns, CANARY_VERSION) === 0, 'the canary pods gone');
    await untilServedBy(rig, ns, STABLE_VERSION, 'stable alone after the abort');
    const r = await rig.load(ns, { requests: 300, concurrency: 4 });
    assertNoFailures(r, 'after the abort');
    assert.deepEqual(r.byVersion, { [STABLE_VERSION]: 300 }, `after the abort: ${show(r)}`);
  });
});
