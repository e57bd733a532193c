/**
 * The delivery and webhook activities against a real HTTP receiver on loopback: format, signature,
 * Idempotency-Key, Secret-held URLs, how answers are classified, and the worker's egress policy
 * (loopback refused unless allowed, as for the web metric provider).
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createNotifyActivities } from '../../activities/notify/index.ts';
import type { NotificationEvent, NotificationSpec } from '../../model/notifications.ts';

let server: Server;
let base = '';
const seen: { path: string; headers: Record<string, unknown>; body: string }[] = [];

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      const status = Number(/\/status\/(\d+)/.exec(req.url ?? '')?.[1] ?? 200);
      res.writeHead(status).end(status === 200 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

const event: NotificationEvent = {
  sequence: 4,
  trigger: 'on-rollout-completed',
  at: '2026-01-01T00:00:00.000Z',
  release: { id: 'release_shop_web', runId: 'run-1', namespace: 'shop', name: 'web', workload: 'web', attempt: 1 },
  phase: 'Promoted',
  message: 'promoted registry.local/web:v2',
  step: { number: 2, total: 2, kind: 'promote' },
  weight: 0,
  image: 'registry.local/web:v2',
};
const secrets = async (_ns: string, ref: { name: string; key: string }): Promise<string> => {
  const values: Record<string, string> = { url: `${base}/hook/secret-token`, hmac: 'k3y', bad: 'ftp://x/' };
  const v = values[ref.key];
  if (v === undefined) throw Object.assign(new Error('not found'), { code: 404 });
  return v;
};
const allowLoopback = createNotifyActivities({ secrets, egress: { allow: ['127.0.0.0/8'] }, uiUrl: 'http://ui.test' });
const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A): Promise<R> => new MockActivityEnvironment().run(fn, ...args);
const sub = (extra: Partial<NotificationSpec>): NotificationSpec => ({ name: 'ops', type: 'webhook', triggers: ['on-rollout-completed'], urlFrom: { secretKeyRef: { name: 'hooks', key: 'url' } }, ...extra });

test('a webhook delivery: URL from the Secret, JSON event, HMAC signature, Idempotency-Key, UI link', async () => {
  const out = await run(allowLoopback.deliverNotification, 'shop', sub({ signingKeyFrom: { secretKeyRef: { name: 'hooks', key: 'hmac' } } }), event);
  assert.equal(out.status, 200);
  const got = seen.at(-1);
  assert.equal(got?.path, '/hook/secret-token');
  assert.equal(got?.headers['idempotency-key'], 'release_shop_web/run-1/4');
  assert.equal(got?.headers['x-glidepath-signature'], `sha256=${createHmac('sha256', 'k3y').update(got?.body ?? '').digest('hex')}`);
  const body = JSON.parse(got?.body ?? '{}') as { id: string; sequence: number; link: string };
  assert.equal(body.id, 'release_shop_web/run-1/4');
  assert.equal(body.link, 'http://ui.test/namespaces/default/workflows/release_shop_web/run-1/history');
});

test('slack and teams bodies carry the rendered text', async () => {
  await run(allowLoopback.deliverNotification, 'shop', sub({ type: 'slack', template: '{{release.name}} {{trigger}}' }), event);
  assert.match(JSON.parse(seen.at(-1)?.body ?? '{}').text, /^web on-rollout-completed <http:\/\/ui\.test\/.*\|Temporal UI>$/);
  await run(allowLoopback.deliverNotification, 'shop', sub({ type: 'teams', template: '{{release.name}} {{trigger}}' }), event);
  const card = JSON.parse(seen.at(-1)?.body ?? '{}') as { '@type': string; text: string };
  assert.deepEqual([card['@type'], card.text], ['MessageCard', 'web on-rollout-completed']);
});

test('answers are classified: 503 retryable, 404 not; a bad Secret URL or a missing key is permanent; no URL in any message', async () => {
  const err = async (s: NotificationSpec): Promise<Error> => run(allowLoopback.deliverNotification, 'shop', s, event).then(() => assert.fail('expected a failure'), (e: Error) => e);
  const e503 = await err(sub({ urlFrom: undefined, url: `${base}/status/503` }));
  assert.ok(!(e503 instanceof ApplicationFailure && e503.nonRetryable), 'a 503 is retried');
  assert.equal(e503.message, 'notification ops: receiver answered 503');
  const e404 = await err(sub({ urlFrom: undefined, url: `${base}/status/404` }));
  assert.ok(e404 instanceof ApplicationFailure && e404.nonRetryable);
  const bad = await err(sub({ urlFrom: { secretKeyRef: { name: 'hooks', key: 'bad' } } }));
  assert.ok(bad instanceof ApplicationFailure && bad.nonRetryable);
  assert.equal(bad.message, 'notification ops: the receiver URL in Secret hooks key bad must be an http(s) URL, not ftp:');
  const missing = await err(sub({ urlFrom: { secretKeyRef: { name: 'hooks', key: 'nope' } } }));
  assert.ok(missing instanceof ApplicationFailure && missing.nonRetryable, missing.message);
  const down = await err(sub({ urlFrom: undefined, url: 'http://127.0.0.1:1/x' }));
  assert.match(down.message, /^notification ops: receiver unreachable \(ECONNREFUSED\)$/);
  for (const e of [e503, e404, bad, missing, down]) assert.ok(!e.message.includes('secret-token') && !e.message.includes(base), e.message);
});

test('the egress policy applies: loopback is refused by default (and allowed only when listed)', async () => {
  const strict = createNotifyActivities({ secrets, egress: {} });
  const e = await run(strict.deliverNotification, 'shop', sub({}), event).then(() => assert.fail('expected a refusal'), (x: Error) => x);
  assert.ok(e instanceof ApplicationFailure && e.nonRetryable && e.type === 'Forbidden', e.message);
  assert.match(e.message, /refused by the worker's egress policy/);
  const g = await run(strict.callWebhook, 'shop', { name: 'gate', type: 'rollback', url: `${base}/gate`, timeoutMs: 2000, intervalMs: 1000, retries: 0 }, { name: 'web', namespace: 'shop', type: 'rollback', hook: 'gate', releaseId: 'r', phase: 'Progressing', step: 1, weight: 0, image: 'i', metadata: {} }).then(() => assert.fail('expected a refusal'), (x: Error) => x);
  assert.ok(g instanceof ApplicationFailure && g.type === 'Forbidden', g.message);
  const ok = await run(allowLoopback.callWebhook, 'shop', { name: 'gate', type: 'rollback', url: `${base}/status/404`, timeoutMs: 2000, intervalMs: 1000, retries: 0 }, { name: 'web', namespace: 'shop', type: 'rollback', hook: 'gate', releaseId: 'r', phase: 'Progressing', step: 1, weight: 0, image: 'i', metadata: { a: 'b' } });
  assert.deepEqual(ok, { status: 404, body: 'nope' }, 'a gate gets the answer whatever its status');
  assert.deepEqual(JSON.parse(seen.at(-1)?.body ?? '{}').metadata, { a: 'b' });
});
