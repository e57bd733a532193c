/**
 * End to end with the Gateway API router (`trafficRouting.plugins["argoproj-labs/gatewayAPI"]`): the
 * Temporal dev server, the real worker process (workers/main.ts) and the local control plane with
 * the Gateway API CRDs. The HTTPRoute is read from the apiserver at every pause, after a header
 * route step, after promotion and after an abort; a rule a user added by hand never changes.
 * Needs KUBECONFIG and TEMPORAL_ADDRESS.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { cli as runCli, connectClient, imageOf, findDeployment, kube, randomSuffix, routedCanary, startWorker, suiteEnv, tempDir, untilStatus, waitAvailable, webNamespace, writeRelease, teardown } from './support.ts';
import type { ReleaseStatus } from '../../workflows/messages.ts';
import { createHttpRoute } from '../support/gateway-api.ts';

const suffix = randomSuffix();
const env = suiteEnv(`e2e-gateway-${suffix}`);
const G = { group: 'gateway.networking.k8s.io', version: 'v1' };
const HAND_RULE = { matches: [{ path: { type: 'PathPrefix', value: '/admin' } }], backendRefs: [{ group: '', kind: 'Service', name: 'admin', port: 80, weight: 1 }] };

interface Rule {
  name?: string;
  matches?: unknown[];
  backendRefs?: { name: string; weight?: number }[];
}

let apps: AppsV1Api;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let client: Client;
let worker: ChildProcess | undefined;
let dir: string;
const namespaces: string[] = [];

const cli = (args: string[]) => runCli(env, args);
const until = (id: string, pred: (s: ReleaseStatus) => boolean, what: string) => untilStatus(client, id, pred, what);

/** A namespace with Deployment `web` (4 replicas, v1), Services web-stable/web-canary/admin and HTTPRoute `web`. */
async function setup(name: string): Promise<string> {
  const ns = `e2e-${name}-${suffix}`;
  namespaces.push(ns);
  await webNamespace({ apps, core }, ns, ['web-stable', 'web-canary']);
  await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'admin' }, spec: { selector: { app: 'admin' }, ports: [{ port: 80 }] } } });
  await createHttpRoute(custom, ns, 'web', {
    parentRefs: [{ name: 'edge' }],
    rules: [HAND_RULE, { backendRefs: [{ group: '', kind: 'Service', name: 'web-stable', port: 80, weight: 100 }, { group: '', kind: 'Service', name: 'web-canary', port: 80, weight: 0 }] }],
  });
  await waitAvailable(apps, ns);
  return ns;
}

const ROUTING = `        managedRoutes: [ { name: canary-header } ]
        plugins:
          argoproj-labs/gatewayAPI: { httpRoute: web }
`;
const spec = (ns: string, steps: string): Promise<string> => writeRelease(dir, ns, routedCanary(ROUTING, steps));

async function route(ns: string): Promise<{ rules: Rule[]; weights: [number | undefined, number | undefined]; annotations: Record<string, string> }> {
  const obj = (await custom.getNamespacedCustomObject({ ...G, namespace: ns, plural: 'httproutes', name: 'web' })) as { metadata: { annotations?: Record<string, string> }; spec: { rules: Rule[] } };
  const weighted = obj.spec.rules.find((r) => r.backendRefs?.some((b) => b.name === 'web-stable'));
  const w = (n: string) => weighted?.backendRefs?.find((b) => b.name === n)?.weight;
  return { rules: obj.spec.rules, weights: [w('web-stable'), w('web-canary')], annotations: obj.metadata.annotations ?? {} };
}

/** The rule a user added by hand, as the apiserver returns it (it may default fields, so compare what we wrote). */
function handRule(rules: Rule[]): Rule | undefined {
  return rules.find((r) => JSON.stringify(r.matches ?? []).includes('/admin'));
}

before(async () => {
  ({ apps, core, custom } = kube());
  dir = await tempDir('gateway');
  client = await connectClient();
  worker = await startWorker(env);
});

after(() => teardown({ worker, client, core, namespaces }));

describe('releases with the Gateway API router through the real worker', () => {
  test('10/50 with a header route: HTTPRoute weights and the managed rule at every pause; promoted → 100/0, managed rule gone, hand rule intact', async () => {
    const ns = await setup('gw');
    const file = await spec(
      ns,
      `        - setWeight: 10
        - setHeaderRoute: { name: canary-header, match: [ { headerName: X-Canary, headerValue: { exact: "yes" } } ] }
        - pause: {}
        - setWeight: 50
        - pause: {}
`,
    );
    const id = `release_${ns}_web`;
    const started = await cli(['release', 'start', '-f', file]);
    assert.equal(started.code, 0, started.stdout + started.stderr);
    const hand = handRule((await route(ns)).rules);
    assert.ok(hand, 'the hand rule exists before the release');

    await until(id, (s) => s.phase === 'Paused' && s.step.index === 2, 'pause after 10% and the header route');
    let now = await route(ns);
    assert.deepEqual(now.weights, [90, 10]);
    const managed = now.rules[0];
    assert.equal(managed?.name, 'canary-header', 'the header rule is first');
    assert.deepEqual(managed?.matches, [{ path: { type: 'PathPrefix', value: '/' }, headers: [{ type: 'Exact', name: 'X-Canary', value: 'yes' }] }]);
    assert.deepEqual(managed?.backendRefs?.map((b) => [b.name, b.weight]), [['web-canary', 1]]);
    assert.equal(now.annotations['glidepath.dev/managed-routes'], '["canary-header"]');
    assert.deepEqual(handRule(now.rules), hand);

    assert.equal((await cli(['release', 'promote', id, '--as', 'alice'])).code, 0);
    await until(id, (s) => s.phase === 'Paused' && s.step.index === 4, 'pause after 50%');
    now = await route(ns);
    assert.deepEqual(now.weights, [50, 50]);
    assert.equal(now.rules[0]?.name, 'canary-header');

    assert.equal((await cli(['release', 'promote', id, '--as', 'alice'])).code, 0);
    assert.equal((await cli(['release', 'watch', id, '--timeout', '120s'])).code, 0);
    now = await route(ns);
    assert.deepEqual(now.weights, [100, 0], 'after promotion all traffic to stable');
    assert.equal(now.rules.length, 2, 'the managed rule is gone');
    assert.equal(now.annotations['glidepath.dev/managed-routes'], undefined);
    assert.deepEqual(handRule(now.rules), hand);
    assert.equal(imageOf(await findDeployment(apps, ns, 'web')), 'registry.local/web:v2');
  });

  test('abort at 50%: HTTPRoute back to 100/0 and the header rule removed', async () => {
    const ns = await setup('gw-abort');
    const file = await spec(
      ns,
      `        - setWeight: 50
        - setHeaderRoute: { name: canary-header, match: [ { headerName: X-Canary, headerValue: { regex: "^y" } } ] }
        - pause: {}
        - setWeight: 100
`,
    );
    const id = `release_${ns}_web`;
    assert.equal((await cli(['release', 'start', '-f', file])).code, 0);
    await until(id, (s) => s.phase === 'Paused', 'paused at 50%');
    const before = await route(ns);
    assert.deepEqual(before.weights, [50, 50]);
    assert.equal(before.rules[0]?.name, 'canary-header');
    assert.equal((await cli(['release', 'abort', id, '--as', 'oncall', '--reason', 'test'])).code, 0);
    await until(id, (s) => s.phase === 'Aborted', 'aborted');
    const now = await route(ns);
    assert.deepEqual(now.weights, [100, 0]);
    assert.equal(now.rules.some((r) => r.name === 'canary-header'), false);
    assert.deepEqual(handRule(now.rules), handRule(before.rules));
    assert.equal(await findDeployment(apps, ns, 'web-canary'), undefined, 'the canary Deployment is gone');
    await cli(['release', 'abort', id, '--as', 'oncall']);
  });
});
