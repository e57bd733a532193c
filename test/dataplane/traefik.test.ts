/**
 * The Traefik router (`trafficRouting.traefik`, a weighted TraefikService) proven on requests: the real
 * activities weight the TraefikService, Traefik's kubernetesCRD provider serves it behind an IngressRoute,
 * the pods answer from the data plane's network namespace, and the client counts who answered. After each
 * setWeight step the measured canary share matches the weight within 4.5 σ (binomial); promotion and an abort
 * at 50 % under load fail no request. Traefik must run its kubernetesCRD provider with allowEmptyServices=true:
 * with its default (false), from the moment the canary Service selects the canary pods until the first canary
 * pod is ready, the weighted TraefikService is dropped and every request to its route answers 404 (measured
 * here on a second Traefik with the default). Needs root, KUBECONFIG (scripts/kube.sh up --crds) and TRAEFIK_BIN
 * (scripts/provision-traefik.sh, which also keeps Traefik's CRD definitions; the rig installs them); skips
 * with the reason otherwise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../support/daemon.ts';
import { runLoad } from '../../dataplane/load.ts';
import { startTraefik } from '../../dataplane/traefik.ts';
import { dataPlaneSkip, describe as show, hostOf, STABLE_VERSION, startRig, type Rig } from './fixture.ts';
import { abortUnderLoad, promotionUnderLoad, routerRelease, splitsFollowWeights, type RouterRelease } from './routers.ts';

const skip = dataPlaneSkip();

describe('Traefik router (weighted TraefikService) on requests through Traefik', { skip }, () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig('dp-tfk', { crd: true });
  });
  after(() => rig?.close());

  /** Deployment web (4 × 1.0.0), Services web-stable/web-canary, TraefikService web-wts (100/0) and IngressRoute web in a new namespace; served by stable. */
  const setup = (): Promise<RouterRelease> => routerRelease(rig, 'traefik');

  test('each setWeight step splits as weighted; promotion under load fails no request', async () => {
    const { ns, t, acts, untilWeight } = await setup();
    // The canary Service selects the canary pods now, and there are none yet: the route still serves.
    const before = await rig.load(ns, { requests: 200, concurrency: 4 });
    assert.deepEqual(before.byVersion, { [STABLE_VERSION]: 200 }, `canary Service without endpoints, weight 0: ${show(before)}`);
    await splitsFollowWeights(rig, { ns, t, acts, untilWeight }, 'traefik');

    await promotionUnderLoad(rig, { ns, t, acts, untilWeight }, 'traefik');
  });

  test('abort at 50 % under load: every request is answered, all by stable within seconds of the routing call', async () => {
    const ms = await abortUnderLoad(rig, await setup(), 'traefik');
    // Bounded by the proxy's watch catching up: 0.2–2.8 s here, past 5 s at a load average of 17 on 2 cores.
    assert.ok(ms < 10_000, `abort → 100 % stable took ${ms} ms`);
  });

  test("with Traefik's default allowEmptyServices=false, a canary Service without endpoints takes the whole route down (404)", async () => {
    const strict = await startTraefik({ kubeconfig: process.env.KUBECONFIG as string, port: await freePort(), adminPort: await freePort(), crd: true, allowEmptyServices: false });
    try {
      const { ns } = await setup(); // the canary Service now selects the canary pods: none yet
      const load = () => runLoad({ url: strict.url, host: hostOf(ns), requests: 100, concurrency: 4 });
      let r = await load();
      const end = Date.now() + 30_000;
      while ((r.otherStatus[404] ?? 0) !== 100 && Date.now() < end) r = await load();
      const ours = await rig.load(ns, { requests: 100, concurrency: 4 });
      console.log(`traefik, canary Service without endpoints: allowEmptyServices=false ${show(r)}; true ${show(ours)}`);
      assert.equal(r.otherStatus[404], 100, `Traefik's default drops the route: ${show(r)}`);
      assert.match(strict.daemon.log(), /no servers found for .*\/web-canary/);
      assert.deepEqual(ours.byVersion, { [STABLE_VERSION]: 100 }, `allowEmptyServices=true serves stable: ${show(ours)}`);
    } finally {
      await strict.stop();
    }
  });
});
