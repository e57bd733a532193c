/** The web provider against a real local HTTP server, inside the analysis loop where it matters. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runAnalysis } from '../../../activities/analysis.ts';
import type { ActivityDeps, ReleaseTarget, WorkloadOps } from '../../../activities/contract.ts';
import { MeasurementError } from '../../../activities/metrics/prometheus.ts';
import { createWebProvider, normalizeJsonPath } from '../../../activities/metrics/web.ts';
import { verdictOf } from '../../../model/analysis.ts';
import type { AnalysisRunResult, MetricSpec, WebProviderSpec } from '../../../model/types.ts';

let server: Server;
let base: string;
const requests: { method: string; url: string; headers: Record<string, unknown>; body: string }[] = [];
const provider = createWebProvider({ egress: { allow: ['127.0.0.0/8'] } }); // the test servers are on loopback, refused by default
const never = new AbortController().signal;

const ANSWERS: Record<string, [number, string]> = {
  '/healthy': [200, JSON.stringify({ data: { ok: true, errorRate: 0.01 }, items: [{ v: 1 }, { v: 2 }], nothing: null })],
  '/broken': [503, 'upstream down'],
  '/html': [200, '<html>hi</html>'],
};

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      const path = (req.url ?? '').split('?')[0] as string;
      const [status, body] = ANSWERS[path] ?? [200, JSON.stringify({ echo: Buffer.concat(chunks).toString() })];
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

const metric = (web: WebProviderSpec, extra: Partial<MetricSpec> = {}): MetricSpec => ({
  name: 'web',
  failureLimit: 0,
  inconclusiveLimit: 0,
  consecutiveErrorLimit: 0,
  dryRun: false,
  provider: { web },
  ...extra,
});
const measure = (web: WebProviderSpec, args: Record<string, string> = {}) => provider.measure(metric(web), { args, signal: never });

test('jsonPath in Argo (Kubernetes) style and plain; one match is a value, several an array', async () => {
  assert.equal(normalizeJsonPath('{$.data.ok}'), '$.data.ok');
  assert.equal(normalizeJsonPath('{.data.ok}'), '$.data.ok');
  assert.equal(await measure({ url: `${base}/healthy`, jsonPath: '{$.data.ok}' }), true);
  assert.equal(await measure({ url: `${base}/healthy`, jsonPath: '$.data.errorRate' }), 0.01);
  assert.deepEqual(await measure({ url: `${base}/healthy`, jsonPath: '$.items[*].v' }), [1, 2]);
});

test('a healthy endpoint passes the analysis loop; a broken one is an Error, never a success', async () => {
  const target = { releaseId: 'r', namespace: 'default', workload: { kind: 'Deployment', name: 'app' }, image: 'a:1', strategy: 'canary', progressDeadlineSeconds: 60 } satisfies ReleaseTarget;
  const deps: ActivityDeps = { workload: {} as WorkloadOps, metrics: { web: provider } };
  for (const [path, want] of [['/healthy', 'Successful'], ['/broken', 'Error']] as const) {
    const metrics = [metric({ url: `${base}${path}`, jsonPath: '{$.data.errorRate}' }, { successCondition: 'result < 0.05' })];
    const result: AnalysisRunResult = await new MockActivityEnvironment().run(runAnalysis, deps, target, { name: 't', templates: ['t'], args: {}, metrics }, { background: false });
    assert.equal(verdictOf(metrics, result).phase, want);
  }
});

test('fail closed: non-2xx, not JSON, no match, null, unreachable', async () => {
  const cases: [WebProviderSpec, RegExp][] = [
    [{ url: `${base}/broken`, jsonPath: '$.a' }, /answered 503: upstream down/],
    [{ url: `${base}/html`, jsonPath: '$.a' }, /not JSON/],
    [{ url: `${base}/healthy`, jsonPath: '$.data.missing' }, /matched nothing/],
    [{ url: `${base}/healthy`, jsonPath: '$.nothing' }, /matched null/],
    [{ url: 'http://127.0.0.1:1/x', jsonPath: '$.a' }, /unreachable: ECONNREFUSED/],
  ];
  for (const [web, message] of cases) {
    await assert.rejects(measure(web), (err: Error) => err instanceof MeasurementError && message.test(err.message), web.url);
  }
});

test('JSONPath script and filter expressions are refused, never evaluated', async () => {
  for (const jsonPath of ['$.items[?(@.v > 1)]', '$..[?(process.exit(1))]', '$.items[(@.length-1)]']) {
    await assert.rejects(measure({ url: `${base}/healthy`, jsonPath }), (err: Error) => err instanceof ApplicationFailure && err.type === 'InvalidSpec' && err.nonRetryable, jsonPath);
  }
});

test('args: percent-encoded in the URL, JSON-escaped in the body, headers passed', async () => {
  requests.length = 0;
  const evil = 'a/../admin?x=1#"}, "admin": true, "y": {"';
  const echoed = await measure(
    { url: `${base}/echo/{{args.svc}}?svc={{args.svc}}`, method: 'POST', body: '{"service": "{{args.svc}}"}', headers: [{ key: 'Authorization', value: 'Bearer {{args.token}}' }], jsonPath: '$.echo' },
    { svc: evil, token: 't0k' },
  );
  const req = requests[0];
  assert.equal(req?.method, 'POST');
  assert.equal(req?.url, `/echo/${encodeURIComponent(evil)}?svc=${encodeURIComponent(evil)}`);
  assert.deepEqual(JSON.parse(echoed as string), { service: evil });
  assert.equal(req?.headers['authorization'], 'Bearer t0k');
  assert.equal(req?.headers['content-type'], 'application/json');
  const viaJsonBody = await measure({ url: `${base}/echo`, method: 'PUT', jsonBody: { service: '{{args.svc}}', n: 1 }, jsonPath: '$.echo' }, { svc: evil });
  assert.deepEqual(JSON.parse(viaJsonBody as string), { service: evil, n: 1 });
});
