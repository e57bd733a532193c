/**
 * Secret-valued analysis args (secretKeyRef, resolved inside the activity) never leave the analysis
 * activity: not in measurement values, messages, errors or heartbeat details, even when a server
 * reflects them into its answer. Real servers on loopback: an HTTP server that echoes the secret
 * header into its JSON answer (the web provider reaches it because GLIDEPATH_WEB_ALLOW lists
 * 127.0.0.0/8) and a real Prometheus whose result labels carry the interpolated secret.
 * Needs PROMETHEUS_BIN or prometheus on PATH (`bash scripts/provision-prometheus.sh`).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runAnalysis } from '../../../activities/analysis.ts';
import type { ActivityDeps, ReleaseTarget, WorkloadOps } from '../../../activities/contract.ts';
import { createPrometheusProvider } from '../../../activities/metrics/prometheus.ts';
import { createWebProvider } from '../../../activities/metrics/web.ts';
import type { AnalysisRunResult, AnalysisRunSpec, MetricSpec } from '../../../model/types.ts';
import { startPrometheus, type PrometheusInstance } from '../../support/prometheus.ts';

const SECRET = 'S3CR3T-canary-7f3a91d0';
const target: ReleaseTarget = { releaseId: 'r', namespace: 'default', workload: { kind: 'Deployment', name: 'app' }, image: 'a:1', strategy: 'canary', progressDeadlineSeconds: 60 };

let server: Server;
let base: string;
let prom: PrometheusInstance;

before(async () => {
  server = createServer((req, res) => {
    const token = String(req.headers['x-token'] ?? '');
    if (req.url === '/echo') return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ echo: `hello ${token}`, nested: { [token]: [token] } }));
    if (req.url === '/deny') return void res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`token ${token} is not welcome`);
    return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`not json: ${token}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  prom = await startPrometheus({ targets: [`127.0.0.1:${(server.address() as AddressInfo).port}`] });
});

after(async () => {
  server.closeAllConnections();
  server.close();
  await prom?.stop();
});

const limits = { failureLimit: 0, inconclusiveLimit: 0, consecutiveErrorLimit: 0, dryRun: false } as const;

function webMetric(path: string, jsonPath = '{$.echo}'): MetricSpec {
  return { name: `web${path.replace('/', '-')}`, successCondition: 'result == "never"', ...limits, provider: { web: { url: `${base}${path}`, jsonPath, headers: [{ key: 'X-Token', value: '{{args.token}}' }], timeoutSeconds: 5 } } };
}

function promMetric(query: string): MetricSpec {
  return { name: 'prom', successCondition: 'result[0] < 1', ...limits, provider: { prometheus: { address: prom.url, query } } };
}

/** Runs one analysis with `token` a secretKeyRef arg; returns the result (or the error) and every heartbeat. */
async function analyse(metric: MetricSpec): Promise<{ outcome: AnalysisRunResult | Error; beats: unknown[] }> {
  const deps: ActivityDeps = {
    workload: {} as WorkloadOps,
    metrics: { web: createWebProvider({ egress: { allow: ['127.0.0.0/8'] } }), prometheus: createPrometheusProvider() },
    secrets: async (namespace, ref) => {
      assert.deepEqual([namespace, ref], ['default', { name: 'analysis-creds', key: 'token' }]);
      return SECRET;
    },
  };
  const run: AnalysisRunSpec = { name: 't', templates: ['t'], args: { token: { secretKeyRef: { name: 'analysis-creds', key: 'token' } } }, metrics: [metric] };
  const env = new MockActivityEnvironment();
  const beats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
  try {
    return { outcome: await env.run(runAnalysis, deps, target, run, { background: false }), beats };
  } catch (err) {
    return { outcome: err as Error, beats };
  }
}

/** Everything that would reach history: the result or the failure (message, stack, details, cause) and the heartbeats. */
function leaving({ outcome, beats }: { outcome: AnalysisRunResult | Error; beats: unknown[] }): string {
  const failure = outcome instanceof Error ? { message: outcome.message, stack: outcome.stack, details: (outcome as ApplicationFailure).details, cause: String(outcome.cause) } : outcome;
  return JSON.stringify({ failure, beats });
}

function assertNoSecret(text: string): void {
  for (const form of [SECRET, encodeURIComponent(SECRET)]) assert.ok(!text.includes(form), `the secret leaves the activity: ${text.slice(0, 600)}`);
}

test('web: a server that echoes the secret header into its answer: the recorded value has it redacted', async () => {
  const out = await analyse(webMetric('/echo'));
  assert.ok(!(out.outcome instanceof Error), String(out.outcome));
  const m = out.outcome.metrics[0]?.measurements[0];
  assert.equal(m?.phase, 'Failed', 'the condition saw the real value');
  assert.equal(m?.value, 'hello ***');
  assertNoSecret(leaving(out));
});

test('web: the secret echoed in object keys and arrays of the value, and in a non-JSON answer, is redacted', async () => {
  const nested = await analyse(webMetric('/echo', '{$.nested}'));
  assert.ok(!(nested.outcome instanceof Error), String(nested.outcome));
  assert.deepEqual(nested.outcome.metrics[0]?.measurements[0]?.value, { '***': ['***'] });
  assertNoSecret(leaving(nested));
  for (const path of ['/text', '/deny']) {
    const out = await analyse(webMetric(path));
    assert.ok(!(out.outcome instanceof Error), String(out.outcome));
    assert.equal(out.outcome.metrics[0]?.measurements[0]?.phase, 'Error');
    assertNoSecret(leaving(out));
  }
});

test('prometheus: a result label carrying the interpolated secret: the NaN error message has it redacted', async () => {
  const out = await analyse(promMetric('label_replace(vector(NaN), "leak", "{{args.token}}", "", "")'));
  assert.ok(!(out.outcome instanceof Error), String(out.outcome));
  const m = out.outcome.metrics[0]?.measurements[0];
  assert.equal(m?.phase, 'Error');
  assert.match(m?.message ?? '', /leak="\*\*\*".*NaN/);
  assertNoSecret(leaving(out));
});


test('prometheus: a query Prometheus cannot execute, its error quoting the secret: the Error message has it redacted', async () => {
  // A label name must match [a-zA-Z_][a-zA-Z0-9_]*: Prometheus answers 422 and quotes the value.
  const out = await analyse(promMetric('label_replace(vector(1), "{{args.token}}", "x", "", "")'));
  assert.ok(!(out.outcome instanceof Error), String(out.outcome));
  const m = out.outcome.metrics[0]?.measurements[0];
  assert.equal(m?.phase, 'Error');
  assert.match(m?.message ?? '', /invalid destination label name.*\*\*\*/);
  assertNoSecret(leaving(out));
});
