/**
 * Traffic benchmarks, measured at the client on requests through Traefik and the data plane
 * (dataplane/), with the real router activities, for the Gateway API, NGINX and Traefik routers:
 *   split      the canary's share of 1,000 requests after each setWeight step (10, 25, 50 %), and its
 *              distance from the weight in binomial σ;
 *   release    requests failed (5xx, connection errors) through a whole release with requests flowing,
 *              BENCH_RUNS releases per router: setWeight 10, 25, 50 (each held 1 s), then the promotion in
 *              the workflow's order (workflows/release/canary.ts, promoteOffStable): weight 100 on the canary at
 *              full size, the scale-down delay, the stable rolls, traffic back to the new stable's pods, the
 *              delay again, the canary removed; then the removed pods' drain. BENCH_DELAY_S is the delay
 *              (default 5, Argo's default is 30); BENCH_RELEASE_ORDER=previous runs the earlier order instead
 *              (the stable rolled under its share of traffic, then the canary removed at once), =both both;
 *   abort      from the abort's routing call (routeToStable) at 50 % to 100 % of requests answered by stable,
 *              BENCH_RUNS runs per router, p50/p95 (nearest rank);
 *   breach     Gateway API only: Prometheus (1 s scrape) on Traefik's metrics, the error-rate analysis (1 s
 *              interval, rate over 5 s, `result[0] < 0.02`); from half of the canary's requests failing to
 *              100 % of requests answered by stable (analysis Failed, then the routing call), BENCH_RUNS runs.
 * Needs root (network namespaces), KUBECONFIG, TRAEFIK_BIN and PROMETHEUS_BIN (npm run bench starts them);
 * prints a named reason and exits 0 where they are missing. Env: BENCH_RUNS (default 5), BENCH_PASSES (a
 * comma-separated subset of split, release, abort, breach; default all), BENCH_DRAIN_MS (default 5000).
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { runAnalysis } from '../activities/analysis.ts';
import type { ActivityDeps, WorkloadOps } from '../activities/contract.ts';
import { createPrometheusProvider } from '../activities/metrics/prometheus.ts';
import { verdictOf } from '../model/analysis.ts';
import type { AnalysisRunResult, MetricSpec } from '../model/types.ts';
import { CANARY_VERSION, dataPlaneSkip, describe as show, STABLE_VERSION, startRig, until, type Rig } from '../test/dataplane/fixture.ts';
import { ROUTERS, routerRelease, type RouterName, type RouterRelease } from '../test/dataplane/routers.ts';
import { allServedBySince, lastServedBy, totals, withinBinomial } from '../dataplane/load.ts';
import { eventually, prometheusBinary, startPrometheus } from '../test/support/prometheus.ts';

/** A short preStop stand-in, so the proxy's lag in dropping deleted pods shows as failed requests. */
const BENCH_DRAIN_MS = Math.max(0, Number(process.env['BENCH_DRAIN_MS'] ?? 5_000));
const RUNS = Math.max(1, Number(process.env['BENCH_RUNS'] ?? 5));
const PASSES = new Set((process.env['BENCH_PASSES'] ?? 'split,release,abort,breach').split(',').map((x) => x.trim()));
const DELAY_MS = Math.max(0, Number(process.env['BENCH_DELAY_S'] ?? 5)) * 1000;
type Order = 'current' | 'previous';
const ORDERS: Order[] = process.env['BENCH_RELEASE_ORDER'] === 'previous' ? ['previous'] : process.env['BENCH_RELEASE_ORDER'] === 'both' ? ['previous', 'current'] : ['current'];
const STEPS = [10, 25, 50];
const never = new AbortController().signal;

function prometheusSkip(): string | undefined {
  try {
    prometheusBinary();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const nearestRank = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
const stats = (xs: number[]): string => {
  const s = [...xs].sort((a, b) => a - b);
  return `runs=${s.length} p50=${nearestRank(s, 0.5)} ms p95=${nearestRank(s, 0.95)} ms min=${s[0]} ms max=${s.at(-1)} ms`;
};
const failedOf = (r: { serverErrors: Record<number, number>; connectionErrors: Record<string, number>; otherStatus: Record<number, number> }): number =>
  Object.values(r.serverErrors).reduce((a, b) => a + b, 0) + Object.values(r.connectionErrors).reduce((a, b) => a + b, 0) + Object.values(r.otherStatus).reduce((a, b) => a + b, 0);

async function split(rig: Rig, router: RouterName, rel: RouterRelease): Promise<void> {
  const parts: string[] = [];
  for (const w of STEPS) {
    await rel.acts.setWeight(rel.t, w);
    await rel.untilWeight(w);
    const r = await rig.load(rel.ns, { requests: 1000, concurrency: 8 });
    const n = totals(r).ok;
    const canary = r.byVersion[CANARY_VERSION] ?? 0;
    const b = withinBinomial(canary, n, w / 100);
    const sigma = Math.sqrt(n * (w / 100) * (1 - w / 100));
    parts.push(`${w} % → ${canary}/${n} (${((canary - b.expected) / sigma).toFixed(2)} σ, failed ${failedOf(r)})`);
  }
  console.log(`traffic split ${router.padEnd(10)} ${parts.join('; ')}`);
}

/** The promotion as the workflow runs it with a router: no pod is removed while traffic reaches it. */
async function promote(rel: RouterRelease, order: Order, mark: (what: string) => void): Promise<void> {
  if (order === 'previous') {
    mark('promote (stable rolls under its share)');
    await rel.acts.promoteCanary(rel.t);
    return;
  }
  mark('canary takes 100 %');
  await rel.acts.setWeight(rel.t, 100);
  await new Promise((r) => setTimeout(r, DELAY_MS));
  mark('stable rolls');
  await rel.acts.promoteCanary(rel.t, { keepCanary: true, pinStable: true });
  mark('traffic on the new stable');
  await new Promise((r) => setTimeout(r, DELAY_MS));
  mark('canary removed');
  await rel.acts.removeCanary(rel.t);
}

async function release(rig: Rig, router: RouterName, rel: RouterRelease, order: Order): Promise<{ sent: number; failed: number }> {
  const t0 = Date.now();
  const phases: string[] = [];
  const mark = (what: string): void => void phases.push(`${what} +${Date.now() - t0} ms`);
  const log0 = rig.traefik.failedRequests().length;
  const load = rig.startLoad(rel.ns, { requests: 1_000_000, concurrency: 4, deadlineMs: Date.now() + 120_000 });
  try {
    for (const w of STEPS) {
      mark(`setWeight ${w}`);
      await rel.acts.setWeight(rel.t, w);
      await rel.untilWeight(w);
      await new Promise((r) => setTimeout(r, 1000));
    }
    await promote(rel, order, mark);
    mark('promoted');
    await until(() => lastServedBy(load.result, CANARY_VERSION, 200), 'the new version alone answering', 30_000);
    await new Promise((r) => setTimeout(r, BENCH_DRAIN_MS + 500)); // the removed pods' drain, requests still flowing
  } finally {
    await load.stop();
  }
  const r = load.result;
  console.log(`traffic release ${router.padEnd(10)} steps ${STEPS.join('/')} + promotion (${order === 'previous' ? 'previous order' : `delay ${DELAY_MS / 1000} s`}): ${r.sent} requests, ${failedOf(r)} failed (${show(r)})`);
  if (failedOf(r) > 0) {
    // Where the failures fell, and the server Traefik sent each to (its access log keeps answers ≥ 500).
    const bad = r.samples.filter((x) => 'error' in x.outcome || x.outcome.status >= 300).map((x) => `+${x.start - t0} ms ${JSON.stringify(x.outcome)}`);
    const servers = rig.traefik.failedRequests().slice(log0).map((l) => {
      const e = JSON.parse(l) as { ServiceAddr?: string; DownstreamStatus?: number; StartUTC?: string };
      return `${e.DownstreamStatus} from ${e.ServiceAddr} at +${e.StartUTC ? Date.parse(e.StartUTC) - t0 : '?'} ms`;
    });
    const ips = new Set(rig.traefik.failedRequests().slice(log0).map((l) => ((JSON.parse(l) as { ServiceAddr?: string }).ServiceAddr ?? '').split(':')[0]));
    const addresses = rig.dp.history().filter((e) => ips.has(e.ip) && e.at >= t0).map((e) => `${e.ip} ${e.what} ${e.pod}@${e.version} +${e.at - t0} ms`);
    console.log(`  phases: ${phases.join(', ')}\n  failed: ${bad.slice(0, 20).join('; ')}\n  traefik: ${servers.slice(0, 20).join('; ')}\n  data plane: ${addresses.join('; ')}`);
  }
  return { sent: r.sent, failed: failedOf(r) };
}

async function aborts(rig: Rig, router: RouterName, rel: RouterRelease): Promise<void> {
  const ms: number[] = [];
  let sent = 0;
  let failed = 0;
  for (let i = 0; i < RUNS; i++) {
    await rel.acts.ensureCanary(rel.t);
    await rel.acts.setWeight(rel.t, 50);
    await rel.untilWeight(50);
    const load = rig.startLoad(rel.ns, { requests: 1_000_000, concurrency: 4, deadlineMs: Date.now() + 60_000 });
    try {
      await until(() => (load.result.byVersion[CANARY_VERSION] ?? 0) > 50, 'canary answering before the abort', 10_000);
      const t0 = Date.now();
      await rel.acts.routeToStable(rel.t);
      await until(() => lastServedBy(load.result, STABLE_VERSION, 200), 'stable alone answering after the abort', 15_000);
      await rel.acts.abortCanary(rel.t, undefined);
      const r = await load.stop();
      const since = allServedBySince(r.samples, STABLE_VERSION, t0 - 5000);
      if (since === undefined) throw new Error(`${router}: not all on stable after the abort: ${show(r)}`);
      ms.push(Math.max(0, since - t0));
      sent += r.sent;
      failed += failedOf(r);
    } finally {
      await load.stop();
    }
  }
  console.log(`traffic abort   ${router.padEnd(10)} 50 % → 100 % stable at the client after routeToStable: ${stats(ms)}; ${sent} requests, ${failed} failed`);
}

async function breaches(rig: Rig, promUrl: string): Promise<void> {
  const rel = await routerRelease(rig, 'gatewayAPI');
  const canary = `service=~".*-svc-${rel.ns}-web-canary-.*"`;
  const query = `(sum(rate(traefik_service_requests_total{${canary},code=~"5.."}[5s])) or vector(0)) / sum(rate(traefik_service_requests_total{${canary}}[5s]))`;
  const metric: MetricSpec = {
    name: 'error-rate',
    intervalMs: 1000,
    count: 120,
    successCondition: 'result[0] < 0.02',
    failureLimit: 0,
    inconclusiveLimit: 0,
    consecutiveErrorLimit: 4,
    dryRun: false,
    provider: { prometheus: { address: promUrl, query } },
  };
  const provider = createPrometheusProvider();
  const deps: ActivityDeps = { workload: {} as WorkloadOps, metrics: { prometheus: provider } };
  const toFailed: number[] = [];
  const toStable: number[] = [];
  let errors = 0;
  for (let i = 0; i < RUNS; i++) {
    await rel.acts.ensureCanary(rel.t);
    await rel.acts.setWeight(rel.t, 50);
    await rel.untilWeight(50);
    const load = rig.startLoad(rel.ns, { requests: 1_000_000, concurrency: 4, deadlineMs: Date.now() + 120_000 });
    try {
      await eventually(async () => ((await provider.query({ address: promUrl, query }, {}, never).catch(() => undefined)) as number[] | undefined)?.[0] === 0, 30_000, 'Prometheus showing the canary at 0 % errors');
      const analysis: Promise<AnalysisRunResult> = new MockActivityEnvironment().run(runAnalysis, deps, rel.t, { name: 'error-rate', templates: ['error-rate'], args: {}, metrics: [metric] }, { background: false });
      await new Promise((r) => setTimeout(r, 1000 + Math.random() * 1000)); // passing measurements first, errors at a random phase of the interval
      const t0 = Date.now();
      rig.dp.setFailure(CANARY_VERSION, 0.5);
      const result = await analysis;
      const tFailed = Date.now();
      const verdict = verdictOf([metric], result);
      if (verdict.phase !== 'Failed') throw new Error(`breach run ${i}: analysis ${verdict.phase}`);
      await rel.acts.routeToStable(rel.t);
      await until(() => lastServedBy(load.result, STABLE_VERSION, 200), 'stable alone answering after the breach', 15_000);
      const r = await load.stop();
      const since = allServedBySince(r.samples, STABLE_VERSION, t0);
      if (since === undefined) throw new Error(`breach run ${i}: not all on stable: ${show(r)}`);
      toFailed.push(tFailed - t0);
      toStable.push(since - t0);
      errors += totals(r).serverErrors;
    } finally {
      rig.dp.setFailure(CANARY_VERSION, 0);
      await load.stop();
    }
    await rel.acts.abortCanary(rel.t, undefined);
  }
  console.log(`traffic breach  gatewayAPI errors start → analysis Failed: ${stats(toFailed)}`);
  console.log(`traffic breach  gatewayAPI errors start → 100 % stable at the client: ${stats(toStable)}; ${errors} requests answered 5xx in all`);
}

const skip = dataPlaneSkip() ?? prometheusSkip();
if (skip) {
  console.log(`traffic: skipped: ${skip}`);
} else {
  const rig = await startRig('bench-tr', { crd: true, drainMs: BENCH_DRAIN_MS });
  const prom = await startPrometheus({ targets: [rig.traefik.adminAddress], scrapeIntervalSeconds: 1 });
  try {
    console.log(`traffic: Traefik, deleted pods serve ${BENCH_DRAIN_MS / 1000} s (preStop), ${RUNS} runs per figure, load average ${(await import('node:os')).loadavg()[0]?.toFixed(1)}`);
    for (const router of ROUTERS) {
      if (PASSES.has('split')) await split(rig, router, await routerRelease(rig, router));
      for (const order of PASSES.has('release') ? ORDERS : []) {
        let sent = 0;
        const failed: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          const r = await release(rig, router, await routerRelease(rig, router), order);
          sent += r.sent;
          failed.push(r.failed);
        }
        console.log(`traffic release ${router.padEnd(10)} ${order} order, ${RUNS} releases: ${failed.reduce((a, b) => a + b, 0)} of ${sent} requests failed (per release: ${failed.join(', ')})`);
      }
      if (PASSES.has('abort')) await aborts(rig, router, await routerRelease(rig, router));
    }
    if (PASSES.has('breach')) await breaches(rig, prom.url);
  } finally {
    await prom.stop();
    await rig.close();
  }
}
