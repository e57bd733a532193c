/**
 * strategy.rolling on a DaemonSet against the real control plane (kube-controller-manager runs the
 * DaemonSet controller, kwok plays six labelled nodes of the test's own and their pods): batches of
 * nodes in node-name order, waves by zone label, promotion, abort rolling the replaced nodes back,
 * the user's update strategy put back, OnDelete refused by name.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { V1DaemonSetUpdateStrategy } from '@kubernetes/client-node';
import type { ReleaseTarget } from '../../../activities/contract.ts';
import { createKubernetesRolling } from '../../../activities/kubernetes/index.ts';
import { PREVIOUS_UPDATE_STRATEGY } from '../../../activities/kubernetes/daemonsets.ts';
import { NEW_IMAGE, STABLE_IMAGE, TestCluster, eventually, sleep } from './cluster.ts';

const cluster = new TestCluster();
const ops = createKubernetesRolling(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 }).DaemonSet;
assert.ok(ops);
const rolling = ops;

/** This file's own nodes (labelled with `pool`), so the DaemonSet runs on exactly six of them, across two zones. */
const pool = `ds-${randomBytes(3).toString('hex')}`;
const nodes = [1, 2, 3, 4, 5, 6].map((i) => ({ name: `gp-${pool}-${i}`, zone: i <= 3 ? 'a' : 'b' }));

before(async () => {
  for (const n of nodes) {
    await cluster.core.createNode({
      body: {
        metadata: { name: n.name, annotations: { 'kwok.x-k8s.io/node': 'fake' }, labels: { type: 'kwok', 'glidepath.dev/test-pool': pool, 'topology.kubernetes.io/zone': n.zone, 'kubernetes.io/hostname': n.name } },
        status: { allocatable: { cpu: '32', memory: '256Gi', pods: '110' }, capacity: { cpu: '32', memory: '256Gi', pods: '110' } },
      },
    });
  }
  await eventually('six Ready kwok nodes', async () => {
    const list = await cluster.core.listNode({ labelSelector: `glidepath.dev/test-pool=${pool}` });
    const ready = list.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    return ready.length === nodes.length ? true : undefined;
  }, 60_000);
});

after(async () => {
  await cluster.cleanup();
  await Promise.all(nodes.map((n) => cluster.core.deleteNode({ name: n.name }).catch(() => undefined)));
});

const target = (namespace: string): ReleaseTarget => ({ releaseId: `release_${namespace}_agent`, namespace, workload: { kind: 'DaemonSet', name: 'agent' }, image: NEW_IMAGE, strategy: 'rolling', progressDeadlineSeconds: 60 });

/** A DaemonSet `agent` on the pool's six nodes, every pod ready on STABLE_IMAGE. */
async function daemonSet(namespace: string, updateStrategy: V1DaemonSetUpdateStrategy = { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 2 } }): Promise<void> {
  await cluster.apps.createNamespacedDaemonSet({
    namespace,
    body: {
      metadata: { name: 'agent' },
      spec: {
        selector: { matchLabels: { app: 'agent' } },
        updateStrategy,
        template: {
          metadata: { labels: { app: 'agent' } },
          spec: {
            nodeSelector: { 'glidepath.dev/test-pool': pool },
            containers: [
              { name: 'app', image: STABLE_IMAGE, readinessProbe: { httpGet: { path: '/healthz', port: 8080 } } },
              { name: 'sidecar', image: 'example/proxy:1' },
            ],
          },
        },
      },
    },
  });
  await eventually(`DaemonSet ${namespace}/agent on six nodes`, async () => {
    const st = (await cluster.apps.readNamespacedDaemonSet({ name: 'agent', namespace })).status;
    return st?.desiredNumberScheduled === 6 && st.numberReady === 6 && st.updatedNumberScheduled === 6 ? true : undefined;
  }, 60_000);
}

/** Node name → image of container `app` of its live pod (and whether every live pod is ready). */
async function byNode(ns: string): Promise<{ images: Record<string, string>; ready: boolean }> {
  const pods = (await cluster.livePods(ns, { app: 'agent' })).filter((p) => p.spec?.nodeName);
  const images = Object.fromEntries(pods.map((p) => [p.spec?.nodeName as string, p.spec?.containers.find((c) => c.name === 'app')?.image as string]).sort());
  const ready = pods.every((p) => (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'));
  return { images, ready };
}

const only = (newNodes: string[]) => Object.fromEntries(nodes.map((n) => [n.name, newNodes.includes(n.name) ? NEW_IMAGE : STABLE_IMAGE]));
const read = (ns: string) => cluster.apps.readNamespacedDaemonSet({ name: 'agent', namespace: ns });

describe('DaemonSet node by node', () => {
  test('six nodes: begin moves nothing, batch 1 then 50 % replace exactly those nodes in name order, abort puts back the old image and the strategy', async () => {
    const ns = await cluster.namespace('ds-roll');
    await daemonSet(ns);
    const t = target(ns);
    const pre = await rolling.preflight(t);
    assert.deepEqual({ stableImage: pre.stableImage, replicas: pre.replicas }, { stableImage: STABLE_IMAGE, replicas: 6 });

    assert.deepEqual(await rolling.begin(t), { replicas: 6 });
    assert.deepEqual(await rolling.begin(t), { replicas: 6 }, 'idempotent');
    const begun = await read(ns);
    assert.equal(begun.spec?.updateStrategy?.type, 'OnDelete');
    assert.deepEqual(JSON.parse(begun.metadata?.annotations?.[PREVIOUS_UPDATE_STRATEGY] ?? '{}'), { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 2, maxSurge: 0 } });
    await sleep(1500);
    assert.deepEqual(await byNode(ns), { images: only([]), ready: true }, 'OnDelete: no pod moved');

    assert.deepEqual(await rolling.batch(t, { kind: 'batch', replicas: 1 }), { updated: 1, replicas: 6 });
    assert.deepEqual(await byNode(ns), { images: only([nodes[0]!.name]), ready: true }, 'the first node by name, and only it');
    assert.deepEqual(await rolling.batch(t, { kind: 'batch', percent: 50 }), { updated: 3, replicas: 6 });
    assert.deepEqual(await byNode(ns), { images: only(nodes.slice(0, 3).map((n) => n.name)), ready: true });
    assert.deepEqual(await rolling.batch(t, { kind: 'batch', percent: 50 }), { updated: 3, replicas: 6 }, 'a retried batch replaces nothing more');

    assert.deepEqual(await rolling.abort(t, STABLE_IMAGE), { drift: [] });
    const back = await read(ns);
    assert.equal(back.spec?.template?.spec?.containers.find((c) => c.name === 'app')?.image, STABLE_IMAGE);
    assert.deepEqual({ ...back.spec?.updateStrategy, rollingUpdate: { ...back.spec?.updateStrategy?.rollingUpdate } }, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 2, maxSurge: 0 } }, "the user's strategy back");
    assert.equal(back.metadata?.annotations?.[PREVIOUS_UPDATE_STRATEGY], undefined);
    assert.deepEqual(await byNode(ns), { images: only([]), ready: true });
    assert.deepEqual(await rolling.abort(t, STABLE_IMAGE), { drift: [] }, 'idempotent');
  });

  test('batch 2 then promotion: every node on the new image, the strategy back', async () => {
    const ns = await cluster.namespace('ds-roll-ok');
    await daemonSet(ns);
    const t = target(ns);
    await rolling.begin(t);
    assert.deepEqual(await rolling.batch(t, { kind: 'batch', replicas: 2 }), { updated: 2, replicas: 6 });
    assert.deepEqual(await rolling.complete(t), { updated: 6, replicas: 6 });
    const done = await read(ns);
    assert.equal(done.spec?.updateStrategy?.type, 'RollingUpdate');
    assert.equal(done.metadata?.annotations?.[PREVIOUS_UPDATE_STRATEGY], undefined);
    assert.deepEqual(await byNode(ns), { images: only(nodes.map((n) => n.name)), ready: true });
  });

  test('two zone waves: zone a, then zone b; a wave matching none of its nodes is refused by name', async () => {
    const ns = await cluster.namespace('ds-waves');
    await daemonSet(ns);
    const t = target(ns);
    await rolling.begin(t);
    const zone = (z: string) => ({ kind: 'batch' as const, nodeSelector: { 'glidepath.dev/test-pool': pool, 'topology.kubernetes.io/zone': z } });
    await assert.rejects(rolling.batch(t, zone('c')), (e: unknown) => e instanceof ApplicationFailure && e.type === 'InvalidSpec' && /matches none of the 6 nodes the DaemonSet runs on/.test(e.message));
    assert.deepEqual(await byNode(ns), { images: only([]), ready: true }, 'the refused wave replaced nothing');
    assert.deepEqual(await rolling.batch(t, zone('a')), { updated: 3, replicas: 6 });
    assert.deepEqual(await byNode(ns), { images: only(nodes.filter((n) => n.zone === 'a').map((n) => n.name)), ready: true }, 'zone a only');
    assert.deepEqual(await rolling.batch(t, zone('b')), { updated: 6, replicas: 6 });
    assert.deepEqual(await byNode(ns), { images: only(nodes.map((n) => n.name)), ready: true });
    assert.deepEqual(await rolling.complete(t), { updated: 6, replicas: 6 });
    assert.equal((await read(ns)).spec?.updateStrategy?.type, 'RollingUpdate');
  });

  test('OnDelete is refused by preflight, naming the field; nothing written', async () => {
    const ns = await cluster.namespace('ds-roll-ondelete');
    await daemonSet(ns, { type: 'OnDelete' });
    await assert.rejects(rolling.preflight(target(ns)), (e: unknown) => e instanceof ApplicationFailure && e.type === 'PreflightFailed' && /spec\.updateStrategy\.type is OnDelete/.test(e.message));
    assert.equal((await read(ns)).metadata?.annotations?.[PREVIOUS_UPDATE_STRATEGY], undefined);
  });
});
