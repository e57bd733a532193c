/**
 * The ALB router (Argo's trafficRouting.alb) on the real control plane. No AWS Load Balancer
 * Controller runs: the tests assert the Ingress annotations and paths the controller would read (the
 * apiserver validates the Ingress). The forward action's weights after every step of a canary run
 * through createActivities, after abort and after promotion; the user's annotations, rules and paths
 * unchanged; a repeated call writes nothing; Argo's header routes; named errors.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { NetworkingV1Api, type V1Ingress } from '@kubernetes/client-node';
import { createAlbRouter, forwardTargetGroups } from '../../../activities/traffic/alb.ts';
import { MANAGED_ROUTES_ANNOTATION } from '../../../activities/traffic/common.ts';
import type { ReleaseTarget } from '../../../activities/contract.ts';
import { routerActivities, TestCluster, target } from '../kubernetes/cluster.ts';

const cluster = new TestCluster();
const net = cluster.kc.makeApiClient(NetworkingV1Api);
const router = createAlbRouter(cluster.kc);
const activities = routerActivities(cluster.kc, { alb: router });

after(() => cluster.cleanup());

const P = 'alb.ingress.kubernetes.io';
const ACTION = `${P}/actions.web-stable`;
const USER_ANNOTATIONS = {
  'kubernetes.io/ingress.class': 'alb',
  [`${P}/scheme`]: 'internet-facing',
  [`${P}/actions.ssl-redirect`]: '{"Type":"redirect","RedirectConfig":{"Protocol":"HTTPS","Port":"443","StatusCode":"HTTP_301"}}',
};

const svcPath = (p: string, service: string, port: { name: string } | { number: number }) => ({ path: p, pathType: 'Prefix', backend: { service: { name: service, port } } });

async function createIngress(ns: string, name: string, rules: NonNullable<V1Ingress['spec']>['rules']): Promise<void> {
  await net.createNamespacedIngress({ namespace: ns, body: { metadata: { name, annotations: { ...USER_ANNOTATIONS } }, spec: { rules } } });
}

const RULES = [
  {
    host: 'web.example.com',
    http: {
      paths: [
        svcPath('/', 'ssl-redirect', { name: 'use-annotation' }), // a user's own action: untouched
        svcPath('/', 'web-stable', { name: 'use-annotation' }),
        svcPath('/admin', 'admin-svc', { number: 80 }), // hand-added
      ],
    },
  },
  { host: 'other.example.com', http: { paths: [svcPath('/', 'other-svc', { number: 80 })] } }, // another rule: untouched
];

async function read(ns: string, name = 'web'): Promise<V1Ingress> {
  return JSON.parse(JSON.stringify(await net.readNamespacedIngress({ namespace: ns, name }))) as V1Ingress;
}

/** [stable, canary] weights in the forward action annotation. */
async function weights(ns: string, name = 'web'): Promise<[number | undefined, number | undefined]> {
  const groups = forwardTargetGroups((await read(ns, name)).metadata?.annotations?.[ACTION]);
  return [groups?.find((g) => g.serviceName === 'web-stable')?.weight, groups?.find((g) => g.serviceName === 'web-canary')?.weight];
}

/** What must survive every step: the user's annotations and every path the router does not own. */
async function userParts(ns: string, name = 'web'): Promise<unknown> {
  const ing = await read(ns, name);
  const a = ing.metadata?.annotations ?? {};
  return {
    annotations: Object.fromEntries(Object.keys(USER_ANNOTATIONS).map((k) => [k, a[k]])),
    rules: ing.spec?.rules?.map((r) => ({ host: r.host, paths: r.http?.paths.filter((p) => p.path !== '/*') })),
  };
}

async function setup(prefix: string, extra: Record<string, unknown> = {}): Promise<{ ns: string; t: ReleaseTarget }> {
  const ns = await cluster.namespace(prefix);
  await cluster.stable(ns, { replicas: 4 });
  await cluster.service(ns, 'web-stable', { app: 'web' });
  await cluster.service(ns, 'web-canary', { app: 'web' });
  await createIngress(ns, 'web', RULES);
  return { ns, t: target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { alb: { ingress: 'web', servicePort: 80, ...extra } } }) };
}

describe('alb router', () => {
  test('10/25/50/100 in the forward action after each step; promotion back to 100/0; the rest of the Ingress unchanged', async () => {
    const { ns, t } = await setup('alb-steps');
    const before = await userParts(ns);
    await activities.preflight(t);
    await activities.ensureCanary(t);
    for (const w of [10, 25, 50, 100]) {
      await activities.setWeight(t, w);
      await activities.setWeight(t, w);
      assert.deepEqual(await weights(ns), [100 - w, w], `after setWeight ${w}`);
      assert.equal(await router.verifyWeight(t, w), true);
      assert.deepEqual(await userParts(ns), before, `user parts after setWeight ${w}`);
    }
    // The exact annotation: the AWS Load Balancer Controller's forward action, canary first as Argo writes it.
    assert.deepEqual(JSON.parse((await read(ns)).metadata?.annotations?.[ACTION] ?? ''), {
      type: 'forward',
      forwardConfig: {
        targetGroups: [
          { serviceName: 'web-canary', servicePort: '80', weight: 100 },
          { serviceName: 'web-stable', servicePort: '80', weight: 0 },
        ],
      },
    });
    await activities.promoteCanary(t);
    assert.deepEqual(await weights(ns), [100, 0], 'after promotion');
    assert.equal(await router.verifyWeight(t, 0), true);
    assert.deepEqual(await userParts(ns), before);
  });

  test('abort at 25 with a header route: 100/0, header annotations and path gone, twice', async () => {
    const { ns, t } = await setup('alb-abort');
    const before = await userParts(ns);
    await activities.preflight(t);
    await activities.ensureCanary(t);
    await activities.setWeight(t, 25);
    await router.setHeaderRoute?.(t, { name: 'beta', match: [{ headerName: 'x-beta', headerValue: { exact: 'yes' } }] });
    await activities.abortCanary(t, undefined);
    await activities.abortCanary(t, undefined);
    assert.deepEqual(await weights(ns), [100, 0]);
    assert.equal(await router.verifyWeight(t, 0), true);
    const ing = await read(ns);
    assert.deepEqual(
      Object.keys(ing.metadata?.annotations ?? {}).filter((k) => k.includes('beta') || k === MANAGED_ROUTES_ANNOTATION),
      [],
    );
    assert.deepEqual(ing.spec?.rules?.[0]?.http?.paths.map((p) => p.backend.service?.name), ['ssl-redirect', 'web-stable', 'admin-svc']);
    assert.deepEqual(await userParts(ns), before);
  });

  test('an identical setWeight writes nothing; an action Argo wrote (capitalised keys) with the same weights is not rewritten; tampering is seen', async () => {
    const { ns, t } = await setup('alb-idem');
    await router.setWeight(t, 50);
    const rv = (await read(ns)).metadata?.resourceVersion;
    await router.setWeight(t, 50);
    assert.equal((await read(ns)).metadata?.resourceVersion, rv, 'a repeated setWeight does not write');
    const ing = await read(ns);
    const argo = '{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"web-canary","ServicePort":"80","Weight":50},{"ServiceName":"web-stable","ServicePort":"80","Weight":50}]}}';
    ing.metadata = { ...ing.metadata, annotations: { ...ing.metadata?.annotations, [ACTION]: argo } };
    await net.replaceNamespacedIngress({ namespace: ns, name: 'web', body: ing });
    const rvArgo = (await read(ns)).metadata?.resourceVersion;
    assert.equal(await router.verifyWeight(t, 50), true);
    await router.setWeight(t, 50);
    assert.equal((await read(ns)).metadata?.resourceVersion, rvArgo, 'the same action in Argo’s key case is not rewritten');
    const tampered = await read(ns);
    tampered.metadata = { ...tampered.metadata, annotations: { ...tampered.metadata?.annotations, [ACTION]: argo.replace('"Weight":50},{', '"Weight":7},{') } };
    await net.replaceNamespacedIngress({ namespace: ns, name: 'web', body: tampered });
    assert.equal(await router.verifyWeight(t, 50), false);
    await router.setWeight(t, 50);
    assert.equal(await router.verifyWeight(t, 50), true);
  });

  test("header route: Argo's actions.<name>, conditions.<name> and a /* path first; identical call writes nothing; removed by an empty match", async () => {
    const { ns, t } = await setup('alb-header');
    await router.setWeight(t, 10);
    const spec = { name: 'beta', match: [{ headerName: 'x-beta', headerValue: { exact: 'yes' } }, { headerName: 'x-team', headerValue: { exact: 'qa' } }] };
    await router.setHeaderRoute?.(t, spec);
    const rv = (await read(ns)).metadata?.resourceVersion;
    await router.setHeaderRoute?.(t, spec);
    const ing = await read(ns);
    assert.equal(ing.metadata?.resourceVersion, rv, 'an identical setHeaderRoute writes nothing');
    const a = ing.metadata?.annotations ?? {};
    assert.deepEqual(JSON.parse(a[`${P}/actions.beta`] ?? ''), { type: 'forward', forwardConfig: { targetGroups: [{ serviceName: 'web-canary', servicePort: '80', weight: 100 }] } });
    assert.deepEqual(JSON.parse(a[`${P}/conditions.beta`] ?? ''), [
      { field: 'http-header', httpHeaderConfig: { httpHeaderName: 'x-beta', values: ['yes'] } },
      { field: 'http-header', httpHeaderConfig: { httpHeaderName: 'x-team', values: ['qa'] } },
    ]);
    assert.deepEqual(JSON.parse(a[MANAGED_ROUTES_ANNOTATION] ?? '[]'), ['beta']);
    assert.deepEqual(ing.spec?.rules?.[0]?.http?.paths[0], { path: '/*', pathType: 'ImplementationSpecific', backend: { service: { name: 'beta', port: { name: 'use-annotation' } } } });
    assert.deepEqual(ing.spec?.rules?.[1]?.http?.paths.map((p) => p.backend.service?.name), ['other-svc'], 'a rule that does not route the action gets no header path');
    assert.deepEqual(await weights(ns), [90, 10], 'the weighted action is unchanged');

    await assert.rejects(router.setHeaderRoute?.(t, { name: 'x', match: [{ headerName: 'a', headerValue: { prefix: 'b' } }] }) ?? Promise.resolve(), /matches values exactly, not by prefix/);
    await assert.rejects(router.setHeaderRoute?.(t, { name: 'x', match: [{ headerName: 'a', headerValue: { exact: 'b*' } }] }) ?? Promise.resolve(), /wildcards/);
    await assert.rejects(router.setHeaderRoute?.(t, { name: 'ssl-redirect', match: [{ headerName: 'a', headerValue: { exact: 'b' } }] }) ?? Promise.resolve(), /already uses "ssl-redirect"/);
    await assert.rejects(router.setHeaderRoute?.(t, { name: 'Bad_Name', match: [{ headerName: 'a', headerValue: { exact: 'b' } }] }) ?? Promise.resolve(), /DNS-1035/);

    await router.setHeaderRoute?.(t, { name: 'beta', match: [] });
    const gone = await read(ns);
    assert.equal(gone.metadata?.annotations?.[`${P}/actions.beta`], undefined);
    assert.equal(gone.metadata?.annotations?.[`${P}/conditions.beta`], undefined);
    assert.equal(gone.metadata?.annotations?.[MANAGED_ROUTES_ANNOTATION], undefined);
    assert.deepEqual(gone.spec?.rules?.[0]?.http?.paths.map((p) => p.backend.service?.name), ['ssl-redirect', 'web-stable', 'admin-svc']);
    assert.deepEqual(await weights(ns), [90, 10]);
  });

  test('rootService, ingresses, a custom prefix and stickinessConfig', async () => {
    const ns = await cluster.namespace('alb-root');
    const rules = [{ http: { paths: [svcPath('/', 'web-root', { name: 'use-annotation' })] } }];
    await createIngress(ns, 'a', rules);
    await createIngress(ns, 'b', rules);
    const t = target(ns, {
      stableService: 'web-stable',
      canaryService: 'web-canary',
      trafficRouting: { alb: { ingresses: ['a', 'b'], servicePort: 8443, rootService: 'web-root', annotationPrefix: 'custom.alb.example.com', stickinessConfig: { enabled: true, durationSeconds: 300 } } },
    });
    await router.setWeight(t, 20);
    for (const name of ['a', 'b']) {
      const a = (await read(ns, name)).metadata?.annotations ?? {};
      assert.deepEqual(JSON.parse(a['custom.alb.example.com/actions.web-root'] ?? ''), {
        type: 'forward',
        forwardConfig: {
          targetGroups: [
            { serviceName: 'web-canary', servicePort: '8443', weight: 20 },
            { serviceName: 'web-stable', servicePort: '8443', weight: 80 },
          ],
          targetGroupStickinessConfig: { enabled: true, durationSeconds: 300 },
        },
      });
    }
    assert.equal(await router.verifyWeight(t, 20), true);
    await router.removeManagedRoutes(t);
    assert.equal(await router.verifyWeight(t, 0), true);
  });

  test('named errors: a missing Ingress (NotFound, non-retryable), an Ingress without the use-annotation backend, one without the Service', async () => {
    const { ns, t } = await setup('alb-bad');
    await assert.rejects(router.setWeight({ ...t, trafficRouting: { alb: { ingress: 'missing', servicePort: 80 } } }, 10), (err: Error & { type?: string; nonRetryable?: boolean }) => {
      assert.equal(err.type, 'NotFound');
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, new RegExp(`Ingress ${ns}/missing not found`));
      return true;
    });
    await createIngress(ns, 'plain', [{ http: { paths: [svcPath('/', 'web-stable', { number: 80 })] } }]);
    const before = await read(ns, 'plain');
    await assert.rejects(
      router.setWeight({ ...t, trafficRouting: { alb: { ingress: 'plain', servicePort: 80 } } }, 10),
      (err: Error & { type?: string }) => err.type === 'InvalidSpec' && /routes service "web-stable" to port 80, not through the action annotation/.test(err.message) && /use-annotation/.test(err.message),
    );
    assert.deepEqual(await read(ns, 'plain'), before, 'nothing written');
    await assert.rejects(router.setWeight({ ...t, stableService: 'nope' }, 10), (err: Error & { type?: string }) => err.type === 'InvalidSpec' && /no path whose backend is service "nope"/.test(err.message));
  });
});
