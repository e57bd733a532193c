/**
 * strategy.rolling on a StatefulSet against the real control plane (kube-controller-manager runs
 * the StatefulSet controller, kwok runs the pods): batches by partition verified by pod revision,
 * promotion, abort rolling the updated ordinals back, and the refusals preflight names.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { AutoscalingV2Api, type V1StatefulSet } from '@kubernetes/client-node';
import type { ReleaseTarget } from '../../../activities/contract.ts';
import { createKubernetesRolling } from '../../../activities/kubernetes/index.ts';
import { PREVIOUS_PARTITION } from '../../../activities/kubernetes/statefulsets.ts';
import { REVISION_LABEL, ordinalOf } from '../../../activities/kubernetes/statefulset-pods.ts';
import { NEW_IMAGE, STABLE_IMAGE, TestCluster, eventually } from './cluster.ts';

const cluster = new TestCluster();
const ops = createKubernetesRolling(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 }).StatefulSet;
assert.ok(ops);
const rolling = ops;

const autoscaling = cluster.kc.makeApiClient(AutoscalingV2Api);

after(() => cluster.cleanup());

/**
 * One HPA sync as its controller does it, for a load that needs `wanted` pods: clamped to the HPA's
 * [minReplicas, maxReplicas] and written to the StatefulSet's scale subresource. Returns the count.
 */
async function autoscale(ns: string, wanted: number): Promise<number> {
  const h = await autoscaling.readNamespacedHorizontalPodAutoscaler({ name: 'db', namespace: ns });
  const replicas = Math.min(h.spec?.maxReplicas ?? 1, Math.max(h.spec?.minReplicas ?? 1, wanted));
  // As the HPA controller does: read the scale and replace it, again on a Conflict (the StatefulSet
  // controller writes the object's status meanwhile).
  for (let attempt = 1; ; attempt++) {
    const scale = await cluster.apps.readNamespacedStatefulSetScale({ name: 'db', namespace: ns });
    try {
      await cluster.apps.replaceNamespacedStatefulSetScale({ name: 'db', namespace: ns, body: { ...scale, spec: { replicas } } });
      return replicas;
    } catch (err) {
      if ((err as { code?: number }).code !== 409 || attempt === 5) throw err;
    }
  }
}

interface SetOptions {
  replicas?: number;
  partition?: number;
  updateStrategy?: 'RollingUpdate' | 'OnDelete';
  podManagementPolicy?: 'OrderedReady' | 'Parallel';
}

/** A StatefulSet `db` (app=db) with a volume, every pod ready on STABLE_IMAGE (no volume claims: the control plane runs no volume binder). */
async function statefulSet(namespace: string, o: SetOptions = {}): Promise<V1StatefulSet> {
  const replicas = o.replicas ?? 5;
  await cluster.apps.createNamespacedStatefulSet({
    namespace,
    body: {
      metadata: { name: 'db' },
      spec: {
        replicas,
        serviceName: 'db',
        podManagementPolicy: o.podManagementPolicy ?? 'Parallel', // quick to create; a partitioned update is ordered either way
        selector: { matchLabels: { app: 'db' } },
        updateStrategy: o.updateStrategy === 'OnDelete' ? { type: 'OnDelete' } : { type: 'RollingUpdate', rollingUpdate: { partition: o.partition ?? 0 } },
        template: {
          metadata: { labels: { app: 'db' } },
          spec: {
            containers: [
              { name: 'app', image: STABLE_IMAGE, readinessProbe: { tcpSocket: { port: 5432 } }, volumeMounts: [{ name: 'data', mountPath: '/data' }] },
              { name: 'sidecar', image: 'example/proxy:1' },
            ],
            volumes: [{ name: 'data', emptyDir: {} }],
          },
        },
      },
    },
  });
  return eventually(`StatefulSet ${namespace}/db ready`, async () => {
    const s = await cluster.apps.readNamespacedStatefulSet({ name: 'db', namespace });
    return s.status?.readyReplicas === replicas && s.status?.updatedReplicas === replicas ? s : undefined;
  }, 60_000);
}

function target(namespace: string, o: Partial<ReleaseTarget> = {}): ReleaseTarget {
  return { releaseId: `release_${namespace}_db`, namespace, workload: { kind: 'StatefulSet', name: 'db' }, image: NEW_IMAGE, strategy: 'rolling', progressDeadlineSeconds: 60, ...o };
}

/** Each live pod's ordinal → [image of app, revision hash, ready]. */
async function podsByOrdinal(namespace: string): Promise<Map<number, { image: string | undefined; revision: string | undefined; ready: boolean; uid: string | undefined }>> {
  const pods = await cluster.livePods(namespace, { app: 'db' });
  return new Map(
    pods.map((p) => [
      ordinalOf('db', p) ?? -1,
      {
        image: p.spec?.containers.find((c) => c.name === 'app')?.image,
        revision: p.metadata?.labels?.[REVISION_LABEL],
        ready: (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
        uid: p.metadata?.uid,
      },
    ]),
  );
}

/** The image each ordinal runs, in ordinal order. */
async function images(namespace: string): Promise<(string | undefined)[]> {
  const pods = await podsByOrdinal(namespace);
  return [...pods.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p.image);
}

const read = (namespace: string): Promise<V1StatefulSet> => cluster.apps.readNamespacedStatefulSet({ name: 'db', namespace });
const partition = (s: V1StatefulSet): number | undefined => s.spec?.updateStrategy?.rollingUpdate?.partition;
/** The StatefulSet's spec without the two fields a release writes (the target image and the partition). */
function untouchedSpec(s: V1StatefulSet): unknown {
  const spec = structuredClone(s.spec) as NonNullable<V1StatefulSet['spec']>;
  delete spec.updateStrategy;
  for (const c of spec.template.spec?.containers ?? []) if (c.name === 'app') c.image = '';
  return spec;
}

describe('StatefulSet by partition', () => {
  test('5 replicas updated 1 → 3 → 5 from the top ordinal, each batch verified before the next; nothing else written', async () => {
    const ns = await cluster.namespace('sts');
    const original = untouchedSpec(await statefulSet(ns));
    const t = target(ns);

    const pre = await rolling.preflight(t);
    assert.equal(pre.stableImage, STABLE_IMAGE);
    assert.equal(pre.replicas, 5);
    assert.ok(pre.warnings.some((w) => w.includes('Parallel')), `Parallel is named: ${JSON.stringify(pre.warnings)}`);

    const before = await podsByOrdinal(ns);
    assert.deepEqual(await rolling.begin(t), { replicas: 5 });
    assert.deepEqual(await rolling.begin(t), { replicas: 5 }, 'idempotent');
    const begun = await read(ns);
    assert.equal(partition(begun), 5, 'partition above every ordinal');
    assert.equal(begun.metadata?.annotations?.[PREVIOUS_PARTITION], '0');
    assert.equal(begun.spec?.template?.spec?.containers.find((c) => c.name === 'sidecar')?.image, 'example/proxy:1', 'only the target container changes');
    assert.deepEqual(await images(ns), Array(5).fill(STABLE_IMAGE), 'no pod moved');

    assert.deepEqual(await rolling.batch(t, { kind: 'batch', replicas: 1 }), { updated: 1, replicas: 5 });
    assert.equal(partition(await read(ns)), 4);
    assert.deepEqual(await images(ns), [STABLE_IMAGE, STABLE_IMAGE, STABLE_IMAGE, STABLE_IMAGE, NEW_IMAGE]);
    const afterOne = await podsByOrdinal(ns);
    for (let o = 0; o < 4; o++) assert.equal(afterOne.get(o)?.uid, before.get(o)?.uid, `ordinal ${o} is the same pod`);
    assert.ok([...afterOne.values()].every((p) => p.ready), 'every pod ready when the batch returns');

    assert.deepEqual(await rolling.batch(t, { kind: 'batch', percent: 60 }), { updated: 3, replicas: 5 });
    assert.equal(partition(await read(ns)), 2);
    assert.deepEqual(await images(ns), [STABLE_IMAGE, STABLE_IMAGE, NEW_IMAGE, NEW_IMAGE, NEW_IMAGE]);
    assert.deepEqual(await rolling.batch(t, { kind: 'batch', percent: 60 }), { updated: 3, replicas: 5 }, 'idempotent');

    assert.deepEqual(await rolling.complete(t), { updated: 5, replicas: 5 });
    const done = await read(ns);
    assert.equal(partition(done), 0, 'partition back where it was');
    assert.equal(done.status?.currentRevision, done.status?.updateRevision, 'the new revision is current');
    assert.deepEqual(await images(ns), Array(5).fill(NEW_IMAGE));
    assert.deepEqual(untouchedSpec(done), original, 'replicas, volumes, selector, the other container: untouched');
  });

  test('abort after 3 of 5: the old template back, the updated ordinals rolled back, the partition lowered only to where it was', async () => {
    const ns = await cluster.namespace('sts-abort');
    await statefulSet(ns, { partition: 1 }); // the user keeps ordinal 0 back: the release never goes below it
    const t = target(ns);
    await rolling.preflight(t);
    await rolling.begin(t);
    assert.deepEqual(await rolling.batch(t, { kind: 'batch', replicas: 3 }), { updated: 3, replicas: 5 });
    assert.deepEqual(await images(ns), [STABLE_IMAGE, STABLE_IMAGE, NEW_IMAGE, NEW_IMAGE, NEW_IMAGE]);
    const untouched = (await podsByOrdinal(ns)).get(0)?.uid;

    assert.deepEqual(await rolling.abort(t, STABLE_IMAGE), { drift: [] });
    const s = await read(ns);
    assert.equal(s.spec?.template?.spec?.containers.find((c) => c.name === 'app')?.image, STABLE_IMAGE);
    assert.equal(partition(s), 1, 'the partition it had before the release, not 0');
    assert.deepEqual(await images(ns), Array(5).fill(STABLE_IMAGE));
    const pods = await podsByOrdinal(ns);
    assert.ok([...pods.values()].every((p) => p.ready && p.revision === s.status?.updateRevision), 'every pod ready on the old revision');
    assert.equal(pods.get(0)?.uid, untouched, 'ordinal 0 was never touched');
    assert.deepEqual(await rolling.abort(t, STABLE_IMAGE), { drift: [] }, 'idempotent');

    // A batch of 100% with a user partition of 1 stops at ordinal 1.
    await rolling.begin(t);
    assert.deepEqual(await rolling.complete(t), { updated: 4, replicas: 5 });
    assert.deepEqual(await images(ns), [STABLE_IMAGE, NEW_IMAGE, NEW_IMAGE, NEW_IMAGE, NEW_IMAGE]);
  });

  test('forced rollback: a new revision that never becomes ready fails its batch at the progress deadline; abort deletes the stuck pod, which OrderedReady would wait on forever', async () => {
    const ns = await cluster.namespace('sts-forced');
    await statefulSet(ns, { replicas: 3, podManagementPolicy: 'OrderedReady' });
    // kwok never makes a pod whose image tag is `never-ready` ready (hack/kube/kwok-stages.yaml).
    const t = target(ns, { image: 'example/db:never-ready', progressDeadlineSeconds: 4 });
    await rolling.begin(t);
    await assert.rejects(rolling.batch(t, { kind: 'batch', replicas: 1 }), (e: unknown) => e instanceof ApplicationFailure && e.type === 'ProgressDeadlineExceeded' && /db-2/.test(e.message));
    const stuck = (await podsByOrdinal(ns)).get(2);
    assert.deepEqual({ image: stuck?.image, ready: stuck?.ready }, { image: 'example/db:never-ready', ready: false });
    assert.deepEqual(await rolling.abort({ ...t, progressDeadlineSeconds: 30 }, STABLE_IMAGE), { drift: [] });
    const after = await podsByOrdinal(ns);
    assert.deepEqual([...after.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => [p.image, p.ready]), [[STABLE_IMAGE, true], [STABLE_IMAGE, true], [STABLE_IMAGE, true]]);
    assert.notEqual(after.get(2)?.uid, stuck?.uid, 'the stuck pod was replaced');
    assert.equal(partition(await read(ns)), 0);
  });

  test('abort when someone else changed the image: left as it is and reported, the partition still restored', async () => {
    const ns = await cluster.namespace('sts-drift');
    await statefulSet(ns, { replicas: 3 });
    const t = target(ns);
    await rolling.begin(t);
    await rolling.batch(t, { kind: 'batch', replicas: 1 });
    await cluster.apps.patchNamespacedStatefulSet({ name: 'db', namespace: ns, body: [{ op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'example/web:hotfix' }] });
    const report = await rolling.abort(t, STABLE_IMAGE);
    assert.equal(report.drift.length, 1);
    assert.match(report.drift[0] ?? '', /example\/web:hotfix, set by someone else/);
    assert.equal(partition(await read(ns)), 0);
  });

  test('with an HPA (its controller played by the test): the floor held at the live count, batches sized from the live count, the HPA\'s own floor back at promotion', async () => {
    const ns = await cluster.namespace('sts-hpa');
    await statefulSet(ns, { replicas: 4 });
    await autoscaling.createNamespacedHorizontalPodAutoscaler({
      namespace: ns,
      body: { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'db' }, spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db' }, minReplicas: 2, maxReplicas: 8, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }] } },
    });
    const t = target(ns);
    await rolling.begin(t);
    const held = await autoscaling.readNamespacedHorizontalPodAutoscaler({ name: 'db', namespace: ns });
    assert.equal(held.spec?.minReplicas, 4, 'minReplicas held at the live count: a scale-down would remove the updated top ordinals');
    assert.equal(await autoscale(ns, 1), 4, 'load drops: the HPA cannot go below the held floor');
    assert.deepEqual(await rolling.batch(t, { kind: 'batch', replicas: 1 }), { updated: 1, replicas: 4 });
    assert.equal(await autoscale(ns, 6), 6, 'load rises: the HPA scales up');
    await eventually('6 pods', async () => ((await read(ns)).status?.readyReplicas === 6 ? true : undefined), 60_000);
    assert.deepEqual(await rolling.batch(t, { kind: 'batch', percent: 50 }), { updated: 3, replicas: 6 }, '50 % of the live 6');
    assert.equal(partition(await read(ns)), 3);
    assert.deepEqual(await rolling.complete(t), { updated: 6, replicas: 6 });
    const back = await autoscaling.readNamespacedHorizontalPodAutoscaler({ name: 'db', namespace: ns });
    assert.equal(back.spec?.minReplicas, 2, "the HPA's own minReplicas back: it owns the replicas again");
    assert.equal(back.metadata?.annotations?.['glidepath.dev/held-min-replicas'], undefined);
    assert.deepEqual(await images(ns), Array(6).fill(NEW_IMAGE));
  });

  test('preflight refuses OnDelete and names the field; a missing StatefulSet and container are named', async () => {
    const ns = await cluster.namespace('sts-refuse');
    await statefulSet(ns, { replicas: 1, updateStrategy: 'OnDelete' });
    await assert.rejects(rolling.preflight(target(ns)), (e: unknown) => e instanceof ApplicationFailure && e.nonRetryable && e.type === 'PreflightFailed' && /spec\.updateStrategy\.type is OnDelete/.test(e.message));
    await assert.rejects(rolling.begin(target(ns, { workload: { kind: 'StatefulSet', name: 'nope' } })), (e: unknown) => e instanceof ApplicationFailure && e.type === 'NotFound' && /StatefulSet .*\/nope not found/.test(e.message));
    await assert.rejects(rolling.begin(target(ns, { workload: { kind: 'StatefulSet', name: 'db', container: 'x' } })), (e: unknown) => e instanceof ApplicationFailure && e.type === 'PreflightFailed' && /no container "x" \(containers: app, sidecar\)/.test(e.message));
    const s = await read(ns);
    assert.equal(s.metadata?.annotations?.[PREVIOUS_PARTITION], undefined, 'nothing written');
  });
});
