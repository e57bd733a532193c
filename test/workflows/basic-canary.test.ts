/**
 * A canary without a router whose spec sets maxSurge/maxUnavailable, under time skipping (stubbed,
 * recorded activities): the limits reach every activity that moves pods through the release's target
 * (the activities move the pods; test/activities/kubernetes/basic-canary.test.ts), and a plan whose
 * limits cannot move a pod is refused at the start with the field named.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ReleaseTarget } from '../../activities/contract.ts';
import { Harness, canary, releaseResult } from './harness.ts';

const h = new Harness();
before(() => h.start());
after(() => h.stop());

test('the limits travel with the target to every activity of the release', async () => {
  const limits = { maxSurge: 0, maxUnavailable: 1 };
  const p = canary('basic-limits', [{ kind: 'setWeight', weight: 20 }, { kind: 'setWeight', weight: 50 }], { strategy: { type: 'canary', steps: [{ kind: 'setWeight', weight: 20 }, { kind: 'setWeight', weight: 50 }], replicaLimits: limits } });
  const result = await releaseResult(await h.begin(p));
  assert.equal(result.outcome, 'Promoted');
  assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(20)', 'setWeight(50)', 'promoteCanary']);
  for (const call of h.callsOf(p).filter((c) => c.name !== 'preflight')) {
    assert.deepEqual((call.args[0] as ReleaseTarget).replicaLimits, limits, `${call.name} gets the limits`);
  }

  const plain = canary('basic-plain', [{ kind: 'setWeight', weight: 20 }]);
  assert.equal((await releaseResult(await h.begin(plain))).outcome, 'Promoted');
  assert.ok(h.callsOf(plain).every((c) => !('replicaLimits' in (c.args[0] as object))), 'without the fields the target has none (the stable keeps its size)');
});

test('limits that cannot move a pod are refused at the start, naming the field', async () => {
  const p = canary('basic-zero', [{ kind: 'setWeight', weight: 20 }], { strategy: { type: 'canary', steps: [{ kind: 'setWeight', weight: 20 }], replicaLimits: { maxSurge: 0, maxUnavailable: '0%' } } });
  await assert.rejects(
    async () => releaseResult(await h.begin(p)),
    (err: Error & { cause?: Error }) => /strategy\.replicaLimits\.maxSurge: maxSurge and maxUnavailable cannot both be zero/.test(`${err.message} ${err.cause?.message ?? ''}`) || assert.fail(`${err.message}: ${err.cause?.message}`),
  );
  assert.deepEqual(h.trace(p), []);
});
