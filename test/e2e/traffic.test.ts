/**
 * End to end with a traffic router: the Temporal dev server, the real worker process
 * (`workers/main.ts`, real Kubernetes activities and the Istio router from workers/deps.ts) and the
 * local control plane with Istio's CRDs. The VirtualService is read from the apiserver at every
 * pause (10/25/50/100), after promotion and after an abort. Needs KUBECONFIG and TEMPORAL_ADDRESS.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { cli as runCli, connectClient, kube, managedRoutesLine, randomSuffix, routedCanary, startWorker as startSuiteWorker, suiteEnv, tempDir, untilStatus, waitAvailable, webNamespace, writeRelease, teardown } from './support.ts';
import type { ReleaseStatus } from '../../workflows/messages.ts';

const suffix = randomSuffix();
const env = suiteEnv(`e2e-traffic-${suffix}`);
const G = { group: 'networking.istio.io', version: 'v1' };
const HAND_ROUTE = { name: 'admin', match: [{ uri: { prefix: '/admin' } }], route: [{ destination: { host: 'admin-svc' } }] };

let apps: AppsV1Api;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let client: Client;
let worker: ChildProcess | undefined;
let dir: string;
const namespaces: string[] = [];

const startWorker = () => startSuiteWorker(env);
const cli = (args: string[]) => runCli(env, args);
const until = (id: string, pred: (s: ReleaseStatus) => boolean, what: string, timeoutMs?: number) => untilStatus(client, id, pred, what, timeoutMs);

/** A namespace with Deployment `web` (4 replicas, v1), Services web-stable/web-canary and a VirtualService. */
async function setup(name: string): Promise<string> {
  const ns = `e2e-${name}-${suffix}`;
  namespaces.push(ns);
  await webNamespace({ apps, core }, ns, ['web-stable', 'web-canary']);
  await custom.createNamespacedCustomObject({
    ...G,
    namespace: ns,
    plural: 'virtualservices',
    body: {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'web' },
      spec: { hosts: ['web'], http: [HAND_ROUTE, { name: 'primary', route: [{ destination: { host: 'web-stable' }, weight: 100 }, { destination: { host: 'web-canary' }, weight: 0 }] }] },
    },
  });
  await waitAvailable(apps, ns);
  return ns;
}

const spec = (ns: string, steps: string, managedRoutes: string[] = []): Promise<string> =>
  writeRelease(dir, ns, routedCanary(`        istio:\n          virtualService: { name: web, routes: [primary] }\n${managedRoutesLine(managedRoutes)}`, steps));

async function vs(ns: string): Promise<{ weights: [number | undefined, number | undefined]; hand: unknown }> {
  const obj = (await custom.getNamespacedCustomObject({ ...G, namespace: ns, plural: 'virtualservices', name: 'web' })) as {
    spec: { http: { name: string; route: { weight?: number }[] }[] };
  };
  const primary = obj.spec.http.find((r) => r.name === 'primary');
  return { weights: [primary?.route[0]?.weight, primary?.route[1]?.weight], hand: obj.spec.http.find((r) => r.name === 'admin') };
}

before(async () => {
  ({ apps, core, custom } = kube());
  dir = await tempDir('traffic');
  client = await connectClient();
  worker = await startWorker();
});

after(() => teardown({ worker, client, core, namespaces }));

describe('releases with trafficRouting.istio through the real worker', () => {
  test('10/25/50/100 with pauses: VirtualService weights at every pause; promoted → 100/0, hand route intact', async () => {
    const ns = await setup('istio');
    const file = await spec(ns, [10, 25, 50, 100].map((w) => `        - setWeight: ${w}\n        - pause: {}\n`).join(''));
    const id = `release_${ns}_web`;
    const started = await cli(['release', 'start', '-f', file]);
    assert.equal(started.code, 0, started.stdout + started.stderr);
    for (const [i, weight] of [10, 25, 50, 100].entries()) {
      await until(id, (s) => s.phase === 'Paused' && s.step.index === i * 2 + 1, `pause after ${weight}%`);
      const now = await vs(ns);
      assert.deepEqual(now.weights, [100 - weight, weight], `VirtualService at ${weight}%`);
      assert.deepEqual(now.hand, HAND_ROUTE);
      assert.equal((await cli(['release', 'promote', id, '--as', 'alice'])).code, 0);
    }
    assert.equal((await cli(['release', 'watch', id, '--timeout', '120s'])).code, 0);
    const done = await vs(ns);
    assert.deepEqual(done.weights, [100, 0], 'after promotion all traffic to stable');
    assert.deepEqual(done.hand, HAND_ROUTE);
    const stable = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    assert.equal(stable.spec?.template.spec?.containers[0]?.image, 'registry.local/web:v2');
  });

  test('abort at 50%: VirtualService back to 100/0', async () => {
    const ns = await setup('istio-abort');
    const file = await spec(ns, `        - setWeight: 50\n        - pause: {}\n        - setWeight: 100\n`);
    const id = `release_${ns}_web`;
    assert.equal((await cli(['release', 'start', '-f', file])).code, 0);
    await until(id, (s) => s.phase === 'Paused', 'paused at 50%');
    assert.deepEqual((await vs(ns)).weights, [50, 50]);
    assert.equal((await cli(['release', 'abort', id, '--as', 'oncall', '--reason', 'test'])).code, 0);
    await until(id, (s) => s.phase === 'Aborted', 'aborted');
    assert.deepEqual((await vs(ns)).weights, [100, 0]);
    assert.deepEqual((await vs(ns)).hand, HAND_ROUTE);
    await cli(['release', 'abort', id, '--as', 'oncall']);
  });

  test('header and mirror routes: set by their steps on the VirtualService, removed on promotion; the hand route never changes', async () => {
    const ns = await setup('istio-routes');
    const file = await spec(
      ns,
      `        - setWeight: 20
        - setHeaderRoute: { name: canary-header, match: [ { headerName: X-Canary, headerValue: { exact: "yes" } } ] }
        - setMirrorRoute: { name: mirror-api, percentage: 30, match: [ { method: { exact: GET }, path: { prefix: /api } } ] }
        - pause: {}
        - setHeaderRoute: { name: canary-header }
        - pause: {}
`,
      ['canary-header', 'mirror-api'],
    );
    const id = `release_${ns}_web`;
    const started = await cli(['release', 'start', '-f', file]);
    assert.equal(started.code, 0, started.stdout + started.stderr);
    const paused = await until(id, (s) => s.phase === 'Paused' && s.step.index === 3, 'pause after the routes');
    assert.deepEqual(paused.managedRoutes?.map((r) => r.name), ['canary-header', 'mirror-api']);
    const shown = await cli(['release', 'status', id]);
    assert.match(shown.stdout, /header route canary-header: X-Canary "yes" \(step 2\)/);
    assert.match(shown.stdout, /mirror route mirror-api: 30% of method "GET" and path prefix "\/api" \(step 3\)/);
    type Http = { name: string; match?: unknown[]; route?: { destination: { host: string }; weight?: number }[]; mirror?: { host: string }; mirrorPercentage?: { value: number } };
    const read = async () =>
      (await custom.getNamespacedCustomObject({ ...G, namespace: ns, plural: 'virtualservices', name: 'web' })) as { metadata: { annotations?: Record<string, string> }; spec: { http: Http[] } };
    let obj = await read();
    const byName = (n: string) => obj.spec.http.find((r) => r.name === n);
    assert.deepEqual(byName('canary-header')?.match, [{ headers: { 'X-Canary': { exact: 'yes' } } }]);
    assert.deepEqual(byName('canary-header')?.route, [{ destination: { host: 'web-canary' }, weight: 100 }]);
    assert.deepEqual(byName('mirror-api')?.match, [{ method: { exact: 'GET' }, uri: { prefix: '/api' } }]);
    assert.deepEqual(byName('mirror-api')?.mirror, { host: 'web-canary' });
    assert.deepEqual(byName('mirror-api')?.mirrorPercentage, { value: 30 });
    assert.deepEqual(byName('admin'), HAND_ROUTE);
    assert.deepEqual((await vs(ns)).weights, [80, 20]);

    assert.equal((await cli(['release', 'promote', id, '--as', 'alice'])).code, 0);
    await until(id, (s) => s.phase === 'Paused' && s.step.index === 5, 'pause after the header route went');
    obj = await read();
    assert.equal(byName('canary-header'), undefined, 'the empty-match step removed the header route');
    assert.ok(byName('mirror-api'), 'the mirror route is still in place');

    assert.equal((await cli(['release', 'promote', id, '--as', 'alice'])).code, 0);
    assert.equal((await cli(['release', 'watch', id, '--timeout', '120s'])).code, 0);
    obj = await read();
    assert.deepEqual(obj.spec.http.map((r) => r.name), ['admin', 'primary'], 'managed routes gone after promotion');
    assert.equal(obj.metadata.annotations?.['glidepath.dev/managed-routes'], undefined);
    assert.deepEqual((await vs(ns)).weights, [100, 0]);
  });

  test('a step naming a route not in managedRoutes is refused by release start, before anything runs', async () => {
    const ns = await setup('istio-refused');
    const file = await spec(ns, `        - setWeight: 20\n        - setHeaderRoute: { name: unlisted, match: [ { headerName: X-A, headerValue: { exact: b } } ] }\n`, ['canary-header']);
    const started = await cli(['release', 'start', '-f', file]);
    assert.equal(started.code, 2, started.stdout + started.stderr); // invalid input: nothing starts
    assert.match(started.stderr, /steps\[1\]\.setHeaderRoute: setHeaderRoute "unlisted" is not listed in trafficRouting\.managedRoutes \("canary-header"\)/);
    await assert.rejects(client.workflow.getHandle(`release_${ns}_web`).describe(), /not found/i, 'no workflow was started');
    const canary = await apps.readNamespacedDeployment({ name: 'web-canary', namespace: ns }).then(() => true, () => false);
    assert.equal(canary, false, 'no canary Deployment was created');
  });
});
