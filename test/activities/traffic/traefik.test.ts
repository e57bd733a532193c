/**
 * The Traefik router on the real control plane with Traefik's TraefikService CRD (scripts/kube.sh
 * up --crds, from the traefik Go module): the weighted TraefikService read back after every step of
 * a canary run through createActivities, after abort and after promotion; only the two named entries
 * change; an identical call writes nothing; verifyWeight sees a tampered weight; concurrent writers
 * conflict (409) and the read-modify-write absorbs it; misconfiguration is named.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type { ReleaseTarget } from '../../../activities/contract.ts';
import { createTraefikRouter } from '../../../activities/traffic/traefik.ts';
import { routerActivities, TestCluster, target } from '../kubernetes/cluster.ts';

const cluster = new TestCluster();
const custom = cluster.kc.makeApiClient(CustomObjectsApi);
const router = createTraefikRouter(cluster.kc);
const activities = routerActivities(cluster.kc, { traefik: router });

after(() => cluster.cleanup());

const G = { group: 'traefik.io', version: 'v1alpha1', plural: 'traefikservices' };

/** An entry a user added by hand (another Service, a nested TraefikService): it must come through every call unchanged. */
const OTHER = [
  { name: 'web-legacy', port: 80, weight: 5 },
  { name: 'web-canary', kind: 'TraefikService', weight: 3 },
];

interface Ts {
  metadata: { resourceVersion?: string; labels?: Record<string, string> };
  spec: { weighted: { services: { name: string; kind?: string; port?: number; weight?: number }[]; sticky?: unknown } };
}

async function readTs(ns: string): Promise<Ts> {
  return (await custom.getNamespacedCustomObject({ ...G, namespace: ns, name: 'web-wts' })) as Ts;
}

/** [stable, canary] weights of the Kubernetes Service entries. */
async function weights(ns: string): Promise<[number | undefined, number | undefined]> {
  const services = (await readTs(ns)).spec.weighted.services.filter((s) => (s.kind ?? 'Service') === 'Service');
  return [services.find((s) => s.name === 'web-stable')?.weight, services.find((s) => s.name === 'web-canary')?.weight];
}

const others = async (ns: string): Promise<unknown> => (await readTs(ns)).spec.weighted.services.filter((s) => s.name === 'web-legacy' || s.kind === 'TraefikService');

async function setup(prefix: string): Promise<{ ns: string; t: ReleaseTarget }> {
  const ns = await cluster.namespace(prefix);
  await cluster.stable(ns, { replicas: 4 });
  await cluster.service(ns, 'web-stable', { app: 'web' });
  await cluster.service(ns, 'web-canary', { app: 'web' });
  await custom.createNamespacedCustomObject({
    ...G,
    namespace: ns,
    body: {
      apiVersion: 'traefik.io/v1alpha1',
      kind: 'TraefikService',
      metadata: { name: 'web-wts' },
      spec: { weighted: { services: [{ name: 'web-stable', port: 80, weight: 100 }, { name: 'web-canary', port: 80, weight: 0 }, ...OTHER], sticky: { cookie: { name: 'lb' } } } },
    },
  });
  return { ns, t: target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { traefik: { weightedTraefikServiceName: 'web-wts' } } }) };
}

describe('traefik router', () => {
  test('10/25/50/100 read back after each step (twice each); promotion back to 100/0; other entries and fields unchanged', async () => {
    const { ns, t } = await setup('tr-steps');
    const before = await others(ns);
    await activities.preflight(t);
    await activities.ensureCanary(t);
    for (const w of [10, 25, 50, 100]) {
      await activities.setWeight(t, w);
      await activities.setWeight(t, w);
      assert.deepEqual(await weights(ns), [100 - w, w], `after setWeight ${w}`);
      assert.equal(await router.verifyWeight(t, w), true);
      assert.deepEqual(await others(ns), before, 'only the stable and canary Service entries change');
    }
    await activities.promoteCanary(t);
    assert.deepEqual(await weights(ns), [100, 0], 'after promotion');
    assert.deepEqual((await readTs(ns)).spec.weighted.sticky, { cookie: { name: 'lb' } });
    assert.deepEqual(await others(ns), before);
  });

  test('abort at 25: back to 100/0, twice', async () => {
    const { ns, t } = await setup('tr-abort');
    await activities.preflight(t);
    await activities.ensureCanary(t);
    await activities.setWeight(t, 25);
    await activities.abortCanary(t, undefined);
    await activities.abortCanary(t, undefined);
    assert.deepEqual(await weights(ns), [100, 0]);
    assert.equal(await router.verifyWeight(t, 0), true);
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);
  });

  test('an identical setWeight writes nothing; verifyWeight detects tampering and setWeight repairs it', async () => {
    const { ns, t } = await setup('tr-tamper');
    await router.setWeight(t, 40);
    const rv = (await readTs(ns)).metadata.resourceVersion;
    await router.setWeight(t, 40);
    assert.equal((await readTs(ns)).metadata.resourceVersion, rv);
    const ts = await readTs(ns);
    const canary = ts.spec.weighted.services.find((s) => s.name === 'web-canary' && s.kind === undefined);
    assert.ok(canary);
    canary.weight = 7;
    await custom.replaceNamespacedCustomObject({ ...G, namespace: ns, name: 'web-wts', body: ts });
    assert.equal(await router.verifyWeight(t, 40), false);
    await router.setWeight(t, 40);
    assert.equal(await router.verifyWeight(t, 40), true);
  });

  test('concurrent writers conflict (409); the read-modify-write re-reads and each change lands', async () => {
    const { ns, t } = await setup('tr-409');
    // Without conflict retries, a burst of writers from the same version loses some to 409 Conflict.
    const eager = createTraefikRouter(cluster.kc, { conflictRetries: 0 });
    let conflicts = 0;
    for (let round = 0; round < 5 && conflicts === 0; round++) {
      const results = await Promise.allSettled([1, 2, 3, 4, 5, 6].map((w) => eager.setWeight(t, w + round * 10)));
      conflicts = results.filter((r) => r.status === 'rejected' && r.reason instanceof ApplicationFailure && r.reason.type === 'Conflict' && !r.reason.nonRetryable).length;
      for (const r of results) if (r.status === 'rejected' && !(r.reason instanceof ApplicationFailure && r.reason.type === 'Conflict')) throw r.reason;
    }
    assert.ok(conflicts > 0, 'the burst produced 409 Conflicts');
    // With the default retries the same burst, plus someone else labelling the object, all land.
    const labeller = (async () => {
      for (;;) {
        const ts = await readTs(ns);
        ts.metadata.labels = { ...ts.metadata.labels, team: 'edge' };
        try {
          await custom.replaceNamespacedCustomObject({ ...G, namespace: ns, name: 'web-wts', body: ts });
          return;
        } catch (err) {
          if ((err as { code?: number }).code !== 409) throw err;
        }
      }
    })();
    await Promise.all([...[11, 12, 13, 14, 15].map((w) => router.setWeight(t, w)), labeller]);
    await router.setWeight(t, 30);
    const after = await readTs(ns);
    assert.deepEqual(await weights(ns), [70, 30]);
    assert.equal(after.metadata.labels?.team, 'edge', 'the other writer\'s change is kept');
  });

  test('misconfiguration is named and not retried: no such entry, not a weighted TraefikService, no such object', async () => {
    const { ns, t } = await setup('tr-bad');
    const permanent = (pattern: RegExp) => (e: unknown) => e instanceof ApplicationFailure && e.nonRetryable && pattern.test(e.message);
    await assert.rejects(router.setWeight({ ...t, canaryService: 'nope' }, 10), permanent(/TraefikService .*\/web-wts has no weighted service nope \(the canaryService; services: web-stable, web-canary, web-legacy, web-canary\)/));
    await custom.createNamespacedCustomObject({ ...G, namespace: ns, body: { apiVersion: 'traefik.io/v1alpha1', kind: 'TraefikService', metadata: { name: 'mirror' }, spec: { mirroring: { name: 'web-stable', port: 80 } } } });
    await assert.rejects(router.setWeight({ ...t, trafficRouting: { traefik: { weightedTraefikServiceName: 'mirror' } } }, 10), permanent(/has no spec\.weighted\.services: it must be a weighted TraefikService/));
    await assert.rejects(router.setWeight({ ...t, trafficRouting: { traefik: { weightedTraefikServiceName: 'absent' } } }, 10), permanent(/TraefikService .*\/absent not found/));
    await assert.rejects(router.setWeight(t, 101), permanent(/weight must be a whole number from 0 to 100/));
    assert.deepEqual(await weights(ns), [100, 0], 'nothing written');
  });
});
