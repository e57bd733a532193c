/**
 * `glidepath release start` as a new user meets it, on real parts (the dev server, the real worker,
 * the local control plane): a Deployment without a readiness probe fails the command with the
 * remedy instead of exiting 0, `readinessProbePolicy: warn` lets it run with a warning, versioned
 * names and labels are warned about, a release left Aborted blocks the next start with a message
 * saying how to close it, `--replace` closes it and starts in one call (and refuses a release in
 * progress, naming it), and a blue/green preview that never becomes ready (kwok's
 * `glidepath.local/preview-never-ready`) rolls back with the active Service untouched.
 * Needs KUBECONFIG and TEMPORAL_ADDRESS (npm test provides both).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { cli, connectClient, findDeployment, imageOf, kube, randomSuffix, startWorker, suiteEnv, teardown, tempDir, untilStatus, waitAvailable, webNamespace, writeRelease } from './support.ts';

const suffix = randomSuffix();
const env = suiteEnv(`e2e-start-${suffix}`);
let apps: AppsV1Api;
let core: CoreV1Api;
let client: Client;
let worker: ChildProcess | undefined;
let dir: string;
const namespaces: string[] = [];
const run = (args: string[]) => cli(env, args);

const namespace = async (name: string): Promise<string> => {
  const ns = `e2e-${name}-${suffix}`;
  namespaces.push(ns);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  return ns;
};

/** Deployment `name` (2 replicas, label app=name plus `labels`), with or without a readiness probe. */
async function deployment(ns: string, name: string, opts: { probe: boolean; labels?: Record<string, string> }): Promise<void> {
  const labels = { app: name, ...opts.labels };
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name, labels },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels },
          spec: { containers: [{ name, image: `registry.local/${name}:v1`, ...(opts.probe ? { readinessProbe: { httpGet: { path: '/healthz', port: 8080 } } } : {}) }] },
        },
      },
    },
  });
  await waitAvailable(apps, ns, name, 2);
}

const PAUSED = `  strategy:\n    canary:\n      steps:\n        - setWeight: 50\n        - pause: {}\n`;

before(async () => {
  ({ apps, core } = kube());
  dir = await tempDir('start');
  client = await connectClient();
  worker = await startWorker(env);
});

after(() => teardown({ worker, client, core, namespaces }));

describe('release start checks before it returns', () => {
  test('no readinessProbe: start exits 5 with the failure and both remedies; nothing was changed', async () => {
    const ns = await namespace('noprobe');
    await deployment(ns, 'web', { probe: false });
    const file = await writeRelease(dir, ns, PAUSED);
    const r = await run(['release', 'start', '-f', file]);
    assert.equal(r.code, 5, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`started release_${ns}_web`));
    assert.match(r.stderr, /Failed before it changed anything: .*has no readinessProbe/);
    assert.match(r.stderr, /remedy: add a readinessProbe to the container, or .*readinessProbePolicy: warn/);
    assert.equal(await findDeployment(apps, ns, 'web-canary'), undefined);
    const again = await run(['release', 'start', '-f', file]);
    assert.equal(again.code, 5, 'a failed release does not block the next start');
  });

  test('readinessProbePolicy: warn in the spec: start exits 0 and prints the preflight warning', async () => {
    const ns = await namespace('warnprobe');
    await deployment(ns, 'web', { probe: false });
    const file = await writeRelease(dir, ns, `  readinessProbePolicy: warn\n${PAUSED}`);
    const id = `release_${ns}_web`;
    const r = await run(['release', 'start', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: container web of Deployment .*\/web has no readinessProbe/);
    await untilStatus(client, id, (s) => s.phase === 'Paused', 'paused');
    assert.equal((await run(['release', 'abort', id, '--as', 'oncall'])).code, 0);
  });

  test('a versioned name and version labels are warned about on stderr', async () => {
    const ns = await namespace('versioned');
    await deployment(ns, 'pay-v1', { probe: true, labels: { version: 'v1' } });
    const file = await writeRelease(dir, ns, PAUSED, 'pay-v1');
    const id = `release_${ns}_pay-v1`;
    const r = await run(['release', 'start', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: Deployment .*\/pay-v1 has a version in its name: after promotion it keeps the name and runs registry\.local\/pay-v1:v2/);
    assert.match(r.stderr, /warning: Deployment .*\/pay-v1 carries version labels \(app=pay-v1, version=v1\)/);
    await untilStatus(client, id, (s) => s.phase === 'Paused', 'paused');
    assert.equal((await run(['release', 'abort', id, '--as', 'oncall'])).code, 0);
  });
});

describe('a release that waits for a retry', () => {
  test('blocks the next start with how to close it; --replace closes it and starts; in progress it is refused by name', async () => {
    const ns = await namespace('replace');
    await deployment(ns, 'web', { probe: true });
    const file = await writeRelease(dir, ns, PAUSED);
    const id = `release_${ns}_web`;
    assert.equal((await run(['release', 'start', '-f', file])).code, 0);
    await untilStatus(client, id, (s) => s.phase === 'Paused', 'paused');
    assert.equal((await run(['release', 'abort', id, '--as', 'oncall'])).code, 0);
    await untilStatus(client, id, (s) => s.phase === 'Aborted', 'aborted');

    const blocked = await run(['release', 'start', '-f', file]);
    assert.equal(blocked.code, 1);
    assert.match(blocked.stderr, new RegExp(`${id} .* is Aborted and waits for a retry until its retry window ends; close it with \`glidepath release abort ${id}\`, or start with --replace`));

    const replaced = await run(['release', 'start', '--replace', '-f', file]);
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.match(replaced.stderr, new RegExp(`closed ${id} \\(Aborted\\)`));
    const s = await untilStatus(client, id, (x) => x.phase === 'Paused', 'the new release paused');
    assert.equal(s.attempt, 1);
    assert.ok(s.audit.some((a) => a.action === 'start'));

    const refused = await run(['release', 'start', '--replace', '-f', file]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`--replace closes only a release that has finished .*; ${id} is Paused \\(step 2 of 2 pause\\): abort it first`));
    assert.equal((await untilStatus(client, id, (x) => x.phase === 'Paused', 'still paused')).phase, 'Paused');
    assert.equal((await run(['release', 'abort', id, '--as', 'oncall'])).code, 0);
    await untilStatus(client, id, (x) => x.phase === 'Aborted', 'aborted');
    assert.equal((await run(['release', 'abort', id, '--as', 'oncall'])).code, 0, 'closed');
  });
});

describe('blue/green failure paths on kwok', () => {
  test('a preview that never becomes ready rolls back; the active Service keeps the stable pods', async () => {
    const ns = `e2e-bgstall-${suffix}`;
    namespaces.push(ns);
    await webNamespace({ apps, core }, ns, ['web'], { 'glidepath.local/preview-never-ready': 'true' });
    await waitAvailable(apps, ns);
    assert.equal((await findDeployment(apps, ns, 'web'))?.status?.readyReplicas, 4, 'the annotation leaves stable pods ready');
    const file = await writeRelease(dir, ns, `  progressDeadline: 8s\n  strategy:\n    blueGreen:\n      activeService: web\n      autoPromotionEnabled: false\n`);
    const id = `release_${ns}_web`;
    const r = await run(['release', 'start', '-f', file, '--wait', '--timeout', '90s']);
    assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
    const s = await untilStatus(client, id, (x) => x.phase === 'RolledBack', 'rolled back');
    assert.match(s.message, /deployPreview: .*ProgressDeadlineExceeded/);
    assert.equal(await findDeployment(apps, ns, 'web-preview'), undefined, 'the preview is removed');
    const svc = await core.readNamespacedService({ name: 'web', namespace: ns });
    assert.deepEqual(svc.spec?.selector, { app: 'web' });
    assert.equal(imageOf(await findDeployment(apps, ns, 'web')), 'registry.local/web:v1');
    await run(['release', 'abort', id, '--as', 'oncall']);
  });
});
