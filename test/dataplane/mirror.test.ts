/**
 * Percentage request mirroring (`setMirrorRoute`: an HTTPRoute rule with a `RequestMirror` filter and
 * `percent`) on requests through Traefik v3.7.13, the only Gateway API implementation that runs here. Traefik's
 * Gateway API provider has no RequestMirror filter: `loadMiddlewares` (pkg/provider/kubernetes/gateway/httproute.go)
 * returns "unsupported filter RequestMirror", and the rule is then served by a service that answers 500 to
 * every request it matches (as the Gateway API spec asks of an implementation that cannot apply a filter).
 * This suite measures that at the client, so the docs' statement is a measured one and a Traefik that serves
 * mirrors makes it fail: with the mirror rule in place, requests it matches answer 500 and nothing reaches the
 * canary backend; requests it does not match are served as before; removing it (empty match) restores them.
 * Needs root, KUBECONFIG (scripts/kube.sh up --crds) and TRAEFIK_BIN; skips with the reason otherwise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createGatewayApiRouter, GATEWAY_API_PLUGIN } from '../../activities/traffic/gateway-api.ts';
import { routerActivities, target } from '../activities/kubernetes/cluster.ts';
import { createHttpRoute } from '../support/gateway-api.ts';
import { runLoad } from '../../dataplane/load.ts';
import { CANARY_VERSION, createGateway, dataPlaneSkip, describe as show, hostOf, STABLE_VERSION, startRig, untilServedBy, type Rig } from './fixture.ts';

const skip = dataPlaneSkip();

describe('Gateway API mirror route on requests through Traefik v3.7.13', { skip }, () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig('dp-mir');
  });
  after(() => rig?.close());

  test('Traefik cannot serve a RequestMirror rule: the requests it matches answer 500, none is mirrored; removing it restores them', async () => {
    const acts = routerActivities(rig.cluster.kc, { plugins: createGatewayApiRouter(rig.cluster.kc) });
    const ns = await rig.namespace();
    await rig.cluster.stable(ns, { replicas: 2 });
    await rig.cluster.service(ns, 'web-stable', { app: 'web' });
    await rig.cluster.service(ns, 'web-canary', { app: 'web' });
    await createGateway(rig, ns);
    await createHttpRoute(rig.custom, ns, 'web', {
      parentRefs: [{ name: 'edge' }],
      hostnames: [hostOf(ns)],
      rules: [{ backendRefs: [{ group: '', kind: 'Service', name: 'web-stable', port: 80, weight: 100 }, { group: '', kind: 'Service', name: 'web-canary', port: 80, weight: 0 }] }],
    });
    await untilServedBy(rig, ns, STABLE_VERSION, 'the HTTPRoute served by stable');
    const t = target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { plugins: { [GATEWAY_API_PLUGIN]: { httpRoute: 'web' } } } });
    await acts.preflight(t);
    await acts.ensureCanary(t);
    await acts.setCanaryScale(t, { replicas: 1 }, 0);
    await rig.dp.until((s) => [...s.values()].some((p) => p.namespace === ns && p.version === CANARY_VERSION), 'the canary pod served');

    const load = (path: string) => runLoad({ url: `${rig.traefik.url}${path}`, host: hostOf(ns), requests: 200, concurrency: 4 });
    await acts.setMirrorRoute(t, { name: 'mirror-api', percentage: 50, match: [{ path: { prefix: '/api' } }] });
    let api = await load('/api/items');
    const end = Date.now() + 30_000;
    while ((api.serverErrors[500] ?? 0) !== 200 && Date.now() < end) api = await load('/api/items');
    const other = await load('/web');
    console.log(`mirror rule in Traefik: /api ${show(api)}; /web ${show(other)}`);
    assert.equal(api.serverErrors[500], 200, `every /api request answers 500 (Traefik: unsupported filter RequestMirror): ${show(api)}`);
    assert.equal(api.byVersion[CANARY_VERSION] ?? 0, 0, 'no /api answer from the canary');
    assert.deepEqual(other.byVersion, { [STABLE_VERSION]: 200 }, `requests the mirror rule does not match are served by stable: ${show(other)}`);
    assert.match(rig.traefik.daemon.log(), /unsupported filter RequestMirror/, 'Traefik logs the unsupported filter');

    await acts.setMirrorRoute(t, { name: 'mirror-api', percentage: 50, match: [] });
    let back = await load('/api/items');
    const end2 = Date.now() + 30_000;
    while ((back.byVersion[STABLE_VERSION] ?? 0) !== 200 && Date.now() < end2) back = await load('/api/items');
    assert.deepEqual(back.byVersion, { [STABLE_VERSION]: 200 }, `after removal: ${show(back)}`);
  });
});
