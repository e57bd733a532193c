/**
 * Webhook gates under time skipping, the request activity stubbed (the real one answers real HTTP
 * receivers in test/e2e/gates.test.ts): Flagger's semantics per type, answers in the audit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Context } from '@temporalio/activity';
import type { WebhookPayload, WebhookSpec } from '../../model/webhooks.ts';
import { statusQuery } from '../../workflows/messages.ts';
import { Harness, analysis, canary, recordHistory, releaseResult } from './harness.ts';

type Answer = { status: number; body: string };
/** Per release and hook: the answers to give, in order (the last one repeats). */
const scripts = new Map<string, Answer[]>();
const asked: { releaseId: string; hook: string; payload: WebhookPayload }[] = [];

const h = new Harness({
  callWebhook: async (_ns: string, hook: WebhookSpec, payload: WebhookPayload) => {
    asked.push({ releaseId: payload.releaseId, hook: hook.name, payload });
    const key = `${payload.releaseId}/${hook.name}`;
    const script = scripts.get(key) ?? [{ status: 200, body: 'ok' }];
    return (script.length > 1 ? script.shift() : script[0]) as Answer;
  },
  deliverNotification: async () => ({ status: 200, attempt: 1 }),
});
before(() => h.start());
after(() => h.stop());

const hook = (name: string, type: WebhookSpec['type'], extra: Partial<WebhookSpec> = {}): WebhookSpec => ({ name, type, url: `https://gates.example/${name}`, timeoutMs: 10_000, intervalMs: 30_000, retries: 1, ...extra });
const askedOf = (id: string, name: string) => asked.filter((a) => a.releaseId === id && a.hook === name);
const webhookAudit = async (handle: { query: (q: typeof statusQuery) => Promise<{ audit: { action: string; detail?: string | undefined }[] }> }) => (await handle.query(statusQuery)).audit.filter((a) => a.action === 'webhook').map((a) => a.detail);

describe('webhook gates', () => {
  test('confirm-promotion answering 500 then 200: the release waits on a durable timer, then promotes; both answers audited', async () => {
    const p = canary('gate-confirm', [{ kind: 'setWeight', weight: 50 }], { webhooks: [hook('go', 'confirm-promotion'), hook('after', 'post-rollout')] });
    scripts.set('release_tests_gate-confirm/go', [{ status: 500, body: 'not yet' }, { status: 200, body: 'go' }]);
    const handle = await h.begin(p);
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Promoted');
    assert.equal(askedOf(handle.workflowId, 'go').length, 2);
    assert.deepEqual(h.trace(p).slice(-2), ['setWeight(50)', 'promoteCanary'], 'promotion only after the hook confirmed');
    assert.deepEqual(await webhookAudit(handle), [
      'confirm-promotion go answered 500 (waiting): not yet',
      'confirm-promotion go answered 200 (confirmed): go',
      'post-rollout after answered 200 (recorded): ok',
    ]);
    assert.equal(askedOf(handle.workflowId, 'go')[0]?.payload.step, 1, 'the payload names the step the release is at (the last one)');
    await recordHistory(handle, 'gate-confirm');
  });

  test('a rollback hook answering 2xx aborts the release, its answer in the audit and the reason', async () => {
    const p = canary('gate-rollback', [{ kind: 'setWeight', weight: 10 }, { kind: 'pause' }], { webhooks: [hook('kill', 'rollback', { intervalMs: 10_000 })] });
    scripts.set('release_tests_gate-rollback/kill', [{ status: 404, body: '' }, { status: 404, body: '' }, { status: 200, body: 'page: errors up' }]);
    const handle = await h.begin(p);
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Aborted');
    assert.equal(result.reason, 'rollback webhook kill answered 200: page: errors up');
    assert.equal(askedOf(handle.workflowId, 'kill').length, 3);
    assert.deepEqual(await webhookAudit(handle), ['rollback kill answered 200 (abort): page: errors up']);
    assert.ok(h.trace(p).includes('abortCanary'), 'stable put back');
  });

  test('pre-rollout failing past its retries rolls back before anything is touched', async () => {
    const p = canary('gate-pre', [{ kind: 'setWeight', weight: 10 }], { webhooks: [hook('smoke', 'pre-rollout', { retries: 2 })] });
    scripts.set('release_tests_gate-pre/smoke', [{ status: 503, body: 'smoke test failed' }]);
    const handle = await h.begin(p);
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.equal(result.reason, 'pre-rollout webhook smoke answered 503: smoke test failed');
    assert.equal(askedOf(handle.workflowId, 'smoke').length, 3, 'one try and two retries');
    assert.deepEqual(h.trace(p), ['preflight'], 'nothing touched');
  });

  test('confirm-rollout and confirm-traffic-increase gate the start and each weight increase only', async () => {
    const p = canary('gate-traffic', [{ kind: 'setWeight', weight: 20 }, { kind: 'setWeight', weight: 10 }, { kind: 'setWeight', weight: 100 }], { webhooks: [hook('start', 'confirm-rollout'), hook('more', 'confirm-traffic-increase')] });
    const handle = await h.begin(p);
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    assert.equal(askedOf(handle.workflowId, 'start').length, 1);
    assert.deepEqual(askedOf(handle.workflowId, 'more').map((a) => a.payload.step), [1, 3], 'asked before 20% and 100%, not before lowering to 10%');
  });

  test('a rollout hook runs beside an analysis and, failing, rolls the release back', async () => {
    const p = canary('gate-rollout', [{ kind: 'setWeight', weight: 10 }, { kind: 'analysis', analysis: analysis('success-rate') }], { webhooks: [hook('load', 'rollout', { retries: 0, intervalMs: 20_000 })] });
    scripts.set('release_tests_gate-rollout/load', [{ status: 500, body: 'load generator down' }]);
    // The analysis would run until cancelled (heartbeating, so the cancellation reaches it).
    const forever = async (): Promise<never> => {
      const ctx = Context.current();
      for (;;) {
        ctx.heartbeat();
        await ctx.sleep(100);
      }
    };
    const handle = await h.begin(p, { runAnalysis: forever });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.equal(result.reason, 'rollout webhook load answered 500: load generator down');
    assert.equal(askedOf(handle.workflowId, 'load')[0]?.payload.step, 2);
  });
});
