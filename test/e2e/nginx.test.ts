/**
 * End to end with the NGINX router (`trafficRouting.nginx`): the Temporal dev server, the real worker
 * process (workers/main.ts, the nginx router from workers/deps.ts) and the local control plane. No
 * ingress controller runs: the canary Ingress ingress-nginx would read is checked at every pause, after
 * a header route step, after promotion and after an abort; the stable Ingress is never written.
 * Needs KUBECONFIG and TEMPORAL_ADDRESS.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { AppsV1Api, CoreV1Api, NetworkingV1Api } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { cli as runCli, connectClient, imageOf, kube, managedRoutesLine, randomSuffix, routedCanary, startWorker, suiteEnv, tempDir, untilStatus, waitAvailable, webNamespace, writeRelease, teardown } from './support.ts';
import type { ReleaseStatus } from '../../workflows/messages.ts';

const suffix = randomSuffix();
const env = suiteEnv(`e2e-nginx-${suffix}`);
const P = 'nginx.ingress.kubernetes.io';
const CANARY = 'web-web-canary'; // <workload>-<stableIngress>-canary

let apps: AppsV1Api;
let core: CoreV1Api;
let net: NetworkingV1Api;
let client: Client;
let worker: ChildProcess | undefined;
let dir: string;
const namespaces: string[] = [];

const cli = (args: string[]) => runCli(env, args);
const until = (id: string, pred: (s: ReleaseStatus) => boolean, what: string) => untilStatus(client, id, pred, what);

/** A namespace with Deployment `web`, Services web-stable/web-canary and the stable Ingress `web`. */
async function setup(name: string): Promise<string> {
  const ns = `e2e-${name}-${suffix}`;
  namespaces.push(ns);
  await webNamespace({ apps, core }, ns, ['web-stable', 'web-canary']);
  await net.createNamespacedIngress({
    namespace: ns,
    body: {
      metadata: { name: 'web', annotations: { 'kubernetes.io/ingress.class': 'nginx' } },
      spec: { rules: [{ host: 'web.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web-stable', port: { number: 80 } } } }] } }] },
    },
  });
  await waitAvailable(apps, ns);
  return ns;
}

const spec = (ns: string, steps: string, managedRoutes: string[] = []): Promise<string> =>
  writeRelease(dir, ns, routedCanary(`        nginx: { stableIngress: web }\n${managedRoutesLine(managedRoutes)}`, steps));

const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const annotations = async (ns: string): Promise<Record<string, string>> => (await net.readNamespacedIngress({ namespace: ns, name: CANARY })).metadata?.annotations ?? {};
const stableIngress = async (ns: string) => plain(await net.readNamespacedIngress({ namespace: ns, name: 'web' }));

before(async () => {
  ({ apps, core, net } = kube());
  dir = await tempDir('nginx');
  client = await connectClient();
  worker = await startWorker(env);
});

after(() => teardown({ worker, client, core, namespaces }));

describe('releases with trafficRouting.nginx through the real worker', () => {
  test('10 % with a header route, then 50 %: the canary Ingress at every pause; promoted → weight 0, header gone; stable Ingress never written', async () => {
    const ns = await setup('nginx');
    const before = await stableIngress(ns);
    const file = await spec(
      ns,
      `        - setWeight: 10
        - setHeaderRoute: { name: beta, match: [ { headerName: X-Beta, headerValue: { exact: "yes" } } ] }
        - pause: {}
        - setWeight: 50
        - pause: {}
`,
      ['beta'],
    );
    const id = `release_${ns}_web`;
    const started = await cli(['release', 'start', '-f', file]);
    assert.equal(started.code, 0, started.stdout + started.stderr);

    await until(id, (s) => s.phase === 'Paused' && s.step.index === 2, 'pause after the header route');
    let a = await annotations(ns);
    assert.equal(a[`${P}/canary`], 'true');
    assert.equal(a[`${P}/canary-weight`], '10');
    assert.equal(a[`${P}/canary-by-header`], 'X-Beta');
    assert.equal(a[`${P}/canary-by-header-value`], 'yes');
    assert.deepEqual(await stableIngress(ns), before);

    assert.equal((await cli(['release', 'promote', id, '--as', 'alice'])).code, 0);
    await until(id, (s) => s.phase === 'Paused' && s.step.index === 4, 'pause at 50 %');
    a = await annotations(ns);
    assert.equal(a[`${P}/canary-weight`], '50');
    assert.equal(a[`${P}/canary-by-header`], 'X-Beta', 'the header route stays across setWeight');

    assert.equal((await cli(['release', 'promote', id, '--as', 'alice'])).code, 0);
    assert.equal((await cli(['release', 'watch', id, '--timeout', '120s'])).code, 0);
    a = await annotations(ns);
    assert.equal(a[`${P}/canary-weight`], '0', 'after promotion all traffic to stable');
    assert.equal(a[`${P}/canary-by-header`], undefined);
    assert.equal(a['glidepath.dev/managed-routes'], undefined);
    assert.deepEqual(await stableIngress(ns), before);
    assert.equal(imageOf(await apps.readNamespacedDeployment({ name: 'web', namespace: ns })), 'registry.local/web:v2');
  });

  test('abort at 50 %: canary Ingress back to weight 0', async () => {
    const ns = await setup('nginx-abort');
    const before = await stableIngress(ns);
    const file = await spec(ns, `        - setWeight: 50\n        - pause: {}\n        - setWeight: 100\n`);
    const id = `release_${ns}_web`;
    assert.equal((await cli(['release', 'start', '-f', file])).code, 0);
    await until(id, (s) => s.phase === 'Paused', 'paused at 50 %');
    assert.equal((await annotations(ns))[`${P}/canary-weight`], '50');
    assert.equal((await cli(['release', 'abort', id, '--as', 'oncall', '--reason', 'test'])).code, 0);
    await until(id, (s) => s.phase === 'Aborted', 'aborted');
    assert.equal((await annotations(ns))[`${P}/canary-weight`], '0');
    assert.deepEqual(await stableIngress(ns), before);
    await cli(['release', 'abort', id, '--as', 'oncall']); // closes the retry window
  });

  test('a mirror step cannot be served by nginx: release start refuses it (exit 2), nothing is created', async () => {
    const ns = await setup('nginx-refused');
    const file = await spec(ns, `        - setWeight: 20\n        - setMirrorRoute: { name: m, match: [ { path: { prefix: /api } } ] }\n`, ['m']);
    const started = await cli(['release', 'start', '-f', file]);
    assert.equal(started.code, 2, started.stdout + started.stderr);
    assert.match(started.stderr, /setMirrorRoute cannot be served by the nginx router/);
    await assert.rejects(net.readNamespacedIngress({ namespace: ns, name: CANARY }), (err: { code?: number }) => err.code === 404, 'no canary Ingress was created');
  });
});
