/**
 * End to end with the AWS Load Balancer Controller router (`trafficRouting.alb`) and the SMI router
 * (`trafficRouting.smi`): the Temporal dev server, the real worker process (workers/main.ts, the routers
 * from workers/deps.ts) and the local control plane with the TrafficSplit CRD. No load balancer
 * controller or mesh runs: the Ingress annotations and paths the controller would read, and the
 * TrafficSplit a mesh would read, are checked at every pause, after promotion and after an abort; what
 * a user wrote by hand (annotations, paths, a backend, labels) survives every step.
 * Needs KUBECONFIG and TEMPORAL_ADDRESS.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { AppsV1Api, CoreV1Api, CustomObjectsApi, NetworkingV1Api, V1HTTPIngressPath, V1Ingress } from '@kubernetes/client-node';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { cli as runCli, connectClient, findDeployment, imageOf, kube, managedRoutesLine, randomSuffix, routedCanary, startWorker, suiteEnv, tempDir, untilStatus, waitAvailable, webNamespace, writeRelease, teardown } from './support.ts';
import { statusQuery, type ReleaseStatus } from '../../workflows/messages.ts';

const suffix = randomSuffix();
const env = suiteEnv(`e2e-alb-smi-${suffix}`);
const P = 'alb.ingress.kubernetes.io';
const MANAGED = 'glidepath.dev/managed-routes';
const S = { group: 'split.smi-spec.io', version: 'v1alpha2', plural: 'trafficsplits' };

let apps: AppsV1Api;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let net: NetworkingV1Api;
let client: Client;
let worker: ChildProcess | undefined;
let dir: string;
const namespaces: string[] = [];

const cli = (args: string[]) => runCli(env, args);
const until = (id: string, pred: (s: ReleaseStatus) => boolean, what: string) => untilStatus(client, id, pred, what);
const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

async function start(file: string): Promise<string> {
  const started = await cli(['release', 'start', '-f', file]);
  assert.equal(started.code, 0, started.stdout + started.stderr);
  return started.stdout;
}

async function promote(id: string): Promise<void> {
  const r = await cli(['release', 'promote', id, '--as', 'alice']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
}

async function abort(id: string): Promise<void> {
  const r = await cli(['release', 'abort', id, '--as', 'oncall', '--reason', 'e2e abort']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  await until(id, (s) => s.phase === 'Aborted', 'aborted');
}

/** A second abort closes an aborted release without waiting for its retry window (docs/spec.md); resolves once the run has closed (failed, as Aborted). */
async function close(id: string): Promise<void> {
  const r = await cli(['release', 'abort', id, '--as', 'oncall']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  await assert.rejects(client.workflow.getHandle(id).result(), (err: unknown) => err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure && err.cause.type === 'Aborted');
}

async function watchToEnd(id: string): Promise<void> {
  const r = await cli(['release', 'watch', id, '--timeout', '120s']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
}

// ---- ALB ---------------------------------------------------------------------------------------

/** The user's own annotations on the Ingress: the router must never touch them. */
const USER_ANNOTATIONS = { 'kubernetes.io/ingress.class': 'alb', [`${P}/scheme`]: 'internet-facing', 'example.com/owner': 'team-web' };
const HAND_PATH = { path: '/admin', pathType: 'Prefix', backend: { service: { name: 'admin', port: { number: 80 } } } };
const HEADER = 'canary-header';

/**
 * A namespace with Deployment `web`, Services web-stable/web-canary (and `action`, when it is a
 * rootService) and Ingress `web` routing `/` to the `action` Service through `use-annotation`; then a
 * path `/admin` added by hand (a replace, as `kubectl edit` would) before the release starts.
 */
async function albSetup(name: string, action: string): Promise<string> {
  const ns = `e2e-${name}-${suffix}`;
  namespaces.push(ns);
  await webNamespace({ apps, core }, ns, [...new Set(['web-stable', 'web-canary', action])]);
  await net.createNamespacedIngress({
    namespace: ns,
    body: {
      metadata: { name: 'web', annotations: { ...USER_ANNOTATIONS } },
      spec: { rules: [{ host: 'web.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: action, port: { name: 'use-annotation' } } } }] } }] },
    },
  });
  const ing = await net.readNamespacedIngress({ namespace: ns, name: 'web' });
  ing.spec?.rules?.[0]?.http?.paths.push(HAND_PATH);
  await net.replaceNamespacedIngress({ namespace: ns, name: 'web', body: ing });
  await waitAvailable(apps, ns);
  return ns;
}

const albSpec = (ns: string, block: string, steps: string): Promise<string> => writeRelease(dir, ns, routedCanary(`${managedRoutesLine([HEADER])}        alb: ${block}\n`, steps));

const readIngress = async (ns: string): Promise<V1Ingress> => plain(await net.readNamespacedIngress({ namespace: ns, name: 'web' }));

/** The forward action `actions.<action>` parsed, and [stable, canary] weights by service name. */
function forward(ing: V1Ingress, action: string): { json: unknown; weights: [number | undefined, number | undefined] } {
  const raw = ing.metadata?.annotations?.[`${P}/actions.${action}`];
  assert.ok(raw, `annotation ${P}/actions.${action} is set`);
  const json = JSON.parse(raw) as { type: string; forwardConfig: { targetGroups: { serviceName: string; servicePort: string; weight: number }[] } };
  assert.equal(json.type, 'forward');
  const w = (svc: string) => json.forwardConfig.targetGroups.find((g) => g.serviceName === svc)?.weight;
  return { json, weights: [w('web-stable'), w('web-canary')] };
}

const isHeaderPath = (p: V1HTTPIngressPath): boolean => p.backend.service?.name === HEADER;

/** What is the user's: their annotations (given keys) and every path the router did not add. */
function userParts(ing: V1Ingress, keys: string[]): unknown {
  const a = ing.metadata?.annotations ?? {};
  return {
    annotations: Object.fromEntries(keys.map((k) => [k, a[k]])),
    rules: ing.spec?.rules?.map((r) => ({ host: r.host, paths: r.http?.paths.filter((p) => !isHeaderPath(p)) })),
  };
}

/** The header route's annotations and path, as Argo writes them, are in place. */
function assertHeaderRoute(ing: V1Ingress): void {
  const a = ing.metadata?.annotations ?? {};
  assert.deepEqual(JSON.parse(a[`${P}/actions.${HEADER}`] ?? 'null'), { type: 'forward', forwardConfig: { targetGroups: [{ serviceName: 'web-canary', servicePort: '80', weight: 100 }] } });
  assert.deepEqual(JSON.parse(a[`${P}/conditions.${HEADER}`] ?? 'null'), [
    { field: 'http-header', httpHeaderConfig: { httpHeaderName: 'X-Canary', values: ['yes'] } },
    { field: 'http-header', httpHeaderConfig: { httpHeaderName: 'X-Team', values: ['pay'] } },
  ]);
  assert.equal(a[MANAGED], JSON.stringify([HEADER]));
  assert.deepEqual(ing.spec?.rules?.[0]?.http?.paths[0], { path: '/*', pathType: 'ImplementationSpecific', backend: { service: { name: HEADER, port: { name: 'use-annotation' } } } }, 'the header path is first');
}

/** No trace of the header route: annotations, path, managed-routes bookkeeping. */
function assertNoHeaderRoute(ing: V1Ingress): void {
  const a = ing.metadata?.annotations ?? {};
  assert.equal(a[`${P}/actions.${HEADER}`], undefined);
  assert.equal(a[`${P}/conditions.${HEADER}`], undefined);
  assert.equal(a[MANAGED], undefined);
  assert.equal(ing.spec?.rules?.some((r) => r.http?.paths.some(isHeaderPath)), false, 'no path to the header action');
}

const HEADER_STEP = `        - setHeaderRoute: { name: ${HEADER}, match: [ { headerName: X-Canary, headerValue: { exact: "yes" } }, { headerName: X-Team, headerValue: { exact: pay } } ] }\n`;

// ---- SMI ---------------------------------------------------------------------------------------

interface Split {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string };
  spec: { service: string; backends: { service: string; weight: number }[] };
}

async function smiSetup(name: string, extra: string[] = []): Promise<string> {
  const ns = `e2e-${name}-${suffix}`;
  namespaces.push(ns);
  await webNamespace({ apps, core }, ns, ['web-stable', 'web-canary', ...extra]);
  await waitAvailable(apps, ns);
  return ns;
}

const smiSpec = (ns: string, block: string, steps: string): Promise<string> => writeRelease(dir, ns, routedCanary(`        smi: ${block}\n`, steps));

async function readSplit(ns: string, name: string): Promise<Split | undefined> {
  try {
    return (await custom.getNamespacedCustomObject({ ...S, namespace: ns, name })) as Split;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

/** The TrafficSplit with its weights as [stable, canary] by backend service. */
async function split(ns: string, name: string): Promise<{ ts: Split; weights: [number | undefined, number | undefined] }> {
  const ts = await readSplit(ns, name);
  assert.ok(ts, `TrafficSplit ${ns}/${name} exists`);
  const w = (svc: string) => ts.spec.backends.find((b) => b.service === svc)?.weight;
  return { ts, weights: [w('web-stable'), w('web-canary')] };
}

/** Adds, by hand, a backend, a label and an annotation to the TrafficSplit Glidepath created (a replace, as `kubectl edit` would). */
async function handEditSplit(ns: string, name: string): Promise<void> {
  const ts = (await readSplit(ns, name)) as Split;
  ts.metadata.labels = { ...ts.metadata.labels, team: 'payments' };
  ts.metadata.annotations = { ...ts.metadata.annotations, 'example.com/owner': 'alice' };
  ts.spec.backends.push({ service: 'web-shadow', weight: 0 });
  await custom.replaceNamespacedCustomObject({ ...S, namespace: ns, name, body: ts });
}

const handSplitParts = (ts: Split): unknown => ({
  label: ts.metadata.labels?.team,
  annotation: ts.metadata.annotations?.['example.com/owner'],
  extra: ts.spec.backends.filter((b) => b.service === 'web-shadow'),
});

// ---- the suite ---------------------------------------------------------------------------------

before(async () => {
  ({ apps, core, custom, net } = kube());
  dir = await tempDir('alb-smi');
  client = await connectClient();
  worker = await startWorker(env);
});

after(() => teardown({ worker, client, core, namespaces }));

describe('releases with trafficRouting.alb through the real worker', () => {
  test('20 with a header route, then 60: forward-action weights and header annotations at each pause; promoted → 100/0, header gone; user annotations and a hand-added path intact', async () => {
    const ns = await albSetup('alb', 'web-root');
    const file = await albSpec(
      ns,
      '{ ingress: web, servicePort: 80, rootService: web-root }',
      `        - setWeight: 20
${HEADER_STEP}        - pause: {}
        - setWeight: 60
        - pause: {}
`,
    );
    const id = `release_${ns}_web`;
    const keys = Object.keys(USER_ANNOTATIONS);
    const initial = await readIngress(ns);
    assert.deepEqual(initial.spec?.rules?.[0]?.http?.paths[1], HAND_PATH, 'the hand-added path is there before the release');
    const mine = userParts(initial, keys);
    await start(file);

    await until(id, (s) => s.phase === 'Paused' && s.step.index === 2, 'pause after 20 % and the header route');
    let ing = await readIngress(ns);
    let action = forward(ing, 'web-root');
    assert.deepEqual(action.weights, [80, 20]);
    assert.deepEqual(action.json, {
      type: 'forward',
      forwardConfig: {
        targetGroups: [
          { serviceName: 'web-canary', servicePort: '80', weight: 20 },
          { serviceName: 'web-stable', servicePort: '80', weight: 80 },
        ],
      },
    });
    assert.equal(ing.metadata?.annotations?.[`${P}/actions.web-stable`], undefined, 'the action is named after rootService, not stableService');
    assertHeaderRoute(ing);
    assert.deepEqual(userParts(ing, keys), mine, 'user annotations and paths after 20 % and the header route');
    assert.deepEqual((await client.workflow.getHandle(id).query(statusQuery)).managedRoutes?.map((r) => r.name), [HEADER]);

    // While the release is paused, someone adds an annotation of their own by hand.
    const edited = await net.readNamespacedIngress({ namespace: ns, name: 'web' });
    edited.metadata = { ...edited.metadata, annotations: { ...edited.metadata?.annotations, 'example.com/note': 'added-mid-release' } };
    await net.replaceNamespacedIngress({ namespace: ns, name: 'web', body: edited });
    const keys2 = [...keys, 'example.com/note'];
    const mine2 = userParts(await readIngress(ns), keys2);

    await promote(id);
    await until(id, (s) => s.phase === 'Paused' && s.step.index === 4, 'pause at 60 %');
    ing = await readIngress(ns);
    action = forward(ing, 'web-root');
    assert.deepEqual(action.weights, [40, 60]);
    assertHeaderRoute(ing); // setWeight keeps the header route
    assert.deepEqual(userParts(ing, keys2), mine2, 'user annotations (including the mid-release one) and paths at 60 %');

    await promote(id);
    await watchToEnd(id);
    ing = await readIngress(ns);
    assert.deepEqual(forward(ing, 'web-root').weights, [100, 0], 'after promotion all traffic to stable');
    assertNoHeaderRoute(ing);
    assert.deepEqual(userParts(ing, keys2), mine2, 'user annotations and paths after promotion');
    assert.deepEqual(ing.spec?.rules?.[0]?.http?.paths.map((p) => p.path), ['/', '/admin'], 'exactly the user paths remain');
    assert.equal(imageOf(await findDeployment(apps, ns, 'web')), 'registry.local/web:v2');
    assert.equal(await findDeployment(apps, ns, 'web-canary'), undefined, 'the canary Deployment is gone');
    const status = await client.workflow.getHandle(id).query(statusQuery);
    assert.deepEqual(status.managedRoutes ?? [], []);
  });

  test('abort at 60 % with a header route: forward action back to 100/0, header annotations and path gone, user parts intact', async () => {
    const ns = await albSetup('alb-abort', 'web-stable');
    const file = await albSpec(
      ns,
      '{ ingress: web, servicePort: 80 }',
      `        - setWeight: 60
${HEADER_STEP}        - pause: {}
        - setWeight: 100
`,
    );
    const id = `release_${ns}_web`;
    const keys = Object.keys(USER_ANNOTATIONS);
    const mine = userParts(await readIngress(ns), keys);
    await start(file);
    await until(id, (s) => s.phase === 'Paused' && s.step.index === 2, 'paused at 60 %');
    let ing = await readIngress(ns);
    assert.deepEqual(forward(ing, 'web-stable').weights, [40, 60]);
    assertHeaderRoute(ing);
    assert.deepEqual(userParts(ing, keys), mine);

    await abort(id);
    ing = await readIngress(ns);
    assert.deepEqual(forward(ing, 'web-stable').weights, [100, 0], 'after abort all traffic to stable');
    assertNoHeaderRoute(ing);
    assert.deepEqual(userParts(ing, keys), mine, 'user annotations and paths after abort');
    assert.equal(imageOf(await findDeployment(apps, ns, 'web')), 'registry.local/web:v1', 'the stable keeps v1');
    assert.equal(await findDeployment(apps, ns, 'web-canary'), undefined, 'the canary Deployment is gone');
    const aborted = await readIngress(ns);
    await close(id);
    assert.deepEqual((await readIngress(ns)).metadata?.annotations, aborted.metadata?.annotations, 'closing the release leaves the Ingress as the abort left it');
  });
});

describe('releases with trafficRouting.smi through the real worker', () => {
  test('30 → pause → promote: TrafficSplit 70/30 at the pause, 100/0 after promotion; a backend, label and annotation added by hand survive', async () => {
    const ns = await smiSetup('smi');
    const file = await smiSpec(ns, '{}', `        - setWeight: 30\n        - pause: {}\n`);
    const id = `release_${ns}_web`;
    assert.equal(await readSplit(ns, 'web'), undefined, 'no TrafficSplit before the release');
    await start(file);

    await until(id, (s) => s.phase === 'Paused' && s.step.index === 1, 'pause at 30 %');
    let now = await split(ns, 'web');
    assert.deepEqual(now.weights, [70, 30]);
    assert.equal(now.ts.spec.service, 'web-stable', 'rootService defaults to stableService');
    assert.equal(now.ts.spec.backends.length, 2);
    assert.equal(now.ts.metadata.labels?.['app.kubernetes.io/managed-by'], 'glidepath');

    await handEditSplit(ns, 'web');
    const hand = handSplitParts((await split(ns, 'web')).ts);
    assert.deepEqual(hand, { label: 'payments', annotation: 'alice', extra: [{ service: 'web-shadow', weight: 0 }] });

    await promote(id);
    await watchToEnd(id);
    now = await split(ns, 'web');
    assert.deepEqual(now.weights, [100, 0], 'after promotion all traffic to stable');
    assert.equal(now.ts.spec.service, 'web-stable');
    assert.deepEqual(handSplitParts(now.ts), hand, 'the hand-added backend, label and annotation after promotion');
    assert.equal(now.ts.metadata.labels?.['app.kubernetes.io/managed-by'], 'glidepath', "Glidepath's own labels stay");
    assert.equal(imageOf(await findDeployment(apps, ns, 'web')), 'registry.local/web:v2');
    assert.equal(await findDeployment(apps, ns, 'web-canary'), undefined, 'the canary Deployment is gone');
  });

  test('abort at 30 % (rootService, trafficSplitName): TrafficSplit back to 100/0, hand edits intact', async () => {
    const ns = await smiSetup('smi-abort', ['web']);
    const file = await smiSpec(ns, '{ rootService: web, trafficSplitName: web-split }', `        - setWeight: 30\n        - pause: {}\n        - setWeight: 100\n`);
    const id = `release_${ns}_web`;
    await start(file);
    await until(id, (s) => s.phase === 'Paused' && s.step.index === 1, 'paused at 30 %');
    assert.equal(await readSplit(ns, 'web'), undefined, 'trafficSplitName names the object');
    let now = await split(ns, 'web-split');
    assert.deepEqual(now.weights, [70, 30]);
    assert.equal(now.ts.spec.service, 'web', 'spec.service is rootService');
    await handEditSplit(ns, 'web-split');
    const hand = handSplitParts((await split(ns, 'web-split')).ts);

    await abort(id);
    now = await split(ns, 'web-split');
    assert.deepEqual(now.weights, [100, 0], 'after abort all traffic to stable');
    assert.equal(now.ts.spec.service, 'web');
    assert.deepEqual(handSplitParts(now.ts), hand, 'the hand-added backend, label and annotation after abort');
    assert.equal(imageOf(await findDeployment(apps, ns, 'web')), 'registry.local/web:v1', 'the stable keeps v1');
    assert.equal(await findDeployment(apps, ns, 'web-canary'), undefined, 'the canary Deployment is gone');
    await close(id);
    assert.deepEqual((await split(ns, 'web-split')).weights, [100, 0], 'closing the release leaves the TrafficSplit at 100/0');
  });
});
