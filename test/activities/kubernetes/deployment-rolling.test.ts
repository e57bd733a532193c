/**
 * strategy.rolling on a Deployment against the real control plane: the Deployment's own rolling
 * update paused between batches (maxSurge 1, maxUnavailable 0 while the release runs), promotion,
 * abort mid-way rolling back, the user's strategy and `paused` put back, Recreate refused by name.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { ReleaseTarget } from '../../../activities/contract.ts';
import { createKubernetesRolling } from '../../../activities/kubernetes/index.ts';
import { PREVIOUS_ROLLING } from '../../../activities/kubernetes/deployment-rolling.ts';
import { NEW_IMAGE, STABLE_IMAGE, TestCluster } from './cluster.ts';

const cluster = new TestCluster();
const ops = createKubernetesRolling(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 }).Deployment;
assert.ok(ops);
const rolling = ops;

after(() => cluster.cleanup());

const target = (namespace: string, o: Partial<ReleaseTarget> = {}): ReleaseTarget => ({
  releaseId: `release_${namespace}_web`,
  namespace,
  workload: { kind: 'Deployment', name: 'web' },
  image: NEW_IMAGE,
  strategy: 'rolling',
  progressDeadlineSeconds: 60,
  ...o,
});

/** Live pods by the image of container `app`: {old, new}. */
async function podImages(ns: string): Promise<{ old: number; new: number; ready: number; total: number }> {
  const pods = await cluster.livePods(ns, { app: 'web' });
  const image = (p: (typeof pods)[number]) => p.spec?.containers.find((c) => c.name === 'app')?.image;
  return {
    old: pods.filter((p) => image(p) === STABLE_IMAGE).length,
    new: pods.filter((p) => image(p) === NEW_IMAGE).length,
    ready: pods.filter((p) => (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')).length,
    total: pods.length,
  };
}

const read = (ns: string) => cluster.apps.readNamespacedDeployment({ name: 'web', namespace: ns });

describe('Deployment paused between batches', () => {
  test('4 replicas: begin moves nothing, batch 1 then 50 % with every pod ready, abort mid-way rolls back and puts the strategy back', async () => {
    const ns = await cluster.namespace('dep-roll');
    await cluster.stable(ns, { replicas: 4 });
    const t = target(ns);
    const pre = await rolling.preflight(t);
    assert.equal(pre.stableImage, STABLE_IMAGE);

    assert.deepEqual(await rolling.begin(t), { replicas: 4 });
    assert.deepEqual(await rolling.begin(t), { replicas: 4 }, 'idempotent');
    const begun = await read(ns);
    assert.equal(begun.spec?.paused, true);
    assert.deepEqual({ ...begun.spec?.strategy?.rollingUpdate }, { maxSurge: 1, maxUnavailable: 0 });
    assert.deepEqual(JSON.parse(begun.metadata?.annotations?.[PREVIOUS_ROLLING] ?? '{}'), { paused: false, maxSurge: '25%', maxUnavailable: '25%' });
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await podImages(ns), { old: 4, new: 0, ready: 4, total: 4 }, 'paused: no pod moved');

    const one = await rolling.batch(t, { kind: 'batch', replicas: 1 });
    assert.ok(one.updated >= 1 && one.updated <= 2, `1 new pod, at most one more (maxSurge 1): ${one.updated}`);
    let pods = await podImages(ns);
    assert.equal(pods.ready, pods.total, 'every pod ready when the batch returns');
    assert.ok(pods.old >= 4 - one.updated, `old pods go only as new ones are available (maxUnavailable 0): ${JSON.stringify(pods)}`);
    assert.equal((await read(ns)).spec?.paused, true, 'paused between batches');

    const half = await rolling.batch(t, { kind: 'batch', percent: 50 });
    assert.ok(half.updated >= 2 && half.updated <= 3, `2 new pods, at most one more: ${half.updated}`);
    pods = await podImages(ns);
    assert.ok(pods.new >= 2 && pods.old >= 1, JSON.stringify(pods));

    assert.deepEqual(await rolling.abort(t, STABLE_IMAGE), { drift: [] });
    const back = await read(ns);
    assert.equal(back.spec?.template?.spec?.containers.find((c) => c.name === 'app')?.image, STABLE_IMAGE);
    assert.equal(back.spec?.paused ?? false, false);
    assert.deepEqual({ ...back.spec?.strategy?.rollingUpdate }, { maxSurge: '25%', maxUnavailable: '25%' }, "the user's strategy back");
    assert.equal(back.metadata?.annotations?.[PREVIOUS_ROLLING], undefined);
    assert.deepEqual(await podImages(ns), { old: 4, new: 0, ready: 4, total: 4 });
    assert.deepEqual(await rolling.abort(t, STABLE_IMAGE), { drift: [] }, 'idempotent');
  });

  test('batch 1 then promotion: every pod new, the strategy back', async () => {
    const ns = await cluster.namespace('dep-roll-ok');
    await cluster.stable(ns, { replicas: 3 });
    const t = target(ns);
    await rolling.begin(t);
    await rolling.batch(t, { kind: 'batch', replicas: 1 });
    assert.deepEqual(await rolling.complete(t), { updated: 3, replicas: 3 });
    const done = await read(ns);
    assert.equal(done.spec?.paused ?? false, false);
    assert.deepEqual({ ...done.spec?.strategy?.rollingUpdate }, { maxSurge: '25%', maxUnavailable: '25%' });
    assert.deepEqual(await podImages(ns), { old: 0, new: 3, ready: 3, total: 3 });
  });

  test('a slow poll does not let a batch run on: the pause follows the new ReplicaSet being sized, not its pods being ready', async () => {
    // With a 2 s poll, pausing only once the batch's pods were available let the controller roll all 4 pods first.
    const slow = createKubernetesRolling(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 2000 }).Deployment;
    assert.ok(slow);
    const ns = await cluster.namespace('dep-roll-slow');
    await cluster.stable(ns, { replicas: 4 });
    const t = target(ns);
    await slow.begin(t);
    const one = await slow.batch(t, { kind: 'batch', replicas: 1 });
    assert.ok(one.updated >= 1 && one.updated <= 2, `1 new pod, at most one more (maxSurge 1): ${one.updated}`);
    const pods = await podImages(ns);
    assert.ok(pods.new <= 2 && pods.old >= 3, `the rest of the Deployment untouched: ${JSON.stringify(pods)}`);
    assert.equal(pods.ready, pods.total);
    await slow.abort(t, STABLE_IMAGE);
  });

  test('Recreate is refused by preflight, naming the field; nothing written', async () => {
    const ns = await cluster.namespace('dep-roll-recreate');
    await cluster.stable(ns, { replicas: 1 });
    await cluster.apps.patchNamespacedDeployment({ name: 'web', namespace: ns, body: [{ op: 'replace', path: '/spec/strategy', value: { type: 'Recreate' } }] });
    await assert.rejects(rolling.preflight(target(ns)), (e: unknown) => e instanceof ApplicationFailure && e.type === 'PreflightFailed' && /spec\.strategy\.type is Recreate/.test(e.message));
    assert.equal((await read(ns)).metadata?.annotations?.[PREVIOUS_ROLLING], undefined);
  });
});
