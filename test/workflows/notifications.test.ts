/**
 * Release notifications under time skipping, with the delivery activity stubbed (Temporal's
 * convention for workflow tests; the real delivery runs against HTTP receivers in
 * test/e2e/notifications.test.ts): events in order with the trigger points Argo names, a receiver
 * that is down never blocks or fails the release (bounded retries, then undelivered in status and
 * audit), and an abort is announced although it cancels the steps.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { NotificationEvent, NotificationSpec, Trigger } from '../../model/notifications.ts';
import { TRIGGERS } from '../../model/notifications.ts';
import { abortUpdate, statusQuery } from '../../workflows/messages.ts';
import { DELIVERY_ATTEMPTS } from '../../workflows/release/notify.ts';
import { Harness, analysis, canary, recordHistory, releaseResult, waitForStatus } from './harness.ts';

interface Delivery {
  sub: string;
  event: NotificationEvent;
  attempt: number;
}

const deliveries = new Map<string, Delivery[]>();
/** Per release: what the stub receiver does with a delivery (default: accepts it). */
const receivers = new Map<string, (d: Delivery) => Promise<void>>();

const h = new Harness({
  deliverNotification: async (_ns: string, sub: NotificationSpec, event: NotificationEvent) => {
    const id = event.release.id;
    const d = { sub: sub.name, event, attempt: Context.current().info.attempt };
    deliveries.set(id, [...(deliveries.get(id) ?? []), d]);
    await (receivers.get(id) ?? (async () => {}))(d);
    return { status: 200, attempt: d.attempt };
  },
});
before(() => h.start());
after(() => h.stop());

const all: NotificationSpec = { name: 'ops', type: 'webhook', triggers: [...TRIGGERS], url: 'https://hooks.example/ops' };
const summary = (ds: Delivery[]): string[] => ds.map((d) => `${d.event.sequence} ${d.event.trigger}${d.event.trigger.includes('step') || d.event.trigger.includes('scaling') ? `(${d.event.step.number})` : ''}`);

describe('release notifications', () => {
  test('every trigger point emits in order, once, with the release, step and weight; the history is recorded', async () => {
    const p = canary('notify-happy', [{ kind: 'setWeight', weight: 20 }, { kind: 'pause', durationMs: 60_000 }, { kind: 'analysis', analysis: analysis('success-rate') }, { kind: 'setWeight', weight: 100 }], { notifications: [all] });
    const handle = await h.begin(p);
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Promoted');
    const ds = deliveries.get(handle.workflowId) ?? [];
    assert.deepEqual(summary(ds), [
      '1 on-rollout-updated',
      '2 on-rollout-step-completed(1)',
      '3 on-scaling-replica-set(1)',
      '4 on-rollout-paused',
      '5 on-rollout-step-completed(2)',
      '6 on-analysis-run-running',
      '7 on-rollout-step-completed(3)',
      '8 on-rollout-step-completed(4)',
      '9 on-scaling-replica-set(4)',
      '10 on-rollout-completed',
    ]);
    const step1 = ds[1]?.event;
    assert.equal(step1?.weight, 20);
    assert.equal(step1?.step.kind, 'setWeight');
    assert.equal(ds[9]?.event.phase, 'Promoted');
    assert.equal(ds[5]?.event.analysis?.name, 'success-rate');
    assert.ok(ds.every((d) => d.event.release.id === handle.workflowId && d.event.release.runId === ds[0]?.event.release.runId && d.attempt === 1));
    const s = await handle.query(statusQuery);
    assert.deepEqual(s.notifications, { emitted: 10, delivered: 10, undelivered: 0, pending: 0, lastUndelivered: [] });
    await recordHistory(handle, 'notify-happy');
  });

  test('a receiver down for the whole release: the release promotes, each event is retried a bounded number of times, then recorded undelivered', async () => {
    const subs: NotificationSpec[] = [
      { name: 'down', type: 'slack', triggers: ['on-rollout-updated', 'on-rollout-step-completed', 'on-rollout-completed'], url: 'https://hooks.example/down' },
      { name: 'up', type: 'webhook', triggers: ['on-rollout-updated', 'on-rollout-step-completed', 'on-rollout-completed'], url: 'https://hooks.example/up' },
    ];
    const p = canary('notify-down', [{ kind: 'setWeight', weight: 50 }, { kind: 'setWeight', weight: 100 }], { notifications: subs });
    const handle = await h.begin(p);
    receivers.set(handle.workflowId, async (d) => {
      if (d.sub === 'down') throw new Error('receiver answered 503');
    });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Promoted', 'a receiver that is down never fails the release');
    const ds = deliveries.get(handle.workflowId) ?? [];
    const down = ds.filter((d) => d.sub === 'down');
    const up = ds.filter((d) => d.sub === 'up');
    assert.deepEqual(summary(up), ['1 on-rollout-updated', '2 on-rollout-step-completed(1)', '3 on-rollout-step-completed(2)', '4 on-rollout-completed'], 'the other receiver gets every event, in order');
    assert.deepEqual(
      down.map((d) => `${d.event.sequence}#${d.attempt}`),
      [...Array.from({ length: DELIVERY_ATTEMPTS }, (_, i) => `1#${i + 1}`), '2#1', '3#1', '4#1'],
      'the first event is retried a bounded number of times; while the receiver stays down, later ones get one attempt',
    );
    const s = await handle.query(statusQuery);
    assert.equal(s.notifications?.delivered, 4);
    assert.equal(s.notifications?.undelivered, 4);
    assert.equal(s.notifications?.pending, 0);
    assert.deepEqual(s.notifications?.lastUndelivered.map((u) => `${u.subscription} ${u.sequence} ${u.trigger}`), ['down 1 on-rollout-updated', 'down 2 on-rollout-step-completed', 'down 3 on-rollout-step-completed', 'down 4 on-rollout-completed']);
    const audited = s.audit.filter((a) => a.action === 'notification-undelivered');
    assert.equal(audited.length, 4);
    assert.match(audited[0]?.detail ?? '', /^down: on-rollout-updated #1: .*receiver answered 503/);
  });

  test('a delivery that hangs does not hold the release: the steps go on while it waits', async () => {
    const p = canary('notify-slow', [{ kind: 'setWeight', weight: 50 }, { kind: 'pause' }], { notifications: [{ ...all, triggers: ['on-rollout-updated'] as Trigger[] }] });
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    receivers.set('release_tests_notify-slow', () => held);
    const handle = await h.begin(p);
    const paused = await waitForStatus(handle, (s) => s.phase === 'Paused', 'the pause after the first step, while the first delivery still waits');
    assert.equal(paused.notifications?.pending, 1);
    release();
    await waitForStatus(handle, (s) => s.notifications?.delivered === 1, 'the delivery to finish');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'ci-bot', reason: 'done' }] });
    assert.equal((await releaseResult(handle)).outcome, 'Aborted');
  });

  test('an abort is announced (on-rollout-aborted) although it cancels the step that was running', async () => {
    const p = canary('notify-abort', [{ kind: 'setWeight', weight: 10 }, { kind: 'pause' }], { notifications: [{ ...all, triggers: ['on-rollout-paused', 'on-rollout-aborted', 'on-rollout-completed'] as Trigger[] }] });
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'pause');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'ci-bot', reason: 'bad canary' }] });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Aborted');
    const ds = deliveries.get(handle.workflowId) ?? [];
    assert.deepEqual(summary(ds), ['1 on-rollout-paused', '2 on-rollout-aborted']);
    assert.equal(ds[1]?.event.phase, 'Aborted');
    assert.match(ds[1]?.event.message ?? '', /bad canary/);
  });

  test('a receiver refusing for good (non-retryable) is recorded once, without retries', async () => {
    const p = canary('notify-refused', [{ kind: 'setWeight', weight: 100 }], { notifications: [{ ...all, triggers: ['on-rollout-completed'] as Trigger[] }] });
    receivers.set('release_tests_notify-refused', async () => {
      throw ApplicationFailure.nonRetryable('notification ops: receiver answered 404', 'BadRequest');
    });
    const handle = await h.begin(p);
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    assert.equal((deliveries.get(handle.workflowId) ?? []).length, 1);
    const s = await handle.query(statusQuery);
    assert.equal(s.notifications?.undelivered, 1);
    assert.match(s.notifications?.lastUndelivered[0]?.reason ?? '', /answered 404/);
  });
});
