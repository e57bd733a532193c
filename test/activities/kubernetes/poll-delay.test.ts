/**
 * How often a rollout wait reads its Deployment (activities/kubernetes/poll-delay.ts): the steady
 * interval while the Deployment moves, and at most a tenth of the stall (up to 5 s) while it does not.
 * Pure: the wait reads a fake Deployment, resumed from a heartbeat that says how long nothing has moved.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Deployment } from '@kubernetes/client-node';
import { STALLED_POLL_MAX_MS, stalledPollInterval } from '../../../activities/kubernetes/poll-delay.ts';
import { progressMark, waitForRollout } from '../../../activities/kubernetes/rollout.ts';

test('the interval: the steady one while moving, a tenth of the stall past it, never above the cap', () => {
  assert.equal(stalledPollInterval(500, 0), 500);
  assert.equal(stalledPollInterval(500, 4_999), 500);
  assert.equal(stalledPollInterval(500, 20_000), 2_000);
  assert.equal(stalledPollInterval(500, 600_000), STALLED_POLL_MAX_MS);
  assert.equal(stalledPollInterval(8_000, 600_000), 8_000, 'a steady interval above the cap stays');
});

/** Reads of a Deployment of 1,000 replicas during `ms` of real time; `moving`: one more pod updated at each read. */
async function readsWithin(ms: number, moving: boolean, stalledFor: number): Promise<number> {
  let reads = 0;
  const deployment = (): V1Deployment => ({
    metadata: { namespace: 'shop', name: 'web', generation: 1 },
    spec: { replicas: 1000, selector: {}, template: {} },
    status: { observedGeneration: 1, replicas: 1000, updatedReplicas: moving ? reads : 0, readyReplicas: 0, availableReplicas: 0 },
  });
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(new Error('enough')), ms);
  // As a retried activity resumes its wait: the last heartbeat says the Deployment has not moved for `stalledFor`.
  const resumeFrom = { waiting: 'Deployment shop/web', progress: progressMark(deployment()), progressAt: Date.now() - stalledFor, elapsedMs: stalledFor };
  try {
    await assert.rejects(
      waitForRollout(async () => (reads++, deployment()), 'Deployment shop/web', { pollIntervalMs: 50, heartbeat: () => undefined, signal: stop.signal, resumeFrom }),
      /enough/,
    );
  } finally {
    clearTimeout(timer);
  }
  return reads;
}

test('a wait on a Deployment stalled for a minute reads it a few times, not every steady interval', async () => {
  const stalled = await readsWithin(2_000, false, 60_000);
  const moving = await readsWithin(2_000, true, 60_000);
  // Stalled: 50, 100, 200, 400, 800 ms... apart (a tenth of 60 s caps at 5 s): 6 reads in 2 s. Moving: every 50 ms.
  assert.ok(stalled <= 8, `stalled: ${stalled} reads in 2 s`);
  assert.ok(moving >= 20, `moving: ${moving} reads in 2 s`);
});
