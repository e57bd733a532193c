/**
 * The job provider on the local control plane (scripts/kube.sh: the job-controller runs, and kwok
 * ends Job pods Succeeded, or Failed with the code in `glidepath.local/exit-code`). Real Jobs are
 * created, read and deleted; the metrics come from normalize(), so the default condition is the one a
 * release gets. Needs KUBECONFIG (npm test sets it).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BatchV1Api, CoreV1Api, KubeConfig, type V1Job } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runAnalysis } from '../../../activities/analysis.ts';
import type { ActivityDeps, ReleaseTarget, WorkloadOps } from '../../../activities/contract.ts';
import { createJobProvider, jobName } from '../../../activities/metrics/job.ts';
import { evaluateMeasurement, verdictOf } from '../../../model/analysis.ts';
import { normalize } from '../../../model/normalize.ts';
import type { AnalysisRunResult, MetricSpec } from '../../../model/types.ts';
import { startFaultProxy } from '../../support/fault-proxy.ts';

const suffix = Math.random().toString(36).slice(2, 7);
const ns = `job-provider-${suffix}`;
let kc: KubeConfig;
let core: CoreV1Api;
let batch: BatchV1Api;
let provider: ReturnType<typeof createJobProvider>;
const never = new AbortController().signal;
const releaseId = `release-${ns}-web`;

/** A job metric as a release gets it: through normalize(), with Argo's fields. */
function jobMetric(podAnnotations: Record<string, string>, extra: Record<string, unknown> = {}, container: Record<string, unknown> = {}): MetricSpec {
  const job = {
    metadata: { labels: { team: 'checkout' }, annotations: { note: 'smoke' } },
    spec: {
      backoffLimit: 0,
      template: { metadata: { annotations: podAnnotations }, spec: { restartPolicy: 'Never', containers: [{ name: 'smoke', image: 'registry.local/smoke:1', ...container }] } },
    },
  };
  const plan = normalize([
    {
      source: 'r.yaml',
      doc: {
        apiVersion: 'glidepath.dev/v1alpha1',
        kind: 'Release',
        metadata: { name: 'web', namespace: ns },
        spec: { workloadRef: { kind: 'Deployment', name: 'web' }, image: 'registry.local/web:2', strategy: { canary: { steps: [{ analysis: { templates: [{ templateName: 'smoke' }], args: [{ name: 'target', value: 'web-canary' }] } }] } } },
      },
    },
    { source: 't.yaml', doc: { apiVersion: 'argoproj.io/v1alpha1', kind: 'AnalysisTemplate', metadata: { name: 'smoke' }, spec: { args: [{ name: 'target' }], metrics: [{ name: 'smoke-test', provider: { job }, ...extra }] } } },
  ]);
  const step = plan.strategy.type === 'canary' ? plan.strategy.steps[0] : undefined;
  assert.ok(step?.kind === 'analysis');
  return step.analysis.metrics[0] as MetricSpec;
}

/**
 * Pod annotations for a Job whose pod fails with exit code 1 (kwok's pod-fail stage). The ready-delay
 * holds off any kwok still running an older copy of the stages (without pod-fail), which would otherwise
 * race to make the pod Running and Succeeded.
 */
const FAILS = { 'glidepath.local/exit-code': '1', 'glidepath.local/ready-delay': '1h' };

const ctx = (signal: AbortSignal = never) => ({ args: { target: 'web-canary' }, signal, namespace: ns, releaseId, measurement: 1 });

async function ourJobs(): Promise<V1Job[]> {
  return (await batch.listNamespacedJob({ namespace: ns, labelSelector: 'app.kubernetes.io/managed-by=glidepath' })).items;
}

/** Resolves with the first Glidepath Job seen in the namespace. */
async function firstJob(timeoutMs = 20_000): Promise<V1Job> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const jobs = await ourJobs();
    if (jobs[0]) return jobs[0];
    if (Date.now() > end) throw new Error('no Job appeared');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until no Glidepath Job (and no pod of one) is left in the namespace. */
async function allGone(timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const jobs = await ourJobs();
    const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'batch.kubernetes.io/job-name' })).items;
    if (jobs.length === 0 && pods.length === 0) return;
    if (Date.now() > end) throw new Error(`left: ${jobs.map((j) => j.metadata?.name).join(', ')} / ${pods.map((p) => p.metadata?.name).join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  assert.ok(process.env.KUBECONFIG, 'KUBECONFIG must point at the local control plane (eval "$(bash scripts/kube.sh env)")');
  kc = new KubeConfig();
  kc.loadFromDefault();
  core = kc.makeApiClient(CoreV1Api);
  batch = kc.makeApiClient(BatchV1Api);
  provider = createJobProvider(kc, { pollIntervalMs: 250 });
  await core.createNamespace({ body: { metadata: { name: ns } } });
  // The ServiceAccount controller creates `default`; a pod cannot be admitted before it exists.
  for (let i = 0; i < 100; i++) {
    if ((await core.listNamespacedServiceAccount({ namespace: ns })).items.some((s) => s.metadata?.name === 'default')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  await core?.deleteNamespace({ name: ns }).catch(() => {});
});

test('no condition given: the job metric gets result == 1, so a failed Job (0) is Failed, as in Argo', () => {
  const m = jobMetric({});
  assert.equal(m.successCondition, 'result == 1');
  assert.equal(evaluateMeasurement(m, 1).phase, 'Successful');
  assert.equal(evaluateMeasurement(m, 0).phase, 'Failed');
  assert.equal(jobMetric({}, { successCondition: 'result >= 0' }).successCondition, 'result >= 0', 'a condition the template gives is kept');
  assert.equal(jobMetric({}, { failureCondition: 'result == 0' }).successCondition, undefined);
  const name = jobName('release-a-very-long-namespace-name-for-tests-web', 'a-metric-with/odd_chars', 12);
  assert.ok(name.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name), name);
});

test('a Job that completes: value 1; created in the release namespace with our labels, args substituted; deleted afterwards', async () => {
  const started = Date.now();
  const measuring = provider.measure(jobMetric({ 'glidepath.local/ready-delay': '2s' }, {}, { args: ['--target', '{{args.target}}'] }), ctx());
  const job = await firstJob();
  assert.equal(job.metadata?.namespace, ns);
  assert.match(job.metadata?.name ?? '', new RegExp(`^release-${ns}-web-smoke-test-1-[0-9a-f]{6}$`));
  assert.equal(job.metadata?.labels?.['app.kubernetes.io/managed-by'], 'glidepath');
  assert.equal(job.metadata?.labels?.['rollouts.glidepath.dev/release'], releaseId);
  assert.equal(job.metadata?.labels?.['rollouts.glidepath.dev/metric'], 'smoke-test');
  assert.equal(job.metadata?.labels?.team, 'checkout', "the template's labels are kept");
  assert.equal(job.metadata?.annotations?.['glidepath.dev/release'], releaseId);
  assert.equal(job.metadata?.annotations?.note, 'smoke');
  assert.deepEqual(job.spec?.template.spec?.containers[0]?.args, ['--target', 'web-canary']);
  assert.equal(await measuring, 1);
  const took = Date.now() - started;
  assert.ok(took >= 2000, `the provider waited for the Job (${took} ms)`);
  console.log(`complete Job measured in ${took} ms (pod ready-delay 2 s)`);
  await allGone();
});

test('a Job that fails: value 0 → Failed; through runAnalysis the analysis fails on the first measurement', async () => {
  const started = Date.now();
  assert.equal(await provider.measure(jobMetric(FAILS), ctx()), 0);
  console.log(`failed Job measured in ${Date.now() - started} ms`);
  await allGone();

  const target = { releaseId, namespace: ns, workload: { kind: 'Deployment', name: 'web' }, image: 'registry.local/web:2', strategy: 'canary', progressDeadlineSeconds: 60 } satisfies ReleaseTarget;
  const deps: ActivityDeps = { workload: {} as WorkloadOps, metrics: { job: provider } };
  for (const [annotations, want, values] of [
    [{}, 'Successful', [1, 1]],
    [FAILS, 'Failed', [0]],
  ] as const) {
    const metrics = [jobMetric(annotations, { interval: '1s', count: 2 })];
    const t0 = Date.now();
    const result: AnalysisRunResult = await new MockActivityEnvironment().run(runAnalysis, deps, target, { name: 'smoke', templates: ['smoke'], args: { target: { value: 'web-canary' } }, metrics }, { background: false });
    const ms = result.metrics[0]?.measurements ?? [];
    assert.deepEqual(
      ms.map((m) => m.value),
      values,
    );
    assert.equal(verdictOf(metrics, result).phase, want);
    console.log(`runAnalysis (count 2, interval 1s) → ${want} in ${Date.now() - t0} ms: ${ms.map((m) => `${m.phase}(${String(m.value)})`).join(', ')}`);
  }
  await allGone();
});

test('cancelled while the Job runs: the wait stops and the Job is deleted', async () => {
  const abort = new AbortController();
  // ready-delay 1h: the pod stays Pending, the Job never finishes on its own.
  const measuring = provider.measure(jobMetric({ 'glidepath.local/ready-delay': '1h' }), ctx(abort.signal));
  await firstJob();
  const t0 = Date.now();
  abort.abort(new Error('cancelled by test'));
  await assert.rejects(measuring, /cancelled by test/);
  console.log(`cancel → rejected in ${Date.now() - t0} ms`);
  await allGone();
});

test('cancelled while the create is still unanswered: the Job the apiserver took is deleted all the same', async () => {
  // The apiserver creates the Job at once; its answer reaches the provider 2 s later. The cancel lands
  // in between, once the Job is visible to a direct client.
  const proxy = await startFaultProxy(kc, { rates: {}, answerDelayMs: 2000 });
  try {
    const slowProvider = createJobProvider(proxy.kubeConfig(), { pollIntervalMs: 250 });
    const abort = new AbortController();
    const handles: string[] = [];
    const measuring = slowProvider.measure(jobMetric({ 'glidepath.local/ready-delay': '1h' }), { ...ctx(abort.signal), onStarted: (h: string) => handles.push(h) });
    const job = await firstJob();
    abort.abort(new Error('cancelled by test'));
    await assert.rejects(measuring, /cancelled by test/);
    await allGone();
    assert.deepEqual(handles, [job.metadata?.name], 'the Job was named to the analysis (for a retried attempt) before it was created');
  } finally {
    await proxy.close();
  }
});

test('an invalid JobSpec is refused by the apiserver: non-retryable InvalidSpec, nothing left', async () => {
  // restartPolicy Always is invalid for a Job (422 from the apiserver).
  const m = jobMetric({});
  const job = (m.provider as { job: { spec: { template: { spec: Record<string, unknown> } } } }).job;
  job.spec.template.spec.restartPolicy = 'Always';
  await assert.rejects(provider.measure(m, ctx()), (err: Error) => err instanceof ApplicationFailure && err.type === 'InvalidSpec' && err.nonRetryable && /rejected the Job: 422/.test(err.message));
  assert.deepEqual(await ourJobs(), []);
});

test('no namespace in the context: refused (the job provider needs the release namespace)', async () => {
  await assert.rejects(provider.measure(jobMetric({}), { args: {}, signal: never }), (err: Error) => err instanceof ApplicationFailure && err.type === 'InvalidSpec');
});

// ---- long measurements ---------------------------------------------------------------------------

const target = { releaseId, namespace: ns, workload: { kind: 'Deployment', name: 'web' }, image: 'registry.local/web:2', strategy: 'canary', progressDeadlineSeconds: 60 } satisfies ReleaseTarget;
const smokeRun = (metrics: MetricSpec[]) => ({ name: 'smoke', templates: ['smoke'], args: { target: { value: 'web-canary' } }, metrics });
type JobSpecFields = { job: { spec: Record<string, unknown> } };

test('long measurements: a count-1 Job longer than the heartbeat period is heartbeated, its name in the details while it runs', async () => {
  const env = new MockActivityEnvironment();
  const beats: { at: number; inflight: Record<string, string> }[] = [];
  env.on('heartbeat', (d: unknown) => beats.push({ at: Date.now(), inflight: { ...((d as { inflight?: Record<string, string> }).inflight ?? {}) } }));
  const metrics = [jobMetric({ 'glidepath.local/ready-delay': '12s' })];
  const t0 = Date.now();
  const result: AnalysisRunResult = await env.run(runAnalysis, { workload: {} as WorkloadOps, metrics: { job: provider } }, target, smokeRun(metrics), { background: false });
  const t1 = Date.now();
  console.log(`12 s Job: heartbeats at +${beats.map((b) => ((b.at - t0) / 1000).toFixed(1)).join('s, +')}s; done at +${((t1 - t0) / 1000).toFixed(1)}s`);
  assert.deepEqual(result.metrics[0]?.measurements.map((m) => m.value), [1]);
  assert.equal(verdictOf(metrics, result).phase, 'Successful');
  const during = beats.filter((b) => b.at < t1 - 500);
  assert.ok(during.length >= 2, `heartbeats while the Job ran: ${during.length}`);
  assert.match(during[during.length - 1]?.inflight['smoke-test'] ?? '', /^release-.*-smoke-test-1-[0-9a-f]{6}$/, 'the Job name is in the details');
  await allGone();
});

test('long measurements: a Job still unfinished at activeDeadlineSeconds + 1 min is abandoned as an Error and deleted', { timeout: 90_000 }, async () => {
  // A suspended Job: its deadline clock does not run, so only the measurement's own timeout ends the wait.
  const metrics = [jobMetric({}, { consecutiveErrorLimit: 0 })];
  Object.assign((metrics[0]?.provider as JobSpecFields).job.spec, { suspend: true, activeDeadlineSeconds: 1 });
  const t0 = Date.now();
  const result: AnalysisRunResult = await new MockActivityEnvironment().run(runAnalysis, { workload: {} as WorkloadOps, metrics: { job: provider } }, target, smokeRun(metrics), { background: false });
  const took = Date.now() - t0;
  console.log(`suspended Job abandoned after ${took} ms: ${result.metrics[0]?.measurements[0]?.message}`);
  assert.equal(result.metrics[0]?.measurements[0]?.phase, 'Error');
  assert.match(result.metrics[0]?.measurements[0]?.message ?? '', /did not finish within 61s/);
  assert.ok(took >= 61_000 && took < 75_000, `${took} ms`);
  assert.equal(verdictOf(metrics, result).phase, 'Error');
  await allGone();
});

test('long measurements: a retried attempt deletes the Job its dead predecessor left (named in the heartbeat details)', { timeout: 60_000 }, async () => {
  const left = `release-${ns}-web-smoke-test-1-dead00`;
  await batch.createNamespacedJob({
    namespace: ns,
    body: {
      metadata: { name: left, labels: { 'app.kubernetes.io/managed-by': 'glidepath' } },
      spec: { suspend: true, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'smoke', image: 'registry.local/smoke:1' }] } } },
    },
  });
  const metrics = [jobMetric({})];
  const details = { startedAt: Date.now(), metrics: { 'smoke-test': { measurements: [], tally: { count: 0, successful: 0, failed: 0, inconclusive: 0, error: 0, consecutiveError: 0 } } }, inflight: { 'smoke-test': left } };
  const result: AnalysisRunResult = await new MockActivityEnvironment({ heartbeatDetails: details }).run(runAnalysis, { workload: {} as WorkloadOps, metrics: { job: provider } }, target, smokeRun(metrics), { background: false });
  assert.deepEqual(result.metrics[0]?.measurements.map((m) => m.value), [1], 'then measured afresh');
  await allGone();
});
