/**
 * How a release ends where Temporal shows status, under time skipping: Promoted completes;
 * RolledBack, Aborted and Failed fail with a non-retryable ApplicationFailure named after the
 * outcome, the reason as its message and the ReleaseResult in its details. The Temporal UI's
 * current details follow the release, and its step numbers are 1-based like the CLI's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { abortUpdate, promoteUpdate, statusQuery, type ReleaseResult } from '../../workflows/messages.ts';
import { Harness, analysis, canary, measurement, metric, recordHistory, waitForStatus } from './harness.ts';

const h = new Harness();
before(() => h.start());
after(() => h.stop());

/** The failure the workflow ended with, checked to be the outcome's, non-retryable, with the result in its details. */
async function failedWith(handle: WorkflowHandle, outcome: string): Promise<ReleaseResult> {
  const err = await handle.result().then(
    (r: unknown) => assert.fail(`the workflow completed with ${JSON.stringify(r)}; it should fail with ${outcome}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, `not a WorkflowFailedError: ${String(err)}`);
  const cause = err.cause;
  assert.ok(cause instanceof ApplicationFailure, `cause is not an ApplicationFailure: ${String(cause)}`);
  assert.equal(cause.type, outcome);
  assert.equal(cause.nonRetryable, true);
  const result = cause.details?.[0] as ReleaseResult;
  assert.equal(result.outcome, outcome);
  assert.equal(cause.message, result.reason);
  assert.deepEqual(result, (await handle.query(statusQuery)).result, 'the details hold the result the status reports');
  assert.equal((await handle.describe()).status.name, 'FAILED');
  return result;
}

/** The Temporal UI's current details (the workflow metadata query). */
async function currentDetails(handle: WorkflowHandle): Promise<string> {
  const meta = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
  return meta.currentDetails ?? '';
}

describe('release outcome as workflow status', () => {
  test('a rollback fails the workflow as RolledBack, the result in its details', async () => {
    const p = canary('outcome-rollback', [{ kind: 'setWeight', weight: 10 }, { kind: 'analysis', analysis: analysis('success-rate', [metric('error-rate', { failureLimit: 0 })]) }]);
    const handle = await h.begin(p, {
      runAnalysis: async (_t, run) => ({ metrics: run.metrics.map((m) => ({ name: m.name, measurements: [measurement('Failed', [0.9])] })), terminated: false }),
    });
    const result = await failedWith(handle, 'RolledBack');
    assert.match(result.reason, /analysis success-rate \(step 2\) Failed/, 'the analysis at index 1 is step 2');
    assert.match(await currentDetails(handle), /^RolledBack/);
    await recordHistory(handle, 'outcome-rollback');
  });

  test('an abort fails the workflow as Aborted; current details and messages number steps from 1', async () => {
    const p = canary('outcome-abort', [{ kind: 'setWeight', weight: 10 }, { kind: 'pause' }, { kind: 'setWeight', weight: 50 }]);
    const handle = await h.begin(p);
    const paused = await waitForStatus(handle, (s) => s.phase === 'Paused', 'pause');
    assert.equal(paused.step.index, 1, 'status.step.index stays 0-based');
    assert.equal(paused.message, 'step 2: paused until promoted');
    assert.equal(await currentDetails(handle), 'Paused · step 2 of 3 pause · step 2: paused until promoted');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall', reason: 'latency up' }] });
    await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall', reason: 'no retry' }] }); // closes it
    const result = await failedWith(handle, 'Aborted');
    assert.match(result.reason, /aborted by oncall: latency up/);
    await recordHistory(handle, 'outcome-abort');
  });

  test('a preflight that fails for good fails the workflow as Failed', async () => {
    const p = canary('outcome-failed', [{ kind: 'setWeight', weight: 10 }]);
    const handle = await h.begin(p, {
      preflight: async () => {
        throw ApplicationFailure.nonRetryable('deployment web not found', 'NotFound');
      },
    });
    const result = await failedWith(handle, 'Failed');
    assert.match(result.reason, /deployment web not found/);
    await recordHistory(handle, 'outcome-failed');
  });

  test('a promotion completes the workflow with the result', async () => {
    const p = canary('outcome-promoted', [{ kind: 'setWeight', weight: 10 }, { kind: 'pause' }]);
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'pause');
    await handle.executeUpdate(promoteUpdate, { args: [{ by: 'alice' }] });
    const result = await handle.result();
    assert.equal(result.outcome, 'Promoted');
    assert.equal((await handle.describe()).status.name, 'COMPLETED');
    assert.match(await currentDetails(handle), /^Promoted · promoted /);
    await recordHistory(handle, 'outcome-promoted');
  });
});
