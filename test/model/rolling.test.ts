/** strategy.rolling at the edge: a Release becomes a rolling plan; what a workload kind cannot take is refused by name. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { loadPlan } from '../../starters/spec-files.ts';
import { SpecError, formatProblem, normalize } from '../../model/normalize.ts';
import { planProblems } from '../../model/plan.ts';
import { batchReplicas, parseBatch, partitionFor } from '../../model/rolling.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A Release of `kind` web in shop with `strategy` as given. */
function problems(kind: string, strategy: Record<string, unknown>, apiKind = 'Release'): string[] {
  const doc =
    apiKind === 'Release'
      ? { apiVersion: 'glidepath.dev/v1alpha1', kind: 'Release', metadata: { name: 'web', namespace: 'shop' }, spec: { workloadRef: { kind, name: 'web' }, image: 'example/web:2', strategy } }
      : { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', metadata: { name: 'web', namespace: 'shop' }, spec: { workloadRef: { apiVersion: 'apps/v1', kind, name: 'web' }, strategy } };
  try {
    normalize([{ source: 'r.yaml', doc }], { image: 'example/web:2' });
  } catch (err) {
    if (err instanceof SpecError) return err.problems.map(formatProblem);
    throw err;
  }
  return [];
}

describe('strategy.rolling', () => {
  test('the StatefulSet example becomes a rolling plan: batches, the pause, the resolved analysis, the approval', async () => {
    const plan = await loadPlan([path.join(root, 'examples/statefulset-rolling.yaml')]);
    assert.deepEqual(plan.workload, { kind: 'StatefulSet', name: 'ledger' });
    assert.equal(plan.strategy.type, 'rolling');
    if (plan.strategy.type !== 'rolling') return;
    assert.deepEqual(plan.strategy.steps.map((s) => s.kind), ['batch', 'pause', 'analysis', 'batch', 'approval']);
    assert.deepEqual(plan.strategy.steps[0], { kind: 'batch', replicas: 1 });
    assert.deepEqual(plan.strategy.steps[1], { kind: 'pause', durationMs: 300_000 });
    assert.deepEqual(plan.strategy.steps[3], { kind: 'batch', percent: 60 });
    const a = plan.strategy.steps[2];
    assert.ok(a?.kind === 'analysis');
    assert.equal(a.analysis.metrics[0]?.name, 'error-rate');
    assert.deepEqual(plan.strategy.steps[4], { kind: 'approval', approvers: ['alice', 'bob'], minApprovals: 1, timeoutMs: 86_400_000, onTimeout: 'rollback' });
    assert.deepEqual(planProblems(plan), [], 'the workflow accepts what the edge produced');
  });

  test('the DaemonSet example becomes a rolling plan of nodes', async () => {
    const plan = await loadPlan([path.join(root, 'examples/daemonset-rolling.yaml')]);
    assert.deepEqual(plan.workload, { kind: 'DaemonSet', name: 'node-agent' });
    assert.deepEqual(plan.strategy.type === 'rolling' ? plan.strategy.steps.map((s) => s.kind) : plan.strategy.type, ['batch', 'pause', 'batch', 'approval']);
    assert.deepEqual(planProblems(plan), []);
  });

  test('what a workload kind cannot take is refused by name; a Deployment takes rolling with maxSurge', () => {
    assert.deepEqual(problems('StatefulSet', { blueGreen: { activeService: 'web' } }), [
      "r.yaml: spec.strategy.blueGreen: blue/green is refused for a StatefulSet: a second (preview) StatefulSet would bring up a second set of ordinals with their own PersistentVolumeClaims, so the preview could never serve from the stable pods' volumes and a switch would lose or fork state; use strategy.rolling, which updates the pods in place by partition (spec.workloadRef.kind StatefulSet)",
    ]);
    assert.match(problems('StatefulSet', { canary: { steps: [{ setWeight: 10 }] } }).join('\n'), /spec\.strategy\.canary: a StatefulSet is released with strategy\.rolling/);
    assert.match(problems('StatefulSet', { rolling: { maxSurge: 1, steps: [{ batch: 1 }] } }).join('\n'), /spec\.strategy\.rolling\.maxSurge: a StatefulSet has no surge/);
    assert.deepEqual(problems('Deployment', { rolling: { maxSurge: '25%', steps: [{ batch: 1 }, { analysis: { templates: [] } }] } }).filter((p) => !p.includes('templates')), [], 'a Deployment takes strategy.rolling with maxSurge');
    assert.match(problems('Deployment', { rolling: { maxSurge: 0, steps: [{ batch: 1 }] } }).join('\n'), /spec\.strategy\.rolling\.maxSurge: Too small: expected number to be >=1/);
    assert.deepEqual(problems('DaemonSet', { rolling: { steps: [{ batch: 1 }, { batch: '50%' }] } }), [], 'a DaemonSet takes strategy.rolling (batches of nodes)');
    assert.match(problems('DaemonSet', { canary: { steps: [{ setWeight: 10 }] } }).join('\n'), /spec\.strategy\.canary: a DaemonSet is released with strategy\.rolling \(batches of nodes\).*\(spec\.workloadRef\.kind DaemonSet\)/);
    assert.match(problems('DaemonSet', { blueGreen: { activeService: 'web' } }).join('\n'), /spec\.strategy\.blueGreen: a DaemonSet is released with strategy\.rolling/);
    assert.match(problems('DaemonSet', { rolling: { maxSurge: 1, steps: [{ batch: 1 }] } }).join('\n'), /spec\.strategy\.rolling\.maxSurge: a DaemonSet batch replaces the one pod on each chosen node/);
    assert.deepEqual(problems('DaemonSet', { rolling: { steps: [{ batch: { nodeSelector: { 'topology.kubernetes.io/zone': 'a' } } }, { pause: {} }, { batch: { nodeSelector: { 'topology.kubernetes.io/zone': 'b' } } }] } }), [], 'waves by node label');
    assert.match(problems('Deployment', { rolling: { steps: [{ batch: 1 }, { batch: { nodeSelector: { zone: 'a' } } }] } }).join('\n'), /spec\.strategy\.rolling\.steps\[1\]\.batch\.nodeSelector: a batch of nodes by label is for DaemonSets/);
    assert.match(problems('DaemonSet', { rolling: { steps: [{ batch: { nodeSelector: {} } }] } }).join('\n'), /steps\[0\]\.batch: must be a whole number of replicas, a percentage such as "25%", or \{nodeSelector/);
    assert.match(problems('DaemonSet', { rolling: { steps: [{ batch: { nodeSelector: { 'bad key!': 'a' } } }] } }).join('\n'), /steps\[0\]\.batch: .*valid label keys and values/);
    assert.match(problems('DaemonSet', { rolling: { steps: [{ batch: { zone: 'a' } }] } }).join('\n'), /steps\[0\]\.batch: must be/);
    assert.match(problems('ReplicaSet', { rolling: { steps: [{ batch: 1 }] } }).join('\n'), /spec\.workloadRef\.kind: must be one of Deployment, StatefulSet, DaemonSet/);
  });

  test('bad batches and steps are named', () => {
    assert.match(problems('StatefulSet', { rolling: { steps: [{ batch: '150%' }] } }).join('\n'), /spec\.strategy\.rolling\.steps\[0\]\.batch: must be a whole number of replicas, a percentage/);
    assert.match(problems('StatefulSet', { rolling: { steps: [{ batch: 1.5 }] } }).join('\n'), /steps\[0\]\.batch: must be a whole number/);
    assert.match(problems('StatefulSet', { rolling: { steps: [{ batch: 3 }, { batch: 2 }] } }).join('\n'), /spec\.strategy\.rolling\.steps\[1\]\.batch: batch 2 is smaller than an earlier batch \(3\)/);
    assert.match(problems('StatefulSet', { rolling: { steps: [{ batch: 1, pause: {} }] } }).join('\n'), /steps\[0\]: a step has exactly one action, this one has batch and pause/);
    assert.match(problems('StatefulSet', { rolling: { steps: [{ setWeight: 10 }] } }).join('\n'), /spec\.strategy\.rolling\.steps\[0\]\.setWeight: unsupported field/);
    assert.match(problems('StatefulSet', { rolling: {}, canary: {} }).join('\n'), /set exactly one of canary, blueGreen or rolling/);
  });

  test('an Argo Rollout cannot carry strategy.rolling (it is Glidepath\'s own)', () => {
    assert.match(problems('Deployment', { rolling: { steps: [{ batch: 1 }] } }, 'Rollout').join('\n'), /spec\.strategy\.rolling: strategy\.rolling is Glidepath's own/);
  });

  test('an Argo Rollout with workloadRef to a StatefulSet runs where its canary maps: setWeight N → batch N%', () => {
    const doc = { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', metadata: { name: 'ledger', namespace: 'shop' }, spec: { workloadRef: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'ledger' }, strategy: { canary: { steps: [{ setWeight: 20 }, { pause: {} }, { setWeight: 60 }, { pause: { duration: '1m' } }] } } } };
    const plan = normalize([{ source: 'r.yaml', doc }], { image: 'example/ledger:2' });
    assert.deepEqual(plan.workload, { kind: 'StatefulSet', name: 'ledger' });
    assert.deepEqual(plan.strategy, { type: 'rolling', steps: [{ kind: 'batch', percent: 20 }, { kind: 'pause' }, { kind: 'batch', percent: 60 }, { kind: 'pause', durationMs: 60_000 }] });
    assert.deepEqual(planProblems(plan), []);
  });

  test('an Argo Rollout with workloadRef to a DaemonSet runs where its canary maps: setWeight N → batch N% of the nodes', () => {
    const doc = { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', metadata: { name: 'agent', namespace: 'ops' }, spec: { workloadRef: { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent' }, strategy: { canary: { steps: [{ setWeight: 25 }, { pause: {} }] } } } };
    const plan = normalize([{ source: 'r.yaml', doc }], { image: 'example/agent:2' });
    assert.deepEqual(plan.workload, { kind: 'DaemonSet', name: 'agent' });
    assert.deepEqual(plan.strategy, { type: 'rolling', steps: [{ kind: 'batch', percent: 25 }, { kind: 'pause' }] });
    assert.deepEqual(planProblems(plan), []);
  });

  test('an Argo Rollout with workloadRef is refused by name where the strategy does not map', () => {
    const rollout = (kind: string, strategy: Record<string, unknown>) => problems(kind, strategy, 'Rollout').join('\n');
    assert.match(rollout('StatefulSet', { canary: { trafficRouting: { istio: { virtualService: { name: 'vs' } } }, canaryService: 'c', stableService: 's', steps: [{ setWeight: 10 }] } }), /spec\.strategy\.canary\.trafficRouting: cannot map to a StatefulSet: a StatefulSet's pods are updated in place by partition .*\(workloadRef\.kind StatefulSet\)/);
    assert.match(rollout('StatefulSet', { canary: { steps: [{ setWeight: 10 }, { setCanaryScale: { replicas: 1 } }] } }), /spec\.strategy\.canary\.steps\[1\]\.setCanaryScale: cannot map to a StatefulSet/);
    assert.match(rollout('StatefulSet', { canary: { steps: [{ setWeight: 50 }, { setWeight: 20 }] } }), /spec\.strategy\.canary\.steps\[1\]\.setWeight: weight 20 is smaller than an earlier weight/);
    assert.match(rollout('StatefulSet', { blueGreen: { activeService: 'web' } }), /spec\.strategy\.blueGreen: blue\/green is refused for a StatefulSet/);
    assert.match(rollout('DaemonSet', { canary: { steps: [{ setWeight: 10 }, { setCanaryScale: { replicas: 1 } }] } }), /spec\.strategy\.canary\.steps\[1\]\.setCanaryScale: cannot map to a DaemonSet: a DaemonSet's pods are replaced in place, node by node .*\(workloadRef\.kind DaemonSet\)/);
    assert.match(rollout('DaemonSet', { blueGreen: { activeService: 'web' } }), /spec\.strategy\.blueGreen: a DaemonSet is released with strategy\.rolling/);
    assert.match(rollout('ReplicaSet', { canary: { steps: [] } }), /spec\.workloadRef\.kind: must be one of Deployment, StatefulSet, DaemonSet/);
  });

  test('the workflow refuses the same at start when another client built the plan', () => {
    const base = { name: 'web', namespace: 'shop', image: 'example/web:2', progressDeadlineSeconds: 600, retryWindowSeconds: 60, policy: {} };
    assert.deepEqual(planProblems({ ...base, workload: { kind: 'StatefulSet', name: 'web' }, strategy: { type: 'rolling', steps: [{ kind: 'batch', replicas: 2 }, { kind: 'batch', replicas: 1 }] } }), [
      'strategy.steps.1: batch 1 is smaller than an earlier batch (2): batches count the replicas updated so far and never go down',
    ]);
    assert.deepEqual(planProblems({ ...base, workload: { kind: 'Deployment', name: 'web' }, strategy: { type: 'rolling', steps: [{ kind: 'batch', percent: 50 }], maxSurge: 2 } }), []);
    assert.match(planProblems({ ...base, workload: { kind: 'StatefulSet', name: 'web' }, strategy: { type: 'rolling', steps: [], maxSurge: 2 } }).join('\n'), /strategy\.rolling\.maxSurge: a StatefulSet has no surge/);
    assert.match(planProblems({ ...base, workload: { kind: 'DaemonSet', name: 'web' }, strategy: { type: 'canary', steps: [] } }).join('\n'), /strategy\.canary: a DaemonSet is released with strategy\.rolling/);
    assert.match(planProblems({ ...base, workload: { kind: 'StatefulSet', name: 'web' }, strategy: { type: 'rolling', steps: [{ kind: 'batch', nodeSelector: { zone: 'a' } }] } }).join('\n'), /strategy\.rolling\.steps\[0\]\.batch\.nodeSelector: a batch of nodes by label is for DaemonSets/);
    assert.deepEqual(planProblems({ ...base, workload: { kind: 'DaemonSet', name: 'web' }, strategy: { type: 'rolling', steps: [{ kind: 'batch', nodeSelector: { zone: 'a' } }, { kind: 'batch', replicas: 1 }] } }), []);
    assert.ok(planProblems({ ...base, workload: { kind: 'StatefulSet', name: 'web' }, strategy: { type: 'rolling', steps: [{ kind: 'setWeight', weight: 5 }] } }).length > 0, 'a canary step is not a rolling step');
  });

  test('batch arithmetic: cumulative, percentages round up, the partition counts ordinals from the top and never goes below the user\'s', () => {
    assert.deepEqual(parseBatch('25%'), { kind: 'batch', percent: 25 });
    assert.deepEqual(parseBatch(3), { kind: 'batch', replicas: 3 });
    assert.equal(parseBatch('101%'), undefined);
    assert.equal(parseBatch(-1), undefined);
    assert.equal(batchReplicas({ kind: 'batch', percent: 60 }, 5), 3);
    assert.equal(batchReplicas({ kind: 'batch', percent: 25 }, 5), 2);
    assert.equal(batchReplicas({ kind: 'batch', replicas: 9 }, 5), 5);
    assert.equal(partitionFor(5, 1, 0), 4);
    assert.equal(partitionFor(5, 3, 0), 2);
    assert.equal(partitionFor(5, 5, 0), 0);
    assert.equal(partitionFor(5, 5, 1), 1);
  });
});
