/**
 * The action-proof check inside Temporal's workflow sandbox (time-skipping test server,
 * GLIDEPATH_TEST_SERVER): a fixture workflow (test/fixtures/identity/workflow.ts) calls
 * actionIdentity from its update validator and signal handler, as the release workflow is meant to.
 * A proof from the approver counts under its proven name; `--as bob` without a proof, a forged proof
 * and a replayed one are refused; a refused signal is audited as unauthenticated or under the proven name.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, test } from 'node:test';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { startSandboxWorker, type SandboxWorker } from '../support/sandbox-worker.ts';
import { AssertionSigner, signClaims } from '../../starters/identity-signer.ts';
import { approveSignal, approveUpdate, auditQuery, doneSignal, type identityProbe } from '../fixtures/identity/workflow.ts';

const signer = new AssertionSigner(generateKeyPairSync('ed25519').privateKey, 120);
const forger = generateKeyPairSync('ed25519').privateKey;
let sandbox: SandboxWorker;

before(async () => {
  sandbox = await startSandboxWorker(new URL('../fixtures/identity/workflow.ts', import.meta.url), 'identity');
});

after(async () => {
  await sandbox?.stop();
});

const rejection = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
    return (err.cause as Error).message;
  }
  assert.fail('the update was accepted');
};

test('in the workflow sandbox: proven approvals count under the proven name; claimed, forged and replayed ones are refused', async () => {
  const id = 'release-shop-web';
  const handle = await sandbox.env.client.workflow.start<typeof identityProbe>('identityProbe', { taskQueue: 'identity', workflowId: id, args: [{ policy: { mode: 'required', publicKeys: [signer.publicKeyPem] }, namespace: 'shop', step: 2 }] });
  const prove = (sub: string) => signer.sign({ sub, action: 'approve', releaseId: id, namespace: 'shop', step: 2, attempt: 1 }).assertion;

  assert.equal(await rejection(handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] })), 'approve: this release requires a proof of identity (glidepath release approve with --token-file or $GLIDEPATH_IDENTITY_URL)');
  const bobs = prove('system:serviceaccount:shop:bob');
  const forged = signClaims(JSON.parse(Buffer.from(bobs.split('.')[1]!, 'base64url').toString()) as Parameters<typeof signClaims>[0], forger);
  assert.equal(await rejection(handle.executeUpdate(approveUpdate, { args: [{ by: 'bob', proof: forged }] })), 'approve: proof signature does not verify with the identity server key');
  assert.deepEqual(await handle.executeUpdate(approveUpdate, { args: [{ proof: bobs }] }), { by: 'system:serviceaccount:shop:bob', accepted: true, proven: true });
  assert.equal(await rejection(handle.executeUpdate(approveUpdate, { args: [{ proof: bobs }] })), 'approve: proof has already been used');

  await handle.signal(approveSignal, { by: 'bob' });
  await handle.signal(approveSignal, { proof: signer.sign({ sub: 'system:serviceaccount:shop:carol', action: 'approve', releaseId: 'release-shop-api', namespace: 'shop', step: 2 }).assertion });
  await handle.signal(doneSignal);
  const audit = await handle.result();
  assert.deepEqual(audit.map((a) => [a.by, a.accepted]), [
    ['system:serviceaccount:shop:bob', true],
    ['unauthenticated', false],
    ['system:serviceaccount:shop:carol', false],
  ]);
  assert.match(audit[2]!.detail ?? '', /proof is for release release-shop-api, not release-shop-web/);
  assert.deepEqual(await handle.query(auditQuery), audit);
});
