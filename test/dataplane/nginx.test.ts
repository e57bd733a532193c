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
import type { ReleaseTarget } from '../../activities/contract.ts';
import { createNginxRouter } from '../../activities/traffic/nginx.ts';
import { routerActivities, target } from '../activities/kubernetes/cluster.ts';
import { allServedBySince, lastServedBy, totals } from '../support/load.ts';
import { INGRESS_CLASS } from '../support/traefik.ts';
import { assertNoFailures, assertSplit, CANARY_VERSION, dataPlaneSkip, describe as show, hostOf, STABLE_VERSION, startRig, until, untilServedBy, type Rig } from './fixture.ts';

const skip = dataPlaneSkip();

interface ApiService {
  name: string;
  weighted?: { services?: { name: string; weight?: number }[] };
}

describe('NGINX router on requests through Traefik', { skip }, () => {
  let rig: Rig;
  let acts: ReturnType<typeof routerActivities>;

  before(async () => {
    rig = await startRig('dp-ngx');
    acts = routerActivities(rig.cluster.kc, { nginx: createNginxRouter(rig.cluster.kc) });
  });
  after(() => rig?.close());

  /**
   * The canary weight Traefik serves for namespace `ns`: its NGINX provider turns a stable Ingress path with a
   * canary into a weighted service `<ns>-<ingress>-<stableService>-<port>-wrr` of the stable backend and
   * `…-canary` (the Ingress's name is part of it: a lookup by `<ns>-<service>`, as for Gateway API, never sees it).
   */
  async function nginxWeight(ns: string): Promise<number | undefined> {
    const res = await fetch(`${rig.traefik.apiUrl}/http/services?per_page=1000`, { signal: AbortSignal.timeout(5000) });
    const services = (await res.json()) as ApiService[];
    const wrr = services.find((s) => s.name.startsWith(`${ns}-web-web-stable-80-wrr@`));
    if (!wrr) return undefined;
    const canary = wrr.weighted?.services?.find((c) => c.name.startsWith(`${ns}-web-web-stable-80-canary`));
    return canary?.weight ?? 0;
  }

  async function untilNginxWeight(ns: string, weight: number, timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    let last: number | undefined;
    for (;;) {
      last = await nginxWeight(ns);
      if (last === weight) return;
      if (Date.now() > end) throw new Error(`Traefik does not serve canary weight ${weight} for ${ns} after ${timeoutMs} ms (serves ${last}): ${rig.traefik.daemon.log().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Namespace with Deployment web (4 × 1.0.0), Services web-stable/web-canary and Ingress web (class nginx, the namespace's host → web-stable:80); served by stable. */
  async function setup(): Promise<{ ns: string; t: ReleaseTarget }> {
    const ns = await rig.namespace();
    await rig.cluster.stable(ns, { replicas: 4 });
    await rig.cluster.service(ns, 'web-stable', { app: 'web' });
    await rig.cluster.service(ns, 'web-canary', { app: 'web' });
    await rig.net.createNamespacedIngress({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: {
          ingressClassName: INGRESS_CLASS.name,
          rules: [{ host: hostOf(ns), http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web-stable', port: { number: 80 } } } }] } }],
        },
      },
    });
    await rig.dp.until((s) => [...s.values()].filter((p) => p.namespace === ns).length === 4, `4 stable pods of ${ns} served`);
    await untilServedBy(rig, ns, STABLE_VERSION, 'the stable Ingress served by stable');
    const t = target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { nginx: { stableIngress: 'web' } } });
    await acts.preflight(t);
    await acts.ensureCanary(t);
    return { ns, t };
  }

  test('a header route sends exactly the matching requests to the canary; each setWeight step splits as weighted; promotion under load fails no request', async () => {
    const { ns, t } = await setup();

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

    for (const weight of [10, 25, 50]) {
      await acts.setWeight(t, weight);
      await untilNginxWeight(ns, weight);
      const r = await rig.load(ns, { requests: 1000, concurrency: 8 });
      assertSplit(r, weight, `setWeight ${weight}`);
      console.log(`nginx setWeight ${weight}: ${show(r)}`);
    }

    // Promotion with requests flowing: stable rolls to the new image, traffic to stable, the canary goes.
    const load = rig.startLoad(ns, { requests: 200_000, concurrency: 4, deadlineMs: Date.now() + 90_000 });
    await acts.promoteCanary(t);
    await until(() => lastServedBy(load.result, CANARY_VERSION, 200), 'the new version alone answering after promotion', 30_000);
    await new Promise((r) => setTimeout(r, 5500)); // the old pods' drain ends while requests still flow
    const r = await load.stop();
    assertNoFailures(r, 'promotion under load', rig.traefik);
    assert.ok(totals(r).ok > 200, `requests flowed during promotion: ${show(r)}`);
    assert.equal(await nginxWeight(ns), 0, 'the canary Ingress back at weight 0 after promotion');
    console.log(`nginx promotion under load: ${show(r)}`);
  });

  test('abort at 50 % under load: every request is answered, all by stable within seconds of the routing call', async () => {
    const { ns, t } = await setup();
    await acts.setWeight(t, 50);
    await untilNginxWeight(ns, 50);
    const load = rig.startLoad(ns, { requests: 200_000, concurrency: 4, deadlineMs: Date.now() + 60_000 });
    await until(() => (load.result.byVersion[CANARY_VERSION] ?? 0) > 50, 'canary answering before the abort', 10_000);
    const t0 = Date.now();
    await acts.routeToStable(t);
    await until(() => lastServedBy(load.result, STABLE_VERSION, 200), 'stable alone answering after the abort', 10_000);
    await acts.abortCanary(t, undefined);
    await new Promise((r) => setTimeout(r, 5500));
    const r = await load.stop();
    assertNoFailures(r, 'abort under load', rig.traefik);
    const since = allServedBySince(r.samples, STABLE_VERSION, t0 - 5_000);
    assert.ok(since !== undefined, `stable answers everything after the abort: ${show(r)}`);
    const ms = Math.max(0, since - t0);
    console.log(`nginx abort → 100 % stable at the client: ${ms} ms after the routing call; ${show(r)}`);
    // Bounded by the proxy's watch catching up: 0.2–2.8 s here, past 5 s at a load average of 17 on 2 cores.
    assert.ok(ms < 10_000, `abort → 100 % stable took ${ms} ms`);
  });
});
