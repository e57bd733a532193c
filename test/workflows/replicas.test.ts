/**
 * A release plan with a desired replica count (a release group's per-cluster override), under time
 * skipping: every workload activity is told the count, a plan without one tells none, and the
 * start-time check refuses a count that cannot apply before anything is touched.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ReleaseTarget } from '../../activities/contract.ts';
import { Harness, canary, plan, releaseResult } from './harness.ts';

const h = new Harness();
before(() => h.start());
after(() => h.stop());

/** The desired count each call's target carried, as `name:count` (`-` for none). */
function countsOf(p: Parameters<Harness['callsOf']>[0]): string[] {
  return h.callsOf(p).map((c) => {
    const t = c.args[0] as Partial<ReleaseTarget> | undefined;
    return `${c.name}:${t && typeof t === 'object' && 'replicas' in t ? String(t.replicas) : '-'}`;
  });
}

describe('a desired replica count', () => {
  test('canary: preflight, the canary\'s sizing, promotion and abort are each told the count', async () => {
    const p = canary('rep-canary', [{ kind: 'setWeight', weight: 50 }], { cluster: 'prod-us', replicas: 6 });
    assert.equal((await releaseResult(await h.begin(p))).outcome, 'Promoted');
    assert.deepEqual(countsOf(p), ['preflight:6', 'ensureCanary:6', 'setWeight:6', 'promoteCanary:6']);

    const failing = canary('rep-abort', [{ kind: 'setWeight', weight: 50 }], { cluster: 'prod-us', replicas: 6, retryWindowSeconds: 0 });
    const result = await releaseResult(await h.begin(failing, { promoteCanary: async () => Promise.reject(ApplicationFailure.nonRetryable('stable never became ready', 'ProgressDeadlineExceeded')) }));
    assert.notEqual(result.outcome, 'Promoted');
    assert.ok(countsOf(failing).includes('abortCanary:6'), countsOf(failing).join(', '));
  });

  test('blue/green: the preview, the switch and finalize are told the count; without one, no call is', async () => {
    const bg = plan('rep-bg', { type: 'blueGreen', activeService: 'rep-bg', autoPromotionEnabled: true, scaleDownDelaySeconds: 0 }, { replicas: 3 });
    assert.equal((await releaseResult(await h.begin(bg))).outcome, 'Promoted');
    const calls = countsOf(bg);
    assert.ok(calls.length > 0 && calls.every((c) => c.endsWith(':3')), calls.join(', '));
    assert.ok(['deployPreview:3', 'finalizeBlueGreen:3'].every((c) => calls.includes(c)), calls.join(', '));

    const none = canary('rep-none', [{ kind: 'setWeight', weight: 50 }]);
    assert.equal((await releaseResult(await h.begin(none))).outcome, 'Promoted');
    assert.ok(countsOf(none).every((c) => c.endsWith(':-')), countsOf(none).join(', '));
  });

  test('the start-time check refuses a fractional count and a count for strategy.rolling, touching nothing', async () => {
    for (const [p, why] of [
      [canary('rep-frac', [{ kind: 'setWeight', weight: 50 }], { replicas: 2.5 }), /invalid release plan: replicas: must be a whole number/],
      [plan('rep-rolling', { type: 'rolling', steps: [{ kind: 'batch', replicas: 1 }] }, { workload: { kind: 'StatefulSet', name: 'rep-rolling' }, replicas: 3 }), /invalid release plan: replicas: a desired replica count is for canary and blue\/green releases of a Deployment/],
    ] as const) {
      const handle = await h.begin(p);
      await assert.rejects(handle.result(), (e: unknown) => {
        assert.ok(e instanceof WorkflowFailedError, String(e));
        assert.match(e.cause?.message ?? '', why);
        return true;
      });
      assert.deepEqual(h.callsOf(p), [], `${p.name}: no activity ran`);
    }
  });
});
