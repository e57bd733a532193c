/**
 * Release semantics aligned with Argo Rollouts, under time skipping (stubbed activities): background
 * analysis after an inconclusive hold, promote --full over a running analysis, one release per
 * workload, scale-down delays, cancelled activities awaited before cleanup, approvals bound to their
 * gate, every analysis run recorded to its end, validation recorded once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { abortSignal, abortUpdate, approveSignal, approveUpdate, promoteUpdate, statusQuery, type ReleaseStatus } from '../../workflows/messages.ts';
import { planProblems } from '../../model/plan.ts';
import { legacyReleaseWorkflowId, releaseWorkflowId, type BlueGreenStrategy, type CanaryStep, type Measurement, type ReleasePlan } from '../../model/types.ts';
import { Harness, analysis, canary, causeOf, measurement, metric, plan, recordHistory, waitForStatus, releaseResult } from './harness.ts';

const h = new Harness();
before(() => h.start());
after(() => h.stop());

const istio = { istio: { virtualService: { name: 'web-vs' } } };
const routed = (name: string, steps: CanaryStep[], extra: Partial<ReleasePlan> = {}): ReleasePlan =>
  plan(name, { type: 'canary', steps, stableService: `${name}-stable`, canaryService: `${name}-canary`, trafficRouting: istio }, extra);
const bg = (name: string, s: Partial<BlueGreenStrategy> = {}): ReleasePlan =>
  plan(name, { type: 'blueGreen', activeService: `${name}-active`, previewService: `${name}-preview`, autoPromotionEnabled: false, scaleDownDelaySeconds: 30, ...s });

function timers(events: proto.temporal.api.history.v1.IHistoryEvent[]): number[] {
  return events.filter((e) => e.timerStartedEventAttributes).map((e) => Number(e.timerStartedEventAttributes?.startToFireTimeout?.seconds));
}

/** An analysis activity that measures until it is cancelled, then reports what it measured (as the real one does). */
function measuresUntilCancelled(measured: Record<string, Measurement[]>, onCancel?: () => void) {
  return async (): Promise<never> => {
    const ctx = Context.current();
    const beat = setInterval(() => ctx.heartbeat(), 50);
    try {
      await ctx.cancelled;
    } catch {
      onCancel?.();
    } finally {
      clearInterval(beat);
    }
    throw new CancelledFailure('analysis cancelled', [{ startedAt: 0, measurements: measured }]);
  };
}

async function until(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const promoted = (handle: WorkflowHandle): Promise<ReleaseStatus> => waitForStatus(handle, (s) => s.phase === 'Promoted', 'promoted', 10_000);

describe('analysis', () => {
  test('background analysis restarts after an inconclusive hold', async () => {
    const p = canary('bg-restart', [{ kind: 'setWeight', weight: 10 }, { kind: 'pause' }, { kind: 'setWeight', weight: 20 }, { kind: 'pause' }, { kind: 'setWeight', weight: 50 }], {
      background: { analysis: analysis('error-rate', [metric('errors', { count: undefined, intervalMs: 60_000 })]), startingStep: 0 },
    });
    let runs = 0;
    const second = measuresUntilCancelled({ errors: [measurement('Successful', [0.001]), measurement('Successful', [0.002])] });
    // The first run ends once the release is in its pause: the background run starts beside step 0,
    // so an answer it gave at once could beat setWeight and hold the release at step 0 instead.
    let pauseReached: () => void = () => {};
    const atPause = new Promise<void>((r) => (pauseReached = r));
    const handle = await h.begin(p, {
      runAnalysis: async (_t, run) => {
        if (++runs === 1) {
          const ctx = Context.current();
          const beat = setInterval(() => ctx.heartbeat(), 50);
          await atPause.finally(() => clearInterval(beat));
          return { metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Inconclusive', [0.05])] })), terminated: false };
        }
        return second();
      },
    });
    await waitForStatus(handle, (s) => s.phase === 'Paused' && s.step.index === 1 && s.analysisRuns[0]?.phase === 'Running', 'the pause, the first run measuring');
    pauseReached();
    await waitForStatus(handle, (s) => s.phase === 'Paused' && s.step.index === 1 && s.analysisRuns[0]?.phase === 'Inconclusive', 'first run inconclusive during the pause', 30_000);
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice' }] });
    const held = await waitForStatus(handle, (s) => s.phase === 'Paused' && /background analysis error-rate inconclusive/.test(s.message), 'held on the inconclusive background run');
    assert.equal(held.analysisRuns[0]?.phase, 'Inconclusive');
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice' }] });
    await waitForStatus(handle, (s) => s.phase === 'Paused' && s.step.kind === 'pause' && s.step.index === 3, 'the indefinite pause');
    await until(() => runs === 2, 'a second background run');
    const during = await handle.query(statusQuery);
    assert.deepEqual(during.analysisRuns.map((r) => `${r.at} ${r.phase}`), ['background Inconclusive', 'background Running'], 'the rest of the canary is measured');
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice' }] });
    const done = await promoted(handle);
    // The second run ended at promotion, terminated, with what it measured.
    assert.equal(done.analysisRuns[1]?.phase, 'Successful');
    assert.match(done.analysisRuns[1]?.message ?? '', /^terminated \(promotion\)/);
    assert.equal(done.analysisRuns[1]?.metrics[0]?.measurements.length, 2);
    await recordHistory(handle, 'background-restart');
  });

  test('promote --full cancels a running step analysis and the release goes on', async () => {
    const p = canary('full-analysis', [{ kind: 'setWeight', weight: 10 }, { kind: 'analysis', analysis: analysis('slow') }, { kind: 'setWeight', weight: 50 }]);
    const handle = await h.begin(p, { runAnalysis: measuresUntilCancelled({ 'success-rate': [measurement('Successful', [0.999])] }) });
    await waitForStatus(handle, (s) => s.phase === 'Analyzing', 'analysis running');
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice', full: true }] });
    const done = await promoted(handle);
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(10)', 'runAnalysis', 'promoteCanary']);
    assert.equal(done.analysisRuns[0]?.phase, 'Successful');
    assert.match(done.analysisRuns[0]?.message ?? '', /^terminated \(promote --full\)/);
    assert.equal(done.analysisRuns[0]?.metrics[0]?.measurements.length, 1);
  });

  test('promote --full cancels a running blue/green analysis and switches', async () => {
    const p = bg('bg-full-analysis', { prePromotionAnalysis: analysis('smoke'), postPromotionAnalysis: analysis('post') });
    const handle = await h.begin(p, { runAnalysis: measuresUntilCancelled({}) });
    await waitForStatus(handle, (s) => s.phase === 'Analyzing', 'pre-promotion analysis running');
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice', full: true }] });
    await waitForStatus(handle, (s) => s.phase === 'Promoting' || s.phase === 'Promoted', 'promoting', 10_000);
    assert.deepEqual(h.trace(p).slice(0, 4), ['preflight', 'deployPreview', 'runAnalysis', 'switchActive(preview)'], 'the post-promotion analysis is skipped too');
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
  });

  test('an analysis cancelled by abort ends terminal with what it measured', async () => {
    const p = canary('abort-records', [{ kind: 'setWeight', weight: 10 }, { kind: 'analysis', analysis: analysis('slow') }]);
    const handle = await h.begin(p, { runAnalysis: measuresUntilCancelled({ 'success-rate': [measurement('Successful', [0.999]), measurement('Failed', [0.9])] }) });
    await waitForStatus(handle, (s) => s.phase === 'Analyzing', 'analysis running');
    await handle.signal(abortSignal, { by: 'alice' });
    const aborted = await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
    const run = aborted.analysisRuns[0];
    assert.notEqual(run?.phase, 'Running');
    assert.match(run?.message ?? '', /^terminated \(abort\)/);
    assert.deepEqual(run?.metrics[0]?.measurements.map((m) => m.phase), ['Successful', 'Failed']);
    assert.ok(run?.finishedAt);
    await handle.terminate('test done');
  });
});

describe('one release per workload', () => {
  test('workflow IDs are unambiguous and derived from the workload', () => {
    const a = releaseWorkflowId({ namespace: 'team-a', workload: { kind: 'Deployment', name: 'web' } });
    const b = releaseWorkflowId({ namespace: 'team', workload: { kind: 'Deployment', name: 'a-web' } });
    assert.notEqual(a, b);
    assert.equal(a, 'release_team-a_web');
    assert.equal(legacyReleaseWorkflowId({ namespace: 'team-a', name: 'web' }), legacyReleaseWorkflowId({ namespace: 'team', name: 'a-web' }), 'the earlier form was ambiguous');
  });

  test('two Releases of one Deployment cannot run at once', async () => {
    const workload = { kind: 'Deployment' as const, name: 'shared' };
    const first = canary('shared-a', [{ kind: 'pause' }], { workload });
    const second = canary('shared-b', [{ kind: 'pause' }], { workload });
    const handle = await h.begin(first);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'first release paused');
    await assert.rejects(h.begin(second), (err: unknown) => err instanceof WorkflowExecutionAlreadyStartedError && err.workflowId === 'release_tests_shared');
    await handle.terminate('test done');
  });

  test('a release started under the earlier ID form still runs', async () => {
    const p = canary('legacy-id', [{ kind: 'setWeight', weight: 10 }]);
    h.calls.set(legacyReleaseWorkflowId(p), []);
    const handle = await h.env.client.workflow.start('release', { taskQueue: h.taskQueue, workflowId: legacyReleaseWorkflowId(p), args: [{ plan: p, initiator: 'ci-bot' }] });
    assert.equal(((await releaseResult(handle)) as { outcome: string }).outcome, 'Promoted');
  });
});

describe('scale-down delays', () => {
  test('abort sends traffic to stable, then removes the canary after abortScaleDownDelaySeconds', async () => {
    const p = routed('abort-delay', [{ kind: 'setWeight', weight: 20 }, { kind: 'pause' }]);
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall' }] });
    const draining = await waitForStatus(handle, (s) => s.phase === 'Aborting' && /canary pods go in 30s/.test(s.message), 'traffic on stable, canary kept');
    assert.equal(draining.canaryWeight, 0);
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(20)', 'routeToStable'], 'no pod touched yet');
    await h.env.sleep('30s');
    await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
    assert.deepEqual(h.trace(p).slice(3), ['routeToStable', 'abortCanary']);
    assert.equal(timers((await handle.fetchHistory()).events ?? [])[0], 30, 'a durable timer of abortScaleDownDelaySeconds');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall' }] });
    await releaseResult(handle);
    await recordHistory(handle, 'abort-delay');
  });

  test('a failed promotion puts the stable back while the canary still carries all traffic, then keeps the canary abortScaleDownDelaySeconds', async () => {
    const p = routed('promote-fails', [{ kind: 'setWeight', weight: 50 }]);
    const handle = await h.begin(p, {
      promoteCanary: async () => {
        throw ApplicationFailure.nonRetryable('stable web did not progress', 'ProgressDeadlineExceeded');
      },
    });
    assert.equal((await releaseResult(handle)).outcome, 'RolledBack');
    // No early routeToStable: it would send traffic to a half-updated stable while the canary still serves.
    assert.deepEqual(h.trace(p).slice(3), ['setWeight(100)', 'promoteCanary', 'abortCanary', 'abortCanary']);
    assert.deepEqual(h.callsOf(p)[5]?.args[2], { keepCanary: true }, 'the first abortCanary puts stable back and routes to it, the canary kept');
    assert.equal(h.callsOf(p)[6]?.args[2], undefined, 'the second removes the canary');
    assert.deepEqual(timers((await handle.fetchHistory()).events ?? []).slice(0, 2), [30, 30], 'scaleDownDelaySeconds before the stable rolls, abortScaleDownDelaySeconds before the canary goes');
    await recordHistory(handle, 'promote-off-stable-fails');
  });

  test('abort puts what someone else changed during the release in the audit as drift', async () => {
    const p = canary('abort-drift', [{ kind: 'setWeight', weight: 20 }, { kind: 'pause' }]);
    const handle = await h.begin(p, { abortCanary: async () => ({ drift: ['stable web runs registry.local/app:hotfix, set by someone else: left as it is'] }) });
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall' }] });
    const s = await waitForStatus(handle, (x) => x.phase === 'Aborted', 'aborted');
    const drift = s.audit.filter((a) => a.action === 'drift');
    assert.deepEqual(drift.map((a) => a.detail), ['stable web runs registry.local/app:hotfix, set by someone else: left as it is']);
    await handle.terminate('test done');
  });

  test('abort --immediate skips the scale-down delay', async () => {
    const p = routed('abort-immediate', [{ kind: 'setWeight', weight: 20 }, { kind: 'pause' }], {});
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall', immediate: true }] });
    await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
    assert.deepEqual(h.trace(p).slice(3), ['abortCanary']);
    assert.ok(!timers((await handle.fetchHistory()).events ?? []).includes(30), 'no scale-down timer');
    await handle.terminate('test done');
  });

  test('promotion with a router moves traffic off the pods before they go: canary at 100 %, delay, stable rolls, traffic back, delay, canary goes', async () => {
    const p = routed('promote-delay', [{ kind: 'setWeight', weight: 50 }], {});
    (p.strategy as { scaleDownDelaySeconds?: number }).scaleDownDelaySeconds = 45;
    const handle = await h.begin(p);
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    assert.deepEqual(h.trace(p).slice(3), ['setWeight(100)', 'promoteCanary', 'removeCanary']);
    assert.deepEqual(h.callsOf(p)[4]?.args[1], { keepCanary: true, pinStable: true }, 'promotion stops once traffic is on the new stable pods');
    const history = (await handle.fetchHistory()).events ?? [];
    assert.deepEqual(timers(history), [45, 45]);
    // The order of commands: weight 100, timer, promoteCanary, timer, removeCanary.
    const order = history.flatMap((e) => (e.timerStartedEventAttributes ? ['timer'] : e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name ?? ''] : []));
    // (After them the promotion hands the workload to its drift watch: driftFollowPromotion.)
    assert.deepEqual(order.slice(0, order.lastIndexOf('removeCanary') + 1).slice(-5), ['setWeight', 'timer', 'promoteCanary', 'timer', 'removeCanary']);
    await recordHistory(handle, 'promote-off-stable');
  });

  test('promotion with a router and scaleDownDelaySeconds 0: the same order without timers', async () => {
    const p = routed('promote-no-delay', [{ kind: 'setWeight', weight: 50 }], {});
    (p.strategy as { scaleDownDelaySeconds?: number }).scaleDownDelaySeconds = 0;
    const handle = await h.begin(p);
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    assert.deepEqual(h.trace(p).slice(3), ['setWeight(100)', 'promoteCanary', 'removeCanary']);
    assert.deepEqual(timers((await handle.fetchHistory()).events ?? []), []);
  });

  test('a blue/green abort after the switch keeps the preview abortScaleDownDelaySeconds', async () => {
    const p = bg('bg-abort-delay', { autoPromotionEnabled: true, postPromotionAnalysis: analysis('smoke'), abortScaleDownDelaySeconds: 20 });
    const handle = await h.begin(p, { runAnalysis: async (_t, run) => ({ metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Failed', [0.5])] })), terminated: false }) });
    assert.equal((await releaseResult(handle)).outcome, 'RolledBack');
    assert.deepEqual(h.trace(p).slice(-2), ['switchActive(stable)', 'abortBlueGreen']);
    assert.equal(timers((await handle.fetchHistory()).events ?? [])[0], 20);
  });
});

describe('cancellation', () => {
  test('abort waits for a cancelled activity before cleanup', async () => {
    const p = canary('late-write', [{ kind: 'setWeight', weight: 10 }, { kind: 'setWeight', weight: 30 }]);
    const order: string[] = [];
    const handle = await h.begin(p, {
      setWeight: async (_t, weight) => {
        if (weight === 10) return { canaryReplicas: 1 };
        const ctx = Context.current();
        const beat = setInterval(() => ctx.heartbeat(), 50);
        try {
          await ctx.cancelled;
        } catch {
          // a write already on its way lands after the cancellation was requested
          await new Promise((r) => setTimeout(r, 500));
          order.push('setWeight(30) wrote');
        } finally {
          clearInterval(beat);
        }
        throw new CancelledFailure('cancelled');
      },
      abortCanary: async () => void order.push('abortCanary'),
    });
    await waitForStatus(handle, (s) => s.step.index === 1 && s.phase === 'Progressing', 'second setWeight running');
    await until(() => h.trace(p).includes('setWeight(30)'), 'setWeight(30) started');
    await handle.signal(abortSignal, { by: 'oncall' });
    await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
    await until(() => order.length === 2, 'both writes');
    assert.deepEqual(order, ['setWeight(30) wrote', 'abortCanary'], 'cleanup runs after the cancelled write, never before it');
    await handle.terminate('test done');
  });
});

describe('approvals', () => {
  const twoGates = (name: string): ReleasePlan =>
    canary(name, [
      { kind: 'setWeight', weight: 10 },
      { kind: 'approval', approvers: ['alice', 'bob'], minApprovals: 1, onTimeout: 'abort' },
      { kind: 'setWeight', weight: 20 },
      { kind: 'approval', approvers: ['alice', 'bob'], minApprovals: 1, onTimeout: 'abort' },
      { kind: 'setWeight', weight: 50 },
    ]);

  test('approvals are bound to their step and attempt', async () => {
    const p = twoGates('bound-approvals');
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval' && s.approvals?.step === 1, 'gate at step 1');
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice', step: 1, attempt: 1 }] });
    await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval' && s.approvals?.step === 3, 'gate at step 3');
    // A delayed approval for step 1 does not count at step 3, nor one for another attempt.
    await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ by: 'bob', step: 1 }] }), (err: unknown) => /approval for step 2 does not count: the pending approval gate is step 4/.test(causeOf(err)));
    await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ by: 'bob', step: 3, attempt: 2 }] }), (err: unknown) => /approval for attempt 2 does not count: .* is on attempt 1/.test(causeOf(err)));
    await handle.signal(approveSignal, { by: 'bob', step: 1 });
    const ignored = await waitForStatus(handle, (s) => s.rejectedSignals?.last.some((a) => a.by === 'bob') === true, 'the stale signal recorded');
    assert.match(ignored.rejectedSignals?.last.at(-1)?.detail ?? '', /approval for step 2 does not count/);
    assert.equal(ignored.approvals?.granted.length, 0);
    // A Temporal-CLI signal without step or attempt counts for the gate pending now.
    await handle.signal(approveSignal, { by: 'bob' });
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    await recordHistory(handle, 'bound-approvals');
  });

  test('approval status lists who can still approve', async () => {
    const p = canary('eligible-approvers', [{ kind: 'approval', approvers: ['alice', 'bob', 'carol', 'ci-bot'], minApprovals: 2, onTimeout: 'abort' }]);
    const handle = await h.begin(p, {}, 'ci-bot');
    const gate = await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'gate');
    assert.deepEqual(gate.approvals?.eligible, ['alice', 'bob', 'carol'], 'not the initiator');
    assert.match(gate.message, /from alice, bob, carol$/);
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] });
    const one = await handle.query(statusQuery);
    assert.deepEqual(one.approvals?.eligible, ['alice', 'carol'], 'not those who approved');
    await handle.terminate('test done');
  });

  test('an approval gate the initiator would leave unreachable is refused at start, by name', async () => {
    const p = canary('unreachable-gate', [{ kind: 'approval', approvers: ['ci-bot', 'alice'], minApprovals: 2, onTimeout: 'abort' }]);
    const handle = await h.begin(p, {}, 'ci-bot');
    await assert.rejects(handle.result(), (err: unknown) => err instanceof WorkflowFailedError && /strategy\.steps\.0\.minApprovals: needs 2 approval\(s\), but ci-bot starts this release and may not approve it/.test(String(err.cause?.message)));
    assert.deepEqual(h.trace(p), []);
    // Without the initiator, the plan's own check: more approvals than approvers.
    assert.match(planProblems(canary('x', [{ kind: 'approval', approvers: ['alice'], minApprovals: 2, onTimeout: 'abort' }])).join(), /strategy\.steps\.0\.minApprovals: needs 2 approvals but only 1 distinct approver/);
  });
});

describe('Argo alignment', () => {
  test('setCanaryScale with replicas holds the canary size until matchTrafficWeight', async () => {
    const p = routed('pinned-scale', [
      { kind: 'setCanaryScale', replicas: 2 },
      { kind: 'setWeight', weight: 20 },
      { kind: 'setCanaryScale', matchTrafficWeight: true },
      { kind: 'setWeight', weight: 50 },
    ]);
    const handle = await h.begin(p);
    await releaseResult(handle);
    assert.deepEqual(h.trace(p).slice(2, 6), ['setCanaryScale', 'routeWeight', 'setCanaryScale', 'setWeight(50)']);
  });

  test('autoPromotionSeconds counts from the preview being ready, as Argo does', async () => {
    const p = bg('bg-auto-count', { autoPromotionEnabled: true, autoPromotionSeconds: 300, prePromotionAnalysis: analysis('smoke') });
    const handle = await h.begin(p, {
      runAnalysis: async (_t, run) => {
        await new Promise((r) => setTimeout(r, 1_500)); // the analysis takes workflow time too (the server's clock runs in real time while an activity does)
        return { metrics: run.metrics.map((m) => ({ name: m.name, measurements: Array.from({ length: m.count ?? 1 }, () => measurement('Successful', [1])) })), terminated: false };
      },
    });
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    const [auto] = timers((await handle.fetchHistory()).events ?? []);
    assert.ok(auto !== undefined && auto < 299 && auto >= 290, `auto-promotion timer ${auto}s: what is left of 300 s after the analysis`);
  });
});

describe('versioning', () => {
  test('validation is recorded once: a plan today’s rules reject still replays', async () => {
    const p = canary('validated-once', [{ kind: 'setWeight', weight: 10 }]);
    const handle = await h.begin(p);
    await releaseResult(handle);
    const history = await handle.fetchHistory();
    // Tighten the rules after the fact: the recorded plan now breaks them (a weight over 100).
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    const payload = started?.input?.payloads?.[0];
    assert.ok(payload?.data);
    const input = JSON.parse(Buffer.from(payload.data).toString('utf8')) as { plan: ReleasePlan };
    (input.plan.strategy as { steps: CanaryStep[] }).steps[0] = { kind: 'setWeight', weight: 150 };
    payload.data = Buffer.from(JSON.stringify(input), 'utf8');
    assert.ok(planProblems(input.plan).length > 0, 'today’s rules reject the recorded plan');
    await Worker.runReplayHistory({ workflowBundle: await Harness.workflowBundle() }, history, handle.workflowId);
  });
});

// Last in the file: on the Java test server, time skipping stayed locked for the tests that followed this one.
describe('update replies', () => {
  test('update replies show the state after the action took effect', async () => {
    const p = canary('reply-state', [
      { kind: 'setWeight', weight: 10 },
      { kind: 'pause' },
      { kind: 'approval', approvers: ['alice'], minApprovals: 1, onTimeout: 'abort' },
      { kind: 'pause' },
      { kind: 'setWeight', weight: 50 },
      { kind: 'pause' },
    ]);
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused');
    const promotedReply = await handle.executeUpdate(promoteUpdate, { args: [{ by: 'bob' }] });
    assert.equal(promotedReply.phase, 'AwaitingApproval', 'promote replies with the gate it reached, not Paused');
    assert.equal(promotedReply.step.index, 2);
    const approvedReply = await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] });
    assert.equal(approvedReply.approvals, undefined, 'no "awaiting 0 more"');
    assert.deepEqual([approvedReply.phase, approvedReply.step.index], ['Paused', 3]);
    const abortedReply = await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall' }] });
    assert.ok(['Aborting', 'Aborted'].includes(abortedReply.phase), `abort replies ${abortedReply.phase}`);
    // Ends by itself: terminated mid-cleanup, its pending task would hold the server's clock for the next file.
    assert.equal((await releaseResult(handle)).outcome, 'Aborted');
  });

  // From the last pause to promotion the release passes several awaits that wait on nothing (the
  // background analysis, the freeze and gate checks) before it enters the promotion; the reply waits
  // for it (workflows/release/reply-turns.ts; test/workflows/reply-turns.test.ts shows the turns).
  test('a promote at the last pause replies with the promotion under way, not Paused', async () => {
    const p = canary('reply-last-pause', [{ kind: 'setWeight', weight: 20 }, { kind: 'pause' }]);
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused');
    const reply = await handle.executeUpdate(promoteUpdate, { args: [{ by: 'bob' }] });
    assert.deepEqual([reply.phase, reply.step.index, reply.step.kind], ['Promoting', 2, 'promote'], reply.message);
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
  });
});
