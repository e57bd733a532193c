/** The blue/green state machine under time skipping (stubbed activities, real test server). */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { abortUpdate, approveUpdate, promoteUpdate, statusQuery } from '../../workflows/messages.ts';
import type { BlueGreenStrategy } from '../../model/types.ts';
import type { ReleaseStatus } from '../../workflows/messages.ts';
import { Harness, NEW_IMAGE, analysis, measurement, plan, recordHistory, waitForStatus, releaseResult } from './harness.ts';
import { causeOf } from './harness.ts';

const h = new Harness();
before(() => h.start());
after(() => h.stop());

const bg = (name: string, s: Partial<BlueGreenStrategy> = {}) =>
  plan(name, { type: 'blueGreen', activeService: `${name}-active`, previewService: `${name}-preview`, autoPromotionEnabled: false, scaleDownDelaySeconds: 30, ...s });

function timers(events: { timerStartedEventAttributes?: { startToFireTimeout?: { seconds?: unknown } | null } | null }[]): number[] {
  return events.filter((e) => e.timerStartedEventAttributes).map((e) => Number(e.timerStartedEventAttributes?.startToFireTimeout?.seconds));
}

describe('blue/green', () => {
  test('manual promote: preview, pause, switch, scale-down', async () => {
    const p = bg('bg-manual', { previewReplicaCount: 1 });
    const handle = await h.begin(p);
    const paused = await waitForStatus(handle, (s) => s.phase === 'Paused', 'awaiting promote');
    assert.equal(paused.step.kind, 'promotion');
    assert.deepEqual(h.trace(p), ['preflight', 'deployPreview']);
    assert.equal(h.callsOf(p)[1]?.args[1], 1, 'preview at previewReplicaCount');
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice' }] });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Promoted');
    assert.deepEqual(h.trace(p), ['preflight', 'deployPreview', 'deployPreview', 'switchActive(preview)', 'finalizeBlueGreen']);
    assert.equal(h.callsOf(p)[2]?.args[1], undefined, 'preview scaled to full before the switch');
    const status = await handle.query(statusQuery);
    assert.equal(status.phase, 'Promoted');
    assert.equal(status.stableImage, NEW_IMAGE);
    await recordHistory(handle, 'bluegreen-manual');
  });

  test('auto-promotion after autoPromotionSeconds without a human', async () => {
    const p = bg('bg-auto', { autoPromotionEnabled: true, autoPromotionSeconds: 300 });
    const handle = await h.begin(p);
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Promoted');
    const events = (await handle.fetchHistory()).events ?? [];
    assert.deepEqual(timers(events).slice(0, 2), [300, 30], 'auto-promotion timer, then the scale-down delay');
    assert.deepEqual(h.trace(p), ['preflight', 'deployPreview', 'switchActive(preview)', 'finalizeBlueGreen']);
  });

  test('auto-promotion enabled with no delay switches at once', async () => {
    const p = bg('bg-immediate', { autoPromotionEnabled: true, scaleDownDelaySeconds: 0 });
    const handle = await h.begin(p);
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    assert.deepEqual(timers((await handle.fetchHistory()).events ?? []), []);
  });

  test('a post-promotion analysis failure switches back to stable', async () => {
    const p = bg('bg-post-fail', { autoPromotionEnabled: true, postPromotionAnalysis: analysis('smoke') });
    const handle = await h.begin(p, {
      runAnalysis: async (_t, run) => ({ metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Failed', [0.5])] })), terminated: false }),
    });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.match(result.reason, /analysis smoke \(postPromotion\) Failed/);
    assert.deepEqual(h.trace(p), ['preflight', 'deployPreview', 'switchActive(preview)', 'runAnalysis', 'switchActive(stable)', 'abortBlueGreen']);
    await recordHistory(handle, 'bluegreen-post-promotion-failure');
  });

  test('a pre-promotion analysis failure never switches', async () => {
    const p = bg('bg-pre-fail', { autoPromotionEnabled: true, prePromotionAnalysis: analysis('smoke') });
    const handle = await h.begin(p, {
      runAnalysis: async (_t, run) => ({ metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Failed', [0.5])] })), terminated: false }),
    });
    assert.equal((await releaseResult(handle)).outcome, 'RolledBack');
    assert.deepEqual(h.trace(p), ['preflight', 'deployPreview', 'runAnalysis', 'abortBlueGreen']);
  });

  test('the scale-down delay is honoured before the old side goes', async () => {
    const p = bg('bg-delay', { autoPromotionEnabled: true, scaleDownDelaySeconds: 600 });
    const handle = await h.begin(p);
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    const events = (await handle.fetchHistory()).events ?? [];
    const switchAt = events.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'switchActive');
    const timerAt = events.findIndex((e) => e.timerStartedEventAttributes);
    const firedAt = events.findIndex((e) => e.timerFiredEventAttributes);
    const finalizeAt = events.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'finalizeBlueGreen');
    assert.ok(switchAt < timerAt && timerAt < firedAt && firedAt < finalizeAt, 'switch → 600s timer → finalize');
    assert.equal(Number(events[timerAt]?.timerStartedEventAttributes?.startToFireTimeout?.seconds), 600);
    const fired = Number(events[firedAt]?.eventTime?.seconds);
    const finalized = Number(events[finalizeAt]?.eventTime?.seconds);
    const switched = Number(events[switchAt]?.eventTime?.seconds);
    assert.ok(finalized - switched >= 600 && fired - switched >= 600);
  });

  test('abort while awaiting promotion removes the preview and never switches', async () => {
    const p = bg('bg-abort');
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'awaiting promote');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'alice' }] });
    await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
    assert.deepEqual(h.trace(p), ['preflight', 'deployPreview', 'abortBlueGreen']);
  });
});

describe('status', () => {
  test('the status query is consistent in every phase it passes through', async () => {
    const p = plan('status-walk', {
      type: 'canary',
      steps: [
        { kind: 'setWeight', weight: 10 },
        { kind: 'pause' },
        { kind: 'analysis', analysis: analysis('gate') },
        { kind: 'approval', approvers: ['alice'], minApprovals: 1, onTimeout: 'abort' },
        { kind: 'setWeight', weight: 40 },
      ],
    });
    let releaseAnalysis: () => void = () => {};
    const gate = new Promise<void>((r) => (releaseAnalysis = r));
    let releasePromotion: () => void = () => {};
    const promotion = new Promise<void>((r) => (releasePromotion = r));
    const handle = await h.begin(p, {
      runAnalysis: async (_t, run) => {
        await gate;
        return { metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Successful', [1]), measurement('Successful', [1]), measurement('Successful', [1])] })), terminated: false };
      },
      promoteCanary: async () => {
        await promotion;
      },
    });
    const common = (s: ReleaseStatus) => {
      assert.equal(s.releaseId, 'release_tests_status-walk');
      assert.equal(s.service, 'tests/status-walk');
      assert.equal(s.strategy, 'canary');
      assert.equal(s.step.total, 5);
      assert.equal(s.canaryImage, NEW_IMAGE);
      assert.equal(s.initiator, 'ci-bot');
      assert.ok(s.message.length > 0);
    };
    const paused = await waitForStatus(handle, (s) => s.phase === 'Paused', 'Paused');
    common(paused);
    assert.deepEqual([paused.step.index, paused.step.kind, paused.canaryWeight, paused.stableImage], [1, 'pause', 10, 'registry.local/app:v1']);
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice' }] });

    const analyzing = await waitForStatus(handle, (s) => s.phase === 'Analyzing', 'Analyzing');
    common(analyzing);
    assert.deepEqual([analyzing.step.index, analyzing.step.kind, analyzing.analysisRuns.at(-1)?.phase], [2, 'analysis', 'Running']);
    releaseAnalysis();

    const approving = await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'AwaitingApproval');
    common(approving);
    assert.deepEqual([approving.step.index, approving.step.kind, approving.approvals?.required, approving.analysisRuns.at(-1)?.phase], [3, 'approval', 1, 'Successful']);
    assert.equal(approving.analysisRuns.at(-1)?.metrics[0]?.measurements.length, 3);
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] });

    const promoting = await waitForStatus(handle, (s) => s.phase === 'Promoting', 'Promoting');
    common(promoting);
    assert.deepEqual([promoting.step.index, promoting.step.kind, promoting.canaryWeight, promoting.approvals], [5, 'promote', 40, undefined]);
    await assert.rejects(handle.executeUpdate(abortUpdate, { args: [{ by: 'alice' }] }), (err: unknown) => /cannot abort .*: release is Promoting/.test(causeOf(err)));
    releasePromotion();

    const result = await releaseResult(handle);
    const done = await handle.query(statusQuery);
    common(done);
    assert.equal(done.phase, 'Promoted');
    assert.deepEqual(done.result, result);
    assert.deepEqual(done.audit.map((a) => a.action), ['start', 'promote', 'analysis', 'approve', 'approved', 'promoted']);
    await recordHistory(handle, 'canary-status-walk');
  });
});
