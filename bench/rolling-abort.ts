/**
 * Abort → stable and breach → stable for strategy.rolling, per workload kind, on the local control
 * plane (scripts/kube.sh up): a Deployment of 4 (paused between batches), a StatefulSet of 4
 * (partition) and a DaemonSet on 4 nodes of its own (node by node), each begun and taken to 50 % on
 * the new image, then
 *  - aborted: the abort activity from its call until it returns;
 *  - breached: a real Prometheus (1 s scrape) scrapes test/support/metrics-app.ts and the analysis
 *    activity measures the error ratio every 1 s; after a healthy 1–2 s the errors start (50 %), and
 *    the time runs from that moment through the Failed verdict to the abort returning.
 * Abort returns when every pod runs the old image and is ready again (checked after each run). kwok
 * makes pods ready at once, so the figures are the control loop's own cost, not an application's start.
 * Env: KUBECONFIG (required), PROMETHEUS_BIN (else PATH), BENCH_RUNS (default 8, at least 5).
 */
import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, KubeConfig, type V1Container, type V1PodTemplateSpec } from '@kubernetes/client-node';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runAnalysis } from '../activities/analysis.ts';
import type { ActivityDeps, ReleaseTarget, RollingOps, WorkloadOps } from '../activities/contract.ts';
import { createKubernetesRolling } from '../activities/kubernetes/index.ts';
import { createPrometheusProvider } from '../activities/metrics/prometheus.ts';
import { verdictOf } from '../model/analysis.ts';
import type { WorkloadKind } from '../model/rolling.ts';
import type { AnalysisRunResult, AnalysisRunSpec, MetricSpec } from '../model/types.ts';
import { startMetricsApp } from '../test/support/metrics-app.ts';
import { startPrometheus } from '../test/support/prometheus.ts';

if (!process.env['KUBECONFIG']) {
  console.error('rolling-abort: KUBECONFIG is not set; start the control plane with `bash scripts/kube.sh up` and `eval "$(bash scripts/kube.sh env)"`');
  process.exit(2);
}
const RUNS = Math.max(5, Number(process.env['BENCH_RUNS'] ?? 8));
const OLD = 'example/agent:1.0.0';
const kc = new KubeConfig();
kc.loadFromDefault();
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const rolling = createKubernetesRolling(kc, { heartbeat: () => undefined, pollIntervalMs: 100 });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const suffix = randomBytes(3).toString('hex');
const ns = `gp-bench-rolling-${suffix}`;
const pool = `bench-${suffix}`;
const nodes = [1, 2, 3, 4].map((i) => `gp-${pool}-${i}`);

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`rolling-abort: ${what} not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

const app: V1Container = { name: 'app', image: OLD, readinessProbe: { httpGet: { path: '/', port: 8080 } } };
const template = (label: string, nodeSelector?: Record<string, string>): V1PodTemplateSpec => ({ metadata: { labels: { app: label } }, spec: { ...(nodeSelector ? { nodeSelector } : {}), containers: [app] } });

/** Every pod of `label` runs OLD and is ready, and there are `count` of them. */
async function allOld(label: string, count: number): Promise<boolean> {
  const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: `app=${label}` })).items.filter((p) => !p.metadata?.deletionTimestamp);
  const ok = (p: (typeof pods)[number]) => p.spec?.containers[0]?.image === OLD && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  return pods.length === count && pods.every(ok);
}

async function setUp(): Promise<void> {
  await core.createNamespace({ body: { metadata: { name: ns } } });
  await until('the default ServiceAccount', async () => (await core.readNamespacedServiceAccount({ name: 'default', namespace: ns }).then(() => true, () => false)));
  for (const name of nodes) {
    await core.createNode({
      body: {
        metadata: { name, annotations: { 'kwok.x-k8s.io/node': 'fake' }, labels: { type: 'kwok', 'glidepath.dev/test-pool': pool, 'kubernetes.io/hostname': name } },
        status: { allocatable: { cpu: '32', memory: '256Gi', pods: '110' }, capacity: { cpu: '32', memory: '256Gi', pods: '110' } },
      },
    });
  }
  const selector = (label: string) => ({ matchLabels: { app: label } });
  await apps.createNamespacedDeployment({ namespace: ns, body: { metadata: { name: 'dep' }, spec: { replicas: 4, selector: selector('dep'), template: template('dep') } } });
  await apps.createNamespacedStatefulSet({ namespace: ns, body: { metadata: { name: 'sts' }, spec: { replicas: 4, serviceName: 'sts', podManagementPolicy: 'Parallel', selector: selector('sts'), template: template('sts') } } });
  await apps.createNamespacedDaemonSet({ namespace: ns, body: { metadata: { name: 'ds' }, spec: { selector: selector('ds'), template: template('ds', { 'glidepath.dev/test-pool': pool }) } } });
  for (const label of ['dep', 'sts', 'ds']) await until(`4 ready ${label} pods`, () => allOld(label, 4));
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

const kinds: [WorkloadKind, string][] = [
  ['Deployment', 'dep'],
  ['StatefulSet', 'sts'],
  ['DaemonSet', 'ds'],
];

// The breach: the canary's error ratio, measured every 1 s, healthy below 5 %.
const QUERY = 'sum(rate(http_requests_total{version="canary", code=~"5.."}[5s])) / sum(rate(http_requests_total{version="canary"}[5s]))';
const metricsApp = await startMetricsApp({ rps: 50 });
const prom = await startPrometheus({ targets: [metricsApp.target], scrapeIntervalSeconds: 1 });
const provider = createPrometheusProvider();
const metric: MetricSpec = { name: 'error-ratio', intervalMs: 1000, count: 600, successCondition: 'result[0] < 0.05', failureLimit: 0, inconclusiveLimit: 0, consecutiveErrorLimit: 4, dryRun: false, provider: { prometheus: { address: prom.url, query: QUERY } } };
const analysisRun: AnalysisRunSpec = { name: 'bench', templates: ['bench'], args: {}, metrics: [metric] };
const healthy = async (): Promise<boolean> => ((await provider.query({ address: prom.url, query: QUERY }, {}, new AbortController().signal).catch(() => [])) as number[])[0] === 0;

/** Errors start → Failed verdict → abort returned, for a release at 50 %. */
async function breach(ops: RollingOps, target: ReleaseTarget): Promise<number> {
  metricsApp.setErrorRate('canary', 0);
  await until('a healthy canary in Prometheus', healthy);
  const deps: ActivityDeps = { workload: {} as WorkloadOps, metrics: { prometheus: provider } };
  const analysis: Promise<AnalysisRunResult> = new MockActivityEnvironment().run(runAnalysis, deps, target, analysisRun, { background: false });
  await sleep(1000 + Math.random() * 1000);
  const t0 = performance.now();
  metricsApp.setErrorRate('canary', 0.5);
  const verdict = verdictOf([metric], await analysis);
  if (verdict.phase !== 'Failed') throw new Error(`${target.workload.kind}: verdict ${verdict.phase}`);
  await ops.abort(target, OLD);
  return performance.now() - t0;
}

const line = (what: string, kind: string, samples: number[]): string => {
  const sorted = [...samples].sort((a, b) => a - b);
  return `rolling-abort ${what.padEnd(7)} ${kind.padEnd(12)} 50 % of 4 → all old and ready: runs=${sorted.length} p50=${pct(sorted, 50).toFixed(0)} ms p95=${pct(sorted, 95).toFixed(0)} ms min=${(sorted[0] as number).toFixed(0)} ms max=${(sorted.at(-1) as number).toFixed(0)} ms`;
};

try {
  await setUp();
  for (const [kind, name] of kinds) {
    const ops = rolling[kind];
    if (!ops) throw new Error(`no rolling operations for ${kind}`);
    const aborts: number[] = [];
    const breaches: number[] = [];
    for (let run = 0; run < 2 * RUNS; run++) {
      const target: ReleaseTarget = { releaseId: `release_${ns}_${name}`, namespace: ns, workload: { kind, name }, image: `example/agent:2.0.${run}`, strategy: 'rolling', progressDeadlineSeconds: 120 };
      await ops.preflight(target);
      await ops.begin(target);
      const half = await ops.batch(target, { kind: 'batch', percent: 50 });
      if (half.updated < 2) throw new Error(`${kind} run ${run}: ${half.updated} updated at 50 %`);
      if (run % 2 === 0) {
        const t0 = performance.now();
        await ops.abort(target, OLD);
        aborts.push(performance.now() - t0);
      } else {
        breaches.push(await breach(ops, target));
      }
      if (!(await allOld(name, 4))) throw new Error(`${kind} run ${run}: not every pod back on ${OLD} and ready when abort returned`);
    }
    console.log(line('abort', kind, aborts));
    console.log(line('breach', kind, breaches));
  }
  console.log('rolling-abort: breach = errors start (1 s scrape, 1 s interval, rate over 5 s) → Failed verdict → abort returned');
} finally {
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
  await Promise.all(nodes.map((name) => core.deleteNode({ name }).catch(() => undefined)));
  await prom.stop();
  await metricsApp.stop();
}
