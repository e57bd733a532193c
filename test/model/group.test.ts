/** The ReleaseGroup document: strictness, dependency DAG, waves, gates, overrides, and the parent's start-time check. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpecError, formatProblem } from '../../model/normalize.ts';
import { buildGroup, parseGroup, memberFiles } from '../../model/group.ts';
import { clusterTaskQueue, dependencyOrder, memberPlan, rollbackPlan, withRegistry } from '../../model/group-plan.ts';
import { groupPlanProblems } from '../../model/group-plan-schema.ts';
import { releaseWorkflowId } from '../../model/types.ts';

function release(name: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'glidepath.dev/v1alpha1',
    kind: 'Release',
    metadata: { name, namespace: 'shop' },
    spec: { workloadRef: { kind: 'Deployment', name }, image: `registry.local/${name}:2`, strategy: { canary: { steps: [{ setWeight: 50 }] } }, ...extra },
  };
}

const template = {
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'AnalysisTemplate',
  metadata: { name: 'errors' },
  spec: { metrics: [{ name: 'errors', successCondition: 'result[0] < 0.01', provider: { prometheus: { address: 'http://127.0.0.1:9090', query: 'sum(rate(x[1m]))' } } }] },
};

function group(spec: Record<string, unknown> = {}) {
  return {
    apiVersion: 'glidepath.dev/v1alpha1',
    kind: 'ReleaseGroup',
    metadata: { name: 'checkout', namespace: 'shop' },
    spec: {
      members: [
        { name: 'ledger', inline: [release('ledger')] },
        { name: 'payments', inline: [release('payments')], dependsOn: ['ledger'] },
        { name: 'web', inline: [release('web')], dependsOn: ['payments'] },
      ],
      waves: [
        { name: 'staging', clusters: ['staging'], gate: { soak: '10m' } },
        { name: 'prod', clusters: ['prod-eu', 'prod-us'], maxParallel: 1 },
      ],
      ...spec,
    },
  };
}

function problems(doc: unknown): string[] {
  try {
    buildGroup('g.yaml', parseGroup('g.yaml', doc));
  } catch (err) {
    if (err instanceof SpecError) return err.problems.map(formatProblem);
    throw err;
  }
  return [];
}

test('a valid group: members in dependency order, waves, defaults', () => {
  const doc = group({ members: [
    { name: 'web', inline: [release('web')], dependsOn: ['payments'] },
    { name: 'payments', inline: [release('payments')], dependsOn: ['ledger'] },
    { name: 'ledger', inline: [release('ledger')] },
  ] });
  const g = buildGroup('g.yaml', parseGroup('g.yaml', doc));
  assert.deepEqual(g.members.map((m) => m.name), ['ledger', 'payments', 'web']);
  assert.equal(g.onFailure, 'rollback-group');
  assert.deepEqual(g.waves.map((w) => [w.name, w.clusters, w.maxParallel, w.gate]), [
    ['staging', ['staging'], 1, { soakMs: 600_000 }],
    ['prod', ['prod-eu', 'prod-us'], 1, undefined],
  ]);
  assert.deepEqual(groupPlanProblems(g), []);
});

test('every unknown field is named, in the group and in its waves and gates', () => {
  const doc = group();
  (doc.spec as Record<string, unknown>).colour = 'blue';
  (doc.spec.waves[0] as Record<string, unknown>).region = 'eu';
  ((doc.spec.waves[0] as { gate: Record<string, unknown> }).gate).sleep = '1m';
  const p = problems(doc);
  assert.ok(p.includes('g.yaml: spec.colour: unsupported field (Glidepath does not implement it; remove it or see docs/fleet.md)'), p.join('\n'));
  assert.ok(p.some((l) => l.startsWith('g.yaml: spec.waves[0].region: unsupported field')), p.join('\n'));
  assert.ok(p.some((l) => l.startsWith('g.yaml: spec.waves[0].gate.sleep: unsupported field')), p.join('\n'));
});

test('a cycle is named by its members', () => {
  const doc = group();
  doc.spec.members[0] = { name: 'ledger', inline: [release('ledger')], dependsOn: ['web'] };
  assert.deepEqual(problems(doc), ['g.yaml: spec.members[0].dependsOn: dependency cycle ledger → web → payments → ledger']);
});

test('a missing dependency, a self-dependency and a duplicate member are named', () => {
  const doc = group({ members: [
    { name: 'ledger', inline: [release('ledger')], dependsOn: ['ledger'] },
    { name: 'payments', inline: [release('payments')], dependsOn: ['billing'] },
    { name: 'payments', inline: [release('web')] },
  ] });
  assert.deepEqual(problems(doc), [
    'g.yaml: spec.members[0].dependsOn[0]: a member cannot depend on itself',
    'g.yaml: spec.members[1].dependsOn[0]: no member named "billing"',
    'g.yaml: spec.members[2].name: duplicate member "payments" (also spec.members[1])',
  ]);
});

test('two members of the same workload, a cluster in two waves, an override for a cluster no wave names', () => {
  const doc = group({
    members: [{ name: 'a', inline: [release('web')] }, { name: 'b', inline: [release('web')] }],
    waves: [{ name: 'one', clusters: ['eu'] }, { name: 'two', clusters: ['us', 'eu'] }],
    clusters: { ap: { imageRegistry: 'registry.ap.example' } },
  });
  assert.deepEqual(problems(doc), [
    'g.yaml: spec.waves[1].clusters[1]: cluster "eu" is already in wave "one"',
    'g.yaml: spec.clusters.ap: no wave names cluster "ap"',
    'g.yaml: spec.members[1]: releases workload shop/web, as member "a" does',
  ]);
});

test('a member with both or neither of file and inline, and problems inside an inline release, are named', () => {
  const doc = group({ members: [
    { name: 'a', inline: [release('a')], file: 'a.yaml' },
    { name: 'b' },
  ] });
  assert.deepEqual(problems(doc), ['g.yaml: spec.members[0]: set file or inline (exactly one)', 'g.yaml: spec.members[1]: set file or inline (exactly one)']);
  const inner = group({ members: [{ name: 'c', inline: [release('c', { colour: 'red' })] }] });
  assert.deepEqual(problems(inner), ['g.yaml: spec.members[0].inline[0].spec.colour: unsupported field (Glidepath does not implement it; remove it or see docs/spec.md)']);
});

test('file members: the caller reads the files; their problems keep the file name', () => {
  const doc = parseGroup('g.yaml', group({ members: [{ name: 'ledger', file: ['ledger.yaml', 't.yaml'] }] }));
  assert.deepEqual([...memberFiles(doc)], [['ledger', ['ledger.yaml', 't.yaml']]]);
  const g = buildGroup('g.yaml', doc, new Map([['ledger', [{ source: 'ledger.yaml', doc: release('ledger') }]]]));
  assert.equal(g.members[0]?.plan.source, 'ledger.yaml,t.yaml');
  assert.throws(() => buildGroup('g.yaml', doc, new Map([['ledger', [{ source: 'ledger.yaml', doc: release('ledger', { strategy: {} }) }]]])), (err: SpecError) => {
    assert.ok(err.problems.every((p) => p.source === 'ledger.yaml'), JSON.stringify(err.problems));
    return true;
  });
});

test('gates: analysis resolved against the group templates, approval with the release rules', () => {
  const doc = group({
    waves: [{ name: 'staging', clusters: ['staging'], gate: { soak: '5m', analysis: { templates: [{ templateName: 'errors' }] }, approval: { approvers: ['alice', 'bob'], minApprovals: 2, timeout: '1h' } } }],
    analysisTemplates: [template],
  });
  const g = buildGroup('g.yaml', parseGroup('g.yaml', doc));
  const gate = g.waves[0]?.gate;
  assert.equal(gate?.soakMs, 300_000);
  assert.equal(gate?.analysis?.metrics[0]?.name, 'errors');
  assert.deepEqual(gate?.approval, { approvers: ['alice', 'bob'], minApprovals: 2, timeoutMs: 3_600_000, onTimeout: 'abort' });

  const bad = group({ waves: [{ name: 'staging', clusters: ['staging'], gate: { analysis: { templates: [{ templateName: 'nope' }] }, approval: { approvers: ['alice'], minApprovals: 2 } } }], analysisTemplates: [template] });
  assert.deepEqual(problems(bad), [
    'g.yaml: spec.waves[0].gate.approval.minApprovals: needs 2 approvals but only 1 distinct approver(s) are listed',
  ]);
  const unresolved = group({ waves: [{ name: 'staging', clusters: ['staging'], gate: { analysis: { templates: [{ templateName: 'nope' }] } } }], analysisTemplates: [template] });
  assert.deepEqual(problems(unresolved), ['g.yaml: spec.waves[0].gate.analysis.templates[0].templateName: no AnalysisTemplate named "nope" in the given files']);
  const badTemplate = group({ waves: [{ name: 'staging', clusters: ['staging'], gate: { analysis: { templates: [{ templateName: 'errors' }] } } }], analysisTemplates: [{ ...template, spec: { metrics: [], extra: 1 } }] });
  assert.ok(problems(badTemplate).some((l) => l.startsWith('g.yaml: spec.analysisTemplates[0].spec.extra: unsupported field')), problems(badTemplate).join('\n'));
  assert.deepEqual(problems(group({ waves: [{ name: 'staging', clusters: ['staging'], gate: {} }] })), ['g.yaml: spec.waves[0].gate: set soak, analysis and/or approval']);
});

test('per-cluster overrides: image registry and analysis address; the cluster is part of the child workflow ID', () => {
  const analysisStep = { analysis: { templates: [{ templateName: 'errors' }] } };
  const doc = group({
    members: [{ name: 'ledger', inline: [release('ledger', { strategy: { canary: { steps: [{ setWeight: 50 }, analysisStep] } } }), template] }],
    clusters: { 'prod-eu': { imageRegistry: 'registry.eu.example:5000', analysisAddress: 'http://prometheus.eu:9090' } },
  });
  const g = buildGroup('g.yaml', parseGroup('g.yaml', doc));
  const m = g.members[0]!;
  const eu = memberPlan(g, m, 'prod-eu');
  assert.equal(eu.image, 'registry.eu.example:5000/ledger:2');
  assert.equal(eu.cluster, 'prod-eu');
  const step = eu.strategy.type === 'canary' ? eu.strategy.steps[1] : undefined;
  assert.equal(step?.kind === 'analysis' && 'prometheus' in step.analysis.metrics[0]!.provider ? step.analysis.metrics[0]!.provider.prometheus.address : '', 'http://prometheus.eu:9090');
  const us = memberPlan(g, m, 'prod-us');
  assert.equal(us.image, 'registry.local/ledger:2');
  assert.equal(releaseWorkflowId(us), 'release_shop_ledger@prod-us');
  assert.equal(releaseWorkflowId(m.plan), 'release_shop_ledger');
  assert.equal(clusterTaskQueue('prod-us'), 'glidepath@prod-us');
  assert.equal(withRegistry('app:1', 'localhost:5000'), 'localhost:5000/app:1');
  assert.deepEqual(problems(group({ clusters: { staging: { imageRegistry: 'https://x' } } })), ['g.yaml: spec.clusters.staging.imageRegistry: must be a registry host such as registry.eu.example or localhost:5000']);
});

test('a rollback plan: the previous image, no steps, the same workload', () => {
  const g = buildGroup('g.yaml', parseGroup('g.yaml', group()));
  const plan = memberPlan(g, g.members[0]!, 'staging');
  const back = rollbackPlan(plan, 'registry.local/ledger@sha256:' + 'a'.repeat(64));
  assert.deepEqual(back.strategy, { type: 'canary', steps: [] });
  assert.equal(back.image, 'registry.local/ledger@sha256:' + 'a'.repeat(64));
  assert.equal(releaseWorkflowId(back), 'release_shop_ledger@staging');
});

test('the parent refuses a group plan that any client could start wrongly', () => {
  const g = buildGroup('g.yaml', parseGroup('g.yaml', group()));
  const cyc = structuredClone(g);
  cyc.members[0]!.dependsOn = ['web'];
  assert.deepEqual(groupPlanProblems(cyc), ['members.ledger.dependsOn: dependency cycle ledger → web → payments → ledger']);
  const bad = structuredClone(g);
  (bad.members[1]!.plan as { image: string }).image = 'not an image!';
  assert.ok(groupPlanProblems(bad).some((l) => l.startsWith('members.payments.plan: image')), groupPlanProblems(bad).join('\n'));
  assert.deepEqual(groupPlanProblems({ ...g, onFailure: 'ignore' }).map((l) => l.split(':')[0]), ['onFailure']);
  assert.deepEqual(dependencyOrder([{ name: 'a', dependsOn: ['z'] }]), { problem: 'depends on "z", which is not a member', member: 'a' });
});
