/**
 * The Gateway API router (`trafficRouting.plugins["argoproj-labs/gatewayAPI"]`) proven on requests: the
 * real activities (createActivities with the Kubernetes workload and the Gateway API router) drive the
 * local control plane, Traefik routes by the HTTPRoute, the pods answer from the data plane's network
 * namespace, and the client counts who answered. After each setWeight step the measured canary share
 * matches the weight within 4.5 σ (binomial); a header route sends exactly the matching requests to the
 * canary; promotion and abort under load fail no request; a canary scaled away while it still has weight
 * is seen at the client as failed requests (the measurement can fail). Needs root, KUBECONFIG (scripts/kube.sh
 * up --crds) and TRAEFIK_BIN (scripts/provision-traefik.sh); skips with the reason otherwise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ReleaseTarget } from '../../activities/contract.ts';
import { createGatewayApiRouter, GATEWAY_API_PLUGIN } from '../../activities/traffic/gateway-api.ts';
import { routerActivities, target } from '../activities/kubernetes/cluster.ts';
import { createHttpRoute } from '../support/gateway-api.ts';
import { totals, withinBinomial } from '../../dataplane/load.ts';
import { CANARY_VERSION, createGateway, dataPlaneSkip, describe as show, hostOf, STABLE_VERSION, startRig, untilProxyWeight, untilServedBy, type Rig } from './fixture.ts';
import { abortUnderLoad, promotionUnderLoad, splitsFollowWeights } from './routers.ts';

const skip = dataPlaneSkip();

describe('Gateway API router on requests through Traefik', { skip }, () => {
  let rig: Rig;
  let acts: ReturnType<typeof routerActivities>;

  before(async () => {
    rig = await startRig('dp-gw');
    acts = routerActivities(rig.cluster.kc, { plugins: createGatewayApiRouter(rig.cluster.kc) });
  });
  after(() => rig?.close());

  /** Namespace with Deployment web (4 × 1.0.0), Services web-stable/web-canary, Gateway edge and HTTPRoute web (100/0); served by stable. */
  async function setup(): Promise<{ ns: string; t: ReleaseTarget }> {
    const ns = await rig.namespace();
    await rig.cluster.stable(ns, { replicas: 4 });
    await rig.cluster.service(ns, 'web-stable', { app: 'web' });
    await rig.cluster.service(ns, 'web-canary', { app: 'web' });
    await createGateway(rig, ns);
    await createHttpRoute(rig.custom, ns, 'web', {
      parentRefs: [{ name: 'edge' }],
      hostnames: [hostOf(ns)],
      rules: [{ backendRefs: [{ group: '', kind: 'Service', name: 'web-stable', port: 80, weight: 100 }, { group: '', kind: 'Service', name: 'web-canary', port: 80, weight: 0 }] }],
    });
    await rig.dp.until((s) => [...s.values()].filter((p) => p.namespace === ns).length === 4, `4 stable pods of ${ns} served`);
    await untilServedBy(rig, ns, STABLE_VERSION, 'the HTTPRoute served by stable');
    const t = target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { plugins: { [GATEWAY_API_PLUGIN]: { httpRoute: 'web' } } } });
    await acts.preflight(t);
    await acts.ensureCanary(t);
    return { ns, t };
  }

  test('a header route sends exactly the matching requests to the canary; each setWeight step splits as weighted; promotion under load fails no request', async () => {
    const { ns, t } = await setup();
    const steered = { ns, t, acts, untilWeight: (w: number) => untilProxyWeight(rig, ns, w) };

    // Weight 0, one canary pod, a header route: only requests with X-Canary: yes reach it.
    await acts.setCanaryScale(t, { replicas: 1 }, 0);
    await acts.setHeaderRoute(t, { name: 'canary-header', match: [{ headerName: 'X-Canary', headerValue: { exact: 'yes' } }] });
    await untilServedBy(rig, ns, CANARY_VERSION, 'the header route in the proxy', { 'X-Canary': 'yes' });
    const [matching, other, none] = await Promise.all([
      rig.load(ns, { requests: 300, concurrency: 4, headers: { 'X-Canary': 'yes' } }),
      rig.load(ns, { requests: 300, concurrency: 4, headers: { 'X-Canary': 'no' } }),
      rig.load(ns, { requests: 300, concurrency: 4 }),
    ]);
    assert.deepEqual(matching.byVersion, { [CANARY_VERSION]: 300 }, `X-Canary: yes → canary: ${show(matching)}`);
    assert.deepEqual(other.byVersion, { [STABLE_VERSION]: 300 }, `X-Canary: no → stable: ${show(other)}`);
    assert.deepEqual(none.byVersion, { [STABLE_VERSION]: 300 }, `no header → stable: ${show(none)}`);
    await acts.setHeaderRoute(t, { name: 'canary-header', match: [] });

    await splitsFollowWeights(rig, steered, 'gateway-api');

    await promotionUnderLoad(rig, steered, 'gateway-api');
  });

  test('abort at 50 % under load: every request is answered, all by stable within seconds of the routing call', async () => {
    const { ns, t } = await setup();
    const ms = await abortUnderLoad(rig, { ns, t, acts, untilWeight: (w) => untilProxyWeight(rig, ns, w) }, 'gateway-api');
    assert.ok(ms < 5000, `abort → 100 % stable took ${ms} ms`);
  });

  test('the measurement sees a canary scaled to zero while it still has weight 10: about 10 % of requests fail', async () => {
    const { ns, t } = await setup();
    await acts.setWeight(t, 10);
    await untilProxyWeight(rig, ns, 10);
    // The wrong order on purpose: pods go while the route still sends them 10 %.
    await acts.setCanaryScale(t, { replicas: 0 }, 10);
    await rig.dp.until((s) => ![...s.values()].some((p) => p.namespace === ns && p.version === CANARY_VERSION), 'the canary pods gone from the data plane');
    const r = await rig.load(ns, { requests: 1000, concurrency: 8 });
    const t1 = totals(r);
    const failed = t1.serverErrors + t1.connectionErrors;
    const b = withinBinomial(failed, r.sent, 0.1);
    assert.ok(b.ok, `${failed}/${r.sent} failed, expected ${b.expected} ± ${b.tolerance.toFixed(1)}: ${show(r)}`);
    assert.equal(r.byVersion[CANARY_VERSION] ?? 0, 0);
    console.log(`gateway-api canary at 0 pods with weight 10: ${show(r)}`);
  });
});

