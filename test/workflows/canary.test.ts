/**
 * The canary state machine under time skipping, against Temporal's Java test server.
 * Activities are stubbed and recorded; each test fails if its behaviour breaks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowExecutionAlreadyStartedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { abortSignal, abortUpdate, approveSignal, approveUpdate, promoteSignal, promoteUpdate, retryUpdate, statusQuery } from '../../workflows/messages.ts';
import { Harness, NEW_IMAGE, STABLE_IMAGE, analysis, canary, measurement, metric, recordHistory, waitForStatus, releaseResult } from './harness.ts';
import { causeOf } from './harness.ts';

const h = new Harness();
before(() => h.start());
after(() => h.stop());

const steps10_25_50 = [
  { kind: 'setWeight' as const, weight: 10 },
  { kind: 'pause' as const, durationMs: 3_600_000 },
  { kind: 'setWeight' as const, weight: 25 },
  { kind: 'pause' as const, durationMs: 600_000 },
  { kind: 'setWeight' as const, weight: 50 },
  { kind: 'pause' as const, durationMs: 600_000 },
];

describe('canary', () => {
  test('happy path: exact weights, in order, then promotion', async () => {
    const p = canary('happy', steps10_25_50);
    const handle = await h.begin(p);
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Promoted');
    assert.equal(result.image, NEW_IMAGE);
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(10)', 'setWeight(25)', 'setWeight(50)', 'promoteCanary']);
    const status = await handle.query(statusQuery);
    assert.equal(status.phase, 'Promoted');
    assert.equal(status.stableImage, NEW_IMAGE);
    assert.equal(status.canaryWeight, 0);
    // The pauses were durable timers of the stated length.
    const history = await handle.fetchHistory();
    const timers = (history.events ?? []).filter((e) => e.timerStartedEventAttributes).map((e) => Number(e.timerStartedEventAttributes?.startToFireTimeout?.seconds));
    assert.deepEqual(timers, [3600, 600, 600]);
    await recordHistory(handle, 'canary-happy-path');
  });

  test('two promotes sent at once on one pause: one ends it, the other is refused with a reason, never both accepted', async () => {
    const p = canary('double-promote', [{ kind: 'setWeight', weight: 20 }, { kind: 'pause' }, { kind: 'setWeight', weight: 60 }, { kind: 'pause' }, { kind: 'setWeight', weight: 80 }]);
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused' && s.step.index === 1, 'first pause');
    const answers = await Promise.allSettled(['alice', 'bob'].map((by) => handle.executeUpdate(promoteUpdate, { args: [{ by }] })));
    const accepted = answers.filter((a) => a.status === 'fulfilled');
    const refused = answers.flatMap((a) => (a.status === 'rejected' ? [causeOf(a.reason)] : []));
    assert.equal(accepted.length, 1, `one promote ends the first pause; refused: ${refused.join(' | ')}`);
    assert.equal(refused.length, 1);
    assert.match(refused[0] as string, /already taking effect|a step is in progress/, 'the other is refused with the reason');
    const second = await waitForStatus(handle, (s) => s.phase === 'Paused' && s.step.index === 3, 'second pause: the refused promote did not end it');
    assert.equal(second.canaryWeight, 60);
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'carol' }] });
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    await recordHistory(handle, 'canary-double-promote');
  });

  test('a pause without duration waits for promote', async () => {
    const p = canary('indefinite', [{ kind: 'setWeight', weight: 20 }, { kind: 'pause' }, { kind: 'setWeight', weight: 60 }]);
    const handle = await h.begin(p);
    const paused = await waitForStatus(handle, (s) => s.phase === 'Paused', 'indefinite pause');
    assert.equal(paused.step.index, 1);
    assert.equal(paused.step.kind, 'pause');
    assert.equal(paused.canaryWeight, 20);
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(20)']);
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice', reason: 'looks good' }] });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Promoted');
    assert.deepEqual(h.trace(p).slice(3), ['setWeight(60)', 'promoteCanary']);
    const status = await handle.query(statusQuery);
    assert.ok(status.audit.some((a) => a.by === 'alice' && a.action === 'promote' && a.accepted && a.reason === 'looks good'));
    await recordHistory(handle, 'canary-indefinite-pause');
  });

  test('promote --full skips the remaining steps', async () => {
    const p = canary('full', [{ kind: 'setWeight', weight: 10 }, { kind: 'pause' }, { kind: 'setWeight', weight: 50 }, { kind: 'pause', durationMs: 86_400_000 }, { kind: 'analysis', analysis: analysis('late') }]);
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'first pause');
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice', full: true }] });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Promoted');
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(10)', 'promoteCanary']);
  });

  test('promote --full never skips an approval gate', async () => {
    const p = canary('full-gate', [{ kind: 'setWeight', weight: 10 }, { kind: 'pause' }, { kind: 'approval', approvers: ['carol'], minApprovals: 1, onTimeout: 'abort' }, { kind: 'setWeight', weight: 50 }]);
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'pause');
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice', full: true }] });
    const gate = await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'approval gate');
    assert.equal(gate.step.index, 2);
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'carol' }] });
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    assert.ok(!h.trace(p).includes('setWeight(50)'), 'steps after the gate are still skipped by --full');
  });

  test('abort during a pause: traffic back to stable, canary removed, nothing else', async () => {
    const p = canary('abort-pause', steps10_25_50);
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused' && s.step.index === 1, 'pause at step 1');
    const after = await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall', reason: 'latency up' }] });
    assert.ok(['Paused', 'Aborting', 'Aborted'].includes(after.phase));
    const aborted = await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
    assert.equal(aborted.canaryWeight, 0);
    assert.match(aborted.message, /aborted by oncall: latency up/);
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(10)', 'abortCanary']);
    const abortCall = h.callsOf(p).at(-1);
    assert.equal(abortCall?.args[1], STABLE_IMAGE, 'abort restores the stable image captured at preflight');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall', reason: 'no retry' }] }); // closes it
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Aborted');
    await recordHistory(handle, 'canary-abort-pause');
  });

  test('abort during an analysis cancels the running analysis', async () => {
    const p = canary('abort-analysis', [{ kind: 'setWeight', weight: 10 }, { kind: 'analysis', analysis: analysis('slow') }, { kind: 'setWeight', weight: 50 }]);
    let cancelled = false;
    const handle = await h.begin(p, {
      runAnalysis: async () => {
        const ctx = Context.current();
        const beat = setInterval(() => ctx.heartbeat(), 50);
        try {
          await ctx.cancelled;
        } catch {
          cancelled = true;
        } finally {
          clearInterval(beat);
        }
        return { metrics: [], terminated: true };
      },
    });
    await waitForStatus(handle, (s) => s.phase === 'Analyzing', 'analysis running');
    await handle.signal(abortSignal, { by: 'alice', reason: 'stop' });
    const aborted = await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
    assert.equal(aborted.analysisRuns.length, 1);
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(10)', 'runAnalysis', 'abortCanary']);
    const history = await handle.fetchHistory();
    assert.ok((history.events ?? []).some((e) => e.activityTaskCancelRequestedEventAttributes), 'the analysis activity was asked to cancel');
    for (let i = 0; i < 100 && !cancelled; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(cancelled, 'the running analysis saw the cancellation');
  });

  test('abort during a pending approval', async () => {
    const p = canary('abort-approval', [{ kind: 'setWeight', weight: 10 }, { kind: 'approval', approvers: ['carol', 'dave'], minApprovals: 1, onTimeout: 'rollback' }]);
    const handle = await h.begin(p);
    const waiting = await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'approval pending');
    assert.deepEqual(waiting.approvals?.approvers, ['carol', 'dave']);
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'carol', reason: 'not today' }] });
    const aborted = await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
    assert.equal(aborted.approvals, undefined);
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(10)', 'abortCanary']);
  });

  test('a failed analysis rolls back and the result names the metric and its values', async () => {
    const p = canary('failed-analysis', [{ kind: 'setWeight', weight: 10 }, { kind: 'analysis', analysis: analysis('success-rate', [metric('error-rate', { failureLimit: 1 })]) }, { kind: 'setWeight', weight: 50 }]);
    const handle = await h.begin(p, {
      runAnalysis: async (_t, run) => ({
        metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Failed', [0.91]), measurement('Successful', [0.995]), measurement('Failed', [0.87])] })),
        terminated: false,
      }),
    });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.match(result.reason, /analysis success-rate \(step 2\) Failed: metric "error-rate" assessed Failed: failed \(2\) > failureLimit \(1\)/);
    assert.deepEqual(result.analysis?.metrics[0]?.measurements.map((m) => m.value), [[0.91], [0.995], [0.87]]);
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(10)', 'runAnalysis', 'abortCanary']);
    await recordHistory(handle, 'canary-failed-analysis');
  });

  test('consecutive errors past consecutiveErrorLimit fail the analysis, as Argo does', async () => {
    const p = canary('errors', [{ kind: 'setWeight', weight: 10 }, { kind: 'analysis', analysis: analysis('flaky', [metric('latency', { consecutiveErrorLimit: 2 })]) }]);
    const handle = await h.begin(p, {
      runAnalysis: async (_t, run) => ({
        metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Successful', [1]), measurement('Error', undefined, 'connect ECONNREFUSED'), measurement('Error', undefined, 'connect ECONNREFUSED'), measurement('Error', undefined, 'connect ECONNREFUSED')] })),
        terminated: false,
      }),
    });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.match(result.reason, /Error: metric "latency" assessed Error: consecutiveErrors \(3\) > consecutiveErrorLimit \(2\): connect ECONNREFUSED/);
  });

  test('an inconclusive analysis pauses for a human; promote continues', async () => {
    const p = canary('inconclusive-promote', [{ kind: 'setWeight', weight: 10 }, { kind: 'analysis', analysis: analysis('borderline') }, { kind: 'setWeight', weight: 50 }]);
    const handle = await h.begin(p, {
      runAnalysis: async (_t, run) => ({ metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Inconclusive', [0.98])] })), terminated: false }),
    });
    const paused = await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused on inconclusive');
    assert.match(paused.message, /inconclusive/);
    assert.equal(paused.analysisRuns[0]?.phase, 'Inconclusive');
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice' }] });
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    assert.deepEqual(h.trace(p).slice(-2), ['setWeight(50)', 'promoteCanary']);
  });

  test('an inconclusive analysis pauses for a human; abort rolls back to stable', async () => {
    const p = canary('inconclusive-abort', [{ kind: 'setWeight', weight: 10 }, { kind: 'analysis', analysis: analysis('borderline') }, { kind: 'setWeight', weight: 50 }]);
    const handle = await h.begin(p, {
      runAnalysis: async (_t, run) => ({ metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Inconclusive', [0.98])] })), terminated: false }),
    });
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused on inconclusive');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'alice' }] });
    await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(10)', 'runAnalysis', 'abortCanary']);
  });

  test('background analysis failing at step 3 rolls back at once', async () => {
    const p = canary(
      'background',
      [{ kind: 'setWeight', weight: 10 }, { kind: 'setWeight', weight: 15 }, { kind: 'setWeight', weight: 20 }, { kind: 'pause' }, { kind: 'setWeight', weight: 50 }],
      { background: { analysis: analysis('error-rate', [metric('errors', { count: undefined, intervalMs: 60_000 })]), startingStep: 1 } },
    );
    let release: () => void = () => {};
    const failNow = new Promise<void>((r) => (release = r));
    const handle = await h.begin(p, {
      runAnalysis: async (_t, run, opts) => {
        assert.equal(opts.background, true);
        await failNow;
        return { metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Successful', [0.001]), measurement('Failed', [0.2])] })), terminated: false };
      },
    });
    await waitForStatus(handle, (s) => s.phase === 'Paused' && s.step.index === 3, 'indefinite pause at step 3');
    release();
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.match(result.reason, /background analysis error-rate Failed at step 4/);
    // The background run starts with step 1 and runs beside the steps: their relative start order is not defined.
    assert.deepEqual(h.trace(p).filter((c) => c !== 'runAnalysis'), ['preflight', 'ensureCanary', 'setWeight(10)', 'setWeight(15)', 'setWeight(20)', 'abortCanary']);
    assert.equal(h.trace(p).filter((c) => c === 'runAnalysis').length, 1);
    assert.ok(h.trace(p).indexOf('runAnalysis') > h.trace(p).indexOf('setWeight(10)'), 'not before its starting step');
    await recordHistory(handle, 'canary-background-failure');
  });

  test('transient activity failures are retried and the release goes on', async () => {
    const p = canary('transient', [{ kind: 'setWeight', weight: 10 }, { kind: 'setWeight', weight: 100 }]);
    let attempts = 0;
    const handle = await h.begin(p, {
      setWeight: async (_t, weight) => {
        if (weight === 10 && ++attempts < 3) throw new Error('etcdserver: request timed out');
        return { canaryReplicas: 1 };
      },
    });
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    assert.equal(attempts, 3);
  });

  test('a non-retryable failure rolls back with a named reason', async () => {
    const p = canary('non-retryable', [{ kind: 'setWeight', weight: 10 }, { kind: 'setWeight', weight: 50 }]);
    const handle = await h.begin(p, {
      setWeight: async (_t, weight) => {
        if (weight === 50) throw ApplicationFailure.nonRetryable('deployments.apps "non-retryable-canary" is forbidden: cannot patch', 'Forbidden');
        return { canaryReplicas: 1 };
      },
    });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.match(result.reason, /^setWeight: Forbidden: deployments.apps "non-retryable-canary" is forbidden/);
    assert.equal(h.callsOf(p).filter((c) => c.name === 'setWeight').length, 2, 'not retried');
    assert.equal(h.trace(p).at(-1), 'abortCanary');
  });

  test('a step past the progress deadline rolls back', async () => {
    // The activity enforces the deadline (no progress for progressDeadlineSeconds) and names the cause.
    const p = canary('deadline', [{ kind: 'setWeight', weight: 10 }], { progressDeadlineSeconds: 120 });
    const handle = await h.begin(p, {
      setWeight: async () => {
        throw ApplicationFailure.nonRetryable('Deployment tests/deadline-canary exceeded its progress deadline (120s): no progress for 121s; pods: 1 Pending (Unschedulable)', 'ProgressDeadlineExceeded');
      },
    });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.match(result.reason, /^setWeight: ProgressDeadlineExceeded: Deployment tests\/deadline-canary exceeded its progress deadline \(120s\): no progress for 121s; pods: 1 Pending \(Unschedulable\)$/);
    assert.equal(h.trace(p).at(-1), 'abortCanary');
  });

  test('a failure before anything is touched fails without cleanup', async () => {
    const p = canary('preflight', [{ kind: 'setWeight', weight: 10 }]);
    const handle = await h.begin(p, {
      preflight: async () => {
        throw ApplicationFailure.nonRetryable('deployment tests/preflight not found', 'NotFound');
      },
    });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Failed');
    assert.match(result.reason, /preflight: NotFound: deployment tests\/preflight not found/);
    assert.deepEqual(h.trace(p), ['preflight']);
  });

  test('a second start for the same workload is rejected, naming the running release', async () => {
    const p = canary('duplicate', [{ kind: 'pause' }]);
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused');
    await assert.rejects(h.begin(p), (err: unknown) => err instanceof WorkflowExecutionAlreadyStartedError && /release_tests_duplicate/.test(`${err.message} ${err.workflowId}`));
    await handle.terminate('test done');
  });

  test('retry after abort starts again from step 0 in the same workflow', async () => {
    const p = canary('retry', [{ kind: 'setWeight', weight: 10 }, { kind: 'pause' }, { kind: 'setWeight', weight: 60 }]);
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'alice', reason: 'flaky dependency' }] });
    await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
    await handle.executeUpdate(retryUpdate, { args: [{ by: 'alice', reason: 'dependency fixed' }] });
    const again = await waitForStatus(handle, (s) => s.phase === 'Paused' && s.attempt === 2, 'paused on attempt 2');
    assert.equal(again.step.index, 1);
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice' }] });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Promoted');
    assert.equal(result.attempts, 2);
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(10)', 'abortCanary', 'preflight', 'ensureCanary', 'setWeight(10)', 'setWeight(60)', 'promoteCanary']);
    await recordHistory(handle, 'canary-retry-after-abort');
  });

  test('an aborted release ends when its retry window passes', async () => {
    const p = canary('retry-window', [{ kind: 'pause' }], { retryWindowSeconds: 7200 });
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused');
    await handle.signal(abortSignal, { by: 'alice' });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Aborted');
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const started = Number(events[0]?.eventTime?.seconds);
    const ended = Number(events.at(-1)?.eventTime?.seconds);
    assert.ok(ended - started >= 7200, `ended ${ended - started}s after start`);
  });

  test('a 7-day soak pause finishes in seconds of wall time', async () => {
    const p = canary('soak', [{ kind: 'setWeight', weight: 5 }, { kind: 'pause', durationMs: 7 * 86_400_000 }, { kind: 'setWeight', weight: 100 }]);
    const wall = Date.now();
    const handle = await h.begin(p);
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Promoted');
    const events = (await handle.fetchHistory()).events ?? [];
    const workflowSeconds = Number(events.at(-1)?.eventTime?.seconds) - Number(events[0]?.eventTime?.seconds);
    assert.ok(workflowSeconds >= 7 * 86_400, `workflow time ${workflowSeconds}s`);
    assert.ok(Date.now() - wall < 30_000, 'time skipping did not skip');
  });

  test('an invalid plan fails at workflow start before any activity', async () => {
    const p = canary('invalid', [{ kind: 'setWeight', weight: 150 }]);
    const handle = await h.begin(p);
    await assert.rejects(handle.result(), (err: unknown) => /invalid release plan: strategy.steps.0.weight/.test(String((err as { cause?: Error }).cause?.message)));
    assert.deepEqual(h.trace(p), []);
  });

  test('search attributes follow the release', async () => {
    const p = canary('attributes', [{ kind: 'setWeight', weight: 10 }, { kind: 'pause' }]);
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused');
    const described = await handle.describe();
    assert.equal(described.typedSearchAttributes.getAll().find((p) => p.key.name === 'GlidepathService')?.value, 'tests/attributes');
    assert.equal(described.typedSearchAttributes.getAll().find((p) => p.key.name === 'GlidepathPhase')?.value, 'Paused');
    assert.equal(described.typedSearchAttributes.getAll().find((p) => p.key.name === 'GlidepathImage')?.value, NEW_IMAGE);
    await handle.terminate('test done');
  });
});

describe('approvals', () => {
  const gated = (name: string, approval: Partial<{ approvers: string[]; minApprovals: number; timeoutMs: number; onTimeout: 'abort' | 'rollback' }> = {}) =>
    canary(name, [{ kind: 'setWeight', weight: 10 }, { kind: 'approval', approvers: ['alice', 'bob', 'ci-bot'], minApprovals: 1, onTimeout: 'abort', ...approval }, { kind: 'setWeight', weight: 100 }]);

  test('an approver on the list approves and the release goes on', async () => {
    const p = gated('approve-ok');
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'awaiting approval');
    const status = await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice', reason: 'dashboards green' }] });
    // The reply shows the release after the approval took effect: the gate is passed.
    assert.equal(status.approvals, undefined);
    assert.notEqual(status.phase, 'AwaitingApproval');
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Promoted');
    const final = await handle.query(statusQuery);
    assert.ok(final.audit.some((a) => a.action === 'approve' && a.by === 'alice' && a.reason === 'dashboards green'));
    await recordHistory(handle, 'canary-approval');
  });

  test('an unauthorised approver: the update is rejected with no history event; the signal is ignored and audited', async () => {
    const p = gated('approve-unauthorised');
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'awaiting approval');
    const beforeEvents = (await handle.fetchHistory()).events ?? [];
    const before = beforeEvents.length;
    await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ by: 'mallory' }] }), (err: unknown) => err instanceof WorkflowUpdateFailedError && /mallory is not an approver of step 2 \(approvers: alice, bob, ci-bot\)/.test(causeOf(err)));
    const afterUpdate = (await handle.fetchHistory()).events ?? [];
    // The Java test server has no speculative workflow tasks, so it records the (empty) workflow
    // task that ran the validator; a real server records nothing (asserted in the dev-server suite).
    const added = afterUpdate.slice(before).filter((e) => !e.workflowTaskScheduledEventAttributes && !e.workflowTaskStartedEventAttributes && !e.workflowTaskCompletedEventAttributes);
    assert.deepEqual(added, [], 'a rejected update writes no update, signal or command event');
    assert.ok(!afterUpdate.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes || e.workflowExecutionUpdateCompletedEventAttributes));

    await handle.signal(approveSignal, { by: 'mallory', reason: 'trust me' });
    // Ignored signals are counted and the last few kept, apart from the audit trail (a flood cannot push it out).
    const status = await waitForStatus(handle, (s) => (s.rejectedSignals?.total ?? 0) > 0, 'ignored signal recorded');
    const entry = status.rejectedSignals?.last.find((a) => a.by === 'mallory');
    assert.equal(status.rejectedSignals?.byAction.approve, 1);
    assert.equal(entry?.accepted, false);
    assert.match(entry?.detail ?? '', /ignored: mallory is not an approver/);
    assert.equal(status.phase, 'AwaitingApproval');
    assert.equal(status.approvals?.granted.length, 0);
    await handle.terminate('test done');
  });

  test('the initiator cannot approve their own release (four eyes)', async () => {
    const p = gated('four-eyes');
    const handle = await h.begin(p, {}, 'ci-bot');
    await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'awaiting approval');
    await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ by: 'ci-bot' }] }), (err: unknown) => /ci-bot started this release and cannot approve it/.test(causeOf(err)));
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] });
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
  });

  test('two distinct approvers are required', async () => {
    const p = gated('two-approvers', { minApprovals: 2 });
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'awaiting approval');
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] });
    await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] }), (err: unknown) => /alice has already approved step 2/.test(causeOf(err)));
    const one = await handle.query(statusQuery);
    assert.equal(one.phase, 'AwaitingApproval');
    assert.equal(one.approvals?.granted.length, 1);
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] });
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
  });

  test('an approval that times out after 24h aborts', async () => {
    const p = gated('approval-timeout-abort', { timeoutMs: 86_400_000, onTimeout: 'abort' });
    const handle = await h.begin(p);
    const waiting = await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'awaiting approval');
    assert.ok(waiting.approvals?.deadline);
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Aborted');
    assert.match(result.reason, /approval of step 2 timed out after 1d/);
    assert.equal(h.trace(p).at(-1), 'abortCanary');
    await recordHistory(handle, 'canary-approval-timeout');
  });

  test('an approval that times out can roll back instead', async () => {
    const p = gated('approval-timeout-rollback', { timeoutMs: 86_400_000, onTimeout: 'rollback' });
    const handle = await h.begin(p);
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.match(result.reason, /timed out/);
  });

  test('promote and abort follow the release policy', async () => {
    const p = canary('policy', [{ kind: 'setWeight', weight: 10 }, { kind: 'pause' }], { policy: { promoters: ['alice'], aborters: ['oncall'] } });
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused');
    await assert.rejects(handle.executeUpdate(promoteUpdate, { args: [{ by: 'bob' }] }), (err: unknown) => /bob may not promote this release \(promoters: alice\)/.test(causeOf(err)));
    await assert.rejects(handle.executeUpdate(abortUpdate, { args: [{ by: 'alice' }] }), (err: unknown) => /alice may not abort this release \(aborters: oncall\)/.test(causeOf(err)));
    await handle.signal(promoteSignal, { by: 'bob' });
    const s = await waitForStatus(handle, (x) => x.rejectedSignals?.last.some((a) => a.by === 'bob') === true, 'bob recorded');
    assert.equal(s.phase, 'Paused');
    await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] }), (err: unknown) => /cannot approve .*: release is Paused/.test(causeOf(err)));
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice' }] });
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
  });
});
