/** A release group's per-cluster replica counts: resolution into each member's plan, the edge's and the parent's checks, the rollback plan. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpecError, formatProblem } from '../../model/normalize.ts';
import { buildGroup, parseGroup } from '../../model/group.ts';
import { memberPlan, rollbackPlan, type GroupPlan } from '../../model/group-plan.ts';
import { groupPlanProblems } from '../../model/group-plan-schema.ts';
import { planProblems } from '../../model/plan.ts';
import { targetOf } from '../../workflows/release/target.ts';

function release(name: string, strategy: Record<string, unknown> = { canary: { steps: [{ setWeight: 50 }] } }) {
  return {
    apiVersion: 'glidepath.dev/v1alpha1',
    kind: 'Release',
    metadata: { name, namespace: 'shop' },
    spec: { workloadRef: { kind: 'Deployment', name }, image: `registry.local/${name}:2`, strategy },
  };
}

function group(clusters: Record<string, unknown>, members: unknown[] = [{ name: 'ledger', inline: [release('ledger')] }, { name: 'payments', inline: [release('payments')], dependsOn: ['ledger'] }]) {
  return {
    apiVersion: 'glidepath.dev/v1alpha1',
    kind: 'ReleaseGroup',
    metadata: { name: 'checkout', namespace: 'shop' },
    spec: { members, waves: [{ name: 'staging', clusters: ['staging'] }, { name: 'prod', clusters: ['prod-eu', 'prod-us'] }], clusters },
  };
}

function build(doc: unknown): GroupPlan {
  return buildGroup('g.yaml', parseGroup('g.yaml', doc));
}

function problems(doc: unknown): string[] {
  try {
    build(doc);
  } catch (err) {
    if (err instanceof SpecError) return err.problems.map(formatProblem);
    throw err;
  }
  return [];
}

test('a replica count for a member in one cluster reaches that member in that cluster only, and its activities', () => {
  const g = build(group({ 'prod-us': { replicas: { ledger: 6 } }, 'prod-eu': { imageRegistry: 'registry.eu.example' } }));
  assert.deepEqual(groupPlanProblems(g), []);
  const [ledger, payments] = g.members;
  assert.equal(memberPlan(g, ledger!, 'prod-us').replicas, 6);
  assert.equal(targetOf(memberPlan(g, ledger!, 'prod-us'), 'r').replicas, 6);
  for (const c of ['staging', 'prod-eu']) {
    assert.equal('replicas' in memberPlan(g, ledger!, c), false, c);
    assert.equal('replicas' in targetOf(memberPlan(g, ledger!, c), 'r'), false, c);
  }
  assert.equal('replicas' in memberPlan(g, payments!, 'prod-us'), false);
  assert.equal(ledger!.plan.replicas, undefined, 'the member plan itself is not changed');
});

test('bad counts, an unknown member and a cluster in no wave are named at the edge, and by the parent\'s check', () => {
  assert.deepEqual(problems(group({ 'prod-us': { replicas: { ledger: 2.5, payments: -1 } } })), [
    'g.yaml: spec.clusters.prod-us.replicas.ledger: must be a whole number',
    'g.yaml: spec.clusters.prod-us.replicas.payments: must be at least 1',
  ]);
  assert.deepEqual(problems(group({ 'prod-us': { replicas: { ledger: 0 } } })), ['g.yaml: spec.clusters.prod-us.replicas.ledger: must be at least 1']);
  assert.deepEqual(problems(group({ 'prod-us': { replicas: { ledger: '3' } } })).map((p) => p.split(': ').slice(0, 2).join(': ')), ['g.yaml: spec.clusters.prod-us.replicas.ledger']);
  assert.deepEqual(problems(group({ 'prod-us': { replicas: { billing: 3 } }, 'prod-ap': { replicas: { ledger: 3 } } })), [
    'g.yaml: spec.clusters.prod-us.replicas.billing: no member named "billing" (members: ledger, payments)',
    'g.yaml: spec.clusters.prod-ap: no wave names cluster "prod-ap"',
  ]);

  // The same rules when any client hands the parent a plan.
  const g = build(group({ 'prod-us': { replicas: { ledger: 3 } } }));
  const bad = structuredClone(g);
  bad.clusters = { 'prod-us': { replicas: { ledger: 2.5 } }, 'prod-ap': { replicas: { billing: 3 } } };
  assert.deepEqual(groupPlanProblems(bad), ['clusters.prod-us.replicas.ledger: must be a whole number']);
  bad.clusters = { 'prod-us': { replicas: { billing: 3 } }, 'prod-ap': {} };
  assert.deepEqual(groupPlanProblems(bad), ['clusters.prod-us.replicas.billing: no member named "billing" (members: ledger, payments)', 'clusters.prod-ap: no wave names cluster "prod-ap"']);
});

test('a count for a member released with strategy.rolling is refused naming the override', () => {
  const rolling = release('db', { rolling: { steps: [{ batch: 1 }] } });
  (rolling.spec.workloadRef as { kind: string }).kind = 'StatefulSet';
  const p = problems(group({ 'prod-eu': { replicas: { db: 5 } } }, [{ name: 'db', inline: [rolling] }]));
  assert.equal(p.length, 1, p.join('\n'));
  assert.match(p[0]!, /^g\.yaml: spec\.clusters\.prod-eu\.replicas\.db: replicas: a desired replica count is for canary and blue\/green releases of a Deployment; strategy\.rolling keeps the StatefulSet's own count/);
});

test('the plan carries a whole, positive count or none', () => {
  const g = build(group({}));
  const plan = memberPlan(g, g.members[0]!, 'staging');
  assert.deepEqual(planProblems({ ...plan, replicas: 4 }), []);
  assert.deepEqual(planProblems({ ...plan, replicas: 1.5 }), ['replicas: must be a whole number']);
  assert.deepEqual(planProblems({ ...plan, replicas: 0 }), ['replicas: must be at least 1']);
  assert.deepEqual(planProblems({ ...plan, replicas: 5000 }), ['replicas: must be at most 1000']);
});

test('a rollback plan returns to the count the cluster had, or leaves the count alone', () => {
  const g = build(group({ 'prod-us': { replicas: { ledger: 6 } } }));
  const forward = memberPlan(g, g.members[0]!, 'prod-us');
  assert.equal(rollbackPlan(forward, 'registry.local/ledger:1', 2).replicas, 2);
  assert.equal('replicas' in rollbackPlan(forward, 'registry.local/ledger:1'), false, 'the forward count is not what a rollback returns to');
  assert.deepEqual(planProblems(rollbackPlan(forward, 'registry.local/ledger:1', 2)), []);
});
