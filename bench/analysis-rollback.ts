/**
 * Time to a Failed analysis verdict: a real Prometheus (1 s scrape) scrapes test/support/metrics-app.ts;
 * the analysis activity (activities/analysis.ts through MockActivityEnvironment, the real Prometheus
 * provider) measures the canary's error ratio every 1 s (rate over 5 s, success while < 5 %,
 * failureLimit 0). Each run lets the analysis pass for a random 1–2 s, then switches the canary's
 * error rate from 0 to 50 % and times that moment → the activity returning with a Failed verdict.
 * Rollback itself (traffic to stable, canary scaled down) is Kubernetes work and is NOT included.
 * Env: BENCH_RUNS (12, at least 10), PROMETHEUS_BIN (else PATH).
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { runAnalysis } from '../activities/analysis.ts';
import type { ActivityDeps, ReleaseTarget, WorkloadOps } from '../activities/contract.ts';
import { createPrometheusProvider } from '../activities/metrics/prometheus.ts';
import { verdictOf } from '../model/analysis.ts';
import type { AnalysisRunResult, AnalysisRunSpec, MetricSpec } from '../model/types.ts';
import { startMetricsApp } from '../test/support/metrics-app.ts';
import { eventually, startPrometheus } from '../test/support/prometheus.ts';

const RUNS = Math.max(10, Number(process.env['BENCH_RUNS'] ?? 12));
const QUERY = 'sum(rate(http_requests_total{version="{{args.version}}", code=~"5.."}[5s])) / sum(rate(http_requests_total{version="{{args.version}}"}[5s]))';
const never = new AbortController().signal;

const app = await startMetricsApp({ rps: 50 });
const prom = await startPrometheus({ targets: [app.target], scrapeIntervalSeconds: 1 });
const provider = createPrometheusProvider();
const ratio = async (): Promise<number | undefined> => ((await provider.query({ address: prom.url, query: QUERY }, { version: 'canary' }, never)) as number[])[0];

const metric: MetricSpec = {
  name: 'error-ratio',
  intervalMs: 1000,
  count: 600,
  successCondition: 'result[0] < 0.05',
  failureLimit: 0,
  inconclusiveLimit: 0,
  consecutiveErrorLimit: 4,
  dryRun: false,
  provider: { prometheus: { address: prom.url, query: QUERY } },
};
const run: AnalysisRunSpec = { name: 'bench', templates: ['bench'], args: { version: { value: 'canary' } }, metrics: [metric] };
const target: ReleaseTarget = { releaseId: 'bench', namespace: 'default', workload: { kind: 'Deployment', name: 'app' }, image: 'app:2', strategy: 'canary', progressDeadlineSeconds: 600 };
const deps: ActivityDeps = { workload: {} as WorkloadOps, metrics: { prometheus: provider } };

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;

try {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    app.setErrorRate('canary', 0);
    await eventually(async () => (await ratio().catch(() => undefined)) === 0, 60_000, 'a healthy canary');
    const env = new MockActivityEnvironment();
    const analysis: Promise<AnalysisRunResult> = env.run(runAnalysis, deps, target, run, { background: false });
    await new Promise((r) => setTimeout(r, 1000 + Math.random() * 1000));
    const t0 = performance.now();
    app.setErrorRate('canary', 0.5);
    const result = await analysis;
    const elapsed = performance.now() - t0;
    const verdict = verdictOf([metric], result);
    const ms = result.metrics[0]?.measurements ?? [];
    if (verdict.phase !== 'Failed') throw new Error(`run ${i + 1}: verdict ${verdict.phase} (${verdict.message ?? ''})`);
    samples.push(elapsed);
    console.log(`analysis-rollback: run ${String(i + 1).padStart(2)}: ${(elapsed / 1000).toFixed(2)} s (${ms.length} measurements, last ${JSON.stringify(ms.at(-1)?.value)})`);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  console.log(`analysis-rollback: errors start → Failed analysis verdict, ${RUNS} runs, 1 s scrape, 1 s analysis interval, rate over 5 s:`);
  console.log(`analysis-rollback: p50 ${s(quantile(sorted, 0.5))}, p95 ${s(quantile(sorted, 0.95))} (nearest rank), min ${s(sorted[0] as number)}, max ${s(sorted.at(-1) as number)}`);
  console.log('analysis-rollback: measured up to the analysis activity returning Failed; the rollback that follows (Kubernetes) is not included');
} finally {
  await prom.stop();
  await app.stop();
}
