// The codec server over real HTTP on 127.0.0.1: Temporal's remote codec protocol (proto3 JSON),
// CORS for the Web UI's origin only, X-Namespace, errors, and the CLI's graceful shutdown.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Server } from 'node:http';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import proto from '@temporalio/proto';
import { bearerMatches, closeGracefully, createCodecServer, normalizeOrigin } from '../../starters/codec-server.ts';
import { loadCodecFromEnv, METADATA_KEY_ID } from '../../workers/codec.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const Payloads = proto.temporal.api.common.v1.Payloads;
const UI = 'http://127.0.0.1:8233';
const OTHER = 'http://evil.example:8233';
const ENV = { GLIDEPATH_CODEC_KEYS: `k1:${randomBytes(32).toString('base64')}` };
const codec = loadCodecFromEnv(ENV)!;
const SECRET = { token: 'codec-server-secret-42' };
const TOKEN = 'codec-bearer-token-0b7e4c1d';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request with the test's bearer token unless `headers` sets Authorization (`''`: none at all). */
function call(base: string, method: string, urlPath: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  const all: Record<string, string> = { Authorization: `Bearer ${TOKEN}`, ...headers };
  if (all.Authorization === '') delete all.Authorization;
  return new Promise((resolve, reject) => {
    const req = request(new URL(urlPath, base), { method, headers: all }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The request body as protobufjs (not our code) serialises `Payloads` to proto3 JSON. */
function protoJson(payloads: Payload[]): string {
  return JSON.stringify(Payloads.toObject(Payloads.create({ payloads }), { bytes: String }));
}

/** Parses a response with protobufjs's proto3-JSON reader. */
function fromProtoJson(body: string): Payload[] {
  return Payloads.fromObject(JSON.parse(body)).payloads as Payload[];
}

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('codec server (any namespace)', () => {
  let server: Server;
  let base: string;
  const errors: { status: number; message: string }[] = [];
  before(async () => {
    server = createCodecServer({ codec, auth: { tokens: ['another-token-1234567890', TOKEN] }, uiOrigins: [UI, 'http://localhost:8233/'], onError: (e) => errors.push(e) });
    base = await listen(server);
  });
  after(async () => {
    await closeGracefully(server);
  });

  it('decode: proto3-JSON payloads in, plaintext payloads out (as protobufjs reads them)', async () => {
    const encrypted = await codec.encode([defaultPayloadConverter.toPayload(SECRET), defaultPayloadConverter.toPayload(null)]);
    const body = protoJson(encrypted);
    assert.match(body, /"encoding":"YmluYXJ5L2VuY3J5cHRlZA=="/, 'metadata values travel as base64');
    const reply = await call(base, 'POST', '/decode', { 'Content-Type': 'application/json', 'X-Namespace': 'default' }, body);
    assert.equal(reply.status, 200, reply.body);
    assert.match(String(reply.headers['content-type']), /^application\/json/);
    const decoded = fromProtoJson(reply.body);
    assert.deepEqual(defaultPayloadConverter.fromPayload(decoded[0]!), SECRET);
    assert.equal(defaultPayloadConverter.fromPayload(decoded[1]!), null);
  });

  it('encode: plaintext in, ciphertext with the current key id out', async () => {
    const reply = await call(base, 'POST', '/encode', { 'Content-Type': 'application/json' }, protoJson([defaultPayloadConverter.toPayload(SECRET)]));
    assert.equal(reply.status, 200, reply.body);
    assert.ok(!reply.body.includes('codec-server-secret'));
    const [encrypted] = fromProtoJson(reply.body);
    assert.equal(new TextDecoder().decode(encrypted!.metadata![METADATA_KEY_ID]), 'k1');
    assert.deepEqual(defaultPayloadConverter.fromPayload((await codec.decode([encrypted!]))[0]!), SECRET);
  });

  it('only the last path segment selects the endpoint (/{namespace}/decode, deeper mounts)', async () => {
    const body = protoJson(await codec.encode([defaultPayloadConverter.toPayload(1)]));
    for (const p of ['/default/decode', '/codec/default/decode', '/decode?x=1']) {
      assert.equal((await call(base, 'POST', p, {}, body)).status, 200, p);
    }
    assert.equal((await call(base, 'POST', '/decoder', {}, body)).status, 404);
    assert.equal((await call(base, 'POST', '/', {}, body)).status, 404);
    const get = await call(base, 'GET', '/decode');
    assert.equal(get.status, 405);
    assert.equal(get.headers.allow, 'POST, OPTIONS');
  });

  it('an empty payload list is answered with an empty list', async () => {
    const reply = await call(base, 'POST', '/decode', {}, '{"payloads":[]}');
    assert.equal(reply.status, 200);
    assert.deepEqual(JSON.parse(reply.body), { payloads: [] });
  });

  it('CORS preflight: the UI origin gets its own origin back (never *), with X-Namespace allowed', async () => {
    for (const origin of [UI, 'http://localhost:8233']) {
      const reply = await call(base, 'OPTIONS', '/decode', {
        Origin: origin,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type,x-namespace',
      });
      assert.equal(reply.status, 204);
      assert.equal(reply.headers['access-control-allow-origin'], origin);
      assert.equal(reply.headers['access-control-allow-credentials'], 'true');
      assert.match(String(reply.headers['access-control-allow-methods']), /\bPOST\b/);
      const allowed = String(reply.headers['access-control-allow-headers']).toLowerCase();
      for (const h of ['content-type', 'x-namespace', 'authorization']) assert.ok(allowed.includes(h), h);
      assert.match(String(reply.headers.vary), /Origin/);
    }
  });

  it('CORS: another origin gets 403 and no CORS headers, for preflight and POST alike', async () => {
    const before = errors.length;
    const preflight = await call(base, 'OPTIONS', '/decode', { Origin: OTHER, 'Access-Control-Request-Method': 'POST' });
    assert.equal(preflight.status, 403);
    const body = protoJson(await codec.encode([defaultPayloadConverter.toPayload(SECRET)]));
    const post = await call(base, 'POST', '/decode', { Origin: OTHER, 'X-Namespace': 'default' }, body);
    assert.equal(post.status, 403);
    assert.ok(!post.body.includes('codec-server-secret'), 'nothing decoded for a refused origin');
    for (const reply of [preflight, post]) {
      for (const h of Object.keys(reply.headers)) assert.ok(!h.startsWith('access-control-'), `unexpected ${h}`);
    }
    assert.equal(errors.length, before + 2);
    // "null" (sandboxed iframes, file://) is an origin like any other: refused.
    assert.equal((await call(base, 'POST', '/decode', { Origin: 'null' }, body)).status, 403);
  });

  it('POST from the UI origin carries CORS headers; a request without Origin (CLI, curl) carries none', async () => {
    const body = protoJson(await codec.encode([defaultPayloadConverter.toPayload(SECRET)]));
    const fromUi = await call(base, 'POST', '/decode', { Origin: UI, 'X-Namespace': 'default' }, body);
    assert.equal(fromUi.status, 200);
    assert.equal(fromUi.headers['access-control-allow-origin'], UI);
    const fromCli = await call(base, 'POST', '/decode', {}, body);
    assert.equal(fromCli.status, 200);
    assert.equal(fromCli.headers['access-control-allow-origin'], undefined);
  });

  it('bad requests answer 400 with a reason: invalid JSON, wrong shape, bad base64, tampered or unknown-key payloads', async () => {
    const cases: [string, RegExp][] = [
      ['{"payloads": [', /invalid JSON/],
      ['[]', /"payloads" array/],
      ['{"payloads": [{"data": "%%%"}]}', /payloads\[0\]\.data is not a base64 string/],
      ['{"payloads": [{"metadata": {"encoding": 5}}]}', /payloads\[0\]\.metadata\.encoding is not a base64 string/],
    ];
    const [good] = await codec.encode([defaultPayloadConverter.toPayload(SECRET)]);
    const tampered = new Uint8Array(good!.data!);
    tampered[20]! ^= 1;
    cases.push([protoJson([{ ...good!, data: tampered }]), /decode failed: .*failed AES-256-GCM authentication/]);
    const other = loadCodecFromEnv({ GLIDEPATH_CODEC_KEYS: `k7:${randomBytes(32).toString('base64')}` })!;
    cases.push([protoJson(await other.encode([defaultPayloadConverter.toPayload(1)])), /key id "k7", which is not among the keys/]);
    for (const [body, pattern] of cases) {
      const reply = await call(base, 'POST', '/decode', { 'Content-Type': 'application/json' }, body);
      assert.equal(reply.status, 400, body);
      assert.match((JSON.parse(reply.body) as { error: string }).error, pattern);
    }
  });

  it('refuses wildcard and malformed UI origins', () => {
    assert.throws(() => normalizeOrigin('*'), /wildcards are not accepted/);
    assert.throws(() => normalizeOrigin('null'), /wildcards are not accepted/);
    assert.throws(() => normalizeOrigin('127.0.0.1:8233'), /http or https|not a URL/);
    assert.equal(normalizeOrigin('http://LOCALHOST:8233/ui/'), 'http://localhost:8233');
  });
});

describe('codec server authentication', () => {
  let server: Server;
  let base: string;
  let body: string;
  before(async () => {
    server = createCodecServer({ codec, auth: { tokens: [TOKEN] }, uiOrigins: [UI] });
    base = await listen(server);
    body = protoJson(await codec.encode([defaultPayloadConverter.toPayload(SECRET)]));
  });
  after(async () => {
    await closeGracefully(server);
  });

  it('decodes nothing without the bearer token: none, wrong, a prefix, another scheme → 401', async () => {
    for (const authorization of ['', 'Bearer wrong-token-000000000', `Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, TOKEN]) {
      for (const path of ['/decode', '/encode', '/default/decode']) {
        const reply = await call(base, 'POST', path, { 'X-Namespace': 'default', Authorization: authorization }, body);
        assert.equal(reply.status, 401, `${authorization} ${path}`);
        assert.equal(reply.headers['www-authenticate'], 'Bearer realm="glidepath-codec"');
        assert.ok(!reply.body.includes('codec-server-secret'));
      }
    }
    const ok = await call(base, 'POST', '/decode', { 'X-Namespace': 'default', Authorization: `bearer ${TOKEN}` }, body);
    assert.equal(ok.status, 200);
    assert.deepEqual(defaultPayloadConverter.fromPayload(fromProtoJson(ok.body)[0]!), SECRET);
  });

  it('a browser preflight needs no token (browsers send none); the POST that follows does', async () => {
    const pre = await call(base, 'OPTIONS', '/decode', { Origin: UI, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type,x-namespace', Authorization: '' });
    assert.equal(pre.status, 204);
    assert.match(String(pre.headers['access-control-allow-headers']), /Authorization/);
    const post = await call(base, 'POST', '/decode', { Origin: UI, Authorization: '' }, body);
    assert.equal(post.status, 401);
    assert.equal(post.headers['access-control-allow-origin'], UI, 'the UI may read why it was refused');
  });

  it('bearerMatches compares every token and accepts only an exact one', () => {
    assert.equal(bearerMatches(`Bearer ${TOKEN}`, ['x'.repeat(20), TOKEN]), true);
    assert.equal(bearerMatches(`Bearer ${TOKEN}`, []), false);
    assert.equal(bearerMatches(undefined, [TOKEN]), false);
    assert.equal(bearerMatches('Bearer ', ['']), false);
  });
});

describe('codec server restricted to namespace "default"', () => {
  let server: Server;
  let base: string;
  let body: string;
  before(async () => {
    server = createCodecServer({ codec, auth: { tokens: [TOKEN] }, uiOrigins: [UI], namespaces: ['default'] });
    base = await listen(server);
    body = protoJson(await codec.encode([defaultPayloadConverter.toPayload(SECRET)]));
  });
  after(async () => {
    await closeGracefully(server);
  });

  it('serves X-Namespace: default, and /default/decode without the header', async () => {
    assert.equal((await call(base, 'POST', '/decode', { 'X-Namespace': 'default' }, body)).status, 200);
    assert.equal((await call(base, 'POST', '/default/decode', {}, body)).status, 200);
  });

  it('refuses other namespaces, a header contradicting the path, and requests naming none', async () => {
    const other = await call(base, 'POST', '/decode', { 'X-Namespace': 'payments', Origin: UI }, body);
    assert.equal(other.status, 403);
    assert.match(other.body, /namespace \\"payments\\" is not served here/);
    assert.equal(other.headers['access-control-allow-origin'], UI, 'the UI may read why it was refused');
    const mismatch = await call(base, 'POST', '/default/decode', { 'X-Namespace': 'payments' }, body);
    assert.equal(mismatch.status, 400, 'a header naming another namespace than the path is refused, not trusted');
    assert.match(mismatch.body, /X-Namespace \\"payments\\" and the path's namespace \\"default\\" differ/);
    const none = await call(base, 'POST', '/decode', {}, body);
    assert.equal(none.status, 403);
    assert.match(none.body, /send X-Namespace/);
  });
});

describe('glidepath codec-server (CLI process)', () => {
  const cli = path.join(here, 'fixtures/codec-cli.ts');
  const tmp = mkdtempSync(join(tmpdir(), 'glidepath-codec-cli-'));
  const tokenFile = join(tmp, 'tokens');
  writeFileSync(tokenFile, `# codec clients\n${TOKEN}\n`, { mode: 0o600 });

  function start(args: string[], env: Record<string, string>) {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', cli, 'codec-server', ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const listening = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "listening" line within 15 s; stderr: ${stderr}`)), 15_000);
      child.stdout.on('data', () => {
        const m = /listening on (http:\/\/\S+)/.exec(stdout);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`exited ${code} before listening; stderr: ${stderr}`));
      });
    });
    listening.catch(() => {}); // awaited by the tests that expect it; others expect an early exit
    return { child, exited, listening, output: () => ({ stdout, stderr }) };
  }

  it('serves with the keys from the environment, then on SIGTERM finishes the in-flight request and exits 0', async () => {
    const proc = start(['--port', '0', '--ui-origin', UI, '--auth-token-file', tokenFile], ENV);
    const base = await proc.listening;
    assert.match(proc.output().stdout, /\(1 bearer token\(s\); key ids k1; encrypting with k1; CORS for http:\/\/127\.0\.0\.1:8233/);
    const refused = await call(base, 'POST', '/decode', { Authorization: '' }, protoJson(await codec.encode([defaultPayloadConverter.toPayload(SECRET)])));
    assert.equal(refused.status, 401);
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);

    // An in-flight request: headers and half the body sent, then SIGTERM, then the rest.
    const body = protoJson(await codec.encode([defaultPayloadConverter.toPayload(SECRET)]));
    const reply = new Promise<Reply>((resolve, reject) => {
      const req = request(new URL('/decode', base), { method: 'POST', headers: { 'Content-Length': Buffer.byteLength(body), Authorization: `Bearer ${TOKEN}` } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      });
      req.on('error', reject);
      req.write(body.slice(0, 10));
      setTimeout(() => {
        proc.child.kill('SIGTERM');
        setTimeout(() => req.end(body.slice(10)), 300);
      }, 200);
    });
    const done = await reply;
    assert.equal(done.status, 200);
    assert.deepEqual(defaultPayloadConverter.fromPayload(fromProtoJson(done.body)[0]!), SECRET);
    assert.equal(await proc.exited, 0, proc.output().stderr);
    assert.match(proc.output().stdout, /SIGTERM, shutting down\ncodec server stopped\n/);
  });

  it('without a token file it refuses to start; --no-auth only on loopback', async () => {
    const none = start(['--port', '0'], ENV);
    assert.equal(await none.exited, 2);
    assert.match(none.output().stderr, /no auth tokens: pass --auth-token-file \(or set GLIDEPATH_CODEC_AUTH_TOKEN_FILE\)/);
    const open = start(['--port', '0', '--host', '0.0.0.0', '--no-auth'], ENV);
    assert.equal(await open.exited, 2);
    assert.match(open.output().stderr, /--no-auth is only accepted with a loopback --host, not 0\.0\.0\.0/);
    const weak = join(tmp, 'weak');
    writeFileSync(weak, 'short\n');
    const short = start(['--port', '0', '--auth-token-file', weak], ENV);
    assert.equal(await short.exited, 2);
    assert.match(short.output().stderr, /every token needs at least 16 characters/);
    const local = start(['--port', '0', '--no-auth'], ENV);
    const base = await local.listening;
    assert.match(local.output().stdout, /NO authentication/);
    const body = protoJson(await codec.encode([defaultPayloadConverter.toPayload(SECRET)]));
    assert.equal((await call(base, 'POST', '/decode', { Authorization: '' }, body)).status, 200);
    local.child.kill('SIGTERM');
    assert.equal(await local.exited, 0);
  });

  it('without keys it refuses to start, naming the variables', async () => {
    const proc = start(['--port', '0'], {});
    assert.equal(await proc.exited, 2);
    assert.match(proc.output().stderr, /no encryption keys: set GLIDEPATH_CODEC_KEYS or GLIDEPATH_CODEC_KEY_FILE/);
  });

  it('a malformed key or a wildcard origin is refused at start', async () => {
    const short = start(['--port', '0'], { GLIDEPATH_CODEC_KEYS: `k1:${randomBytes(8).toString('base64')}` });
    assert.equal(await short.exited, 2);
    assert.match(short.output().stderr, /GLIDEPATH_CODEC_KEYS: key "k1" is 8 bytes/);
    const wildcard = start(['--port', '0', '--ui-origin', '*'], ENV);
    assert.equal(await wildcard.exited, 2);
    assert.match(wildcard.output().stderr, /wildcards are not accepted/);
  });
});
