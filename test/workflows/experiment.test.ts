/**
 * The experiment step under time skipping (stubbed, recorded activities): its workloads start before
 * its analyses, the analyses get the running templates' pod-template-hashes, the step lasts its
 * duration, and its workloads are removed after it — and before the canary goes when an analysis
 * fails, the release is aborted, or the step's own removal failed. Weighted templates: the router
 * gets their Services at their weights once they run, and loses them before their workloads go.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type { ExperimentStep } from '../../model/experiment.ts';
import { JUDGE_FAILURE_CONDITION, JUDGE_SUCCESS_CONDITION, isJudgeValue, judgeValue } from '../../model/judge-provider.ts';
import { judge } from '../../model/judge.ts';
import type { AnalysisRunSpec, MetricSpec } from '../../model/types.ts';
import { abortUpdate, statusQuery } from '../../workflows/messages.ts';
import { Harness, analysis, canary, measurement, metric, plan, recordHistory, releaseResult, waitForStatus } from './harness.ts';
import type { CanaryStep } from '../../model/types.ts';

const h = new Harness();
before(() => h.start());
after(() => h.stop());

function experiment(extra: Partial<ExperimentStep> = {}): ExperimentStep {
  const run = { ...analysis('compare', [metric('latency', { count: 2 })]), args: { 'baseline-hash': { value: '{{templates.baseline.podTemplateHash}}' }, 'canary-rs': { value: 'rs={{ templates.canary.replicaset.name }}' } } };
  return {
    kind: 'experiment',
    durationMs: 600_000,
    templates: [
      { name: 'baseline', specRef: 'stable', replicas: 1 },
      { name: 'canary', specRef: 'canary', replicas: 1 },
    ],
    analyses: [{ name: 'compare', run, requiredForCompletion: false }],
    ...extra,
  };
}

describe('experiment step', () => {
  test('workloads first, analyses with the templates\' hashes for the duration, workloads removed, then the next step', async () => {
    const p = canary('exp-happy', [{ kind: 'setWeight', weight: 20 }, experiment(), { kind: 'setWeight', weight: 40 }]);
    const handle = await h.begin(p);
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Promoted');
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(20)', 'startExperiment', 'runAnalysis', 'removeExperiment', 'setWeight(40)', 'promoteCanary']);
    const start = h.callsOf(p).find((c) => c.name === 'startExperiment');
    assert.equal(start?.args[1], 1);
    const run = h.callsOf(p).find((c) => c.name === 'runAnalysis')?.args[1] as { args: Record<string, { value: string }> };
    assert.deepEqual(run.args, { 'baseline-hash': { value: 'hash-baseline' }, 'canary-rs': { value: 'rs=app-exp-canary-hash-canary' } });
    // The step lasted its duration: one durable timer of 600 s (the analysis, not required, completed before it).
    const history = await handle.fetchHistory();
    const timers = (history.events ?? []).filter((e) => e.timerStartedEventAttributes).map((e) => Number(e.timerStartedEventAttributes?.startToFireTimeout?.seconds));
    assert.deepEqual(timers, [600]);
    const status = await handle.query(statusQuery);
    assert.ok(status.audit.some((a) => a.action === 'experiment' && /step 2: experiment Successful: the duration passed/.test(a.detail ?? '')), JSON.stringify(status.audit));
    await recordHistory(handle, 'experiment-happy-path');
  });

  /** A canary through Istio whose experiment gives its templates 10% each (canary: a named Service). */
  const weighted = (name: string, durationMs: number) => {
    const step = experiment({ durationMs });
    step.templates = [
      { name: 'baseline', specRef: 'stable', replicas: 1, weight: 10 },
      { name: 'canary', specRef: 'canary', replicas: 1, weight: 15, service: { name: 'web-exp' } },
    ];
    const steps: CanaryStep[] = [{ kind: 'setWeight', weight: 20 }, step, { kind: 'setWeight', weight: 40 }];
    return plan(name, { type: 'canary', steps, stableService: 'app-stable', canaryService: 'app-canary', trafficRouting: { istio: { virtualService: { name: 'app', routes: ['primary'] } } } });
  };
  const routes = (p: ReturnType<typeof weighted>) => h.callsOf(p).filter((c) => c.name === 'routeExperiment').map((c) => [c.args[1], c.args[2]]);

  test('weighted templates: the router carries their Services at their weights while the step runs, then loses them before the workloads go', async () => {
    const p = weighted('exp-weights', 600_000);
    const handle = await h.begin(p);
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(20)', 'startExperiment', 'routeExperiment', 'runAnalysis', 'routeExperiment', 'removeExperiment', 'setWeight(40)', 'setWeight(100)', 'promoteCanary', 'removeCanary']);
    assert.deepEqual(routes(p), [
      [20, [{ service: 'app-exp-baseline', weight: 10 }, { service: 'web-exp', weight: 15 }]],
      [20, []],
    ]);
    const status = await handle.query(statusQuery);
    assert.ok(status.audit.some((a) => /step 2: traffic: canary 20%, app-exp-baseline 10%, web-exp 15%, stable the rest/.test(a.detail ?? '')), JSON.stringify(status.audit));
    await recordHistory(handle, 'experiment-weights');
  });

  test('abort while a weighted experiment runs: traffic leaves its Services first, then its workloads go, then the canary', async () => {
    const p = weighted('exp-weights-abort', 3_600_000);
    const handle = await h.begin(p, {
      runAnalysis: async () => {
        const ctx = Context.current();
        const beat = setInterval(() => ctx.heartbeat(), 50);
        try {
          await ctx.cancelled;
        } catch {
          // cancelled by the abort
        } finally {
          clearInterval(beat);
        }
        throw ApplicationFailure.nonRetryable('unreachable');
      },
    });
    await waitForStatus(handle, (s) => s.phase === 'Analyzing' && s.step.kind === 'experiment', 'experiment running');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall', reason: 'stop it' }] });
    assert.equal((await releaseResult(handle)).outcome, 'Aborted');
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(20)', 'startExperiment', 'routeExperiment', 'runAnalysis', 'routeExperiment', 'removeExperiment', 'routeToStable', 'abortCanary']);
    assert.deepEqual(routes(p)[1], [20, []]);
    await recordHistory(handle, 'experiment-weights-abort');
  });

  test('when taking the traffic back fails, no workload goes until the rollback has taken it back', async () => {
    const p = weighted('exp-weights-unroute', 60_000);
    let calls = 0;
    const handle = await h.begin(p, {
      routeExperiment: async () => {
        calls++;
        if (calls === 2) throw ApplicationFailure.nonRetryable('VirtualService tests/app: forbidden');
      },
    });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(20)', 'startExperiment', 'routeExperiment', 'runAnalysis', 'routeExperiment', 'routeToStable', 'routeExperiment', 'removeExperiment', 'abortCanary']);
  });

  test('a required analysis ends the step when it succeeds, before the duration', async () => {
    const step = experiment({ durationMs: 3_600_000 });
    (step.analyses[0] as { requiredForCompletion: boolean }).requiredForCompletion = true;
    const p = canary('exp-required', [step]);
    const handle = await h.begin(p);
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    const history = await handle.fetchHistory();
    const fired = (history.events ?? []).filter((e) => e.timerFiredEventAttributes).length;
    assert.equal(fired, 0, 'the one-hour timer never fired');
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'startExperiment', 'runAnalysis', 'removeExperiment', 'promoteCanary']);
  });

  test('a failing analysis rolls back: the experiment is removed, then the canary', async () => {
    const p = canary('exp-fail', [{ kind: 'setWeight', weight: 20 }, experiment(), { kind: 'setWeight', weight: 40 }]);
    const handle = await h.begin(p, {
      runAnalysis: async (_t, run) => ({ metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Failed', [0.5])] })), terminated: false }),
    });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.match(result.reason, /experiment \(step 2\) Failed: analysis compare Failed/);
    assert.equal(result.analysis?.name, 'compare');
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(20)', 'startExperiment', 'runAnalysis', 'removeExperiment', 'abortCanary']);
  });

  test('abort while the experiment runs: its analysis is cancelled, its workloads removed, then the canary', async () => {
    const p = canary('exp-abort', [{ kind: 'setWeight', weight: 20 }, experiment({ durationMs: 3_600_000 })]);
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
        throw ApplicationFailure.nonRetryable('unreachable');
      },
    });
    await waitForStatus(handle, (s) => s.phase === 'Analyzing' && s.step.kind === 'experiment', 'experiment running');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall', reason: 'stop it' }] });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Aborted');
    assert.ok(cancelled, 'the analysis activity saw the cancellation');
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(20)', 'startExperiment', 'runAnalysis', 'removeExperiment', 'abortCanary']);
    await recordHistory(handle, 'experiment-abort');
  });

  test('when the step cannot remove its workloads, the rollback removes them before the canary goes', async () => {
    const p = canary('exp-cleanup', [experiment()]);
    let removals = 0;
    const handle = await h.begin(p, {
      removeExperiment: async () => {
        removals++;
        if (removals === 1) throw ApplicationFailure.nonRetryable('Deployment tests/app-exp-baseline: forbidden');
        return { removed: ['app-exp-baseline', 'app-exp-canary'] };
      },
    });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.match(result.reason, /forbidden/);
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'startExperiment', 'runAnalysis', 'removeExperiment', 'removeExperiment', 'abortCanary']);
    const status = await handle.query(statusQuery);
    assert.ok(status.audit.some((a) => a.action === 'experiment' && /removed app-exp-baseline, app-exp-canary/.test(a.detail ?? '')));
  });

  test('an inconclusive experiment waits for a human after removing its workloads', async () => {
    const p = canary('exp-inconclusive', [experiment()]);
    const handle = await h.begin(p, {
      runAnalysis: async (_t, run) => ({ metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Inconclusive', [0.9])] })), terminated: false }),
    });
    const paused = await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused on an inconclusive experiment');
    assert.match(paused.message, /experiment \(step 1\) inconclusive/);
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'startExperiment', 'runAnalysis', 'removeExperiment']);
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall', reason: 'no' }] });
    assert.equal((await releaseResult(handle)).outcome, 'Aborted');
  });

  describe('baseline-vs-canary judgement', () => {
    /** Latency samples (ms) a fresh baseline measured over the lookback. */
    const BASELINE = [5, 6, 5, 6, 5, 6, 5, 6, 5, 7];
    const judgeMetricSpec: MetricSpec = metric('baseline-vs-canary', {
      count: 1,
      successCondition: JUDGE_SUCCESS_CONDITION,
      failureCondition: JUDGE_FAILURE_CONDITION,
      provider: { judge: { address: 'http://127.0.0.1:9090', lookback: '10s', step: '1s', metrics: [{ name: 'latency', baseline: 'b', canary: 'c', direction: 'increase', critical: true }] } },
    });
    /** runAnalysis judging the given canary samples against BASELINE with the real judge; the phase is the conditions' (Pass → Successful, Fail → Failed). */
    const judging = (canarySamples: number[]) => async (_t: unknown, run: AnalysisRunSpec) => {
      const value = judgeValue(judge([{ name: 'latency', canary: canarySamples, baseline: BASELINE, direction: 'increase', critical: true }]));
      const phase = value.verdict === 'Pass' ? 'Successful' : value.verdict === 'Fail' ? 'Failed' : 'Inconclusive';
      return { metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement(phase, value)] })), terminated: false };
    };
    const judged = (extra: Partial<ExperimentStep> = {}) => experiment({ analyses: [{ name: 'judge', run: { ...analysis('judge', [judgeMetricSpec]), args: {} }, requiredForCompletion: true }], ...extra });

    test('a canary measurably slower than its baseline rolls back, with the judge\'s figures in the audit and the analysis record', async () => {
      const p = canary('exp-judge-fail', [{ kind: 'setWeight', weight: 20 }, judged(), { kind: 'setWeight', weight: 40 }]);
      const handle = await h.begin(p, { runAnalysis: judging([40, 41, 42, 43, 44, 45, 46, 47, 48, 49]) });
      const result = await releaseResult(handle);
      assert.equal(result.outcome, 'RolledBack');
      assert.match(result.reason, /experiment \(step 2\) Failed: analysis judge Failed/);
      assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(20)', 'startExperiment', 'runAnalysis', 'removeExperiment', 'abortCanary']);
      const status = await handle.query(statusQuery);
      const lines = status.audit.filter((a) => a.action === 'judge').map((a) => a.detail ?? '');
      assert.equal(lines.length, 1, JSON.stringify(status.audit));
      assert.match(lines[0] ?? '', /^step 2: judge: baseline-vs-canary: Fail, score 0\.0 \(.+\); latency High: canary median 44\.5 \(n 10\) vs baseline median 5\.5 \(n 10\), U 100, p 0\.0000769$/);
      const value = result.analysis?.metrics[0]?.measurements.at(-1)?.value;
      assert.ok(isJudgeValue(value), JSON.stringify(result.analysis));
      assert.equal(value.verdict, 'Fail');
      assert.equal(value.metrics[0]?.u, 100);
      assert.equal(value.metrics[0]?.canary.median, 44.5);
      assert.equal(value.metrics[0]?.baseline.median, 5.5);
      const run = status.analysisRuns.find((x) => x.name === 'judge');
      assert.equal(run?.phase, 'Failed');
    });

    test('a canary as fast as its baseline passes the judge and the release is promoted, with the figures in the audit', async () => {
      const p = canary('exp-judge-pass', [{ kind: 'setWeight', weight: 20 }, judged()]);
      const handle = await h.begin(p, { runAnalysis: judging([6, 5, 6, 5, 6, 5, 7, 5, 6, 5]) });
      const result = await releaseResult(handle);
      assert.equal(result.outcome, 'Promoted');
      assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(20)', 'startExperiment', 'runAnalysis', 'removeExperiment', 'promoteCanary']);
      const status = await handle.query(statusQuery);
      const lines = status.audit.filter((a) => a.action === 'judge').map((a) => a.detail ?? '');
      assert.equal(lines.length, 1, JSON.stringify(status.audit));
      assert.match(lines[0] ?? '', /^step 2: judge: baseline-vs-canary: Pass, score 100\.0 \(.+\); latency Pass: canary median 5\.5 \(n 10\) vs baseline median 5\.5 \(n 10\), U [\d.]+, p [\d.]+/);
    });
  });
});
