/**
 * Blue/green proven on requests: an HTTPRoute (Traefik) to the active Service; the real activities deploy
 * the preview, switch the active Service to it and finalize, while the client sends requests. The switch
 * moves all requests at once (once the new version has answered, no request started later is answered by
 * the old one), and nothing fails through the switch and the finalization. Needs root, KUBECONFIG and
 * TRAEFIK_BIN; skips with the reason otherwise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createKubernetesWorkload } from '../../activities/kubernetes/index.ts';
import { createActivities } from '../../activities/index.ts';
import { target } from '../activities/kubernetes/cluster.ts';
import { createHttpRoute } from '../support/gateway-api.ts';
import { lastServedBy, type Sample } from '../../dataplane/load.ts';
import { assertNoFailures, CANARY_VERSION, createGateway, dataPlaneSkip, describe as show, hostOf, STABLE_VERSION, startRig, SUITE_DRAIN_MS, until, untilServedBy, type Rig } from './fixture.ts';

const skip = dataPlaneSkip();

const versionOf = (s: Sample): string | undefined => ('error' in s.outcome ? undefined : s.outcome.version);

describe('blue/green on requests through Traefik', { skip }, () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig('dp-bg');
  });
  after(() => rig?.close());

  test('the switch moves every request to the preview at once; switch and finalization fail no request', async () => {
    const acts = createActivities({ workload: createKubernetesWorkload(rig.cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 }) });
    const ns = await rig.namespace();
    await rig.cluster.stable(ns, { replicas: 4 });
    await rig.cluster.service(ns, 'web-active', { app: 'web' });
    await rig.cluster.service(ns, 'web-preview', { app: 'web' });
    await createGateway(rig, ns);
    await createHttpRoute(rig.custom, ns, 'web', { parentRefs: [{ name: 'edge' }], hostnames: [hostOf(ns)], rules: [{ backendRefs: [{ group: '', kind: 'Service', name: 'web-active', port: 80 }] }] });
    await rig.dp.until((s) => [...s.values()].filter((p) => p.namespace === ns).length === 4, `4 stable pods of ${ns} served`);
    await untilServedBy(rig, ns, STABLE_VERSION, 'the active Service served by stable');
    const t = target(ns, { strategy: 'blueGreen', activeService: 'web-active', previewService: 'web-preview' });
    await acts.preflight(t);

    const load = rig.startLoad(ns, { requests: 200_000, concurrency: 4, deadlineMs: Date.now() + 120_000 });
    await acts.deployPreview(t, undefined);
    await rig.dp.until((s) => [...s.values()].filter((p) => p.namespace === ns && p.version === CANARY_VERSION).length === 4, 'the 4 preview pods served');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(load.result.byVersion[CANARY_VERSION] ?? 0, 0, `the preview takes no request before the switch: ${show(load.result)}`);

    await acts.switchActive(t, 'preview');
    await until(() => lastServedBy(load.result, CANARY_VERSION, 200), 'the preview alone answering after the switch', 30_000);
    const samples = [...load.result.samples];
    const firstNew = Math.min(...samples.filter((s) => versionOf(s) === CANARY_VERSION).map((s) => s.end));
    const oldAfter = samples.filter((s) => s.start > firstNew && versionOf(s) === STABLE_VERSION);
    assert.equal(oldAfter.length, 0, `${oldAfter.length} requests started after the new version first answered were answered by the old one`);

    await acts.finalizeBlueGreen(t);
    await new Promise((r) => setTimeout(r, SUITE_DRAIN_MS + 500)); // the deleted pods' drain ends while requests still flow
    const r = await load.stop();
    assertNoFailures(r, 'switch and finalization under load');
    assert.ok(lastServedBy(r, CANARY_VERSION, 200), `the new version answers at the end: ${show(r)}`);
    console.log(`blue/green switch and finalization under load: ${show(r)}`);
  });
});
