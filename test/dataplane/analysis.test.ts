/**
 * Analysis on real traffic: Prometheus (1 s scrape) scrapes Traefik's own request metrics while the client
 * sends requests through a Gateway API canary at 50 %; the analysis activity (the real Prometheus provider)
 * runs the error-rate template (`successCondition: result[0] < 0.02`, 1 s interval, rate over 5 s). Then the
 * canary's pods start failing half of their requests: the analysis returns Failed, the abort's routing call
 * sends all traffic to stable, and the client measures the time from the errors starting to 100 % of its
 * requests answered by stable. Needs root, KUBECONFIG, TRAEFIK_BIN and PROMETHEUS_BIN (or prometheus on PATH).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runAnalysis } from '../../activities/analysis.ts';
import type { ActivityDeps, WorkloadOps } from '../../activities/contract.ts';
import { createPrometheusProvider } from '../../activities/metrics/prometheus.ts';
import { createGatewayApiRouter, GATEWAY_API_PLUGIN } from '../../activities/traffic/gateway-api.ts';
import { verdictOf } from '../../model/analysis.ts';
import type { AnalysisRunResult, MetricSpec } from '../../model/types.ts';
import { routerActivities, target } from '../activities/kubernetes/cluster.ts';
import { createHttpRoute } from '../support/gateway-api.ts';
import { allServedBySince, lastServedBy, totals } from '../../dataplane/load.ts';
import { eventually, prometheusBinary, startPrometheus, type PrometheusInstance } from '../support/prometheus.ts';
import { CANARY_VERSION, createGateway, dataPlaneSkip, describe as show, hostOf, STABLE_VERSION, startRig, until, untilProxyWeight, untilServedBy, type Rig } from './fixture.ts';

function prometheusSkip(): string | undefined {
  try {
    prometheusBinary();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
const skip = dataPlaneSkip() ?? prometheusSkip();

describe('analysis on real traffic: Traefik metrics, error-rate template, breach → all requests on stable', { skip }, () => {
  let rig: Rig;
  let prom: PrometheusInstance;

  before(async () => {
    rig = await startRig('dp-an');
    prom = await startPrometheus({ targets: [rig.traefik.adminAddress], scrapeIntervalSeconds: 1 });
  });
  after(async () => {
    await prom?.stop();
    await rig?.close();
  });

  test('half of the canary requests fail: the analysis fails on Traefik’s error rate and the client is on stable seconds later', async () => {
    const acts = routerActivities(rig.cluster.kc, { plugins: createGatewayApiRouter(rig.cluster.kc) });
    const ns = await rig.namespace();
    await rig.cluster.stable(ns, { replicas: 4 });
    await rig.cluster.service(ns, 'web-stable', { app: 'web' });
    await rig.cluster.service(ns, 'web-canary', { app: 'web' });
    await createGateway(rig, ns);
    await createHttpRoute(rig.custom, ns, 'web', {
      parentRefs: [{ name: 'edge' }],
      hostnames: [hostOf(ns)],
      rules: [{ backendRefs: [{ group: '', kind: 'Service', name: 'web-stable', port: 80, weight: 100 }, { group: '', kind: 'Service', name: 'web-canary', port: 80, weight: 0 }] }],
    });
    await rig.dp.until((s) => [...s.values()].filter((p) => p.namespace === ns).length === 4, 'stable pods served');
    await untilServedBy(rig, ns, STABLE_VERSION, 'stable');
    const t = target(ns, { stableService: 'web-stable', canaryService: 'web-canary', trafficRouting: { plugins: { [GATEWAY_API_PLUGIN]: { httpRoute: 'web' } } } });
    await acts.preflight(t);
    await acts.ensureCanary(t);
    await acts.setWeight(t, 50);
    await untilProxyWeight(rig, ns, 50);

    // Traefik names the canary's backend `httproute-…-svc-<ns>-web-canary-<n>@kubernetesgateway`.
    const canary = `service=~".*-svc-${ns}-web-canary-.*"`;
    // No 5xx series exists until the first error: `or vector(0)` makes the healthy ratio 0, not empty.
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
      provider: { prometheus: { address: prom.url, query } },
    };
    const provider = createPrometheusProvider();
    const deps: ActivityDeps = { workload: {} as WorkloadOps, metrics: { prometheus: provider } };
    const never = new AbortController().signal;

    const load = rig.startLoad(ns, { requests: 1_000_000, concurrency: 4, deadlineMs: Date.now() + 120_000 });
    try {
      await eventually(async () => ((await provider.query({ address: prom.url, query }, {}, never).catch(() => undefined)) as number[] | undefined)?.[0] === 0, 30_000, 'Prometheus showing the canary at 0 % errors');
      const analysis: Promise<AnalysisRunResult> = new MockActivityEnvironment().run(runAnalysis, deps, t, { name: 'error-rate', templates: ['error-rate'], args: {}, metrics: [metric] }, { background: false });
      await new Promise((r) => setTimeout(r, 1500)); // a passing measurement or two first
      const t0 = Date.now();
      rig.dp.setFailure(CANARY_VERSION, 0.5);
      const result = await analysis;
      const tFailed = Date.now();
      const verdict = verdictOf([metric], result);
      assert.equal(verdict.phase, 'Failed', `analysis verdict: ${JSON.stringify(verdict)}`);
      await acts.routeToStable(t);
      await until(() => lastServedBy(load.result, STABLE_VERSION, 200), 'stable alone answering after the breach', 15_000);
      const r = await load.stop();
      const since = allServedBySince(r.samples, STABLE_VERSION, t0);
      assert.ok(since !== undefined, `stable answers everything at the end: ${show(r)}`);
      const failed = totals(r).serverErrors;
      console.log(
        `analysis on Traefik metrics: errors start → analysis Failed ${((tFailed - t0) / 1000).toFixed(2)} s, → 100 % stable at the client ${((since - t0) / 1000).toFixed(2)} s; ` +
          `${failed} requests answered 5xx meanwhile; ${show(r)}`,
      );
      assert.ok(since - t0 < 20_000, `breach → 100 % stable took ${since - t0} ms`);
      assert.equal(Object.keys(r.connectionErrors).length, 0, `no connection errors: ${show(r)}`);
    } finally {
      rig.dp.setFailure(CANARY_VERSION, 0);
      await load.stop();
    }
  });
});
