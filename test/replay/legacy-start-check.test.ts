/**
 * The start check that releases and groups recorded before the local-activity check replay
 * (model/legacy-start-check.ts, zod-free) against the schema check they ran when recorded
 * (model/plan.ts `planProblems`, model/group-plan-schema.ts `groupPlanProblems`). What replay needs:
 * every plan the schema check accepts is accepted (else a release that went on would fail on replay),
 * and the plans it rejects are rejected (a release that failed at its start replays as failed).
 * Plans: every release recorded in test/replay/histories, the examples, the Argo corpus, and
 * shape-breaking mutations of each. Pure functions; no server.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import proto from '@temporalio/proto';
import { legacyGroupPlanProblems, legacyPlanProblems } from '../../model/legacy-start-check.ts';
import { groupPlanProblems } from '../../model/group-plan-schema.ts';
import { buildGroup, parseGroup } from '../../model/group.ts';
import { planProblems } from '../../model/plan.ts';
import type { ReleasePlan } from '../../model/types.ts';
import { loadPlan } from '../../starters/spec-files.ts';
import { HISTORY_DIR } from '../workflows/harness.ts';

const root = path.resolve(import.meta.dirname, '../..');

/** The plans recorded as release inputs in the replay histories. */
async function recordedPlans(): Promise<{ from: string; plan: unknown }[]> {
  const out: { from: string; plan: unknown }[] = [];
  for (const f of (await readdir(HISTORY_DIR)).filter((x) => x.endsWith('.binpb')).sort()) {
    const history = proto.temporal.api.history.v1.History.decode(await readFile(path.join(HISTORY_DIR, f)));
    const started = history.events[0]?.workflowExecutionStartedEventAttributes;
    if (started?.workflowType?.name !== 'release') continue;
    const data = started.input?.payloads?.[0]?.data;
    if (!data) continue;
    const input = JSON.parse(Buffer.from(data).toString('utf8')) as { plan: unknown };
    out.push({ from: f, plan: input.plan });
  }
  return out;
}

/** Plans the CLI builds from the examples and the Argo corpus (those that load). */
async function specPlans(): Promise<{ from: string; plan: ReleasePlan }[]> {
  const files = [
    ...(await readdir(path.join(root, 'examples'))).filter((f) => f.endsWith('.yaml') && !f.startsWith('api-version')).map((f) => path.join(root, 'examples', f)),
    ...(await readdir(path.join(root, 'test/fixtures/argo-corpus'))).filter((f) => f.endsWith('.yaml')).map((f) => path.join(root, 'test/fixtures/argo-corpus', f)),
  ];
  const out: { from: string; plan: ReleasePlan }[] = [];
  for (const f of files) {
    try {
      out.push({ from: path.relative(root, f), plan: await loadPlan([f]) });
    } catch {
      // a corpus file the CLI refuses is no plan (its refusal is tested elsewhere)
    }
  }
  return out;
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the edits below reach into plain JSON of any shape
type Json = any;

/** Shape-breaking edits of a valid plan, each of which the schema rejects. */
function mutations(plan: ReleasePlan): { what: string; plan: unknown }[] {
  const edits: [string, (p: Record<string, Json>) => void][] = [
    ['an unknown top-level field', (p) => (p.extra = 1)],
    ['no name', (p) => delete p.name],
    ['an upper-case namespace', (p) => (p.namespace = 'Shop')],
    ['no workload', (p) => delete p.workload],
    ['an unknown workload kind', (p) => (p.workload.kind = 'CronJob')],
    ['an image with a space', (p) => (p.image = 'registry.local/app :v2')],
    ['a fractional progress deadline', (p) => (p.progressDeadlineSeconds = 1.5)],
    ['a negative retry window', (p) => (p.retryWindowSeconds = -1)],
    ['no policy', (p) => delete p.policy],
    ['promoters not a list', (p) => (p.policy.promoters = 'alice')],
    ['an unknown strategy', (p) => (p.strategy = { type: 'recreate' })],
    ['an unknown strategy field', (p) => (p.strategy.surprise = true)],
    ['replicas 0', (p) => (p.replicas = 0)],
    ['a cluster with a dot', (p) => (p.cluster = 'eu.west')],
    ['freeze with no windows', (p) => (p.freeze = { windows: [] })],
    ['config not a list', (p) => (p.config = { kind: 'ConfigMap', name: 'x' })],
  ];
  if (plan.strategy.type !== 'blueGreen') {
    edits.push(
      ['steps not a list', (p) => (p.strategy.steps = {})],
      ['a step of unknown kind', (p) => p.strategy.steps.push({ kind: 'sleep' })],
      ['a weight over 100', (p) => p.strategy.steps.push(p.strategy.type === 'rolling' ? { kind: 'batch', percent: 101 } : { kind: 'setWeight', weight: 101 })],
      ['a pause with a field it has not', (p) => p.strategy.steps.push({ kind: 'pause', durationMs: 1000, until: 'later' })],
      ['an approval without approvers', (p) => p.strategy.steps.push({ kind: 'approval', approvers: [], minApprovals: 1, onTimeout: 'abort' })],
      ['an analysis without metrics', (p) => p.strategy.steps.push({ kind: 'analysis', analysis: { name: 'a', templates: [], args: {}, metrics: [] } })],
    );
  } else {
    edits.push(['an active Service with a capital', (p) => (p.strategy.activeService = 'Web')], ['autoPromotionEnabled not a boolean', (p) => (p.strategy.autoPromotionEnabled = 'yes')]);
  }
  return edits.map(([what, edit]) => {
    const p = clone(plan) as unknown as Record<string, Json>;
    edit(p);
    return { what, plan: p };
  });
}

test('every recorded, example and corpus plan the schema check accepts, the legacy check accepts with the same answer', async () => {
  const plans = [...(await recordedPlans()), ...(await specPlans())];
  assert.ok(plans.length >= 40, `expected the recorded and example plans, found ${plans.length}`);
  let accepted = 0;
  for (const { from, plan } of plans) {
    const schema = planProblems(plan);
    const legacy = legacyPlanProblems(plan);
    if (schema.length === 0) accepted++;
    // Past the shape, both run the same rules: a plan the schema accepts gets the same answer, [] or the rule's own problems.
    if (schema.length === 0 || legacy.length === 0) assert.deepEqual(legacy, schema, `${from}: schema ${JSON.stringify(schema)}, legacy ${JSON.stringify(legacy)}`);
  }
  assert.ok(accepted >= 40, `expected at least 40 accepted plans, ${accepted} of ${plans.length}`);
});

test('every shape-breaking edit of those plans is rejected by both checks', async () => {
  const plans = [...(await recordedPlans()), ...(await specPlans())].filter((p) => planProblems(p.plan).length === 0);
  let checked = 0;
  const missed: string[] = [];
  for (const { from, plan } of plans) {
    for (const m of mutations(plan as ReleasePlan)) {
      assert.notDeepEqual(planProblems(m.plan), [], `${from} with ${m.what}: the schema check should reject it`);
      checked++;
      if (legacyPlanProblems(m.plan).length === 0) missed.push(`${from} with ${m.what}`);
    }
  }
  assert.ok(checked > 500, `expected many edits, checked ${checked}`);
  console.log(`${plans.length} accepted plans, ${checked} shape-breaking edits`);
  assert.deepEqual(missed, []);
});

test('a release group: the legacy check accepts what the schema check accepts and rejects its shape-breaking edits', () => {
  const release = (name: string) => ({ apiVersion: 'glidepath.dev/v1alpha1', kind: 'Release', metadata: { name, namespace: 'shop' }, spec: { workloadRef: { kind: 'Deployment', name }, image: `registry.local/${name}:2`, strategy: { canary: { steps: [{ setWeight: 50 }, { pause: {} }] } } } });
  const doc = {
    apiVersion: 'glidepath.dev/v1alpha1',
    kind: 'ReleaseGroup',
    metadata: { name: 'checkout', namespace: 'shop' },
    spec: {
      members: [{ name: 'ledger', inline: [release('ledger')] }, { name: 'cart', inline: [release('cart')], dependsOn: ['ledger'] }],
      waves: [{ name: 'staging', clusters: ['staging'] }, { name: 'prod', clusters: ['eu', 'us'], maxParallel: 1 }],
      clusters: { eu: { replicas: { cart: 3 } } },
    },
  };
  const group = buildGroup('g.yaml', parseGroup('g.yaml', doc));
  assert.deepEqual(groupPlanProblems(group), []);
  assert.deepEqual(legacyGroupPlanProblems(group), []);
  const edits: [string, (g: Record<string, Json>) => void][] = [
    ['an unknown field', (g) => (g.extra = true)],
    ['no members', (g) => (g.members = [])],
    ['a wave without clusters', (g) => (g.waves[0].clusters = [])],
    ['an unknown failure policy', (g) => (g.onFailure = 'shrug')],
    ['a member whose plan has no image', (g) => delete g.members[0].plan.image],
    ['a member depending on a stranger', (g) => g.members[1].dependsOn.push('stranger')],
    ['a cluster in two waves', (g) => g.waves[1].clusters.push('staging')],
    ['an override of replicas 0', (g) => (g.clusters.eu.replicas.cart = 0)],
  ];
  for (const [what, edit] of edits) {
    const g = clone(group) as unknown as Record<string, Json>;
    edit(g);
    assert.notDeepEqual(groupPlanProblems(g), [], `${what}: the schema check should reject it`);
    assert.notDeepEqual(legacyGroupPlanProblems(g), [], `${what}: the legacy check accepted it`);
  }
});
