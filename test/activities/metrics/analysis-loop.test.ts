/**
 * The analysis activity's loop against a real web provider and a loopback HTTP server this file
 * starts: when a run ends (Inconclusive, dry-run, count 0), what it keeps (retention) and that it
 * heartbeats while one slow measurement runs. The loop runs in the SDK's MockActivityEnvironment,
 * which records every heartbeat with its details; a real worker would add a Temporal server and
 * 30 s heartbeat timeouts to observe the same calls. Waits between measurements use an injected
 * clock (deps.now/sleep), so a 30 s interval costs no real time; the HTTP requests are real.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import * as analysisActivity from '../../../activities/analysis.ts';
import type { ActivityDeps, ReleaseTarget, WorkloadOps } from '../../../activities/contract.ts';
import { createWebProvider } from '../../../activities/metrics/web.ts';
import { verdictOf } from '../../../model/analysis.ts';
import type { AnalysisRunResult, MetricSpec } from '../../../model/types.ts';

const { runAnalysis } = analysisActivity;
let server: Server;
let base: string;
/** Per path, the values still to answer (the last one repeats); `/slow/<ms>` answers 1 after that delay. */
const script = new Map<string, number[]>();
const hits = new Map<string, number>();

before(async () => {
  server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] as string;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const slow = /^\/slow\/(\d+)$/.exec(path);
    const answer = (v: number): void => void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ v }));
    if (slow) {
      setTimeout(() => answer(1), Number(slow[1]));
      return;
    }
    const queue = script.get(path) ?? [1];
    answer(queue.length > 1 ? (queue.shift() as number) : (queue[0] as number));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

const target = { releaseId: 'r', namespace: 'default', workload: { kind: 'Deployment', name: 'app' }, image: 'a:1', strategy: 'canary', progressDeadlineSeconds: 60 } satisfies ReleaseTarget;

/** A web metric reading `{v}` at `path`: v == 1 passes, v == 0 fails, anything else is inconclusive. */
const metric = (name: string, path: string, extra: Partial<MetricSpec> = {}): MetricSpec => ({
  name,
  successCondition: 'result == 1',
  failureCondition: 'result == 0',
  failureLimit: 0,
  inconclusiveLimit: 0,
  consecutiveErrorLimit: 0,
  dryRun: false,
  provider: { web: { url: `${base}${path}`, jsonPath: '{$.v}', timeoutSeconds: 20 } },
  ...extra,
});

/** Deps with a clock that jumps over every wait (requests stay real). */
function fakeClock(): ActivityDeps {
  let t = Date.UTC(2026, 0, 1);
  return {
    workload: {} as WorkloadOps,
    metrics: { web: createWebProvider({ egress: { allow: ['127.0.0.0/8'] } }) },
    now: () => new Date(t),
    sleep: async (ms) => {
      t += ms;
      await new Promise((resolve) => setImmediate(resolve)); // a loop that never ends still lets timers (test timeouts) run
    },
  };
}

async function run(metrics: MetricSpec[], deps: ActivityDeps = fakeClock(), env = new MockActivityEnvironment()): Promise<AnalysisRunResult> {
  return env.run(runAnalysis, deps, target, { name: 't', templates: ['t'], args: {}, metrics }, { background: false });
}

test('long measurements: the activity heartbeats while one slow measurement runs', async () => {
  const env = new MockActivityEnvironment();
  const beats: number[] = [];
  env.on('heartbeat', () => beats.push(Date.now()));
  const t0 = Date.now();
  const result = await run([metric('slow', '/slow/11000')], { workload: {} as WorkloadOps, metrics: { web: createWebProvider({ egress: { allow: ['127.0.0.0/8'] } }) } }, env);
  const t1 = Date.now();
  const during = beats.filter((b) => b < t1 - 200);
  console.log(`11 s measurement: heartbeats at +${beats.map((b) => ((b - t0) / 1000).toFixed(1)).join('s, +')}s; finished at +${((t1 - t0) / 1000).toFixed(1)}s`);
  assert.equal(result.metrics[0]?.measurements[0]?.phase, 'Successful');
  assert.ok(during.length >= 2, `heartbeats while measuring: ${during.length}`);
  const gaps = [t0, ...during].slice(1).map((b, i) => b - ([t0, ...during][i] as number));
  assert.ok(Math.max(...gaps) < 6_000, `no gap of the heartbeat timeout's order: ${gaps.join(', ')} ms`);
});

test('count semantics: count 0 is unset, so the metric is measured once (and a failing one fails the run)', async () => {
  script.set('/zero', [0]);
  const metrics = [metric('zero', '/zero', { count: 0 })];
  const result = await run(metrics);
  assert.equal(result.metrics[0]?.measurements.length, 1);
  assert.equal(verdictOf(metrics, result).phase, 'Failed');
});

test('an Inconclusive metric ends the run: the other metric stops measuring and cannot turn it into a failure', async () => {
  script.set('/borderline', [0.5]);
  script.set('/later-fails', [1, 0]);
  hits.delete('/later-fails');
  const metrics = [metric('gate', '/borderline'), metric('soak', '/later-fails', { count: 3, intervalMs: 30_000 })];
  const result = await run(metrics);
  const verdict = verdictOf(metrics, result);
  assert.equal(verdict.phase, 'Inconclusive', verdict.message);
  assert.equal(hits.get('/later-fails'), 1, 'the other metric measured once, then the run ended');
  assert.equal(result.terminated, false);
});

test('an Inconclusive metric ends the run: an unbounded metric alongside it ends too', { timeout: 20_000 }, async () => {
  script.set('/borderline2', [0.5]);
  const metrics = [metric('gate', '/borderline2', { initialDelayMs: 60_000 }), metric('soak', '/ok', { intervalMs: 30_000 })];
  const result = await run(metrics);
  assert.equal(verdictOf(metrics, result).phase, 'Inconclusive');
  assert.equal(result.metrics[1]?.measurements.length, 3, 'soak measured at 0s, 30s, 60s, then the run ended');
});

test('measurementRetention: a long soak keeps counts exact, but only the latest measurements in heartbeats and the result', async () => {
  const env = new MockActivityEnvironment();
  let lastDetails: unknown;
  let largest = 0;
  env.on('heartbeat', (d: unknown) => {
    lastDetails = d;
    largest = Math.max(largest, JSON.stringify(d).length);
  });
  const metrics = [metric('soak', '/ok', { count: 60, intervalMs: 30_000 }), metric('kept3', '/ok', { count: 60, intervalMs: 30_000, measurementRetention: 3 })];
  const result = await run(metrics, fakeClock(), env);
  assert.equal(result.metrics[0]?.measurements.length, 10);
  assert.equal(result.metrics[0]?.tally?.count, 60);
  assert.equal(result.metrics[1]?.measurements.length, 3);
  const verdict = verdictOf(metrics, result);
  assert.equal(verdict.phase, 'Successful');
  assert.equal(verdict.metrics[0]?.count, 60, 'the recorded count is exact');
  assert.equal(verdict.metrics[0]?.measurements.length, 10, 'the recorded measurements are the retained ones');
  const details = lastDetails as { metrics: Record<string, { measurements: unknown[] }> };
  assert.equal(details.metrics.soak?.measurements.length, 10);
  console.log(`60 measurements × 2 metrics: largest heartbeat ${largest} bytes`);
  assert.ok(largest < 10_000, `heartbeat stays small: ${largest} bytes`);
});

test('dry-run metrics keep measuring to their own count after the gating metric is done', async () => {
  hits.delete('/dry');
  const metrics = [metric('gate', '/ok'), metric('shadow', '/dry', { count: 4, intervalMs: 30_000, dryRun: true })];
  const result = await run(metrics);
  assert.equal(result.metrics[1]?.measurements.length, 4);
  assert.equal(hits.get('/dry'), 4);
  assert.equal(verdictOf(metrics, result).phase, 'Successful');
});

test('dry-run metrics: an all-dry-run run measures before it ends', async () => {
  script.set('/dry-fail', [0]);
  const metrics = [metric('shadow', '/dry-fail', { count: 2, intervalMs: 30_000, failureLimit: 1, dryRun: true })];
  const result = await run(metrics);
  assert.equal(result.metrics[0]?.measurements.length, 2);
  const verdict = verdictOf(metrics, result);
  assert.equal(verdict.phase, 'Successful', 'dry-run never decides');
  assert.equal(verdict.metrics[0]?.phase, 'Failed', 'but is assessed and reported');
});

test('measurementRetention: a retried attempt resumes from bounded heartbeat details, or from an older worker’s full list', async () => {
  hits.delete('/resume');
  const spec = metric('soak', '/resume', { count: 5, intervalMs: 30_000, failureLimit: 1 });
  const old = (i: number, phase: 'Successful' | 'Failed' = 'Successful') => ({ phase, value: 1, startedAt: new Date(Date.UTC(2026, 0, 1) + i).toISOString(), finishedAt: new Date(Date.UTC(2026, 0, 1) + i).toISOString() });
  // Bounded details: 4 counted (one Failed, no longer among the kept measurements); one more to take.
  const tallied = { count: 4, successful: 3, failed: 1, inconclusive: 0, error: 0, consecutiveError: 0 };
  const details = { startedAt: Date.UTC(2026, 0, 1), metrics: { soak: { measurements: [old(3)], tally: tallied } }, inflight: {} };
  const resumed = await run([spec], fakeClock(), new MockActivityEnvironment({ heartbeatDetails: details }));
  assert.equal(hits.get('/resume'), 1);
  assert.equal(resumed.metrics[0]?.tally?.count, 5);
  assert.equal(resumed.metrics[0]?.tally?.failed, 1);
  // An older worker's details: every measurement, no counts.
  const legacy = { startedAt: Date.UTC(2026, 0, 1), measurements: { soak: Array.from({ length: 12 }, (_, i) => old(i, i === 0 ? 'Failed' : 'Successful')) } };
  const fromLegacy = await run([metric('soak', '/resume', { count: 14, intervalMs: 30_000, failureLimit: 1 })], fakeClock(), new MockActivityEnvironment({ heartbeatDetails: legacy }));
  assert.equal(hits.get('/resume'), 3, 'two more measurements');
  assert.equal(fromLegacy.metrics[0]?.tally?.count, 14);
  assert.equal(fromLegacy.metrics[0]?.tally?.failed, 1);
  assert.equal(fromLegacy.metrics[0]?.measurements.length, 10);
});
