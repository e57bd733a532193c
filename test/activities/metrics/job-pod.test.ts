/**
 * A job metric's pod is held to the restricted shape of model/job-pod.ts beyond the edge: the plan
 * check the workflow runs at start (planProblems) refuses it, and the job provider refuses it before
 * creating anything (also when an arg substituted at measure time is what widens it); the Job always
 * lands in the release's namespace. The provider runs against the local control plane
 * (scripts/kube.sh); needs KUBECONFIG.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BatchV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { createJobProvider } from '../../../activities/metrics/job.ts';
import { normalize } from '../../../model/normalize.ts';
import { planProblems } from '../../../model/plan.ts';
import type { MetricSpec, ReleasePlan } from '../../../model/types.ts';

const suffix = Math.random().toString(36).slice(2, 7);
const ns = `job-pod-${suffix}`;
const elsewhere = `job-pod-other-${suffix}`;
let core: CoreV1Api;
let batch: BatchV1Api;
let provider: ReturnType<typeof createJobProvider>;
const never = new AbortController().signal;

type PodSpec = Record<string, unknown> & { containers: Record<string, unknown>[] };
type JobFields = { job: { metadata?: Record<string, unknown>; spec: { template: { metadata?: Record<string, unknown>; spec: PodSpec } } } };

/** A release plan with one job metric, through normalize() (which the edge's schema checks). */
function plan(): ReleasePlan {
  const job = { spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'smoke', image: 'registry.local/smoke:1' }] } } } };
  return normalize([
    {
      source: 'r.yaml',
      doc: {
        apiVersion: 'glidepath.dev/v1alpha1',
        kind: 'Release',
        metadata: { name: 'web', namespace: ns },
        spec: { workloadRef: { kind: 'Deployment', name: 'web' }, image: 'registry.local/web:2', strategy: { canary: { steps: [{ analysis: { templates: [{ templateName: 'smoke' }], args: [{ name: 'sa', value: 'default' }] } }] } } },
      },
    },
    { source: 't.yaml', doc: { apiVersion: 'argoproj.io/v1alpha1', kind: 'AnalysisTemplate', metadata: { name: 'smoke' }, spec: { args: [{ name: 'sa' }], metrics: [{ name: 'smoke-test', provider: { job } }] } } },
  ]);
}

const metricOf = (p: ReleasePlan): MetricSpec & { provider: JobFields } => {
  const step = p.strategy.type === 'canary' ? p.strategy.steps[0] : undefined;
  assert.ok(step?.kind === 'analysis');
  return step.analysis.metrics[0] as MetricSpec & { provider: JobFields };
};

/** Ways a client that skips the edge could widen the pod, with the field each is refused by. */
const widenings: { field: string; widen: (pod: PodSpec) => void }[] = [
  { field: 'template.spec.hostNetwork', widen: (pod) => void (pod.hostNetwork = true) },
  { field: 'template.spec.hostPID', widen: (pod) => void (pod.hostPID = true) },
  { field: 'template.spec.containers.0.securityContext.privileged', widen: (pod) => void ((pod.containers[0] as Record<string, unknown>).securityContext = { privileged: true }) },
  { field: 'template.spec.volumes.0.hostPath', widen: (pod) => void (pod.volumes = [{ name: 'root', hostPath: { path: '/' } }]) },
  { field: 'template.spec.serviceAccountName', widen: (pod) => void (pod.serviceAccountName = 'cluster-admin') },
];

const ctx = (args: Record<string, string> = { sa: 'default' }) => ({ args, signal: never, namespace: ns, releaseId: `release-${ns}-web`, measurement: 1 });

before(async () => {
  assert.ok(process.env.KUBECONFIG, 'KUBECONFIG must point at the local control plane (eval "$(bash scripts/kube.sh env)")');
  const kc = new KubeConfig();
  kc.loadFromDefault();
  core = kc.makeApiClient(CoreV1Api);
  batch = kc.makeApiClient(BatchV1Api);
  provider = createJobProvider(kc, { pollIntervalMs: 250 });
  for (const name of [ns, elsewhere]) await core.createNamespace({ body: { metadata: { name } } });
  for (let i = 0; i < 100; i++) {
    if ((await core.listNamespacedServiceAccount({ namespace: ns })).items.some((s) => s.metadata?.name === 'default')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  for (const name of [ns, elsewhere]) await core?.deleteNamespace({ name }).catch(() => {});
});

async function jobsIn(namespace: string): Promise<string[]> {
  return (await batch.listNamespacedJob({ namespace, labelSelector: 'app.kubernetes.io/managed-by=glidepath' })).items.map((j) => j.metadata?.name ?? '');
}

test('workflow start check: planProblems refuses a widened job pod, naming the field', () => {
  assert.deepEqual(planProblems(plan()), [], 'the plan as the edge normalised it is valid');
  for (const w of widenings) {
    const p = plan();
    w.widen(metricOf(p).provider.job.spec.template.spec);
    const problems = planProblems(p);
    assert.ok(problems.some((x) => x.startsWith(`strategy.steps.0.analysis.metrics.0.provider.job.spec.${w.field}: `)), `${w.field}: ${problems.join('; ')}`);
  }
  const p = plan();
  metricOf(p).provider.job.spec.template.metadata = { namespace: 'kube-system' };
  assert.ok(planProblems(p).some((x) => x.startsWith('strategy.steps.0.analysis.metrics.0.provider.job.spec.template.metadata.namespace: ')));
});

test('job provider: a widened pod is a non-retryable InvalidSpec naming the field, and no Job is created', async () => {
  for (const w of widenings) {
    const m = metricOf(plan());
    w.widen(m.provider.job.spec.template.spec);
    await assert.rejects(
      provider.measure(m, ctx()),
      (err: Error) => err instanceof ApplicationFailure && err.type === 'InvalidSpec' && err.nonRetryable && err.message.includes(`provider.job.spec.${w.field}: `),
      w.field,
    );
  }
  assert.deepEqual(await jobsIn(ns), []);
});

/** A metric (as a client that skips both checks could send it) whose ServiceAccount is an arg. */
function templatedServiceAccount(): MetricSpec {
  const m = metricOf(plan());
  m.provider.job.spec.template.spec.serviceAccountName = '{{args.sa}}';
  return m;
}

test('job provider: an arg substituted at measure time cannot widen the pod (the rendered spec is checked)', async () => {
  await assert.rejects(
    provider.measure(templatedServiceAccount(), ctx({ sa: 'cluster-admin' })),
    (err: Error) => err instanceof ApplicationFailure && err.type === 'InvalidSpec' && /provider\.job\.spec\.template\.spec\.serviceAccountName: .*"cluster-admin"/.test(err.message),
  );
  assert.deepEqual(await jobsIn(ns), []);
});

test("job provider: the Job goes to the release's namespace whatever the metric's metadata says", async () => {
  const m = metricOf(plan());
  m.provider.job.metadata = { namespace: elsewhere, labels: { team: 'checkout' } };
  const measuring = provider.measure(m, ctx());
  let seen: string[] = [];
  for (let i = 0; i < 100 && seen.length === 0; i++) {
    seen = await jobsIn(ns);
    if (seen.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(seen.length, 1, "the Job was created in the release's namespace");
  assert.deepEqual(await jobsIn(elsewhere), []);
  assert.equal(await measuring, 1);
});
