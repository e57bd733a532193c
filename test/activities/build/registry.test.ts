/**
 * The OCI registry client against the real docker-registry (basic auth) and, for the bearer-token
 * flow and status classes the registry does not produce on its own (403, 503), a small HTTP front on
 * 127.0.0.1 that issues tokens and proxies to the real registry.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { BuildahBuilder, classifyBuildahFailure } from '../../../activities/build/buildah.ts';
import { RegistryClient, credentialsFromDockerConfig, parseChallenge, parseImageRef } from '../../../activities/build/registry.ts';
import { startRegistry, type RegistryInstance } from '../../support/registry.ts';
import { dockerConfig, rejection, scratchContext } from './fixtures.ts';

const PASSWORD = 'pw-registry-test-51e2';
const TOKEN = 'tok-registry-test-0a9d';

describe('image references', () => {
  test('parse registry, repository, tag and digest', () => {
    assert.deepEqual(parseImageRef('127.0.0.1:5000/team/app:v1'), { registry: '127.0.0.1:5000', repository: 'team/app', tag: 'v1', digest: undefined });
    assert.deepEqual(parseImageRef('nginx'), { registry: 'docker.io', repository: 'library/nginx', tag: undefined, digest: undefined });
    const d = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(parseImageRef(`ghcr.io/o/r@${d}`), { registry: 'ghcr.io', repository: 'o/r', tag: undefined, digest: d });
    assert.throws(() => parseImageRef('ghcr.io/o/r@sha256:zz'), (e: unknown) => e instanceof ApplicationFailure && e.type === 'InvalidSpec');
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"'), {
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'reg', scope: 'repository:a/b:pull' },
    });
    assert.throws(() => new RegistryClient('registry.example.com', { insecure: true }), (e: unknown) => e instanceof ApplicationFailure && e.type === 'InvalidSpec');
  });
});

describe('buildah failure classes', () => {
  test('by words and status phrases, never by numbers inside digests', () => {
    const digestish = 'Error: writing blob: sha256:4013a9f0403b5c2d500e77 failed';
    const plain = classifyBuildahFailure('push x', 125, null, digestish);
    assert.ok(!(plain instanceof ApplicationFailure), String(plain));
    const unauth = classifyBuildahFailure('push x', 125, null, 'Error: pushing image: authentication required');
    assert.ok(unauth instanceof ApplicationFailure && unauth.type === 'Unauthorized' && unauth.nonRetryable);
    const denied = classifyBuildahFailure('push x', 125, null, 'requested access to the resource is denied');
    assert.ok(denied instanceof ApplicationFailure && denied.type === 'Forbidden');
    const down = classifyBuildahFailure('push x', 125, null, 'dial tcp 127.0.0.1:5000: connect: connection refused');
    assert.ok(!(down instanceof ApplicationFailure));
    const dockerfile = classifyBuildahFailure('build', 125, null, 'Error: no FROM statement found');
    assert.ok(dockerfile instanceof ApplicationFailure && dockerfile.type === 'InvalidSpec');
    const redacted = classifyBuildahFailure('push x', 125, null, 'Get "https://ci:hunter2@reg.example/v2/": EOF');
    assert.ok(!redacted.message.includes('hunter2'), redacted.message);
  });
});

describe('registry client on a real registry with basic auth, and a bearer-token front', () => {
  let reg: RegistryInstance;
  let front: Server;
  let frontHost: string;
  let digest: string;
  let mode: 'bearer' | 'forbidden' | 'unavailable' = 'bearer';
  const tokenRequests: string[] = [];
  const root = mkdtempSync(join(tmpdir(), 'glidepath-buildah-root-'));

  before(async () => {
    reg = await startRegistry({ users: { ci: PASSWORD } });
    const ctx = scratchContext('registry client\n');
    const authFile = dockerConfig(reg.host, 'ci', PASSWORD);
    ({ digest } = await new BuildahBuilder({ root }).build({ context: ctx, tags: [`${reg.host}/lib/app:v1`], signal: new AbortController().signal, insecure: true, authFile }));
    rmSync(ctx, { recursive: true, force: true });
    // The front: /token checks basic auth and returns a token; /v2/* wants that token and proxies.
    front = createServer((req, res) => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://front');
        if (mode === 'unavailable') return void res.writeHead(503).end();
        if (url.pathname === '/token') {
          tokenRequests.push(`${url.searchParams.get('service')} ${url.searchParams.get('scope')}`);
          const ok = req.headers.authorization === `Basic ${Buffer.from(`ci:${PASSWORD}`).toString('base64')}`;
          if (!ok) return void res.writeHead(401).end();
          return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: TOKEN }));
        }
        if (req.headers.authorization !== `Bearer ${TOKEN}`) {
          res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${frontHost}/token",service="front",scope="repository:lib/app:pull"` });
          return void res.end();
        }
        if (mode === 'forbidden') return void res.writeHead(403).end();
        const up = await fetch(`${reg.url}${url.pathname}`, {
          method: req.method ?? 'GET',
          headers: { accept: String(req.headers.accept ?? '*/*'), authorization: `Basic ${Buffer.from(`ci:${PASSWORD}`).toString('base64')}` },
        });
        const headers: Record<string, string> = {};
        up.headers.forEach((v, k) => (headers[k] = v));
        res.writeHead(up.status, headers).end(Buffer.from(await up.arrayBuffer()));
      })();
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    frontHost = `127.0.0.1:${(front.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((r) => front.close(() => r()));
    await reg.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test('basic auth: a tag resolves to the pushed digest; wrong password → Unauthorized; 404 → NotFound', async () => {
    const creds = credentialsFromDockerConfig(readFileSync(dockerConfig(reg.host, 'ci', PASSWORD), 'utf8'), reg.host);
    const client = new RegistryClient(reg.host, { insecure: true, credentials: creds });
    assert.equal(await client.resolveDigest('lib/app', 'v1'), digest);
    assert.equal(await client.manifestExists('lib/app', digest), true);
    assert.equal(await client.manifestExists('lib/app', 'nope'), false);
    const nf = await rejection(client.resolveDigest('lib/app', 'nope'));
    assert.ok(nf instanceof ApplicationFailure && nf.type === 'NotFound' && nf.nonRetryable, String(nf));
    const wrong = new RegistryClient(reg.host, { insecure: true, credentials: { username: 'ci', password: 'not-it-3311' } });
    const err = await rejection(wrong.resolveDigest('lib/app', 'v1'));
    assert.ok(err instanceof ApplicationFailure && err.type === 'Unauthorized' && err.nonRetryable, String(err));
    assert.ok(err.message.includes(reg.host) && !err.message.includes('not-it-3311'), err.message);
  });

  test('bearer: token fetched from the challenge realm with the credentials, then the request succeeds', async () => {
    mode = 'bearer';
    const client = new RegistryClient(frontHost, { insecure: true, credentials: { username: 'ci', password: PASSWORD } });
    assert.equal(await client.resolveDigest('lib/app', 'v1'), digest);
    assert.deepEqual(tokenRequests, ['front repository:lib/app:pull']);
    const anon = new RegistryClient(frontHost, { insecure: true });
    const err = await rejection(anon.resolveDigest('lib/app', 'v1'));
    assert.ok(err instanceof ApplicationFailure && err.type === 'Unauthorized', String(err));
    assert.match(err.message, /token endpoint/);
  });

  test('403 → Forbidden (non-retryable); 503 → retryable', async () => {
    const client = new RegistryClient(frontHost, { insecure: true, credentials: { username: 'ci', password: PASSWORD } });
    mode = 'forbidden';
    const f = await rejection(client.resolveDigest('lib/app', 'v1'));
    assert.ok(f instanceof ApplicationFailure && f.type === 'Forbidden' && f.nonRetryable, String(f));
    assert.ok(f.message.includes(frontHost));
    mode = 'unavailable';
    const u = await rejection(client.resolveDigest('lib/app', 'v1'));
    assert.ok(u instanceof Error && !(u instanceof ApplicationFailure), String(u));
    assert.match(u.message, /HTTP 503/);
    mode = 'bearer';
  });
});
