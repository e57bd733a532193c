/**
 * The NGINX router (`trafficRouting.nginx`) proven on requests: the real activities create and weight the
 * canary Ingress, Traefik's NGINX Ingress provider (which reads ingress-nginx's canary annotations) routes
 * by it, the pods answer from the data plane's network namespace, and the client counts who answered.
 * After each setWeight step the measured canary share matches the weight within 4.5 σ (binomial); a header
 * route (`canary-by-header` + `-value`) sends exactly the matching requests to the canary; promotion and an
 * abort at 50 % under load fail no request. Needs root, KUBECONFIG (scripts/kube.sh up --crds) and
 * TRAEFIK_BIN (scripts/provision-traefik.sh); skips with the reason otherwise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CANARY_VERSION, dataPlaneSkip, describe as show, STABLE_VERSION, startRig, untilServedBy, type Rig } from './fixture.ts';
import { abortUnderLoad, promotionUnderLoad, routerRelease, splitsFollowWeights, type RouterRelease } from './routers.ts';

const skip = dataPlaneSkip();

describe('NGINX router on requests through Traefik', { skip }, () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig('dp-ngx');
  });
  after(() => rig?.close());

  /** Deployment web (4 × 1.0.0), Services web-stable/web-canary and Ingress web (class nginx) in a new namespace; served by stable. */
  const setup = (): Promise<RouterRelease> => routerRelease(rig, 'nginx');

  test('a header route sends exactly the matching requests to the canary; each setWeight step splits as weighted; promotion under load fails no request', async () => {
    const { ns, t, acts, untilWeight } = await setup();

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
    console.log(`nginx header route: yes ${show(matching)}; no ${show(other)}; none ${show(none)}`);
    await acts.setHeaderRoute(t, { name: 'canary-header', match: [] });

    await splitsFollowWeights(rig, { ns, t, acts, untilWeight }, 'nginx');

    await promotionUnderLoad(rig, { ns, t, acts, untilWeight }, 'nginx');
    await untilWeight(0, 10_000); // the canary Ingress back at weight 0 after promotion
  });

  test('abort at 50 % under load: every request is answered, all by stable within seconds of the routing call', async () => {
    const ms = await abortUnderLoad(rig, await setup(), 'nginx');
    // Bounded by the proxy's watch catching up: 0.2–2.8 s here, past 5 s at a load average of 17 on 2 cores.
    assert.ok(ms < 10_000, `abort → 100 % stable took ${ms} ms`);
  });
});
