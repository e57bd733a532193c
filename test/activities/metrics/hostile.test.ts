/**
 * The metric providers against hostile specs, with real loopback HTTP(S) servers only: the web
 * provider's egress policy (loopback refused unless allowed, link-local and metadata addresses
 * refused, GLIDEPATH_WEB_ALLOW), bounded recorded bodies, credentials redacted from messages, and the
 * worker's Prometheus credentials never sent with TLS verification off.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttp, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createPrometheusProvider } from '../../../activities/metrics/prometheus.ts';
import { createWebProvider } from '../../../activities/metrics/web.ts';
import type { MetricSpec, PrometheusProviderSpec, WebProviderSpec } from '../../../model/types.ts';
import { selfSignedCert } from '../../support/prometheus.ts';

const never = new AbortController().signal;
const LOOPBACK = { allow: ['127.0.0.0/8', '::1'] };
const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
let dir: string;
let http: Server;
let https: Server;
let httpPort: number;
let httpsPort: number;

function answer(req: IncomingMessage, res: ServerResponse): void {
  seen.push({ url: req.url ?? '', headers: req.headers });
  req.resume();
  req.on('end', () => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/big') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ rows: Array.from({ length: 5000 }, (_, i) => ({ i, secretish: `row-${i}` })) }));
    } else if (path === '/echo-url') {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`failed for ${req.url}`);
    } else if (path?.startsWith('/api/v1/')) {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end('prometheus down');
    } else {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ok: 1 }));
    }
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'glidepath-hostile-'));
  const cert = selfSignedCert(dir);
  http = createHttp(answer);
  https = createHttps({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, answer);
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  httpPort = (http.address() as AddressInfo).port;
  httpsPort = (https.address() as AddressInfo).port;
});

after(() => {
  for (const s of [http, https]) {
    s.closeAllConnections();
    s.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

const metric = (provider: MetricSpec['provider']): MetricSpec => ({ name: 'm', failureLimit: 0, inconclusiveLimit: 0, consecutiveErrorLimit: 0, dryRun: false, provider });
const web = (spec: WebProviderSpec, egress?: { allow?: string[] }) => createWebProvider(egress ? { egress } : {}).measure(metric({ web: spec }), { args: {}, signal: never });

test('web: loopback is refused by default, by literal address and by name; nothing is sent', async () => {
  seen.length = 0;
  for (const url of [`http://127.0.0.1:${httpPort}/ok`, `http://localhost:${httpPort}/ok`, `http://[::ffff:127.0.0.1]:${httpPort}/ok`]) {
    await assert.rejects(
      web({ url, method: 'PUT', jsonBody: { a: 1 }, headers: [{ key: 'X-Token', value: 'spec-header' }] }, {}),
      (err: Error) => err instanceof ApplicationFailure && err.type === 'Forbidden' && err.nonRetryable && /loopback, link-local or metadata address: refused by the worker's egress policy \(allow it in GLIDEPATH_WEB_ALLOW\)/.test(err.message),
      url,
    );
  }
  assert.equal(seen.length, 0, 'no request reached the server');
});

test('web: GLIDEPATH_WEB_ALLOW lets loopback through, and restricts everything else to the list', async () => {
  seen.length = 0;
  assert.deepEqual(await web({ url: `http://127.0.0.1:${httpPort}/ok`, jsonPath: '$.ok' }, LOOPBACK), 1);
  assert.deepEqual(await web({ url: `http://localhost:${httpPort}/ok`, jsonPath: '$.ok' }, { allow: ['localhost'] }), 1);
  assert.equal(seen.length, 2);
  await assert.rejects(web({ url: `http://127.0.0.1:${httpPort}/ok` }, { allow: ['metrics.internal', '10.0.0.0/8'] }), /refused by the worker's egress policy/);
  assert.equal(seen.length, 2);
  const { Egress } = await import('../../../activities/metrics/egress.ts');
  const listed = new Egress({ allow: ['metrics.internal', '10.0.0.0/8'] });
  assert.equal(listed.refusal('metrics.internal', '192.168.1.5'), undefined);
  assert.equal(listed.refusal('other', '10.1.2.3'), undefined);
  assert.match(listed.refusal('other.example', '192.168.1.5') ?? '', /other\.example \(192\.168\.1\.5\) is not in the worker's GLIDEPATH_WEB_ALLOW/);
});

test('egress policy: link-local and metadata addresses refused (judged without sending anything)', async () => {
  const { Egress, egressPolicyFromEnv } = await import('../../../activities/metrics/egress.ts');
  const open = new Egress({});
  for (const [host, address] of [['metadata.google.internal', '169.254.169.254'], ['x', '::ffff:169.254.169.254'], ['x', 'fe80::1'], ['x', 'fd00:ec2::254'], ['x', '100.100.100.200'], ['x', '0.0.0.0'], ['x', '::1']]) {
    assert.match(open.refusal(host as string, address as string) ?? 'allowed', /refused by the worker's egress policy/, address);
  }
  assert.equal(open.refusal('prometheus.monitoring.svc', '10.96.0.10'), undefined, 'cluster-internal addresses are allowed by default');
  assert.equal(new Egress({ allow: ['169.254.169.254/32'] }).refusal('m', '169.254.169.254'), undefined, 'an explicit entry lifts the refusal');
  assert.throws(() => new Egress({}).checkLiteral(new URL('http://169.254.169.254/latest/meta-data/')), /refused/);
  assert.deepEqual(egressPolicyFromEnv({ GLIDEPATH_WEB_ALLOW: ' 127.0.0.0/8, metrics.internal ' }), { allow: ['127.0.0.0/8', 'metrics.internal'] });
  assert.throws(() => egressPolicyFromEnv({ GLIDEPATH_WEB_ALLOW: '10.0.0.0/99' }), /invalid prefix length/);
  assert.throws(() => egressPolicyFromEnv({ GLIDEPATH_WEB_ALLOW: 'http://x/' }), /neither a host name nor a CIDR/);
});

test('web: a whole JSON body (no jsonPath) is recorded bounded to 4 KiB with a marker', async () => {
  const value = await web({ url: `http://127.0.0.1:${httpPort}/big` }, LOOPBACK);
  const size = Buffer.byteLength(String(value));
  console.log(`recorded value of a ${JSON.stringify({ rows: Array.from({ length: 5000 }, (_, i) => ({ i, secretish: `row-${i}` })) }).length}-byte answer: ${size} bytes`);
  assert.equal(typeof value, 'string');
  assert.ok(size < 4096 + 100, `${size} bytes`);
  assert.match(value as string, /… \(truncated, \d+ bytes\)$/);
  assert.deepEqual(await web({ url: `http://127.0.0.1:${httpPort}/ok` }, LOOPBACK), { ok: 1 }, 'small bodies are recorded as they are');
});

test('credentials in URLs are redacted from web and prometheus messages', async () => {
  const secret = 'S3cr3t-in-url';
  await assert.rejects(web({ url: `http://127.0.0.1:${httpPort}/echo-url?token=${secret}&q=1`, jsonPath: '$.a' }, LOOPBACK), (err: Error) => {
    assert.match(err.message, /answered 500: failed for \/echo-url\?token=\*\*\*&q=1/);
    assert.doesNotMatch(err.message, new RegExp(secret));
    return true;
  });
  const prom = createPrometheusProvider({});
  const spec = (address: string): PrometheusProviderSpec => ({ address, query: 'up' });
  for (const address of [`http://admin:${secret}@127.0.0.1:${httpPort}`, `http://admin:${secret}@127.0.0.1:1`, `http://127.0.0.1:${httpPort}/prom?access_token=${secret}`]) {
    await assert.rejects(prom.query(spec(address), {}, never), (err: Error) => {
      assert.doesNotMatch(err.message, new RegExp(secret), err.message);
      assert.match(err.message, /prometheus .*127\.0\.0\.1/);
      return true;
    }, address);
  }
});

test('prometheus: insecure: true never carries the worker credentials to an unverified server', async () => {
  seen.length = 0;
  const address = `https://127.0.0.1:${httpsPort}`;
  const prom = createPrometheusProvider({ servers: [{ address, bearerToken: 'worker-token-9f2c' }] });
  await assert.rejects(prom.query({ address, query: 'up', insecure: true }, {}, never), (err: Error) => {
    assert.ok(err instanceof ApplicationFailure && err.type === 'InvalidSpec' && err.nonRetryable, String(err));
    assert.match(err.message, /provider\.prometheus\.insecure: true .* not sent without TLS verification/);
    return true;
  });
  assert.deepEqual(seen.map((s) => s.headers.authorization), [], 'nothing reached the server');
  // Without worker credentials, insecure still works (the spec's own headers are the author's choice).
  await assert.rejects(createPrometheusProvider({}).query({ address, query: 'up', insecure: true }, {}, never), /answered 500/);
  assert.ok(seen.length >= 1);
  assert.deepEqual(seen.map((s) => s.headers.authorization), seen.map(() => undefined));
});
