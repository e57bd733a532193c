/**
 * The NGINX router (Argo's trafficRouting.nginx) on the real control plane. No ingress controller
 * runs: the tests assert the Ingress objects ingress-nginx would read (the apiserver validates them).
 * The canary Ingress's weight after every step of a canary run through createActivities, after abort
 * and after promotion; the stable Ingress never changes (its resourceVersion included); a repeated
 * call writes nothing; header routes; named errors for misconfiguration.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { NetworkingV1Api, type V1Ingress } from '@kubernetes/client-node';
import { canaryIngressName, createNginxRouter } from '../../../activities/traffic/nginx.ts';
import { MANAGED_ROUTES_ANNOTATION } from '../../../activities/traffic/common.ts';
import type { ReleaseTarget } from '../../../activities/contract.ts';
import { routerActivities, TestCluster, target } from '../kubernetes/cluster.ts';

const cluster = new TestCluster();
const net = cluster.kc.makeApiClient(NetworkingV1Api);
const router = createNginxRouter(cluster.kc);
const activities = routerActivities(cluster.kc, { nginx: router });

after(() => cluster.cleanup());

const P = 'nginx.ingress.kubernetes.io';
const STABLE = 'web-ingress';
const CANARY = canaryIngressName('web', STABLE);

const path = (p: string, service: string) => ({ path: p, pathType: 'Prefix', backend: { service: { name: service, port: { number: 80 } } } });

async function stableIngress(ns: string, name = STABLE, o: { annotations?: Record<string, string>; rules?: V1Ingress['spec'] } = {}): Promise<void> {
  await net.createNamespacedIngress({
    namespace: ns,
    body: {
      metadata: { name, annotations: o.annotations ?? { 'kubernetes.io/ingress.class': 'nginx', [`${P}/rewrite-target`]: '/' } },
      spec: o.rules ?? {
        tls: [{ hosts: ['web.example.com'], secretName: 'web-tls' }],
        rules: [
          // The rule that routes to stableService (with a hand-added /admin path to another Service).
          { host: 'web.example.com', http: { paths: [path('/', 'web-stable'), path('/admin', 'admin-svc')] } },
          // A rule that does not route to stableService: never copied.
          { host: 'other.example.com', http: { paths: [path('/', 'other-svc')] } },
        ],
      },
    },
  });
}

async function read(ns: string, name: string): Promise<V1Ingress | undefined> {
  try {
    // As plain JSON (the client returns class instances), so objects compare with literals.
    return JSON.parse(JSON.stringify(await net.readNamespacedIngress({ namespace: ns, name }))) as V1Ingress;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

/** [canary annotation, canary-weight] on the canary Ingress. */
async function weight(ns: string, name = CANARY): Promise<[string | undefined, string | undefined]> {
  const a = (await read(ns, name))?.metadata?.annotations ?? {};
  return [a[`${P}/canary`], a[`${P}/canary-weight`]];
}

async function setup(prefix: string, extra: Record<string, unknown> = {}): Promise<{ ns: string; t: ReleaseTarget; stableBefore: V1Ingress }> {
  const ns = await cluster.namespace(prefix);
  await cluster.stable(ns, { replicas: 4 });
  await cluster.service(ns, 'web-stable', { app: 'web' });
  await cluster.service(ns, 'web-canary', { app: 'web' });
  await stableIngress(ns);
  const stableBefore = (await read(ns, STABLE)) as V1Ingress;
  return { ns, stableBefore, t: target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { nginx: { stableIngress: STABLE, ...extra } } }) };
}

describe('nginx router', () => {
  test('10/25/50/100 on the canary Ingress after each step; promotion back to 0; the stable Ingress never written', async () => {
    const { ns, t, stableBefore } = await setup('ngx-steps');
    await activities.preflight(t);
    await activities.ensureCanary(t);
    for (const w of [10, 25, 50, 100]) {
      await activities.setWeight(t, w);
      await activities.setWeight(t, w);
      assert.deepEqual(await weight(ns), ['true', String(w)], `after setWeight ${w}`);
      assert.equal(await router.verifyWeight(t, w), true);
      assert.deepEqual(await read(ns, STABLE), stableBefore, `stable Ingress after setWeight ${w}`);
    }
    const canary = (await read(ns, CANARY)) as V1Ingress;
    // Argo's copy: only the rule that routes to stableService, its stable backends switched to canaryService, TLS and class kept.
    assert.deepEqual(canary.spec?.rules, [{ host: 'web.example.com', http: { paths: [path('/', 'web-canary'), path('/admin', 'admin-svc')] } }]);
    assert.deepEqual(canary.spec?.tls, [{ hosts: ['web.example.com'], secretName: 'web-tls' }]);
    assert.equal(canary.metadata?.annotations?.['kubernetes.io/ingress.class'], 'nginx');
    assert.equal(canary.metadata?.annotations?.[`${P}/rewrite-target`], undefined, 'only the class annotation is copied (a canary Ingress ignores the others)');
    assert.equal(canary.metadata?.labels?.['app.kubernetes.io/managed-by'], 'glidepath');
    await activities.promoteCanary(t);
    assert.deepEqual(await weight(ns), ['true', '0'], 'after promotion');
    assert.equal(await router.verifyWeight(t, 0), true);
    assert.deepEqual(await read(ns, STABLE), stableBefore);
  });

  test('abort at 25 with a header route: weight 0, header annotations gone, twice', async () => {
    const { ns, t, stableBefore } = await setup('ngx-abort');
    await activities.preflight(t);
    await activities.ensureCanary(t);
    await activities.setWeight(t, 25);
    await router.setHeaderRoute?.(t, { name: 'beta', match: [{ headerName: 'x-beta', headerValue: { exact: 'yes' } }] });
    assert.equal((await read(ns, CANARY))?.metadata?.annotations?.[`${P}/canary-by-header`], 'x-beta');
    await activities.abortCanary(t, undefined);
    await activities.abortCanary(t, undefined);
    const a = (await read(ns, CANARY))?.metadata?.annotations ?? {};
    assert.deepEqual(await weight(ns), ['true', '0']);
    assert.equal(a[`${P}/canary-by-header`], undefined);
    assert.equal(a[`${P}/canary-by-header-value`], undefined);
    assert.equal(a[MANAGED_ROUTES_ANNOTATION], undefined);
    assert.equal(await router.verifyWeight(t, 0), true);
    assert.deepEqual(await read(ns, STABLE), stableBefore);
  });

  test('an identical setWeight writes nothing; a tampered weight is seen and repaired; stable changes are followed', async () => {
    const { ns, t } = await setup('ngx-idem');
    await router.setWeight(t, 50);
    const rv = (await read(ns, CANARY))?.metadata?.resourceVersion;
    await router.setWeight(t, 50);
    await router.removeManagedRoutes(t); // sets 0: a write
    await router.setWeight(t, 50);
    const rv2 = (await read(ns, CANARY))?.metadata?.resourceVersion;
    assert.notEqual(rv2, rv);
    await router.setWeight(t, 50);
    assert.equal((await read(ns, CANARY))?.metadata?.resourceVersion, rv2, 'a repeated setWeight does not write');
    const c = (await read(ns, CANARY)) as V1Ingress;
    c.metadata = { ...c.metadata, annotations: { ...c.metadata?.annotations, [`${P}/canary-weight`]: '7' } };
    await net.replaceNamespacedIngress({ namespace: ns, name: CANARY, body: c });
    assert.equal(await router.verifyWeight(t, 50), false);
    await router.setWeight(t, 50);
    assert.equal(await router.verifyWeight(t, 50), true);
    // A path the user adds to the stable Ingress's stable rule reaches the canary copy on the next setWeight.
    const s = (await read(ns, STABLE)) as V1Ingress;
    s.spec?.rules?.[0]?.http?.paths.push(path('/api', 'web-stable'));
    await net.replaceNamespacedIngress({ namespace: ns, name: STABLE, body: s });
    await router.setWeight(t, 50);
    assert.deepEqual(
      (await read(ns, CANARY))?.spec?.rules?.[0]?.http?.paths.map((p) => [p.path, p.backend.service?.name]),
      [
        ['/', 'web-canary'],
        ['/admin', 'admin-svc'],
        ['/api', 'web-canary'],
      ],
    );
  });

  test('header route: canary-by-header with -value or -pattern; one route, one match; removed by an empty match', async () => {
    const { ns, t } = await setup('ngx-header');
    // Before any setWeight: the canary Ingress is created at weight 0 carrying the header route.
    const exact = { name: 'beta', match: [{ headerName: 'x-beta', headerValue: { exact: 'yes' } }] };
    await router.setHeaderRoute?.(t, exact);
    let a = (await read(ns, CANARY))?.metadata?.annotations ?? {};
    assert.equal(a[`${P}/canary-weight`], '0');
    assert.equal(a[`${P}/canary-by-header`], 'x-beta');
    assert.equal(a[`${P}/canary-by-header-value`], 'yes');
    assert.deepEqual(JSON.parse(a[MANAGED_ROUTES_ANNOTATION] ?? '[]'), ['beta']);
    await router.setWeight(t, 10);
    const rv = (await read(ns, CANARY))?.metadata?.resourceVersion;
    await router.setHeaderRoute?.(t, exact);
    a = (await read(ns, CANARY))?.metadata?.annotations ?? {};
    assert.equal((await read(ns, CANARY))?.metadata?.resourceVersion, rv, 'an identical setHeaderRoute writes nothing');
    assert.equal(a[`${P}/canary-weight`], '10', 'setWeight keeps the header route; setHeaderRoute keeps the weight');
    assert.equal(a[`${P}/canary-by-header`], 'x-beta');

    await router.setHeaderRoute?.(t, { name: 'beta', match: [{ headerName: 'x-user', headerValue: { regex: '^qa-.*' } }] });
    a = (await read(ns, CANARY))?.metadata?.annotations ?? {};
    assert.equal(a[`${P}/canary-by-header`], 'x-user');
    assert.equal(a[`${P}/canary-by-header-pattern`], '^qa-.*');
    assert.equal(a[`${P}/canary-by-header-value`], undefined);

    await assert.rejects(router.setHeaderRoute?.(t, { name: 'other', match: [{ headerName: 'x', headerValue: { exact: 'y' } }] }) ?? Promise.resolve(), /already carries header route "beta"/);
    await assert.rejects(
      router.setHeaderRoute?.(t, { name: 'beta', match: [{ headerName: 'a', headerValue: { exact: '1' } }, { headerName: 'b', headerValue: { exact: '2' } }] }) ?? Promise.resolve(),
      (err: Error & { type?: string }) => err.type === 'InvalidSpec' && /matches one header .* 2 matches/.test(err.message),
    );
    await assert.rejects(router.setHeaderRoute?.(t, { name: 'beta', match: [{ headerName: 'a', headerValue: { prefix: 'b' } }] }) ?? Promise.resolve(), /not by prefix/);

    await router.setHeaderRoute?.(t, { name: 'beta', match: [] });
    a = (await read(ns, CANARY))?.metadata?.annotations ?? {};
    assert.equal(a[`${P}/canary-by-header`], undefined);
    assert.equal(a[`${P}/canary-by-header-pattern`], undefined);
    assert.equal(a[MANAGED_ROUTES_ANNOTATION], undefined);
    assert.equal(a[`${P}/canary-weight`], '10');

    // additionalIngressAnnotations (prefixed) and canaryIngressAnnotations (as written) land on the canary; a header route would clash with canary-by-header set there.
    const t2: ReleaseTarget = {
      ...t,
      trafficRouting: { nginx: { stableIngress: STABLE, additionalIngressAnnotations: { 'canary-by-header': 'X-Canary' }, canaryIngressAnnotations: { 'example.com/scrape': 'true' } } },
    };
    await router.setWeight(t2, 10);
    a = (await read(ns, CANARY))?.metadata?.annotations ?? {};
    assert.equal(a[`${P}/canary-by-header`], 'X-Canary');
    assert.equal(a['example.com/scrape'], 'true');
    await assert.rejects(router.setHeaderRoute?.(t2, exact) ?? Promise.resolve(), /already set nginx\.ingress\.kubernetes\.io\/canary-by-header/);
    await router.removeManagedRoutes(t2);
    assert.equal((await read(ns, CANARY))?.metadata?.annotations?.[`${P}/canary-by-header`], 'X-Canary', "the user's own canary-by-header survives removeManagedRoutes");
  });

  test('stableIngresses: one canary Ingress per stable Ingress; a custom annotation prefix', async () => {
    const ns = await cluster.namespace('ngx-multi');
    await stableIngress(ns, 'a');
    await stableIngress(ns, 'b');
    const t = target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { nginx: { stableIngresses: ['a', 'b'], annotationPrefix: 'custom.nginx.example.com' } } });
    await router.setWeight(t, 30);
    for (const s of ['a', 'b']) {
      const a = (await read(ns, canaryIngressName('web', s)))?.metadata?.annotations ?? {};
      assert.equal(a['custom.nginx.example.com/canary'], 'true');
      assert.equal(a['custom.nginx.example.com/canary-weight'], '30');
      assert.equal(a[`${P}/canary-weight`], undefined);
    }
    assert.equal(await router.verifyWeight(t, 30), true);
    await router.removeManagedRoutes(t);
    assert.equal(await router.verifyWeight(t, 0), true);
  });

  test('concurrent first setWeights: the creates that lose the race (409 AlreadyExists) re-read and update', async () => {
    const { ns, t } = await setup('ngx-race');
    // Five calls read "no canary Ingress" at about the same moment; one create wins, the others must not fail.
    await Promise.all([10, 10, 10, 10, 10].map((w) => router.setWeight(t, w)));
    assert.deepEqual(await weight(ns), ['true', '10']);
    await Promise.all([20, 20, 20].map((w) => router.setWeight(t, w)));
    assert.deepEqual(await weight(ns), ['true', '20']);
  });

  test('named errors: a missing stable Ingress (NotFound, non-retryable), no stableService backend, a canary Ingress Glidepath did not create', async () => {
    const { ns, t } = await setup('ngx-bad');
    await assert.rejects(router.setWeight({ ...t, trafficRouting: { nginx: { stableIngress: 'missing' } } }, 10), (err: Error & { type?: string; nonRetryable?: boolean }) => {
      assert.equal(err.type, 'NotFound');
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, new RegExp(`Ingress ${ns}/missing not found`));
      return true;
    });
    await assert.rejects(router.setWeight({ ...t, stableService: 'nope' }, 10), (err: Error & { type?: string }) => err.type === 'InvalidSpec' && /no rule with a path whose backend is service nope/.test(err.message));
    await net.createNamespacedIngress({ namespace: ns, body: { metadata: { name: CANARY }, spec: { rules: [{ http: { paths: [path('/', 'web-canary')] } }] } } });
    const before = await read(ns, CANARY);
    await assert.rejects(router.setWeight(t, 10), (err: Error & { type?: string }) => err.type === 'InvalidSpec' && /Glidepath did not create it/.test(err.message));
    assert.deepEqual(await read(ns, CANARY), before, 'a foreign Ingress is not touched');
  });
});
