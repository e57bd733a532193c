/**
 * A web metric whose whole URL is one arg (Argo's `url: "{{args.secret-url}}"` with the URL in a
 * Secret): lint accepts it, the provider checks the URL after substitution, and no message carries
 * the URL or any part of it. Against a real local HTTP server.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MeasurementError } from '../../../activities/metrics/prometheus.ts';
import { createWebProvider } from '../../../activities/metrics/web.ts';
import type { TemplateError} from '../../../model/template.ts';
import { renderUrl, templateProblems } from '../../../model/template.ts';
import type { SpecError } from '../../../model/normalize.ts';
import { normalize } from '../../../model/normalize.ts';
import type { MetricSpec, WebProviderSpec } from '../../../model/types.ts';

let server: Server;
let base: string;
let closedPort: number;
const loopback = createWebProvider({ egress: { allow: ['127.0.0.0/8'] } });
const defaults = createWebProvider({ egress: { allow: [] } });
const never = new AbortController().signal;

before(async () => {
  server = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: 'It worked!' })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const metric = (web: WebProviderSpec): MetricSpec => ({ name: 'webmetric', failureLimit: 0, inconclusiveLimit: 0, consecutiveErrorLimit: 0, dryRun: false, provider: { web } });
const secretUrl = { url: '{{args.secret-url}}', jsonPath: '{$.message}' };

test('lint accepts a URL that is one arg, and still refuses an arg in the host of a longer URL', () => {
  assert.deepEqual(templateProblems('url', '{{args.secret-url}}'), []);
  assert.deepEqual(templateProblems('url', ' {{ args.secret-url }} '), []);
  assert.match(templateProblems('url', 'http://{{args.host}}/x').join(), /scheme or host/);
  const template = { apiVersion: 'argoproj.io/v1alpha1', kind: 'AnalysisTemplate', metadata: { name: 'analysis-secret' }, spec: { args: [{ name: 'secret-url', valueFrom: { secretKeyRef: { name: 'example-secret', key: 'secretUrl' } } }], metrics: [{ name: 'webmetric', successCondition: "result == 'It worked!'", provider: { web: secretUrl } }] } };
  const release = { apiVersion: 'glidepath.dev/v1alpha1', kind: 'Release', metadata: { name: 'web' }, spec: { workloadRef: { kind: 'Deployment', name: 'web' }, image: 'example/web:2', strategy: { canary: { steps: [{ analysis: { templates: [{ templateName: 'analysis-secret' }] } }] } } } };
  const plan = normalize([{ source: 't.yaml', doc: template }, { source: 'r.yaml', doc: release }]);
  assert.equal(plan.strategy.type, 'canary');
  const broken = { ...template, spec: { ...template.spec, metrics: [{ name: 'webmetric', provider: { web: { url: 'ftp://{{args.secret-url}}' } } }] } };
  assert.throws(() => normalize([{ source: 't.yaml', doc: broken }, { source: 'r.yaml', doc: release }]), (err: SpecError) => err.problems.some((p) => p.path === 'spec.metrics[0].provider.web.url'));
});

test('the arg\'s value is the URL: measured after substitution, not percent-encoded', async () => {
  assert.equal(renderUrl('{{args.u}}', { u: `${base}/api/check?x=1&y=2` }), `${base}/api/check?x=1&y=2`);
  assert.equal(await loopback.measure(metric(secretUrl), { args: { 'secret-url': `${base}/example.json?token=s3cr3t` }, signal: never }), 'It worked!');
});

test('a value that is not an http(s) URL, a refused host and an unreachable one fail without showing the URL', async () => {
  const secret = 's3cr3t-token-value';
  assert.throws(() => renderUrl('{{args.u}}', { u: `file:///etc/${secret}` }), (err: TemplateError) => /arg "u" is the whole URL but does not hold an http\(s\) URL/.test(err.message) && !err.message.includes(secret));
  const cases: [WebProviderSpec, string, typeof defaults, (err: Error) => boolean][] = [
    [secretUrl, `not a url ${secret}`, loopback, (e) => e instanceof ApplicationFailure && e.nonRetryable === true],
    [secretUrl, `${base}/x?token=${secret}`, defaults, (e) => e instanceof ApplicationFailure && /refused by the worker's egress policy/.test(e.message)],
    [secretUrl, `http://127.0.0.1:${closedPort}/x?token=${secret}`, loopback, (e) => e instanceof MeasurementError && /the URL in \{\{args\.secret-url\}\} unreachable/.test(e.message)],
  ];
  for (const [web, value, provider, expected] of cases) {
    await assert.rejects(provider.measure(metric(web), { args: { 'secret-url': value }, signal: never }), (err: Error) => {
      assert.ok(expected(err), err.message);
      assert.ok(!err.message.includes(secret) && !err.message.includes('127.0.0.1'), `the message shows the URL: ${err.message}`);
      return true;
    });
  }
});
