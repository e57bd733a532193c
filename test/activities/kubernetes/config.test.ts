/**
 * spec.config against the real control plane: the content-hashed copies (immutable, labelled,
 * idempotent), the canary's template on the copies while the stable keeps its own, promotion moving
 * the stable to them, abort leaving (or, after a promotion, putting) the stable back on the old
 * copies, the cleanup deleting only copies no Deployment of the workload uses, and bad references
 * refused naming the field with nothing applied.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { V1Container, V1Deployment } from '@kubernetes/client-node';
import { createKubernetesConfig, createKubernetesWorkload, type Heartbeat } from '../../../activities/kubernetes/index.ts';
import { CONFIG_OF_LABEL, configContentHash } from '../../../activities/kubernetes/config.ts';
import { configSites } from '../../../model/config-template.ts';
import { copyName, type ConfigRef } from '../../../model/config.ts';
import { NEW_IMAGE, STABLE_IMAGE, TestCluster, imageOf, target } from './cluster.ts';

const cluster = new TestCluster();
const heartbeat: Heartbeat = () => undefined;
const workload = createKubernetesWorkload(cluster.kc, { heartbeat, pollIntervalMs: 200 });
const config = createKubernetesConfig(cluster.kc, { heartbeat, pollIntervalMs: 200 });

after(() => cluster.cleanup());

const REFS: ConfigRef[] = [
  { kind: 'ConfigMap', name: 'web-config' },
  { kind: 'Secret', name: 'web-secrets' },
];

/** The app container reads the ConfigMap as env and the Secret by key; the sidecar mounts nothing. */
const containers: V1Container[] = [
  {
    name: 'app',
    image: STABLE_IMAGE,
    readinessProbe: { httpGet: { path: '/healthz', port: 8080 } },
    envFrom: [{ configMapRef: { name: 'web-config' } }],
    env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'web-secrets', key: 'token' } } }],
  },
  { name: 'sidecar', image: 'example/proxy:1' },
];

async function setup(prefix: string): Promise<string> {
  const ns = await cluster.namespace(prefix);
  await cluster.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'web-config' }, data: { GREETING: 'hello' } } });
  await cluster.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'web-secrets' }, stringData: { token: 'token-v1' } } });
  await cluster.stable(ns, { replicas: 2, containers });
  return ns;
}

/** Kind/name of every ConfigMap and Secret a Deployment's template names, sorted. */
function configNames(d: V1Deployment | undefined): string[] {
  const spec = d?.spec?.template?.spec;
  return spec ? configSites(spec).map((s) => `${s.kind}/${s.name}`).sort() : [];
}

async function exists(ns: string, kind: 'ConfigMap' | 'Secret', name: string): Promise<boolean> {
  try {
    await (kind === 'ConfigMap' ? cluster.core.readNamespacedConfigMap({ name, namespace: ns }) : cluster.core.readNamespacedSecret({ name, namespace: ns }));
    return true;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return false;
    throw err;
  }
}

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    assert.equal(err.type, 'InvalidSpec');
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('spec.config', () => {
  test('copies made once, canary on them, promotion moves the stable; a later abort keeps the stable on its copies and the cleanup deletes the unused ones', async () => {
    const ns = await setup('config');
    const t1 = target(ns);
    const { copies } = await config.prepareConfig(t1, REFS);
    assert.equal(copies.length, 2);
    const [cm, secret] = copies;
    assert.match(cm?.copy ?? '', /^web-config-[0-9a-f]{10}$/);
    assert.match(secret?.copy ?? '', /^web-secrets-[0-9a-f]{10}$/);
    assert.equal(cm?.stable, 'web-config', 'the stable used the source');
    const cmCopy = await cluster.core.readNamespacedConfigMap({ name: cm?.copy ?? '', namespace: ns });
    assert.deepEqual(cmCopy.data, { GREETING: 'hello' });
    assert.equal(cmCopy.immutable, true);
    assert.equal(cmCopy.metadata?.labels?.[CONFIG_OF_LABEL], 'web-config');
    const secretCopy = await cluster.core.readNamespacedSecret({ name: secret?.copy ?? '', namespace: ns });
    assert.equal(Buffer.from(secretCopy.data?.token ?? '', 'base64').toString(), 'token-v1');
    assert.deepEqual((await config.prepareConfig(t1, REFS)).copies, copies, 'idempotent: a second run finds the same copies');

    t1.config = copies;
    await workload.ensureCanary(t1);
    await workload.scaleCanaryForWeight(t1, 50);
    const canary = await cluster.deployment(ns, 'web-canary');
    assert.deepEqual(configNames(canary), [`ConfigMap/${cm?.copy}`, `Secret/${secret?.copy}`].sort(), 'the canary points at the copies');
    assert.deepEqual(configNames(await cluster.deployment(ns, 'web')), ['ConfigMap/web-config', 'Secret/web-secrets'], 'the stable keeps its config until promotion');

    await workload.promoteCanary(t1);
    const promoted = await cluster.deployment(ns, 'web');
    assert.equal(imageOf(promoted), NEW_IMAGE);
    assert.deepEqual(configNames(promoted), [`ConfigMap/${cm?.copy}`, `Secret/${secret?.copy}`].sort(), 'promotion moves the stable to the copies');
    assert.equal(await cluster.deployment(ns, 'web-canary'), undefined);
    assert.deepEqual((await config.collectConfig(t1, copies)).deleted, [], 'copies the stable uses stay');

    // The next release changes the config, then aborts: the stable stays on the first copies.
    await cluster.core.replaceNamespacedConfigMap({ name: 'web-config', namespace: ns, body: { metadata: { name: 'web-config' }, data: { GREETING: 'bonjour' } } });
    await cluster.core.replaceNamespacedSecret({ name: 'web-secrets', namespace: ns, body: { metadata: { name: 'web-secrets' }, stringData: { token: 'token-v2' } } });
    const t2 = target(ns, { image: 'example/web:3.0.0' });
    const next = (await config.prepareConfig(t2, REFS)).copies;
    assert.notEqual(next[0]?.copy, cm?.copy, 'new content, new copy');
    assert.equal(next[0]?.stable, cm?.copy, 'the stable uses the first copy');
    t2.config = next;
    await workload.ensureCanary(t2);
    await workload.scaleCanaryForWeight(t2, 50);
    assert.deepEqual(configNames(await cluster.deployment(ns, 'web-canary')), next.map((c) => `${c.kind}/${c.copy}`).sort());
    await workload.abortCanary(t2, NEW_IMAGE);
    const aborted = await cluster.deployment(ns, 'web');
    assert.equal(imageOf(aborted), NEW_IMAGE, 'old image');
    assert.deepEqual(configNames(aborted), [`ConfigMap/${cm?.copy}`, `Secret/${secret?.copy}`].sort(), 'old config');

    const { deleted } = await config.collectConfig(t2, next);
    assert.deepEqual(deleted.sort(), next.map((c) => `${c.kind}/${c.copy}`).sort(), 'the aborted release’s copies go');
    assert.equal(await exists(ns, 'ConfigMap', next[0]?.copy ?? ''), false);
    assert.equal(await exists(ns, 'ConfigMap', cm?.copy ?? ''), true, 'the copy the stable uses stays');
    assert.equal(await exists(ns, 'ConfigMap', 'web-config'), true, 'the source is never deleted');
  });

  test('abort after the stable was promoted puts it back on its old image and old copies; the cleanup then deletes the new ones', async () => {
    const ns = await setup('config-back');
    const t = target(ns);
    await cluster.core.replaceNamespacedConfigMap({ name: 'web-config', namespace: ns, body: { metadata: { name: 'web-config' }, data: { GREETING: 'hola' } } });
    t.config = (await config.prepareConfig(t, REFS)).copies;
    await workload.ensureCanary(t);
    await workload.scaleCanaryForWeight(t, 50);
    await workload.promoteCanary(t, { keepCanary: true }); // the stable is on the new image and copies; the canary still there
    assert.deepEqual(configNames(await cluster.deployment(ns, 'web')), t.config.map((c) => `${c.kind}/${c.copy}`).sort());

    await workload.abortCanary(t, STABLE_IMAGE);
    const back = await cluster.deployment(ns, 'web');
    assert.equal(imageOf(back), STABLE_IMAGE);
    assert.deepEqual(configNames(back), ['ConfigMap/web-config', 'Secret/web-secrets'], 'back on what it used before the release');
    assert.equal((await cluster.rolledOut(ns, 'web')).status?.updatedReplicas, 2);
    const { deleted } = await config.collectConfig(t, t.config);
    assert.deepEqual(deleted.sort(), t.config.map((c) => `${c.kind}/${c.copy}`).sort());
  });

  test('blue/green: the preview runs on the copies, finalize moves the stable to them', async () => {
    const ns = await setup('config-bg');
    await cluster.service(ns, 'web', { app: 'web' });
    const t = target(ns, { strategy: 'blueGreen', activeService: 'web' });
    t.config = (await config.prepareConfig(t, REFS)).copies;
    const copies = t.config.map((c) => `${c.kind}/${c.copy}`).sort();
    await workload.deployPreview(t, undefined);
    assert.deepEqual(configNames(await cluster.deployment(ns, 'web-preview')), copies);
    assert.deepEqual(configNames(await cluster.deployment(ns, 'web')), ['ConfigMap/web-config', 'Secret/web-secrets']);
    await workload.switchActive(t, 'preview');
    await workload.finalizeBlueGreen(t);
    const stable = await cluster.deployment(ns, 'web');
    assert.equal(imageOf(stable), NEW_IMAGE);
    assert.deepEqual(configNames(stable), copies);
  });

  test('a missing source, a source the template does not use, a name taken by another object: refused naming the field, nothing applied', async () => {
    const ns = await setup('config-bad');
    const t = target(ns);
    const copiesNow = async (): Promise<string[]> => {
      const cms = await cluster.core.listNamespacedConfigMap({ namespace: ns, labelSelector: CONFIG_OF_LABEL });
      const secrets = await cluster.core.listNamespacedSecret({ namespace: ns, labelSelector: CONFIG_OF_LABEL });
      return [...cms.items, ...secrets.items].map((o) => o.metadata?.name ?? '');
    };
    await rejects(config.prepareConfig(t, [REFS[0] as ConfigRef, { kind: 'Secret', name: 'absent' }]), /^spec\.config\[1\] \(Secret absent\): not found in namespace/);
    await cluster.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'unused' }, data: { a: '1' } } });
    await rejects(config.prepareConfig(t, [REFS[0] as ConfigRef, { kind: 'ConfigMap', name: 'unused' }]), /^spec\.config\[1\] \(ConfigMap unused\): not used by the pod template of Deployment/);
    const taken = copyName('web-secrets', configContentHash('web', 'Secret', (await cluster.core.readNamespacedSecret({ name: 'web-secrets', namespace: ns }))));
    await cluster.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: taken }, stringData: { other: 'x' } } });
    await rejects(config.prepareConfig(t, REFS), new RegExp(`^spec\\.config\\[1\\] \\(Secret web-secrets\\): Secret ${taken} exists and is not Glidepath's copy`));
    assert.deepEqual(await copiesNow(), [], 'no copy was made for the good reference either');
    assert.deepEqual(configNames(await cluster.deployment(ns, 'web')), ['ConfigMap/web-config', 'Secret/web-secrets']);
  });
});
