/**
 * Release files that hold more than the release: Services, Ingress, Secrets and the Deployment a
 * Rollout's workloadRef names. Glidepath's documents are read, the Deployment gives the image, the
 * rest is listed; objects that are not Kubernetes objects, and Argo kinds Glidepath does not read,
 * are named problems.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpecError, formatProblem, normalizeFiles, type SourceDoc } from '../../model/normalize.ts';

const rollout = (spec: Record<string, unknown>, namespace?: string): SourceDoc => ({
  source: 'app.yaml#3',
  doc: { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', metadata: { name: 'web', ...(namespace ? { namespace } : {}) }, spec: { strategy: { canary: { steps: [{ setWeight: 20 }] } }, ...spec } },
});
const service = (name: string): SourceDoc => ({ source: `app.yaml#${name}`, doc: { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { ports: [{ port: 80 }] } } });
const deployment = (name: string, image: string, namespace?: string): SourceDoc => ({
  source: 'app.yaml#1',
  doc: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, ...(namespace ? { namespace } : {}) }, spec: { replicas: 0, template: { spec: { containers: [{ name: 'app', image }] } } } },
});
const template = { template: { spec: { containers: [{ name: 'app', image: 'example/web:2' }] } } };

function problems(docs: SourceDoc[]): string[] {
  try {
    normalizeFiles(docs);
  } catch (err) {
    if (err instanceof SpecError) return err.problems.map(formatProblem);
    throw err;
  }
  assert.fail('expected problems');
}

test('Services and an Ingress next to the Rollout are listed as other documents, not refused', () => {
  const ingress: SourceDoc = { source: 'app.yaml#4', doc: { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'web', namespace: 'shop' }, spec: {} } };
  const r = normalizeFiles([service('web-stable'), service('web-canary'), rollout(template), ingress]);
  assert.equal(r.plan.image, 'example/web:2');
  assert.deepEqual(r.others.map((o) => `${o.apiVersion}/${o.kind} ${o.namespace ?? '-'}/${o.name} ${o.source}`), [
    'v1/Service -/web-stable app.yaml#web-stable',
    'v1/Service -/web-canary app.yaml#web-canary',
    'networking.k8s.io/v1/Ingress shop/web app.yaml#4',
  ]);
  assert.equal(r.workloadDocument, undefined);
});

test('workloadRef takes the image and container from the referenced Deployment in the files, which is not an other document', () => {
  const r = normalizeFiles([deployment('web-deploy', 'example/web:3'), service('web'), rollout({ workloadRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web-deploy', scaleDown: 'onsuccess' } })]);
  assert.equal(r.plan.image, 'example/web:3');
  assert.deepEqual(r.plan.workload, { kind: 'Deployment', name: 'web-deploy', container: 'app' });
  assert.equal(r.workloadDocument?.name, 'web-deploy');
  assert.deepEqual(r.others.map((o) => o.name), ['web']);
});

test('workloadRef without the Deployment in the files names the missing Deployment and both remedies', () => {
  assert.deepEqual(problems([rollout({ workloadRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web-deploy' } })]), [
    'app.yaml#3: spec.workloadRef: the Rollout takes its image from Deployment "web-deploy", which is not in the given files: add the Deployment to the files (-f), or pass --image',
  ]);
  // A Deployment of that name in another namespace is not the one referenced.
  assert.equal(problems([deployment('web-deploy', 'example/web:3', 'other'), rollout({ workloadRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web-deploy' } }, 'shop')]).length, 1);
  assert.deepEqual(problems([deployment('web-deploy', 'bad image!'), rollout({ workloadRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web-deploy' } })]).map((p) => p.replace(/ \(.*/, '')), [
    'app.yaml#1: spec.template.spec.containers[0].image: must be an image reference',
  ]);
});

test('documents that are not Kubernetes objects, and Argo kinds Glidepath does not read, are named problems', () => {
  const found = problems([
    rollout(template),
    { source: 'x.yaml#1', doc: 'just text' },
    { source: 'x.yaml#2', doc: { kind: 'Service', metadata: { name: 'a' } } },
    { source: 'x.yaml#3', doc: { apiVersion: 'v1', kind: 'Service', metadata: { generateName: 'a-' } } },
    { source: 'x.yaml#4', doc: { apiVersion: 'argoproj.io/v1alpha1', kind: 'Experiment', metadata: { name: 'e' } } },
    { source: 'x.yaml#5', doc: { apiVersion: 'glidepath.dev/v1alpha1', kind: 'Thing', metadata: { name: 'e' } } },
  ]);
  const expected = [
    /^x\.yaml#1: \(document\): not a Kubernetes object/,
    /^x\.yaml#2: apiVersion: required/,
    /^x\.yaml#3: metadata\.name: required: a Service to list or apply needs a name/,
    /^x\.yaml#4: kind: a standalone Experiment is not supported .*\(not supported: Experiment documents\)/,
    /^x\.yaml#5: kind: unsupported document "glidepath\.dev\/v1alpha1\/Thing"/,
  ];
  assert.equal(found.length, expected.length, found.join('\n'));
  expected.forEach((re, i) => assert.match(found[i] ?? '', re));
});
