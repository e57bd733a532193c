/**
 * deploy/'s optional KEDA autoscaler agrees with the worker it scales (deploy/worker.yaml): the same
 * Deployment, namespace and task queue, the same Temporal endpoint and namespace, and a floor that keeps the
 * PodDisruptionBudget meaningful. The worker Deployment sets the memory settings the image (Dockerfile) sets.
 * (No KEDA runs here; the apiserver dry-run of worker.yaml is in test/activities/kubernetes/rbac.test.ts.)
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The fields this test reads, of the manifests' documents. */
interface Manifest {
  kind: string;
  metadata: { name: string; namespace: string };
  spec: {
    replicas: number;
    maxUnavailable: number;
    minReplicaCount: number;
    maxReplicaCount: number;
    scaleTargetRef: { name: string };
    triggers: { type: string; metadata: Record<string, string> }[];
    template: { spec: { containers: { env: { name: string; value?: string }[] }[] } };
  };
}
const docs = async (file: string): Promise<Manifest[]> =>
  parseAllDocuments(await readFile(path.join(root, 'deploy', file), 'utf8')).map((d) => d.toJS() as Manifest);

test('the KEDA ScaledObject scales the worker Deployment on its own task queue, never below the PodDisruptionBudget allows', async () => {
  const worker = await docs('worker.yaml');
  const deployment = worker.find((d) => d.kind === 'Deployment')!;
  const pdb = worker.find((d) => d.kind === 'PodDisruptionBudget')!;
  const env = Object.fromEntries(deployment.spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value]));
  const [scaled, ...rest] = await docs('autoscale-keda.yaml');
  assert.equal(rest.length, 0);
  assert.equal(scaled!.kind, 'ScaledObject');
  assert.equal(scaled!.metadata.namespace, deployment.metadata.namespace);
  assert.equal(scaled!.spec.scaleTargetRef.name, deployment.metadata.name);
  const [trigger, ...others] = scaled!.spec.triggers;
  assert.equal(others.length, 0);
  assert.equal(trigger!.type, 'temporal');
  assert.equal(trigger!.metadata.taskQueue, env.GLIDEPATH_TASK_QUEUE);
  assert.equal(trigger!.metadata.endpoint, env.TEMPORAL_ADDRESS);
  assert.equal(trigger!.metadata.namespace, env.TEMPORAL_NAMESPACE);
  assert.deepEqual(trigger!.metadata.queueTypes!.split(',').sort(), ['activity', 'workflow']);
  assert.ok(Number(trigger!.metadata.targetQueueSize) > 0);
  assert.ok(scaled!.spec.minReplicaCount > pdb.spec.maxUnavailable, 'with the floor, a drain never takes the last worker');
  assert.ok(scaled!.spec.minReplicaCount <= deployment.spec.replicas && deployment.spec.replicas <= scaled!.spec.maxReplicaCount);
});

test("the worker Deployment sets the image's memory settings (NODE_OPTIONS, MALLOC_ARENA_MAX) to the Dockerfile's values", async () => {
  const deployment = (await docs('worker.yaml')).find((d) => d.kind === 'Deployment')!;
  const env = Object.fromEntries(deployment.spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value]));
  const block = (await readFile(path.join(root, 'Dockerfile'), 'utf8')).match(/^ENV ((?:.*\\\n)*.*)$/m)?.[1] ?? '';
  const image = Object.fromEntries([...block.matchAll(/([A-Z_]+)=("[^"]*"|\S+)/g)].map((m) => [m[1], (m[2] as string).replace(/^"(.*)"$/, '$1')]));
  for (const name of ['NODE_OPTIONS', 'MALLOC_ARENA_MAX']) {
    assert.ok(image[name], `the Dockerfile's ENV sets ${name}`);
    assert.equal(env[name], image[name], `deploy/worker.yaml ${name}`);
  }
  assert.match(image.NODE_OPTIONS!, /--max-semi-space-size=\d+/);
  assert.match(image.NODE_OPTIONS!, /--expose-gc\b/, 'the worker compacts its heap with gc() (workers/memory-return.ts)');
});
