/**
 * The blue/green activities against the real control plane: preview, switch (selector read back
 * from the apiserver, and the EndpointSlice controller's view of which pods the Service reaches),
 * switch back, finalize, abort, and each activity run twice.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { DiscoveryV1Api } from '@kubernetes/client-node';
import { createKubernetesWorkload, roleSelector } from '../../../activities/kubernetes/index.ts';
import { NEW_IMAGE, STABLE_IMAGE, TestCluster, eventually, imageOf, stableFingerprint, target } from './cluster.ts';

const cluster = new TestCluster();
const discovery = cluster.kc.makeApiClient(DiscoveryV1Api);
const workload = createKubernetesWorkload(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 });

after(() => cluster.cleanup());

/** Waits until the Service's EndpointSlices list exactly the live pods matching `podSelector`. */
async function endpointsFollow(ns: string, service: string, podSelector: Record<string, string>): Promise<string[]> {
  return eventually(`Service ${service} endpoints to be the pods of ${JSON.stringify(podSelector)}`, async () => {
    const pods = (await cluster.livePods(ns, podSelector)).map((p) => p.metadata?.name ?? '').sort();
    const slices = await discovery.listNamespacedEndpointSlice({ namespace: ns, labelSelector: `kubernetes.io/service-name=${service}` });
    const targets = slices.items.flatMap((s) => (s.endpoints ?? []).map((e) => e.targetRef?.name ?? '')).sort();
    return pods.length > 0 && JSON.stringify(pods) === JSON.stringify(targets) ? targets : undefined;
  });
}

/** The active Service pinned to the stable's own pods: the stable's matchLabels and its ReplicaSet's pod-template-hash (preview pods carry app=web too). */
async function pinnedToStable(ns: string, service = 'web'): Promise<Record<string, string>> {
  const selector = await cluster.serviceSelector(ns, service);
  assert.deepEqual(Object.keys(selector).sort(), ['app', 'pod-template-hash'], `${service} pinned to the stable's ReplicaSet: ${JSON.stringify(selector)}`);
  assert.equal(selector.app, 'web');
  return selector;
}

async function setup(prefix: string): Promise<{ ns: string; t: ReturnType<typeof target> }> {
  const ns = await cluster.namespace(prefix);
  await cluster.stable(ns, { replicas: 3 });
  await cluster.service(ns, 'web', { app: 'web' });
  await cluster.service(ns, 'web-preview', { app: 'web' });
  return { ns, t: target(ns, { strategy: 'blueGreen', activeService: 'web', previewService: 'web-preview' }) };
}

describe('blue/green', () => {
  test('preview, switch to it, switch back, switch again, finalize', async () => {
    const { ns, t } = await setup('bg');
    const stable0 = await cluster.deployment(ns, 'web');
    assert.ok(stable0);
    const previewPods = roleSelector(stable0, 'preview');

    const pre = await workload.preflight(t);
    assert.equal(pre.stableImage, STABLE_IMAGE);
    assert.equal(pre.replicas, 3);

    await workload.deployPreview(t, 1);
    let preview = await cluster.deployment(ns, 'web-preview');
    assert.equal(preview?.spec?.replicas, 1, 'previewReplicaCount');
    assert.equal(preview?.status?.availableReplicas, 1, 'deployPreview waited for it');
    assert.equal(imageOf(preview), NEW_IMAGE);
    assert.equal(preview?.metadata?.labels?.['rollouts.glidepath.dev/role'], 'preview');
    assert.equal(preview?.metadata?.labels?.['app.kubernetes.io/managed-by'], 'glidepath');
    assert.equal(preview?.metadata?.annotations?.['glidepath.dev/release'], t.releaseId);
    assert.deepEqual(await cluster.serviceSelector(ns, 'web-preview'), previewPods, 'preview Service → preview pods');
    const stablePods = await pinnedToStable(ns);
    await endpointsFollow(ns, 'web-preview', previewPods);
    await endpointsFollow(ns, 'web', stablePods);

    await workload.deployPreview(t, undefined); // full size before the switch, as the workflow does
    preview = await cluster.deployment(ns, 'web-preview');
    assert.equal(preview?.spec?.replicas, 3, 'the stable replica count');
    assert.equal(preview?.status?.availableReplicas, 3);

    await workload.switchActive(t, 'preview');
    const active = await cluster.core.readNamespacedService({ name: 'web', namespace: ns });
    assert.deepEqual(active.spec?.selector, previewPods, 'active Service → preview pods (read back)');
    assert.equal(active.metadata?.annotations?.['glidepath.dev/original-selector'], JSON.stringify({ app: 'web' }));
    const reached = await endpointsFollow(ns, 'web', previewPods);
    assert.equal(reached.length, 3);

    await workload.switchActive(t, 'stable');
    const back = await cluster.core.readNamespacedService({ name: 'web', namespace: ns });
    assert.deepEqual(back.spec?.selector, stablePods, 'switched back to the stable pods');
    assert.equal(back.metadata?.annotations?.['glidepath.dev/original-selector'], JSON.stringify({ app: 'web' }), 'its own selector still remembered');
    await endpointsFollow(ns, 'web', stablePods);

    await workload.switchActive(t, 'preview');
    assert.deepEqual(await cluster.serviceSelector(ns, 'web'), previewPods);
    assert.deepEqual(stableFingerprint(await cluster.deployment(ns, 'web')), stableFingerprint(stable0), 'stable untouched until finalize');

    await workload.finalizeBlueGreen(t);
    const stable = await cluster.deployment(ns, 'web');
    assert.equal(imageOf(stable), NEW_IMAGE, 'the user Deployment is the source of truth again, on the new image');
    assert.equal(stable?.spec?.replicas, 3);
    assert.equal(stable?.status?.availableReplicas, 3);
    assert.equal(stable?.status?.updatedReplicas, 3);
    assert.equal(stable?.metadata?.annotations?.['glidepath.dev/previous-image'], STABLE_IMAGE);
    assert.deepEqual(await cluster.serviceSelector(ns, 'web'), { app: 'web' }, 'active → stable pods');
    assert.deepEqual(await cluster.serviceSelector(ns, 'web-preview'), { app: 'web' }, 'preview Service restored');
    assert.deepEqual(await cluster.deploymentNames(ns), ['web'], 'preview removed');
    const finalPods = await cluster.livePods(ns, { app: 'web' });
    assert.ok(finalPods.every((p) => p.spec?.containers.find((c) => c.name === 'app')?.image === NEW_IMAGE));
    await endpointsFollow(ns, 'web', { app: 'web' });
  });

  test('an active Service with a broad selector never reaches preview pods unless switched; its own selector comes back at the end', async () => {
    const ns = await cluster.namespace('bgbroad');
    await cluster.stable(ns, { replicas: 2 });
    await cluster.service(ns, 'web', { tier: 'frontend' }); // preview pods carry tier=frontend too
    const t = target(ns, { strategy: 'blueGreen', activeService: 'web' });
    const stable0 = await cluster.deployment(ns, 'web');
    assert.ok(stable0);
    const previewPods = roleSelector(stable0, 'preview');

    await workload.deployPreview(t, undefined);
    const stablePods = await pinnedToStable(ns);
    await endpointsFollow(ns, 'web', stablePods);
    await workload.switchActive(t, 'preview');
    await endpointsFollow(ns, 'web', previewPods);
    await workload.switchActive(t, 'stable');
    assert.deepEqual(await cluster.serviceSelector(ns, 'web'), stablePods, 'back to the stable pods only, not the broad selector');
    await endpointsFollow(ns, 'web', stablePods);
    await workload.switchActive(t, 'preview');
    await workload.finalizeBlueGreen(t);
    const svc = await cluster.core.readNamespacedService({ name: 'web', namespace: ns });
    assert.deepEqual(svc.spec?.selector, { tier: 'frontend' }, 'its own selector, once no preview pod is left');
    assert.equal(svc.metadata?.annotations?.['glidepath.dev/original-selector'], undefined);
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);

    const t2 = { ...t, releaseId: `${ns}/web-2`, image: 'example/web:3.0.0' };
    await workload.deployPreview(t2, undefined);
    await workload.switchActive(t2, 'preview');
    await workload.abortBlueGreen(t2, NEW_IMAGE);
    assert.deepEqual(await cluster.serviceSelector(ns, 'web'), { tier: 'frontend' });
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);
    await endpointsFollow(ns, 'web', { tier: 'frontend' });
  });

  test('abort after the switch: active back to stable, preview gone, stable untouched', async () => {
    const { ns, t } = await setup('bgabort');
    const stable0 = await cluster.deployment(ns, 'web');
    await workload.deployPreview(t, undefined);
    await workload.switchActive(t, 'preview');
    await workload.switchActive(t, 'stable'); // the workflow switches back first when it had switched
    await workload.abortBlueGreen(t, STABLE_IMAGE);
    assert.deepEqual(await cluster.serviceSelector(ns, 'web'), { app: 'web' });
    assert.deepEqual(await cluster.serviceSelector(ns, 'web-preview'), { app: 'web' });
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);
    assert.deepEqual(stableFingerprint(await cluster.deployment(ns, 'web')), stableFingerprint(stable0));
  });

  test('abort during an interrupted finalize: stable image restored, active on stable, preview gone', async () => {
    const { ns, t } = await setup('bgint');
    await workload.deployPreview(t, undefined);
    await workload.switchActive(t, 'preview');
    // finalize got as far as the stable's image (written in one patch with Glidepath's annotations), then failed;
    // the release rolls back without switching first.
    await cluster.apps.patchNamespacedDeployment({
      name: 'web',
      namespace: ns,
      body: [
        { op: 'replace', path: '/spec/template/spec/containers/0/image', value: NEW_IMAGE },
        { op: 'add', path: '/metadata/annotations', value: { 'glidepath.dev/release': t.releaseId, 'glidepath.dev/previous-image': STABLE_IMAGE } },
      ],
    });
    await workload.abortBlueGreen(t, STABLE_IMAGE);
    const s = await cluster.deployment(ns, 'web');
    assert.equal(imageOf(s), STABLE_IMAGE);
    assert.equal(s?.spec?.replicas, 3);
    assert.equal(s?.status?.updatedReplicas, 3);
    assert.deepEqual(await cluster.serviceSelector(ns, 'web'), { app: 'web' });
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);
  });

  test('switching to a preview that does not exist is a named NotFound; abort with nothing deployed writes nothing', async () => {
    const { ns, t } = await setup('bgnone');
    await assert.rejects(workload.switchActive(t, 'preview'), (e: Error & { type?: string; nonRetryable?: boolean }) => {
      assert.equal(e.type, 'NotFound');
      assert.equal(e.nonRetryable, true);
      assert.match(e.message, new RegExp(`${ns}/web-preview`));
      return true;
    });
    const before = await cluster.deployment(ns, 'web');
    const svc = await cluster.core.readNamespacedService({ name: 'web', namespace: ns });
    await workload.switchActive(t, 'stable');
    await workload.abortBlueGreen(t, STABLE_IMAGE);
    assert.equal((await cluster.deployment(ns, 'web'))?.metadata?.resourceVersion, before?.metadata?.resourceVersion);
    assert.equal((await cluster.core.readNamespacedService({ name: 'web', namespace: ns })).metadata?.resourceVersion, svc.metadata?.resourceVersion);
  });

  test('idempotency: every blue/green activity run twice gives the same end state and no duplicate objects', async () => {
    const { ns, t } = await setup('bgidem');
    const state = async (): Promise<unknown> => {
      const p = await cluster.deployment(ns, 'web-preview');
      const s = await cluster.deployment(ns, 'web');
      return {
        names: await cluster.deploymentNames(ns),
        preview: p && { replicas: p.spec?.replicas, generation: p.metadata?.generation, image: imageOf(p) },
        stable: stableFingerprint(s),
        active: await cluster.serviceSelector(ns, 'web'),
        previewService: await cluster.serviceSelector(ns, 'web-preview'),
      };
    };
    const twice = async (what: string, run: () => Promise<unknown>): Promise<void> => {
      await run();
      const s1 = await state();
      await run();
      assert.deepEqual(await state(), s1, `${what}: same end state`);
    };
    await twice('deployPreview(1)', () => workload.deployPreview(t, 1));
    await twice('deployPreview()', () => workload.deployPreview(t, undefined));
    await twice('switchActive(preview)', () => workload.switchActive(t, 'preview'));
    await twice('switchActive(stable)', () => workload.switchActive(t, 'stable'));
    await twice('switchActive(preview) again', () => workload.switchActive(t, 'preview'));
    await twice('finalizeBlueGreen', () => workload.finalizeBlueGreen(t));
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);
    assert.equal(imageOf(await cluster.deployment(ns, 'web')), NEW_IMAGE);
    assert.deepEqual(await cluster.serviceSelector(ns, 'web'), { app: 'web' });
    const t2 = { ...t, releaseId: `${ns}/web-2`, image: 'example/web:3.0.0' };
    await workload.deployPreview(t2, undefined);
    await twice('abortBlueGreen', () => workload.abortBlueGreen(t2, NEW_IMAGE));
    assert.deepEqual(await cluster.deploymentNames(ns), ['web']);
    assert.equal(imageOf(await cluster.deployment(ns, 'web')), NEW_IMAGE);
  });
});
