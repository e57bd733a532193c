/**
 * Experiment steps and the judge provider at the edge: lint lines that name the field as written,
 * template weights accepted with Istio and SMI and refused by name with every other router (or none),
 * weights over 100 refused naming the field, the plan the step becomes, args naming
 * the running templates, and the step's outcome rules (Argo's Experiment phases).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { ARGO_REFUSALS } from '../../model/argo-refusals.ts';
import { bindTemplateArgs, experimentOutcome, type ExperimentStep } from '../../model/experiment.ts';
import { describeJudgeValue, judgeValue } from '../../model/judge-provider.ts';
import { judge } from '../../model/judge.ts';
import { SpecError, formatProblem, normalize } from '../../model/normalize.ts';
import { planProblems } from '../../model/plan.ts';

const ROLLOUT = (step: string) => `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: { name: web }
spec:
  template:
    spec:
      containers: [{ name: web, image: "shop/web:2" }]
  strategy:
    canary:
      steps:
        - setWeight: 20
        - experiment:
${step
  .split('\n')
  .map((l) => `            ${l}`)
  .join('\n')}
`;

const TEMPLATE = `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: { name: judge }
spec:
  args: [{ name: baseline-hash }, { name: canary-hash }]
  metrics:
    - name: judge
      provider:
        judge:
          address: http://127.0.0.1:9090
          lookback: 30s
          step: 1s
          metrics:
            - name: errors
              baseline: 'sum(rate(errors{pod_template_hash="{{args.baseline-hash}}"}[5s]))'
              canary: 'sum(rate(errors{pod_template_hash="{{args.canary-hash}}"}[5s]))'
              direction: increase
              critical: true
`;

function lint(...texts: string[]): string[] {
  const docs = texts.flatMap((text, i) => parseAllDocuments(text).map((d, j) => ({ source: `f${i}.yaml${j ? `#${j + 1}` : ''}`, doc: d.toJS() as unknown })));
  try {
    normalize(docs);
    return [];
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    return err.problems.map(formatProblem);
  }
}

function plan(...texts: string[]) {
  const docs = texts.flatMap((text, i) => parseAllDocuments(text).map((d) => ({ source: `f${i}.yaml`, doc: d.toJS() as unknown })));
  return normalize(docs);
}

const GOOD = `duration: 2m
templates:
  - { name: baseline, specRef: stable, replicas: 2, metadata: { labels: { track: baseline } } }
  - { name: canary, specRef: canary }
analyses:
  - name: judge
    templateName: judge
    requiredForCompletion: true
    args:
      - { name: baseline-hash, value: "{{templates.baseline.podTemplateHash}}" }
      - { name: canary-hash, value: "{{templates.canary.podTemplateHash}}" }`;

test('an experiment step with a judge analysis becomes a plan step the workflow accepts', () => {
  const p = plan(ROLLOUT(GOOD), TEMPLATE);
  assert.equal(p.strategy.type, 'canary');
  const step = p.strategy.type === 'canary' ? p.strategy.steps[1] : undefined;
  assert.equal(step?.kind, 'experiment');
  if (step?.kind !== 'experiment') return;
  assert.equal(step.durationMs, 120_000);
  assert.deepEqual(step.templates, [
    { name: 'baseline', specRef: 'stable', replicas: 2, labels: { track: 'baseline' } },
    { name: 'canary', specRef: 'canary', replicas: 1 },
  ]);
  const a = step.analyses[0];
  assert.equal(a?.requiredForCompletion, true);
  assert.equal(a?.run.metrics[0]?.successCondition, 'result["verdict"] == "Pass"');
  assert.equal(a?.run.metrics[0]?.failureCondition, 'result["verdict"] == "Fail"');
  assert.deepEqual(planProblems(p), []);
});

/** ROLLOUT with a traffic router block (YAML lines under trafficRouting) and Services. */
const ROUTED = (routing: string, step: string) =>
  ROLLOUT(step).replace('      steps:\n', `      stableService: web-stable\n      canaryService: web-canary\n      trafficRouting:\n${routing.split('\n').map((l) => `        ${l}`).join('\n')}\n      steps:\n`);
const ISTIO = 'istio: { virtualService: { name: web, routes: [primary] } }';
const SMI = 'smi: { trafficSplitName: web }';
const WEIGHTED = `duration: 1m
templates:
  - { name: baseline, specRef: stable, weight: 10 }
  - { name: canary, specRef: canary, weight: 10, service: { name: web-exp-canary-svc } }`;

test('template weights run with Istio and SMI: the plan carries each weight and Service', () => {
  for (const routing of [ISTIO, SMI]) {
    const p = plan(ROUTED(routing, WEIGHTED));
    const step = p.strategy.type === 'canary' ? p.strategy.steps[1] : undefined;
    assert.equal(step?.kind, 'experiment', routing);
    if (step?.kind !== 'experiment') return;
    assert.deepEqual(step.templates.map((t) => [t.name, t.weight, t.service]), [['baseline', 10, undefined], ['canary', 10, { name: 'web-exp-canary-svc' }]]);
    assert.deepEqual(planProblems(p), [], routing);
  }
});

test('template weights are refused by name with the routers that do not carry them, and without one', () => {
  const at = 'f0.yaml: spec.strategy.canary.steps[1].experiment.templates';
  for (const [routing, key] of [
    ['nginx: { stableIngress: web }', 'nginx'],
    ['traefik: { weightedTraefikServiceName: web }', 'traefik'],
    ['alb: { ingress: web, servicePort: 80 }', 'alb'],
    ['plugins: { argoproj-labs/gatewayAPI: { httpRoute: web, namespace: default } }', 'argoproj-labs/gatewayAPI'],
  ] as const) {
    const problems = lint(ROUTED(routing, WEIGHTED));
    const weightLines = problems.filter((l) => l.includes('.weight: '));
    assert.deepEqual(weightLines, [`${at}[0].weight: ${ARGO_REFUSALS.experimentWeight(key)}`, `${at}[1].weight: ${ARGO_REFUSALS.experimentWeight(key)}`], problems.join('\n'));
    assert.match(weightLines[0] ?? '', new RegExp(`not supported: experiment weights with ${key}`));
  }
  const none = lint(ROLLOUT(WEIGHTED));
  assert.ok(none.includes(`${at}[0].weight: ${ARGO_REFUSALS.experimentWeight(undefined)}`), none.join('\n'));
  assert.match(ARGO_REFUSALS.experimentWeight(undefined), /not supported: experiment weights without trafficRouting/);
  // A Service alone needs no router (Argo creates it for any canary).
  assert.deepEqual(lint(ROLLOUT('duration: 1m\ntemplates:\n  - { name: baseline, specRef: stable, service: {} }')), []);
});

test('the canary weight and the template weights over 100 are refused, naming the last template weight', () => {
  const over = `duration: 1m
templates:
  - { name: baseline, specRef: stable, weight: 50 }
  - { name: canary, specRef: canary, weight: 40 }`;
  const problems = lint(ROUTED(ISTIO, over));
  assert.deepEqual(problems, ['f0.yaml: spec.strategy.canary.steps[1].experiment.templates[1].weight: the canary\'s weight (20) and the experiment\'s weights (50 + 40) add up to 110, over 100: the stable gets 100 − canary − experiment weights']);
  // The start check on the plan refuses the same (a plan that did not come through lint).
  const p = plan(ROUTED(SMI, WEIGHTED));
  if (p.strategy.type !== 'canary') throw new Error('canary');
  const step = p.strategy.steps[1];
  if (step?.kind !== 'experiment') throw new Error('experiment');
  (step.templates[0] as { weight?: number }).weight = 75;
  assert.deepEqual(planProblems(p), ['strategy.steps.1.templates.1.weight: the canary\'s weight (20) and the experiment\'s weights (75 + 10) add up to 105, over 100: the stable gets 100 − canary − experiment weights']);
});

test('lint names each experiment field as written', () => {
  const refused = `duration: 1m
templates:
  - { name: baseline, specRef: stable, service: { name: Bad_Name } }
  - { name: baseline, specRef: canary, weight: 101 }`;
  const at = 'f0.yaml: spec.strategy.canary.steps[1].experiment';
  let problems = lint(ROLLOUT(refused));
  const has = (line: string) => assert.ok(problems.includes(line), `${line}\nin\n${problems.join('\n')}`);
  assert.ok(problems.some((l) => l.startsWith(`${at}.templates[0].service.name: must be a Service name`)), problems.join('\n'));
  assert.ok(problems.some((l) => l.startsWith(`${at}.templates[1].weight: `) && /100/.test(l)), problems.join('\n'));
  has(`${at}.templates[1].name: template "baseline" is named twice`);
  problems = lint(ROLLOUT(`templates:\n  - { name: baseline, specRef: newest }\nanalyses:\n  - { name: judge, templateName: judge, dryRun: true }`), TEMPLATE);
  assert.ok(problems.some((l) => l.startsWith(`${at}.templates[0].specRef: `) && /"stable"\|"canary"/.test(l)), problems.join('\n'));
  assert.ok(problems.some((l) => l.startsWith(`${at}.analyses[0].dryRun: unsupported field`)), problems.join('\n'));
});

test('an arg naming a template the experiment does not run is named at its value', () => {
  const text = GOOD.replace('{{templates.canary.podTemplateHash}}', '{{templates.canary-x.podTemplateHash}}');
  assert.deepEqual(lint(ROLLOUT(text), TEMPLATE), [
    'f0.yaml: spec.strategy.canary.steps[1].experiment.analyses[0].args[1].value: names template "canary-x", which this experiment does not run (templates: baseline, canary)',
  ]);
});

test('judge provider fields are checked and named', () => {
  const short = lint(ROLLOUT(GOOD), TEMPLATE.replace('lookback: 30s', 'lookback: 2s'));
  assert.deepEqual(short, [
    'f1.yaml: spec.metrics[0].provider.judge.lookback: lookback must hold at least 3 steps (the test needs samples on each side)',
    'f0.yaml: spec.strategy.canary.steps[1].experiment.analyses[0].templateName: template "judge" is invalid (see its problems)',
  ]);
  const direction = lint(ROLLOUT(GOOD), TEMPLATE.replace('direction: increase', 'direction: up'));
  assert.ok(direction[0]?.startsWith('f1.yaml: spec.metrics[0].provider.judge.metrics[0].direction: Invalid option'), direction.join('\n'));
  const undeclared = lint(ROLLOUT(GOOD), TEMPLATE.replace('{{args.canary-hash}}"}[5s]', '{{args.nope}}"}[5s]'));
  assert.deepEqual(undeclared, ['f1.yaml: spec.metrics[0].provider.judge.metrics[0].canary: uses {{args.nope}} but the template declares no arg "nope"']);
});

test('args are bound from the running templates; other args are left alone', () => {
  const run = { name: 'a', templates: ['a'], args: { h: { value: 'hash={{templates.baseline.podTemplateHash}}' }, s: { secretKeyRef: { name: 's', key: 'k' } }, o: { value: '{{templates.other.replicaset.name}}' } }, metrics: [] };
  const bound = bindTemplateArgs(run, [{ name: 'baseline', workload: 'web-exp-baseline', podTemplateHash: 'abc123', replicaSet: 'web-exp-baseline-abc123' }]);
  assert.deepEqual(bound.args, { h: { value: 'hash=abc123' }, s: { secretKeyRef: { name: 's', key: 'k' } }, o: { value: '{{templates.other.replicaset.name}}' } });
});

test('the step\'s outcome follows Argo\'s Experiment phases', () => {
  const a = (name: string, requiredForCompletion = false) => ({ name, run: { name, templates: [name], args: {}, metrics: [] }, requiredForCompletion });
  const timed: Pick<ExperimentStep, 'analyses' | 'durationMs'> = { durationMs: 60_000, analyses: [a('x'), a('y')] };
  assert.deepEqual(experimentOutcome(timed, { x: 'Successful', y: 'Running' }, false), { phase: 'Running' });
  assert.equal(experimentOutcome(timed, { x: 'Successful', y: 'Running' }, true).phase, 'Successful');
  assert.deepEqual(experimentOutcome(timed, { x: 'Inconclusive', y: 'Failed' }, false), { phase: 'Failed', analysis: 'y', message: 'analysis y Failed' });
  const required = { durationMs: 60_000, analyses: [a('x', true), a('y')] };
  assert.deepEqual(experimentOutcome(required, { x: 'Running', y: 'Successful' }, true), { phase: 'Running' }, 'a required analysis outlasts the duration');
  assert.equal(experimentOutcome(required, { x: 'Successful', y: 'Running' }, false).phase, 'Successful');
  const open = { analyses: [a('x'), a('y')] };
  assert.deepEqual(experimentOutcome(open, { x: 'Successful', y: 'Running' }, false), { phase: 'Running' });
  assert.equal(experimentOutcome(open, { x: 'Successful', y: 'Successful' }, false).phase, 'Successful');
  assert.deepEqual(experimentOutcome({ analyses: [] }, {}, false), { phase: 'Running' }, 'no duration, no analyses: runs until promoted');
});

test('a judgement is recorded with its figures', () => {
  const v = judgeValue(judge([{ name: 'latency', canary: [40, 41, 42, 43, 44, 45, 46, 47, 48, 49], baseline: [5, 6, 5, 6, 5, 6, 5, 6, 5, 7], direction: 'increase', critical: true }]));
  assert.equal(v.verdict, 'Fail');
  assert.equal(v.metrics[0]?.classification, 'High');
  assert.equal(v.metrics[0]?.u, 100);
  assert.match(describeJudgeValue(v), /^Fail, score 0\.0 .*latency High: canary median 44\.5 \(n 10\) vs baseline median 5\.5 \(n 10\), U 100, p \d/);
});
