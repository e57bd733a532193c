/**
 * Source to canary, end to end: the real worker builds a FROM-scratch context with buildah, pushes it
 * to a real registry (Debian docker-registry on loopback), pins the digest, and the canary Deployment
 * on the local control plane runs `repo@sha256:…`, the registry's own Docker-Content-Digest.
 * Needs KUBECONFIG, TEMPORAL_ADDRESS, buildah and docker-registry (npm test provisions them).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { startRegistry, type RegistryInstance } from '../support/registry.ts';
import { cli, connectClient, kube, randomSuffix, startWorker, suiteEnv, tempDir, untilStatus } from './support.ts';

const suffix = randomSuffix();
let env: NodeJS.ProcessEnv;
let registry: RegistryInstance;
let worker: ChildProcess | undefined;
let client: Client;
let apps: AppsV1Api;
let core: CoreV1Api;
let dir: string;
const ns = `e2e-build-${suffix}`;

before(async () => {
  ({ apps, core } = kube());
  registry = await startRegistry();
  dir = await tempDir('build');
  env = suiteEnv(`e2e-build-${suffix}`, { GLIDEPATH_BUILD_ROOT: path.join(dir, 'buildah') });
  client = await connectClient();
  worker = await startWorker(env);
});

after(async () => {
  worker?.kill('SIGTERM');
  await client?.connection.close();
  await registry?.stop();
  await core?.deleteNamespace({ name: ns }).catch(() => {});
});

test('a release from a source context runs its canary on the pinned digest', async () => {
  await core.createNamespace({ body: { metadata: { name: ns } } });
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name: 'web' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'web' } },
        template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: `${registry.host}/e2e/web:v1`, readinessProbe: { httpGet: { path: '/', port: 80 } } }] } },
      },
    },
  });
  const context = path.join(dir, 'src');
  await import('node:fs/promises').then((fs) => fs.mkdir(context, { recursive: true }));
  await writeFile(path.join(context, 'Dockerfile'), 'FROM scratch\nCOPY release.txt /release.txt\n');
  await writeFile(path.join(context, 'release.txt'), `glidepath ${suffix}\n`);
  const spec = path.join(dir, 'release.yaml');
  await writeFile(
    spec,
    `apiVersion: glidepath.dev/v1alpha1
kind: Release
metadata: { name: web, namespace: ${ns} }
spec:
  workloadRef: { kind: Deployment, name: web }
  image: ${registry.host}/e2e/web:v1
  build:
    context: ${context}
    tags: [v2-${suffix}]
    registry: { insecure: true }
  imagePolicy: { requireDigest: true }
  strategy:
    canary:
      steps:
        - setWeight: 50
        - pause: {}
`,
  );
  const id = `release_${ns}_web`;
  const started = await cli(env, ['release', 'start', '-f', spec]);
  assert.equal(started.code, 0, started.stderr);
  const paused = await untilStatus(client, id, (s) => s.phase === 'Paused' || s.phase === 'Failed' || s.phase === 'RolledBack', 'canary at 50%', 180_000);
  assert.equal(paused.phase, 'Paused', paused.message);

  const head = await fetch(`${registry.url}/v2/e2e/web/manifests/v2-${suffix}`, {
    method: 'HEAD',
    headers: { Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  const digest = head.headers.get('docker-content-digest');
  assert.match(String(digest), /^sha256:[a-f0-9]{64}$/);
  const pinned = `${registry.host}/e2e/web@${digest}`;
  assert.equal(paused.canaryImage, pinned, 'the release carries the pinned digest');
  const canary = await apps.readNamespacedDeployment({ name: 'web-canary', namespace: ns });
  assert.equal(canary.spec?.template.spec?.containers[0]?.image, pinned, 'the canary runs the digest the registry reports');
  assert.equal(canary.status?.availableReplicas, 1);
  const stable = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
  assert.equal(stable.spec?.template.spec?.containers[0]?.image, `${registry.host}/e2e/web:v1`);

  assert.equal((await cli(env, ['release', 'abort', id, '--as', 'oncall'])).code, 0);
  await untilStatus(client, id, (s) => s.phase === 'Aborted', 'aborted');
  await cli(env, ['release', 'abort', id, '--as', 'oncall']);
});
