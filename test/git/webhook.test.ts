/**
 * The Git webhook's HTTP boundary (starters/source-webhook.ts): GitHub's X-Hub-Signature-256 over the
 * raw body is verified before anything else; a missing, forged or malformed signature answers 401 and
 * wakes nothing; a signed push to a branch wakes that repository's sources; a ping, a tag push, another
 * event, a wrong path or method are answered without waking. (The e2e sends the wake to real sources.)
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createWebhookServer, parsePush, signBody, signatureValid, type PushEvent } from '../../starters/source-webhook.ts';

const SECRET = 'a-webhook-secret-of-some-length';
const wakes: PushEvent[] = [];
const server = createWebhookServer({ secret: SECRET, wake: async (p) => (wakes.push(p), ['gitsource:x']) });
let url: string;

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

const push = JSON.stringify({ ref: 'refs/heads/main', after: 'a'.repeat(40), repository: { clone_url: 'http://127.0.0.1:1/app.git', html_url: 'http://127.0.0.1:1/app' } });

async function post(body: string, headers: Record<string, string>, path = '/webhook', method = 'POST'): Promise<number> {
  const res = await fetch(`${url}${path}`, { method, headers: { 'Content-Type': 'application/json', ...headers }, ...(method === 'POST' ? { body } : {}) });
  await res.text();
  return res.status;
}

test("signatureValid: GitHub's form only, over the exact bytes", () => {
  const body = Buffer.from(push);
  const hex = createHmac('sha256', SECRET).update(body).digest('hex');
  assert.equal(signatureValid(SECRET, body, `sha256=${hex}`), true);
  assert.equal(signatureValid(SECRET, body, `sha256=${hex.toUpperCase()}`), true, 'hex case does not matter');
  assert.equal(signatureValid(SECRET, body, signBody(SECRET, body)), true);
  assert.equal(signatureValid(SECRET, Buffer.from(`${push} `), `sha256=${hex}`), false, 'one byte more');
  assert.equal(signatureValid('another-secret-of-some-length', body, `sha256=${hex}`), false);
  assert.equal(signatureValid(SECRET, body, hex), false, 'without the sha256= prefix');
  assert.equal(signatureValid(SECRET, body, `sha1=${hex}`), false);
  assert.equal(signatureValid(SECRET, body, `sha256=${hex.slice(0, 63)}`), false, 'short');
  assert.equal(signatureValid(SECRET, body, undefined), false);
  assert.equal(signatureValid(SECRET, body, `sha256=${'0'.repeat(64)}`), false);
});

test('a missing or forged signature is refused with 401 and wakes nothing', async () => {
  const before = wakes.length;
  assert.equal(await post(push, { 'X-GitHub-Event': 'push' }), 401);
  assert.equal(await post(push, { 'X-GitHub-Event': 'push', 'X-Hub-Signature-256': signBody('not-the-secret-at-all!', push) }), 401);
  assert.equal(await post(push, { 'X-GitHub-Event': 'push', 'X-Hub-Signature-256': signBody(SECRET, `${push}\n`) }), 401, 'signed over other bytes');
  assert.equal(await post('not json', { 'X-GitHub-Event': 'push', 'X-Hub-Signature-256': 'sha256=zz' }), 401, 'refused before the body is parsed');
  assert.equal(wakes.length, before);
});

test('a signed push to a branch wakes the sources of its repository and branch', async () => {
  const before = wakes.length;
  assert.equal(await post(push, { 'X-GitHub-Event': 'push', 'X-Hub-Signature-256': signBody(SECRET, push) }), 202);
  assert.equal(wakes.length, before + 1);
  assert.deepEqual(wakes.at(-1), { repositories: ['http://127.0.0.1:1/app'], branch: 'main', commit: 'a'.repeat(40) });
});

test('signed but not a branch push: ping 200, tag push and other events 202 without a wake; bad JSON 400; wrong path 404; GET 405', async () => {
  const before = wakes.length;
  const signed = (body: string, event: string) => ({ 'X-GitHub-Event': event, 'X-Hub-Signature-256': signBody(SECRET, body) });
  assert.equal(await post('{"zen":"x"}', signed('{"zen":"x"}', 'ping')), 200);
  const tag = push.replace('refs/heads/main', 'refs/tags/v1');
  assert.equal(await post(tag, signed(tag, 'push')), 202);
  assert.equal(await post(push, signed(push, 'issues')), 202);
  assert.equal(await post('not json', signed('not json', 'push')), 400);
  assert.equal(await post(push, signed(push, 'push'), '/other'), 404);
  assert.equal(await post('', {}, '/webhook', 'GET'), 405);
  assert.equal(wakes.length, before);
  assert.equal(parsePush(Buffer.from(tag)), undefined);
  assert.throws(() => parsePush(Buffer.from('{"ref":"refs/heads/main","repository":{"clone_url":"ssh://x"}}')), /repository.clone_url: required/);
});
