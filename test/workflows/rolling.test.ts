/**
 * The rolling state machine (strategy.rolling) under time skipping, against Temporal's Java test
 * server: batches with the canary's gates between them, promotion, a failed analysis and an abort
 * rolling back, promote --full, and the start-time refusal of a strategy the workload kind cannot take.
 * Activities are stubbed and recorded.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { describeBatch, type BatchStep, type RollingStep } from '../../model/rolling.ts';
import type { ReleasePlan } from '../../model/types.ts';
import { abortUpdate, approveUpdate, promoteUpdate, statusQuery } from '../../workflows/messages.ts';
import { Harness, NEW_IMAGE, STABLE_IMAGE, analysis, measurement, metric, plan, recordHistory, releaseResult, waitForStatus } from './harness.ts';

const h = new Harness();
before(() => h.start());
after(() => h.stop());

function rolling(name: string, steps: RollingStep[], extra: Partial<ReleasePlan> = {}): ReleasePlan {
  return plan(name, { type: 'rolling', steps }, { workload: { kind: 'StatefulSet', name }, ...extra });
}

/** Call names, a batch with its size: `rollBatch(60%)`. */
function trace(p: ReleasePlan): string[] {
  return h.callsOf(p).map((c) => (c.name === 'rollBatch' ? `rollBatch(${describeBatch(c.args[1] as BatchStep)})` : c.name));
}

const oneThenSixty: RollingStep[] = [
  { kind: 'batch', replicas: 1 },
  { kind: 'pause', durationMs: 3_600_000 },
  { kind: 'analysis', analysis: analysis('error-rate') },
  { kind: 'batch', percent: 60 },
  { kind: 'approval', approvers: ['carol'], minApprovals: 1, onTimeout: 'rollback' },
];

describe('rolling', () => {
  test('1 → 60% → all: batches in order, a durable pause, an analysis and an approval between them, then promotion', async () => {
    const p = rolling('sts-happy', oneThenSixty);
    const handle = await h.begin(p);
    await h.env.sleep('2h'); // past the hour's pause (status polls hold time still)
    const gate = await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'approval gate');
    assert.equal(gate.strategy, 'rolling');
    assert.deepEqual(gate.rolling, { updated: 3, replicas: 5 });
    assert.equal(gate.canaryWeight, 60);
    assert.deepEqual(trace(p), ['preflight', 'beginRolling', 'rollBatch(1)', 'runAnalysis', 'rollBatch(60%)']);
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'carol' }] });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Promoted');
    assert.equal(result.stableImage, NEW_IMAGE);
    assert.deepEqual(trace(p), ['preflight', 'beginRolling', 'rollBatch(1)', 'runAnalysis', 'rollBatch(60%)', 'completeRolling']);
    const status = await handle.query(statusQuery);
    assert.deepEqual(status.rolling, { updated: 5, replicas: 5 });
    assert.equal(status.step.total, 5);
    const history = await handle.fetchHistory();
    const timers = (history.events ?? []).filter((e) => e.timerStartedEventAttributes).map((e) => Number(e.timerStartedEventAttributes?.startToFireTimeout?.seconds));
    assert.deepEqual(timers, [3600]);
    await recordHistory(handle, 'rolling-happy');
  });

  test('a failed analysis between batches rolls back: abortRolling with the stable image, nothing promoted', async () => {
    const p = rolling('sts-failed-analysis', [{ kind: 'batch', replicas: 1 }, { kind: 'analysis', analysis: analysis('error-rate', [metric('errors', { count: 2 })]) }, { kind: 'batch', percent: 60 }]);
    const handle = await h.begin(p, {
      runAnalysis: async (_t, run) => ({ metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Successful', [0.999]), measurement('Failed', [0.8])] })), terminated: false }),
    });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.match(result.reason, /analysis error-rate \(step 2\) Failed/);
    assert.deepEqual(trace(p), ['preflight', 'beginRolling', 'rollBatch(1)', 'runAnalysis', 'abortRolling']);
    assert.equal(h.callsOf(p).at(-1)?.args[1], STABLE_IMAGE, 'rollback restores the image preflight read');
    await recordHistory(handle, 'rolling-failed-analysis');
  });

  test('abort while a batch is rolling: the batch is cancelled where it stands, then rolled back', async () => {
    const p = rolling('sts-abort-batch', [{ kind: 'batch', replicas: 1 }, { kind: 'batch', percent: 60 }, { kind: 'pause' }]);
    let cancelled = false;
    const handle = await h.begin(p, {
      rollBatch: async (_t, step) => {
        if ('replicas' in step) return { updated: 1, replicas: 5 };
        const ctx = Context.current();
        try {
          for (;;) {
            ctx.heartbeat();
            await ctx.sleep(50);
          }
        } catch (err) {
          cancelled = true;
          throw err;
        }
      },
    });
    await waitForStatus(handle, (s) => s.step.index === 1 && s.phase === 'Progressing', 'second batch rolling');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall', reason: 'pages' }] });
    const aborted = await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
    assert.match(aborted.message, /aborted by oncall: pages/);
    assert.ok(cancelled, 'the running batch activity was cancelled');
    assert.deepEqual(trace(p), ['preflight', 'beginRolling', 'rollBatch(1)', 'rollBatch(60%)', 'abortRolling']);
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall', reason: 'done' }] });
    assert.equal((await releaseResult(handle)).outcome, 'Aborted');
  });

  test('promote --full skips the remaining batches and pauses, never an approval', async () => {
    const p = rolling('sts-full', [{ kind: 'batch', replicas: 1 }, { kind: 'pause' }, { kind: 'batch', percent: 50 }, { kind: 'approval', approvers: ['carol'], minApprovals: 1, onTimeout: 'abort' }, { kind: 'batch', percent: 80 }]);
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'pause');
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice', full: true }] });
    await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'approval still held');
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'carol' }] });
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    assert.deepEqual(trace(p), ['preflight', 'beginRolling', 'rollBatch(1)', 'completeRolling']);
  });

  test('a failed batch (progress deadline) rolls back', async () => {
    const p = rolling('sts-stuck', [{ kind: 'batch', replicas: 2 }]);
    const handle = await h.begin(p, {
      rollBatch: async () => {
        throw ApplicationFailure.nonRetryable('StatefulSet tests/sts-stuck exceeded its progress deadline (600s): sts-stuck-4 not ready', 'ProgressDeadlineExceeded');
      },
    });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.match(result.reason, /rollBatch: ProgressDeadlineExceeded: StatefulSet tests\/sts-stuck exceeded its progress deadline/);
    assert.deepEqual(trace(p), ['preflight', 'beginRolling', 'rollBatch(2)', 'abortRolling']);
  });

  test('a Deployment in batches with gates, aborted at its approval: rolled back, maxSurge reaches the activities', async () => {
    const p = plan('dep-rolling', { type: 'rolling', maxSurge: 2, steps: [{ kind: 'batch', percent: 25 }, { kind: 'analysis', analysis: analysis('error-rate') }, { kind: 'batch', percent: 50 }, { kind: 'approval', approvers: ['carol'], minApprovals: 1, onTimeout: 'abort' }] });
    const handle = await h.begin(p);
    const gate = await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'approval gate');
    assert.deepEqual(gate.rolling, { updated: 3, replicas: 5 });
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall', reason: 'not today' }] });
    await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
    assert.deepEqual(trace(p), ['preflight', 'beginRolling', 'rollBatch(25%)', 'runAnalysis', 'rollBatch(50%)', 'abortRolling']);
    const begin = h.callsOf(p).find((c) => c.name === 'beginRolling');
    assert.deepEqual((begin?.args[0] as { maxSurge?: unknown; workload: unknown }).maxSurge, 2);
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall', reason: 'done' }] });
    assert.equal((await releaseResult(handle)).outcome, 'Aborted');
  });

  test('a DaemonSet in zone waves with an approval between: the waves reach the activities, a wave on a StatefulSet is refused at start', async () => {
    const zone = (z: string): RollingStep => ({ kind: 'batch', nodeSelector: { 'topology.kubernetes.io/zone': z } });
    const p = rolling('ds-waves', [zone('a'), { kind: 'approval', approvers: ['carol'], minApprovals: 1, onTimeout: 'rollback' }, zone('b')], { workload: { kind: 'DaemonSet', name: 'ds-waves' } });
    const handle = await h.begin(p, { rollBatch: async (_t, step) => ({ updated: 'nodeSelector' in step && step.nodeSelector['topology.kubernetes.io/zone'] === 'a' ? 3 : 6, replicas: 6 }) });
    const gate = await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'approval gate');
    assert.deepEqual(gate.rolling, { updated: 3, replicas: 6 });
    assert.equal(gate.canaryWeight, 50);
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'carol' }] });
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    assert.deepEqual(trace(p), ['preflight', 'beginRolling', 'rollBatch(nodes topology.kubernetes.io/zone=a)', 'rollBatch(nodes topology.kubernetes.io/zone=b)', 'completeRolling']);

    const sts = rolling('sts-wave', [zone('a')]);
    const refused = await h.begin(sts);
    await assert.rejects(refused.result(), (e: unknown) => e instanceof WorkflowFailedError && /strategy\.rolling\.steps\[0\]\.batch\.nodeSelector: a batch of nodes by label is for DaemonSets/.test(String(e.cause?.message)));
    assert.deepEqual(trace(sts), []);
  });

  test('blue/green on a StatefulSet is refused at the start, by name, before anything is touched', async () => {
    const p = plan('sts-bg', { type: 'blueGreen', activeService: 'db', autoPromotionEnabled: true, scaleDownDelaySeconds: 30 }, { workload: { kind: 'StatefulSet', name: 'sts-bg' } });
    const handle = await h.begin(p);
    await assert.rejects(handle.result(), (e: unknown) => e instanceof WorkflowFailedError && /strategy\.blueGreen: blue\/green is refused for a StatefulSet/.test(String(e.cause?.message)));
    assert.deepEqual(trace(p), []);
  });
});
