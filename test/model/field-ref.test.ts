/**
 * Analysis args `valueFrom.fieldRef`, resolved against the Rollout as Argo Rollouts does: metadata
 * paths as Kubernetes' downward API, other paths by walking the document; `podTemplateHashValue` is
 * refused by name, once, without a stray line about secretKeyRef.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpecError, formatProblem, normalize, type SourceDoc } from '../../model/normalize.ts';
import { resolveFieldRef } from '../../model/field-ref.ts';
import type { AnalysisRunSpec, ReleasePlan } from '../../model/types.ts';

const template: SourceDoc = {
  source: 't.yaml',
  doc: {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'AnalysisTemplate',
    metadata: { name: 'success-rate' },
    spec: {
      args: [{ name: 'namespace', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }, { name: 'app' }, { name: 'image' }],
      metrics: [{ name: 'ok', provider: { prometheus: { address: 'http://prometheus:9090', query: 'up{namespace="{{args.namespace}}",app="{{args.app}}",image="{{args.image}}"}' } } }],
    },
  },
};

const rollout = (args: unknown[], namespace?: string): SourceDoc => ({
  source: 'r.yaml',
  doc: {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Rollout',
    metadata: { name: 'guestbook', ...(namespace ? { namespace } : {}), labels: { app: 'guestbook', tier: 'web' }, annotations: { team: 'shop' } },
    spec: {
      template: { spec: { containers: [{ name: 'web', image: 'example/guestbook:2' }] } },
      strategy: { canary: { steps: [{ analysis: { templates: [{ templateName: 'success-rate' }], args } }] } },
    },
  },
});

const fieldRef = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });

function problemsOf(docs: SourceDoc[]): string[] {
  try {
    normalize(docs);
  } catch (err) {
    if (err instanceof SpecError) return err.problems.map(formatProblem);
    throw err;
  }
  assert.fail('expected problems');
}

test('fieldRef args resolve against the Rollout: namespace (defaulted), a label, a path into the spec', () => {
  for (const [namespace, expected] of [[undefined, 'default'], ['shop', 'shop']] as const) {
    const plan: ReleasePlan = normalize([template, rollout([fieldRef('app', "metadata.labels['app']"), fieldRef('image', 'spec.template.spec.containers[0].image')], namespace)]);
    const step = plan.strategy.type === 'canary' ? plan.strategy.steps[0] : undefined;
    const analysis = (step as { analysis: AnalysisRunSpec }).analysis;
    assert.deepEqual(analysis.args, { namespace: { value: expected }, app: { value: 'guestbook' }, image: { value: 'example/guestbook:2' } });
  }
});

test('Kubernetes downward-API forms: whole label maps as sorted key="value" lines, a missing key is empty', () => {
  const doc = { metadata: { name: 'g', labels: { tier: 'web', app: 'a"b' }, annotations: {} } };
  assert.deepEqual(resolveFieldRef(doc, 'ns', 'metadata.labels'), { value: 'app="a\\"b"\ntier="web"' });
  assert.deepEqual(resolveFieldRef(doc, 'ns', "metadata.annotations['none']"), { value: '' });
  assert.deepEqual(resolveFieldRef(doc, 'ns', 'metadata.name'), { value: 'g' });
  assert.match((resolveFieldRef(doc, 'ns', 'metadata.generation') as { problem: string }).problem, /unsupported fieldPath "metadata.generation"/);
  assert.match((resolveFieldRef(doc, 'ns', 'metadata.uid') as { problem: string }).problem, /not supported: fieldRef metadata.uid/);
  assert.match((resolveFieldRef({ spec: { a: [1] } }, 'ns', 'spec.a') as { problem: string }).problem, /must end at a value, not a list/);
  assert.match((resolveFieldRef({ spec: { a: [1] } }, 'ns', 'spec.a[3]') as { problem: string }).problem, /index 3 out of range/);
  assert.deepEqual(resolveFieldRef({ spec: { replicas: 5 } }, 'ns', 'spec.replicas'), { value: '5' });
});

test('a path that is not in the Rollout, and podTemplateHashValue, are named once at the YAML path written', () => {
  assert.deepEqual(problemsOf([template, rollout([fieldRef('app', 'spec.nothing.here'), fieldRef('image', 'metadata.name')])]), [
    'r.yaml: spec.strategy.canary.steps[0].analysis.args[0].valueFrom.fieldRef.fieldPath: fieldPath "spec.nothing.here" is not in the document',
  ]);
  const hash = problemsOf([template, rollout([{ name: 'app', valueFrom: { podTemplateHashValue: 'Latest' } }, { name: 'image', value: 'x' }])]);
  assert.equal(hash.length, 1, hash.join('\n'));
  assert.match(hash[0] ?? '', /^r\.yaml: spec\.strategy\.canary\.steps\[0\]\.analysis\.args\[0\]\.valueFrom\.podTemplateHashValue: is not supported by this version of Glidepath \(not supported: podTemplateHashValue\)/);
});
