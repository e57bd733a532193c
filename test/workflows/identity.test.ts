/**
 * Proven identity in the release workflow (time-skipping server, GLIDEPATH_TEST_SERVER): the
 * worker's identity policy (stubbed per release in the harness, as the `identityPolicy` local
 * activity) decides whether an action needs a proof; the proof's subject is who approves, promotes
 * or aborts. Keys and proofs are real Ed25519 (starters/identity-signer.ts).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, test } from 'node:test';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { AssertionSigner, signClaims } from '../../starters/identity-signer.ts';
import { signalRefusal, type ActionClaims, type IdentityAction } from '../../model/identity.ts';
import { releaseWorkflowId, type ReleasePlan } from '../../model/types.ts';
import { abortUpdate, approveSignal, approveUpdate, promoteUpdate, statusQuery, type ActionInput } from '../../workflows/messages.ts';
import type { release } from '../../workflows/release.ts';
import { Harness, canary, causeOf, recordHistory, releaseResult, waitForStatus } from './harness.ts';

const h = new Harness();
before(() => h.start());
after(() => h.stop());

const signer = new AssertionSigner(generateKeyPairSync('ed25519').privateKey, 120);
const forger = generateKeyPairSync('ed25519').privateKey;
const ALICE = 'system:serviceaccount:tests:alice';
const BOB = 'system:serviceaccount:tests:bob';
const CAROL = 'system:serviceaccount:tests:carol';

const gated = (name: string, minApprovals = 1): ReleasePlan =>
  canary(name, [{ kind: 'setWeight', weight: 10 }, { kind: 'approval', approvers: [ALICE, BOB, CAROL], minApprovals, onTimeout: 'abort' }, { kind: 'setWeight', weight: 100 }]);

/** A proof for `sub` from the pinned identity server key, issued at the test server's time (it skips ahead). */
const prove = async (p: ReleasePlan, sub: string, action: IdentityAction, step?: number): Promise<string> =>
  signer.sign({ sub, action, releaseId: releaseWorkflowId(p), namespace: p.namespace, ...(step !== undefined ? { step } : {}), attempt: 1 }, await h.env.currentTimeMs()).assertion;

const refusal = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
    return causeOf(err);
  }
  assert.fail('the update was accepted');
};

const begin = (p: ReleasePlan, mode: 'required' | 'optional', initiator: string) => {
  h.identityPolicies.set(releaseWorkflowId(p), { mode, publicKeys: [signer.publicKeyPem] });
  return h.begin(p, {}, initiator);
};

const approve = (handle: Awaited<ReturnType<typeof begin>>, input: Partial<ActionInput>) => handle.executeUpdate(approveUpdate, { args: [input as ActionInput] });

test('identity required: the initiator cannot approve as bob without a proof; forged and replayed proofs are refused; proven approvals count', async () => {
  const p = gated('id-required', 2);
  const handle = await begin(p, 'required', ALICE);
  const gate = await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'approval gate');
  const step = gate.approvals!.step;

  // The initiator claims to be bob: without a proof, refused.
  assert.equal(await refusal(approve(handle, { by: BOB })), 'approve: this release requires a proof of identity (glidepath release approve with --token-file or $GLIDEPATH_IDENTITY_URL)');
  // The initiator's own proof: proven, and the four-eyes rule judges the proven name.
  assert.equal(await refusal(approve(handle, { proof: await prove(p, ALICE, 'approve', step) })), `${ALICE} started this release and cannot approve it (four-eyes rule)`);
  // A proof for bob signed with another key.
  const bobs = await prove(p, BOB, 'approve', step);
  const forged = signClaims(JSON.parse(Buffer.from(bobs.split('.')[1]!, 'base64url').toString()) as ActionClaims, forger);
  assert.equal(await refusal(approve(handle, { by: BOB, proof: forged })), 'approve: proof signature does not verify with the identity server key');
  // bob's proof with another claimed name.
  assert.equal(await refusal(approve(handle, { by: CAROL, proof: bobs })), `approve: "by" is ${CAROL}, but the proof is for ${BOB}`);

  const afterBob = await approve(handle, { proof: bobs, reason: 'dashboards green' });
  assert.deepEqual(afterBob.approvals?.granted.map((g) => g.by), [BOB]);
  // The same proof again: refused, bob does not count twice.
  assert.equal(await refusal(approve(handle, { proof: bobs })), 'approve: proof has already been used');

  // Signals are refused as unauthenticated, a proof they carry unread (not even one valid for another release).
  await handle.signal(approveSignal, { by: BOB });
  await handle.signal(approveSignal, { by: BOB, proof: forged });
  const other = gated('id-other');
  await handle.signal(approveSignal, { by: CAROL, proof: await prove(other, CAROL, 'approve', step) });
  const ignored = await waitForStatus(handle, (s) => (s.rejectedSignals?.total ?? 0) >= 3, 'three signals refused');
  assert.deepEqual(ignored.rejectedSignals!.last.map((e) => [e.by, e.detail]), Array(3).fill(['unauthenticated', `ignored: ${signalRefusal('approve')}`]));

  await approve(handle, { proof: await prove(p, CAROL, 'approve', step) });
  const result = await releaseResult(handle);
  assert.equal(result.outcome, 'Promoted');
  const final = await handle.query(statusQuery);
  const approvals = final.audit.filter((a) => a.action === 'approve');
  assert.deepEqual(approvals.map((a) => [a.by, a.accepted, a.detail]), [[BOB, true, undefined], [CAROL, true, undefined]]);
  await recordHistory(handle, 'identity-required');
});

test('identity required: promote and abort count as the proof subject (promoters, stop reason)', async () => {
  const p = canary('id-abort', [{ kind: 'setWeight', weight: 10 }, { kind: 'pause' }, { kind: 'setWeight', weight: 50 }, { kind: 'pause' }], { policy: { promoters: [BOB], aborters: [CAROL] } });
  const handle = await begin(p, 'required', ALICE);
  await waitForStatus(handle, (s) => s.phase === 'Paused' && s.step.index === 1, 'first pause');
  assert.equal(await refusal(handle.executeUpdate(promoteUpdate, { args: [{ proof: await prove(p, CAROL, 'promote') } as ActionInput] })), `${CAROL} may not promote this release (promoters: ${BOB})`);
  await handle.executeUpdate(promoteUpdate, { args: [{ proof: await prove(p, BOB, 'promote') } as ActionInput] });
  await waitForStatus(handle, (s) => s.phase === 'Paused' && s.step.index === 3, 'second pause');
  await handle.executeUpdate(abortUpdate, { args: [{ proof: await prove(p, CAROL, 'abort'), reason: 'latency' } as ActionInput] });
  const result = await releaseResult(handle);
  assert.equal(result.outcome, 'Aborted');
  assert.equal(result.reason, `aborted by ${CAROL}: latency`);
  await recordHistory(handle, 'identity-abort');
});

test('identity optional: a plain approval still counts, audited as unproven; a refused one is audited as unauthenticated', async () => {
  const p = gated('id-optional');
  const handle = await begin(p, 'optional', ALICE);
  await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'approval gate');
  // A proof that is sent must still be valid.
  const forged = signClaims({ sub: BOB, action: 'approve', releaseId: releaseWorkflowId(p), namespace: 'tests', step: 1, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60, nonce: 'n1' }, forger);
  assert.equal(await refusal(approve(handle, { by: BOB, proof: forged })), 'approve: proof signature does not verify with the identity server key');
  // A refused signal without a proof is audited as unauthenticated, not under the name it claims.
  await handle.signal(approveSignal, { by: ALICE });
  const ignored = await waitForStatus(handle, (s) => (s.rejectedSignals?.total ?? 0) >= 1, 'the initiator refused');
  assert.deepEqual([ignored.rejectedSignals!.last[0]!.by, ignored.rejectedSignals!.last[0]!.detail], ['unauthenticated', `ignored: ${ALICE} started this release and cannot approve it (four-eyes rule)`]);
  await approve(handle, { by: BOB, reason: 'ok' });
  const result = await releaseResult(handle);
  assert.equal(result.outcome, 'Promoted');
  const status = await handle.query(statusQuery);
  const entry = status.audit.find((a) => a.action === 'approve');
  assert.deepEqual([entry?.by, entry?.accepted, entry?.detail], [BOB, true, 'unproven identity']);
  await recordHistory(handle, 'identity-optional');
});

test('identity required: a signal is refused without verifying its proof; the same proof in an update counts', async () => {
  const p = gated('id-signal-required');
  const handle = await begin(p, 'required', ALICE);
  const gate = await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'approval gate');
  const bobs = await prove(p, BOB, 'approve', gate.approvals!.step);
  // A valid proof, by signal: refused before any verification (had it been verified, bob would have approved and its nonce been used).
  await handle.signal(approveSignal, { proof: bobs, reason: 'by signal' } as ActionInput);
  const refused = await waitForStatus(handle, (s) => (s.rejectedSignals?.total ?? 0) >= 1, 'the signal refused');
  assert.deepEqual([refused.rejectedSignals!.last[0]!.by, refused.rejectedSignals!.last[0]!.detail], ['unauthenticated', `ignored: ${signalRefusal('approve')}`]);
  assert.match(signalRefusal('approve'), /send it as an update with the proof \(glidepath release approve/);
  assert.deepEqual(refused.approvals?.granted, []);
  // The same proof, by update: verified and counted.
  await approve(handle, { proof: bobs, reason: 'by update' });
  const result = await releaseResult(handle);
  assert.equal(result.outcome, 'Promoted');
  const approvals = (await handle.query(statusQuery)).audit.filter((a) => a.action === 'approve');
  assert.deepEqual(approvals.map((a) => [a.by, a.accepted, a.reason, a.detail]), [[BOB, true, 'by update', undefined]]);
  await recordHistory(handle, 'identity-signal-required');
});

test('identity optional: a signal is an unproven claim, its proof (even a forged one) ignored', async () => {
  const p = gated('id-signal-optional');
  const handle = await begin(p, 'optional', ALICE);
  const gate = await waitForStatus(handle, (s) => s.phase === 'AwaitingApproval', 'approval gate');
  const bobs = await prove(p, BOB, 'approve', gate.approvals!.step);
  const forged = signClaims(JSON.parse(Buffer.from(bobs.split('.')[1]!, 'base64url').toString()) as ActionClaims, forger);
  await handle.signal(approveSignal, { by: BOB, proof: forged, reason: 'by signal' });
  const result = await releaseResult(handle);
  assert.equal(result.outcome, 'Promoted');
  const entry = (await handle.query(statusQuery)).audit.find((a) => a.action === 'approve');
  assert.deepEqual([entry?.by, entry?.accepted, entry?.detail], [BOB, true, 'unproven identity']);
  await recordHistory(handle, 'identity-signal-optional');
});

test('an action that arrives before the identity policy is read is refused with a clear reason', async () => {
  const p = gated('id-early');
  h.identityPolicies.set(releaseWorkflowId(p), { mode: 'required', publicKeys: [signer.publicKeyPem] });
  h.overrides.set(releaseWorkflowId(p), {});
  h.calls.set(releaseWorkflowId(p), []);
  const handle = await h.env.client.workflow.signalWithStart<typeof release, [ActionInput]>('release', {
    taskQueue: h.taskQueue,
    workflowId: releaseWorkflowId(p),
    args: [{ plan: p, initiator: ALICE }],
    signal: approveSignal,
    signalArgs: [{ by: BOB }],
  });
  // The release starts before its policy is read (v2 is not decided yet either): the refusal goes to the audit trail.
  const s = await waitForStatus(handle, (st) => st.audit.some((a) => a.action === 'approve'), 'the early signal audited');
  const early = s.audit.find((a) => a.action === 'approve')!;
  assert.deepEqual([early.by, early.accepted], ['unauthenticated', false]);
  assert.match(early.detail ?? '', /has not read the worker's identity policy yet/);
  // Ended at rest: a workflow terminated while its task is in flight leaves the test server's time
  // skipping held, and the files that share the server would then wait in real time.
  await waitForStatus(handle, (st) => st.phase === 'AwaitingApproval', 'approval gate');
  await handle.terminate('done');
});
