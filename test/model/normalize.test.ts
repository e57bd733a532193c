/** Spec validation and the Argo Rollouts import: valid files become plans, invalid ones name every problem. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { loadPlan } from '../../starters/spec-files.ts';
import { SpecError, formatProblem } from '../../model/normalize.ts';
import { planProblems } from '../../model/plan.ts';
import { ARGO_REFUSALS } from '../../model/argo-refusals.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const file = (p: string) => path.join(root, p);

async function problemsOf(...files: string[]): Promise<string[]> {
  try {
    await loadPlan(files.map(file));
  } catch (err) {
    if (err instanceof SpecError) return err.problems.map((p) => formatProblem({ ...p, source: path.basename(p.source) }));
    throw err;
  }
  assert.fail('expected the spec to be refused');
}

test('the payment-gateway example becomes a canary plan with resolved templates', async () => {
  const plan = await loadPlan([file('examples/payment-gateway.yaml')]);
  assert.equal(plan.namespace, 'payments');
  assert.deepEqual(plan.workload, { kind: 'Deployment', name: 'payment-gateway' });
  assert.equal(plan.progressDeadlineSeconds, 600);
  assert.equal(plan.strategy.type, 'canary');
  if (plan.strategy.type !== 'canary') return;
  assert.deepEqual(plan.strategy.steps.map((s) => s.kind), ['setWeight', 'pause', 'analysis', 'setWeight', 'pause', 'setWeight', 'approval', 'setWeight']);
  const a = plan.strategy.steps[2];
  assert.ok(a?.kind === 'analysis');
  assert.deepEqual(a.analysis.args, { service: { value: 'payment-gateway' } });
  assert.deepEqual(a.analysis.metrics[0], {
    name: 'success-rate',
    intervalMs: 30_000,
    count: 4,
    successCondition: 'result[0] >= 0.99',
    failureLimit: 1,
    inconclusiveLimit: 0,
    consecutiveErrorLimit: 4,
    dryRun: false,
    provider: a.analysis.metrics[0]?.provider,
  });
  const approval = plan.strategy.steps[6];
  assert.deepEqual(approval, { kind: 'approval', approvers: ['alice', 'bob', 'carol'], minApprovals: 1, timeoutMs: 86_400_000, onTimeout: 'abort' });
  assert.deepEqual(planProblems(plan), []);
});

test('an Argo Rollout is imported unchanged: its name is the workload, its image the release', async () => {
  const plan = await loadPlan([file('examples/argo-rollout.yaml')]);
  assert.equal(plan.name, 'checkout');
  assert.deepEqual(plan.workload, { kind: 'Deployment', name: 'checkout', container: 'checkout' });
  assert.equal(plan.image, 'registry.local:5000/shop/checkout:1.4.0');
  assert.ok(plan.strategy.type === 'canary');
  if (plan.strategy.type !== 'canary') return;
  assert.equal(plan.strategy.background?.startingStep, 1);
  assert.equal(plan.strategy.background?.analysis.metrics[0]?.failureCondition, 'result[0] > 0.05');
  assert.equal(plan.strategy.steps[1]?.kind, 'pause');
  assert.deepEqual(plan.strategy.steps[3], { kind: 'pause', durationMs: 30_000 });
  assert.deepEqual(planProblems(plan), []);
});

test('--image overrides the spec image', async () => {
  const plan = await loadPlan([file('examples/blue-green.yaml')], { image: 'registry.local/shop/orders@sha256:' + 'a'.repeat(64) });
  assert.equal(plan.image, 'registry.local/shop/orders@sha256:' + 'a'.repeat(64));
  assert.equal(plan.strategy.type, 'blueGreen');
  if (plan.strategy.type === 'blueGreen') assert.equal(plan.strategy.scaleDownDelaySeconds, 30);
});

test('unsupported Argo fields are named, never dropped', async () => {
  assert.deepEqual(await problemsOf('test/fixtures/specs/invalid-unsupported-argo.yaml'), [
    `invalid-unsupported-argo.yaml: spec.strategy.canary.steps[1].experiment.templates[0].weight: ${ARGO_REFUSALS.experimentWeight(undefined)}`,
  ]);
});

test('every problem in a Release names its field and reason', async () => {
  const problems = await problemsOf('test/fixtures/specs/invalid-release.yaml');
  const has = (re: RegExp) => assert.ok(problems.some((p) => re.test(p)), `${re} in\n${problems.join('\n')}`);
  has(/^invalid-release.yaml: spec.workloadRef.kind: .*Deployment/);
  has(/^invalid-release.yaml: spec.image: must be an image reference/);
  has(/^invalid-release.yaml: spec.strategy.canary.steps\[0\]: a step has exactly one action, this one has setWeight and pause/);
  has(/^invalid-release.yaml: spec.strategy.canary.steps\[1\].approval.onTimeout: /);
  has(/^invalid-release.yaml: spec.strategy.canary.steps\[2\].approval.minApprovals: needs 2 approvals but only 1 distinct approver/);
});

test('templates: missing args, undeclared args, bad conditions and unknown references', async () => {
  assert.deepEqual(await problemsOf('test/fixtures/specs/bad-template.yaml'), [
    'bad-template.yaml#2: spec.metrics[0].successCondition: cannot parse "result[0] <": Expected expression after < at character 11',
    'bad-template.yaml#1: spec.strategy.canary.steps[0].analysis.templates[0].templateName: template "latency" is invalid (see its problems)',
  ]);
  assert.deepEqual(await problemsOf('test/fixtures/specs/bad-args.yaml'), [
    'bad-args.yaml#2: spec.metrics[0].provider.prometheus.query: uses {{args.zone}} but the template declares no arg "zone"',
    'bad-args.yaml#1: spec.strategy.canary.steps[0].analysis.args[1].name: no template declares an arg "nope"',
    'bad-args.yaml#1: spec.strategy.canary.steps[0].analysis.args: arg "quantile" of template "latency" has no value',
    'bad-args.yaml#1: spec.strategy.canary.steps[1].analysis.templates[0].templateName: no ClusterAnalysisTemplate named "latency" in the given files',
  ]);
});

test('YAML syntax errors carry a line number', async () => {
  const problems = await problemsOf('test/fixtures/specs/broken.yaml');
  assert.match(problems[0] ?? '', /^broken.yaml: line \d+: YAML: /);
});

test('the workflow-start check refuses plans the edge would refuse', () => {
  assert.deepEqual(planProblems({}).slice(0, 1), ['name: Invalid input: expected string, received undefined']);
  const problems = planProblems({ name: 'x', namespace: 'y', workload: { kind: 'Deployment', name: 'x' }, image: 'i', progressDeadlineSeconds: 1, retryWindowSeconds: 0, policy: {}, strategy: { type: 'canary', steps: [{ kind: 'pause', durationMs: -5 }] } });
  assert.deepEqual(problems, ['strategy.steps.0.durationMs: Too small: expected number to be >=0']);
});

test('glidepath lint exits 0 valid, 1 invalid, 2 usage', async () => {
  const run = promisify(execFile);
  const cli = file('bin/glidepath');
  const ok = await run(cli, ['lint', '-f', file('examples/payment-gateway.yaml')]);
  assert.match(ok.stdout, /valid \(canary release of payments\/payment-gateway/);
  await assert.rejects(run(cli, ['lint', '-f', file('test/fixtures/specs/invalid-release.yaml')]), (err: { code: number; stderr: string }) => err.code === 1 && /spec.image/.test(err.stderr));
  await assert.rejects(run(cli, ['lint']), (err: { code: number; stderr: string }) => err.code === 2 && /required option '-f, --file/.test(err.stderr));
  await assert.rejects(run(cli, ['lint', '-f', '/nonexistent.yaml']), (err: { code: number }) => err.code === 2);
  const json = await run(cli, ['-o', 'json', 'lint', '-f', file('examples/argo-rollout.yaml')]);
  assert.deepEqual(JSON.parse(json.stdout), { valid: true, release: 'shop/checkout', strategy: 'canary', image: 'registry.local:5000/shop/checkout:1.4.0' });
});

test('glidepath lint reads ApiVersion documents: valid, and invalid with the field named', async () => {
  const run = promisify(execFile);
  const cli = file('bin/glidepath');
  const ok = await run(cli, ['-o', 'json', 'lint', '-f', file('examples/api-version-v2.yaml')]);
  assert.deepEqual(JSON.parse(ok.stdout), { valid: true, api: 'shop/orders', version: 'v2', route: '/v2' });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'glidepath-lint-'));
  const bad = path.join(dir, 'bad.yaml');
  await writeFile(bad, (await readFile(file('examples/api-version-v2.yaml'), 'utf8')).replace('pathPrefix: /v2', 'pathPrefix: v2'));
  await assert.rejects(run(cli, ['lint', '-f', bad]), (err: { code: number; stderr: string }) => err.code === 1 && /spec\.route\.pathPrefix/.test(err.stderr));
  await assert.rejects(run(cli, ['lint', '-f', file('examples/api-version-v2.yaml'), file('examples/payment-gateway.yaml')]), (err: { code: number; stderr: string }) => err.code === 1 && /expected ApiVersion/.test(err.stderr));
});
