/**
 * The Argo Rollouts corpus: Rollout manifests in the shapes Argo Rollouts publishes (test/fixtures/
 * argo-corpus/, written for this project), one per category: canary, canary with Services,
 * blue/green, analysis step, background analysis, fieldRef args, experiment, experiment weights (Istio, SMI; NGINX refused), baseline-vs-canary,
 * basic-canary surge limits, workloadRef, a secret URL, and each traffic router. Each file, linted
 * with the shared AnalysisTemplates, is valid or refused only with named "not supported" lines that
 * docs/migrating-from-argo.md lists. The test prints the count.
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { SpecError, formatProblem } from '../../model/normalize.ts';
import { loadRelease } from '../../starters/spec-files.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = path.join(root, 'test/fixtures/argo-corpus');
const TEMPLATES = 'analysis-templates.yaml';

/** Files refused by design, and the `(not supported: …)` tag or refused router each line names. */
const REFUSED: Record<string, string> = {
  'experiment-weight.yaml': 'not supported: experiment weights with nginx',
  'router-ambassador.yaml': 'traffic router "ambassador" is not supported',
  'router-apisix.yaml': 'traffic router "apisix" is not supported',
  'router-appmesh.yaml': 'traffic router "appMesh" is not supported',
};

/** What the valid files must show, so that "valid" is not a plan that dropped what the file says. */
const VALID_CHECKS: Record<string, (r: Awaited<ReturnType<typeof loadRelease>>) => void> = {
  'rolling-update.yaml': (r) => assert.deepEqual(r.plan.strategy.type === 'canary' ? r.plan.strategy.replicaLimits : undefined, { maxSurge: '25%', maxUnavailable: 0 }),
  'workload-ref.yaml': (r) => assert.equal(r.workloadDocument?.name, 'rollout-ref-deployment'),
  'bluegreen.yaml': (r) => assert.deepEqual(r.others.map((o) => o.name), ['rollout-bluegreen-active', 'rollout-bluegreen-preview']),
  'fieldref-args.yaml': (r) => {
    const step = r.plan.strategy.type === 'canary' ? r.plan.strategy.steps[1] : undefined;
    assert.deepEqual(step?.kind === 'analysis' ? step.analysis.args : undefined, { 'service-name': { value: 'guestbook' }, namespace: { value: 'default' } });
  },
  'experiment-step.yaml': (r) => {
    const step = r.plan.strategy.type === 'canary' ? r.plan.strategy.steps[1] : undefined;
    assert.equal(step?.kind, 'experiment');
    if (step?.kind !== 'experiment') return;
    assert.equal(step.durationMs, 300_000);
    assert.deepEqual(step.templates.map((t) => `${t.name}:${t.specRef}:${t.replicas}`), ['baseline:stable:1', 'canary:canary:1']);
    assert.deepEqual(step.analyses.map((a) => `${a.name}:${a.run.templates.join('+')}`), ['pass:pass']);
  },
  'baseline-vs-canary.yaml': (r) => {
    const step = r.plan.strategy.type === 'canary' ? r.plan.strategy.steps[0] : undefined;
    assert.equal(step?.kind, 'experiment');
    if (step?.kind !== 'experiment') return;
    assert.equal(step.durationMs, undefined);
    assert.deepEqual(step.analyses[0]?.run.args['service-name'], { value: 'rollout-baseline-vs-canary' });
  },
  'experiment-weight-istio.yaml': (r) => {
    const step = r.plan.strategy.type === 'canary' ? r.plan.strategy.steps[1] : undefined;
    assert.deepEqual(step?.kind === 'experiment' ? step.templates.map((t) => [t.name, t.weight]) : undefined, [['experiment-canary', 5]]);
  },
  'experiment-weight-smi.yaml': (r) => {
    const step = r.plan.strategy.type === 'canary' ? r.plan.strategy.steps[1] : undefined;
    assert.deepEqual(step?.kind === 'experiment' ? step.templates.map((t) => [t.name, t.weight, t.service?.name]) : undefined, [['experiment-baseline', 5, undefined], ['experiment-canary', 5, 'experiment-canary']]);
  },
  'secret.yaml': (r) => assert.deepEqual(r.others.map((o) => `${o.kind}/${o.name}`), ['Secret/example-secret']),
};

test('every Argo-shaped Rollout lints clean or is refused only with a named, documented "not supported" line', async () => {
  const docs = await readFile(path.join(root, 'docs/migrating-from-argo.md'), 'utf8');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml') && f !== TEMPLATES).sort();
  const clean: string[] = [];
  const refused: string[] = [];
  for (const file of files) {
    let problems: string[] = [];
    try {
      const r = await loadRelease([path.join(dir, file), path.join(dir, TEMPLATES)]);
      VALID_CHECKS[file]?.(r);
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      problems = err.problems.map((p) => formatProblem({ ...p, source: path.basename(p.source) }));
    }
    const tag = REFUSED[file];
    if (tag === undefined) {
      assert.deepEqual(problems, [], `${file} should lint clean`);
      clean.push(file);
      continue;
    }
    assert.ok(problems.length > 0, `${file} should be refused with "${tag}"`);
    for (const line of problems) {
      assert.ok(line.includes(tag), `${file}: every line names "${tag}": ${line}`);
      assert.match(line, /is not supported by this version of Glidepath/);
      assert.equal(new Set(problems).size, problems.length, `${file}: a problem is printed once`);
    }
    assert.ok(docs.includes(tag.replace(' is not supported', '')), `docs/migrating-from-argo.md documents "${tag}"`);
    refused.push(file);
  }
  assert.deepEqual(refused.sort(), Object.keys(REFUSED).sort(), 'every refused fixture exists');
  console.log(`argo corpus: ${clean.length} of ${files.length} Rollout files lint clean; ${refused.length} refused with a named "not supported" line (${refused.join(', ')})`);
  assert.ok(clean.length >= 15);
});
