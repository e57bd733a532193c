/**
 * Freeze windows in the release workflow (time-skipping server, GLIDEPATH_TEST_SERVER): a window
 * holds the release on a durable timer ("frozen until …" in status) and it advances when the window
 * ends; a listed overrider's proven override lifts it at once and is audited; anyone else is
 * refused; a worker-wide window can only be lifted by the worker's overriders. Proofs are real
 * Ed25519 (starters/identity-signer.ts).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, test } from 'node:test';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { createFreezeActivities } from '../../activities/freeze.ts';
import type { FreezePolicyFile, FreezeSpec } from '../../model/freeze.ts';
import { releaseWorkflowId, type ReleasePlan } from '../../model/types.ts';
import { AssertionSigner } from '../../starters/identity-signer.ts';
import { overrideFreezeUpdate, promoteUpdate, statusQuery, type ActionInput, type ReleaseStatus } from '../../workflows/messages.ts';
import { Harness, canary, causeOf, recordHistory, releaseResult, waitForStatus } from './harness.ts';

/** The worker's freeze policy file, as the test sets it (activities/freeze.ts reads the real file in a worker). */
let workerPolicy: FreezePolicyFile | undefined;
const h = new Harness({
  freezeWindows: ((...args: Parameters<ReturnType<typeof createFreezeActivities>['freezeWindows']>) => createFreezeActivities(workerPolicy).freezeWindows(...args)) as (...args: never[]) => Promise<unknown>,
});
before(() => h.start());
after(() => h.stop());

const signer = new AssertionSigner(generateKeyPairSync('ed25519').privateKey, 120);
const ALICE = 'system:serviceaccount:tests:alice';
const BOB = 'system:serviceaccount:tests:bob';
const CAROL = 'system:serviceaccount:tests:carol';
const HOUR = 3_600_000;

const steps = (): Parameters<typeof canary>[1] => [
  { kind: 'setWeight', weight: 10 },
  { kind: 'setWeight', weight: 50 },
  { kind: 'setWeight', weight: 100 },
];
const iso = (ms: number): string => new Date(ms).toISOString();

const refusal = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
    return causeOf(err);
  }
  assert.fail('the update was accepted');
};

const override = (handle: Awaited<ReturnType<typeof h.begin>>, input: Partial<ActionInput>): Promise<ReleaseStatus> => handle.executeUpdate(overrideFreezeUpdate, { args: [input as ActionInput] });
const prove = async (p: ReleasePlan, sub: string): Promise<string> =>
  signer.sign({ sub, action: 'override-freeze', releaseId: releaseWorkflowId(p), namespace: p.namespace, attempt: 1 }, await h.env.currentTimeMs()).assertion;

test('a window before step 2 holds the release on a durable timer, frozen until its end; then the release advances', async () => {
  const now = await h.env.currentTimeMs();
  const end = now + 6 * HOUR;
  const freeze: FreezeSpec = { windows: [{ name: 'change-freeze', before: 'step-2', start: iso(now - HOUR), end: iso(end) }], overriders: [BOB] };
  const p = canary('freeze-step', steps(), { freeze });
  const handle = await h.begin(p);

  const frozen = await waitForStatus(handle, (s) => s.freeze !== undefined, 'frozen before step 2');
  assert.equal(frozen.phase, 'Paused');
  assert.equal(frozen.message, `frozen until ${iso(end)}: freeze window release/change-freeze holds step 2 (override-freeze: ${BOB})`);
  assert.deepEqual(frozen.freeze, { window: 'release/change-freeze', before: 'step-2', until: iso(end), overriders: [BOB] });
  assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(10)']); // step 1 ran, step 2 did not
  // promote does not skip a freeze.
  assert.match(await refusal(handle.executeUpdate(promoteUpdate, { args: [{ by: 'ci-bot', full: true }] })), /^cannot promote .*: frozen until .* by freeze window release\/change-freeze; a permitted person may override-freeze$/);

  const result = await releaseResult(handle); // time skips to the window's end
  assert.equal(result.outcome, 'Promoted');
  assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(10)', 'setWeight(50)', 'setWeight(100)', 'promoteCanary']);
  const s = await handle.query(statusQuery);
  const ended = s.audit.find((e) => e.action === 'freeze-ended');
  assert.equal(ended?.detail, `freeze window release/change-freeze ended at ${iso(end)}`);
  assert.ok(Date.parse(ended.at) >= end, `advanced at ${ended.at}, before the window ended at ${iso(end)}`);
  assert.equal(s.freeze, undefined);
  await recordHistory(handle, 'freeze-step');
});

test('override: refused for a non-overrider, without a proof or without a reason; a listed, proven overrider lifts the freeze at once, audited', async () => {
  const now = await h.env.currentTimeMs();
  const end = now + 24 * HOUR;
  const p = canary('freeze-override', steps(), { freeze: { windows: [{ name: 'year-end', start: iso(now - HOUR), end: iso(end) }], overriders: [BOB] } });
  h.identityPolicies.set(releaseWorkflowId(p), { mode: 'required', publicKeys: [signer.publicKeyPem] });
  const handle = await h.begin(p, {}, ALICE);

  const frozen = await waitForStatus(handle, (s) => s.freeze !== undefined, 'frozen at start');
  assert.equal(frozen.freeze?.before, 'start');
  assert.deepEqual(h.trace(p), []); // nothing touched: the release has not started

  assert.equal(await refusal(override(handle, { proof: await prove(p, CAROL), reason: 'hotfix' })), `${CAROL} may not override freeze window release/year-end (overriders: ${BOB})`);
  assert.equal(await refusal(override(handle, { by: BOB, reason: 'hotfix' })), 'override-freeze: this release requires a proof of identity (glidepath release override-freeze with --token-file or $GLIDEPATH_IDENTITY_URL)');
  assert.equal(await refusal(override(handle, { proof: await prove(p, BOB) })), 'override-freeze: a reason is required (--reason), for the audit trail');

  const lifted = await override(handle, { proof: await prove(p, BOB), reason: 'security fix CVE-2026-0001' });
  assert.equal(lifted.freeze, undefined);
  const result = await releaseResult(handle);
  assert.equal(result.outcome, 'Promoted');
  const s = await handle.query(statusQuery);
  const promotedAt = Date.parse(s.audit.find((e) => e.action === 'promoted')?.at ?? '');
  assert.ok(promotedAt < end, 'promoted before the window ended');
  assert.deepEqual(
    s.audit.filter((e) => e.action.includes('freeze')).map((e) => [e.by, e.action, e.reason, e.detail]),
    [
      ['glidepath', 'freeze', undefined, `freeze window release/year-end holds the start until ${iso(end)}`],
      [BOB, 'override-freeze', 'security fix CVE-2026-0001', undefined],
      [BOB, 'freeze-overridden', 'security fix CVE-2026-0001', `freeze window release/year-end (until ${iso(end)}) lifted for this release`],
    ],
  );
  await recordHistory(handle, 'freeze-override');
});

test("a worker-wide window holds promotion; the release's own overriders cannot lift it, the worker's can", async () => {
  const now = await h.env.currentTimeMs();
  const end = now + 2 * HOUR;
  workerPolicy = { windows: [{ name: 'change-board', workloads: ['tests/freeze-worker'], before: 'promotion', start: iso(now - HOUR), end: iso(end) }], overriders: ['release-manager'] };
  const p = canary('freeze-worker', steps(), { freeze: { windows: [{ name: 'past', start: iso(now - 3 * HOUR), end: iso(now - 2 * HOUR) }], overriders: [ALICE] } });
  const handle = await h.begin(p);
  try {
    const frozen = await waitForStatus(handle, (s) => s.freeze !== undefined, 'frozen before promotion');
    assert.deepEqual(frozen.freeze, { window: 'worker/change-board', before: 'promotion', until: iso(end), overriders: ['release-manager'] });
    assert.deepEqual(h.trace(p), ['preflight', 'ensureCanary', 'setWeight(10)', 'setWeight(50)', 'setWeight(100)']);
    assert.equal(await refusal(override(handle, { by: ALICE, reason: 'mine' })), `${ALICE} may not override freeze window worker/change-board (overriders: release-manager)`);
    const lifted = await override(handle, { by: 'release-manager', reason: 'board approved' });
    assert.equal(lifted.freeze, undefined);
    assert.equal((await releaseResult(handle)).outcome, 'Promoted');
    const s = await handle.query(statusQuery);
    assert.ok(s.audit.some((e) => e.by === 'release-manager' && e.action === 'freeze-overridden' && e.detail?.startsWith('freeze window worker/change-board')));
  } finally {
    workerPolicy = undefined;
  }
});
