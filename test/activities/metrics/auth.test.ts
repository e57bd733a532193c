/**
 * Credentials and TLS reach a real Prometheus: basic auth and TLS are enforced by Prometheus itself
 * (`--web.config.file`), bearer tokens and tenant headers by a small gateway in front of it (as
 * Mimir/Cortex/Thanos gateways do). Worker credentials go only to the address they are configured for.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MeasurementError, createPrometheusProvider } from '../../../activities/metrics/prometheus.ts';
import { selfSignedCert, startPrometheus, type PrometheusInstance } from '../../support/prometheus.ts';

const PASSWORD = 's3cret-pw';
// bcrypt of PASSWORD (cost 4), as Prometheus' web config wants it.
const PASSWORD_BCRYPT = '$2b$04$2VOWeqEi1HNa0X3pRX44ReYlo4ulMWH3uPsiYPD155LYwJmlnNlVu';
const never = new AbortController().signal;

let dir: string;
let tlsProm: PrometheusInstance;
let plainProm: PrometheusInstance;
let cert: { cert: string; key: string };

interface Gateway {
  url: string;
  seen: IncomingHttpHeaders[];
  server: Server;
}

/** Accepts only `Authorization: Bearer <token()>` with `X-Scope-OrgID: team-a`, then forwards the query. */
async function gateway(upstream: string, token: () => string): Promise<Gateway> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.headers['authorization'] !== `Bearer ${token()}` || req.headers['x-scope-orgid'] !== 'team-a') {
        res.writeHead(401, { 'Content-Type': 'text/plain' }).end('no org id or bad token\n');
        return;
      }
      void fetch(`${upstream}${req.url}`, { method: req.method ?? 'GET', headers: { 'Content-Type': req.headers['content-type'] ?? '' }, ...(req.method === 'POST' ? { body: Buffer.concat(chunks) } : {}) })
        .then(async (r) => res.writeHead(r.status, { 'Content-Type': 'application/json' }).end(await r.text()))
        .catch(() => res.writeHead(502).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'glidepath-auth-'));
  cert = selfSignedCert(dir);
  const webConfig = ['tls_server_config:', `  cert_file: ${cert.cert}`, `  key_file: ${cert.key}`, 'basic_auth_users:', `  glidepath: '${PASSWORD_BCRYPT}'`, ''].join('\n');
  [tlsProm, plainProm] = await Promise.all([startPrometheus({ targets: [], webConfig }), startPrometheus({ targets: [] })]);
});

after(async () => {
  await Promise.all([tlsProm?.stop(), plainProm?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

test('basic auth and TLS enforced by Prometheus: worker credentials and CA file', async () => {
  assert.match(tlsProm.url, /^https:/);
  const spec = { address: tlsProm.url, query: 'vector(42)' };
  const withCreds = createPrometheusProvider({ servers: [{ address: tlsProm.url, caFile: cert.cert, basicAuth: { username: 'glidepath', password: PASSWORD } }] });
  assert.deepEqual(await withCreds.query(spec, {}, never), [42]);

  const passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, `${PASSWORD}\n`);
  const fromFile = createPrometheusProvider({ servers: [{ address: tlsProm.url, caFile: cert.cert, basicAuth: { username: 'glidepath', passwordFile } }] });
  assert.deepEqual(await fromFile.query(spec, {}, never), [42]);

  const noCreds = createPrometheusProvider({ servers: [{ address: tlsProm.url, caFile: cert.cert }] });
  await assert.rejects(noCreds.query(spec, {}, never), (err: Error) => err instanceof MeasurementError && /answered 401 \(check its credentials\)/.test(err.message));
  const wrong = createPrometheusProvider({ servers: [{ address: tlsProm.url, caFile: cert.cert, basicAuth: { username: 'glidepath', password: 'nope' } }] });
  await assert.rejects(wrong.query(spec, {}, never), /answered 401/);

  // Without the CA the self-signed certificate is refused; `insecure: true` (Argo's field) skips
  // verification, but never with the worker's own credentials: they are not sent to an unverified server.
  const noCa = createPrometheusProvider({ servers: [{ address: tlsProm.url, basicAuth: { username: 'glidepath', password: PASSWORD } }] });
  await assert.rejects(noCa.query(spec, {}, never), (err: Error) => err instanceof MeasurementError && /unreachable.*(self-signed|SELF_SIGNED)/i.test(err.message));
  await assert.rejects(noCa.query({ ...spec, insecure: true }, {}, never), /provider\.prometheus\.insecure: true .* not sent without TLS verification/);
  const basic = Buffer.from(`glidepath:${PASSWORD}`).toString('base64');
  const ownHeader = { ...spec, insecure: true, headers: [{ key: 'Authorization', value: 'Basic {{args.basic}}' }] };
  assert.deepEqual(await createPrometheusProvider({}).query(ownHeader, { basic }, never), [42], "insecure with the spec's own credentials: the author's choice");
});

test('credentials from a secret arg in the spec headers (Argo style)', async () => {
  const provider = createPrometheusProvider({ servers: [{ address: tlsProm.url, caFile: cert.cert }] });
  const spec = { address: tlsProm.url, query: 'vector(1)', headers: [{ key: 'Authorization', value: 'Basic {{args.basic}}' }] };
  const basic = Buffer.from(`glidepath:${PASSWORD}`).toString('base64');
  assert.deepEqual(await provider.query(spec, { basic }, never), [1]);
  // A header-splitting value is refused before any request; the message names the arg, not its value.
  await assert.rejects(provider.query(spec, { basic: `${basic}\r\nX-Evil: 1` }, never), (err: Error) => /arg "basic" holds a control character/.test(err.message) && !err.message.includes(basic));
});

test('bearer token (rotated through its file) and tenant header reach the gateway; other addresses get neither', async () => {
  let token = 'token-1';
  const gw = await gateway(plainProm.url, () => token);
  const other = await gateway(plainProm.url, () => token);
  try {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${token}\n`);
    const provider = createPrometheusProvider({ servers: [{ address: gw.url, bearerTokenFile: tokenFile, headers: { 'X-Scope-OrgID': 'team-a' } }] });
    assert.deepEqual(await provider.query({ address: gw.url, query: 'vector(3)' }, {}, never), [3]);
    token = 'token-2';
    writeFileSync(tokenFile, `${token}\n`);
    assert.deepEqual(await provider.query({ address: gw.url, query: 'vector(4)' }, {}, never), [4]);
    assert.equal(gw.seen.at(-1)?.['authorization'], 'Bearer token-2');

    // Tenant header from the spec instead of the worker (Argo's `headers`).
    const specOnly = createPrometheusProvider({ servers: [{ address: gw.url, bearerTokenFile: tokenFile }] });
    await assert.rejects(specOnly.query({ address: gw.url, query: 'vector(5)' }, {}, never), /answered 401/);
    assert.deepEqual(await specOnly.query({ address: gw.url, query: 'vector(5)', headers: [{ key: 'X-Scope-OrgID', value: '{{args.tenant}}' }] }, { tenant: 'team-a' }, never), [5]);

    // A spec pointing the same provider at another address: no worker credentials are sent there.
    await assert.rejects(provider.query({ address: other.url, query: 'vector(6)' }, {}, never), /answered 401/);
    assert.equal(other.seen.length, 1);
    assert.equal(other.seen[0]?.['authorization'], undefined);
    assert.equal(other.seen[0]?.['x-scope-orgid'], undefined);
  } finally {
    gw.server.close();
    other.server.close();
  }
});
