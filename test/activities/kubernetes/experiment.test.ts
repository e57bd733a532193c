/**
 * The experiment step's workloads on the real control plane (scripts/kube.sh: kwok pods go Ready):
 * a baseline from the stable's template and a canary with the release's image, ready, reported with
 * their ReplicaSets' pod-template-hashes, never endpoints of the canary Service or the pinned
 * stableService; then removed and verified gone, twice (idempotent). Needs KUBECONFIG.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createKubernetesExperiments, createKubernetesWorkload } from '../../../activities/kubernetes/index.ts';
import { EXPERIMENT_LABEL } from '../../../activities/kubernetes/experiment.ts';
import { serviceSelectorMatches } from '../../../activities/kubernetes/objects.ts';
import { NEW_IMAGE, STABLE_IMAGE, TestCluster, imageOf, target } from './cluster.ts';

const cluster = new TestCluster();
const opts = { heartbeat: () => undefined, pollIntervalMs: 200 };
const experiments = createKubernetesExperiments(cluster.kc, opts);
const workload = createKubernetesWorkload(cluster.kc, opts);

after(() => cluster.cleanup());

test('baseline and canary start ready with their hashes, stay out of the canary and stable Services, and go', async () => {
  const ns = await cluster.namespace('experiment');
  await cluster.stable(ns, { replicas: 3 });
  await cluster.service(ns, 'web-stable', { app: 'web' });
  await cluster.service(ns, 'web-canary', { app: 'web' });
  const t = target(ns, { stableService: 'web-stable', canaryService: 'web-canary' });
  await workload.ensureCanary(t);
  await workload.scaleCanaryForWeight(t, 34);

  const running = await experiments.startExperiment(t, 1, [
    { name: 'baseline', specRef: 'stable', replicas: 2, labels: { track: 'baseline' } },
    { name: 'canary', specRef: 'canary', replicas: 1 },
  ]);
  assert.deepEqual(running.map((r) => r.workload), ['web-exp-baseline', 'web-exp-canary']);
  const baseline = await cluster.deployment(ns, 'web-exp-baseline');
  const canary = await cluster.deployment(ns, 'web-exp-canary');
  assert.equal(imageOf(baseline), STABLE_IMAGE);
  assert.equal(imageOf(canary), NEW_IMAGE);
  assert.equal(baseline?.status?.readyReplicas, 2);
  assert.equal(canary?.status?.readyReplicas, 1);

  for (const r of running) {
    const pods = await cluster.livePods(ns, { [EXPERIMENT_LABEL]: r.name });
    assert.ok(pods.length > 0);
    for (const pod of pods) {
      const labels = pod.metadata?.labels ?? {};
      assert.equal(labels['pod-template-hash'], r.podTemplateHash, `${pod.metadata?.name} runs the reported ReplicaSet`);
      assert.ok(pod.metadata?.ownerReferences?.some((o) => o.name === r.replicaSet));
      // As in Argo, the workload's own labels stay (a Service selecting app=web has them) …
      assert.equal(labels.app, 'web');
      // … but the canary Service and the pinned stableService never reach them.
      assert.ok(!serviceSelectorMatches(await cluster.serviceSelector(ns, 'web-canary'), labels), 'not a canary Service endpoint');
      assert.ok(!serviceSelectorMatches(await cluster.serviceSelector(ns, 'web-stable'), labels), 'not a stableService endpoint');
    }
  }
  assert.equal((await cluster.livePods(ns, { [EXPERIMENT_LABEL]: 'baseline', track: 'baseline' })).length, 2, 'metadata.labels reach the pods');

  // Starting again converges (same objects, nothing new).
  const again = await experiments.startExperiment(t, 1, [
    { name: 'baseline', specRef: 'stable', replicas: 2, labels: { track: 'baseline' } },
    { name: 'canary', specRef: 'canary', replicas: 1 },
  ]);
  assert.deepEqual(again, running);

  assert.deepEqual((await experiments.removeExperiment(t)).removed.sort(), ['web-exp-baseline', 'web-exp-canary']);
  assert.equal(await cluster.deployment(ns, 'web-exp-baseline'), undefined);
  assert.equal(await cluster.deployment(ns, 'web-exp-canary'), undefined);
  assert.deepEqual(await experiments.removeExperiment(t), { removed: [] }, 'removing again changes nothing');
  assert.deepEqual(await cluster.deploymentNames(ns), ['web', 'web-canary'], 'the stable and the canary are left alone');
});

test('a Deployment of the same name that Glidepath does not manage is refused, not taken over', async () => {
  const ns = await cluster.namespace('experiment-owned');
  await cluster.stable(ns, { replicas: 1 });
  await cluster.stable(ns, { name: 'web-exp-baseline', replicas: 1 });
  await assert.rejects(experiments.startExperiment(target(ns), 0, [{ name: 'baseline', specRef: 'stable', replicas: 1 }]), /web-exp-baseline exists and is not managed by glidepath/);
  assert.equal((await cluster.deployment(ns, 'web-exp-baseline'))?.spec?.replicas, 1);
});
