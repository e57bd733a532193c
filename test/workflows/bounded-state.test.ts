/**
 * Bounded state under a flood of 10,000 hostile signals (time skipping, stubbed activities;
 * GLIDEPATH_HOSTILE_SIGNALS for another count) to a release whose worker requires proven identity,
 * one in ten carrying a forged proof (signed with another key). A signal handler never verifies a
 * proof, so each one is refused at a constant cost: counted and the last few kept, the audit trail
 * and the status stay small, and status and a proven abort (an update) keep working.
 *
 * Signals that arrive while a workflow task runs come together in the next task, and the SDK spends
 * about 1 ms of CPU per signal (a source-mapped stack trace for each promise it creates), several
 * times that on a loaded machine. With the SDK's default 5 s activation limit a task of a few
 * thousand signals failed, and its retry carried those and every later one, so the release never
 * got past it. The worker's activation limit and the task timeout (workers/config.ts) give such a
 * task room; the test reads the history and requires that no workflow task failed or timed out.
 * Apart from the other workflow tests because it sends many signals.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { ActionClaims } from '../../model/identity.ts';
import { releaseWorkflowId } from '../../model/types.ts';
import { AssertionSigner, signClaims } from '../../starters/identity-signer.ts';
import { abortUpdate, approveSignal, type ActionInput } from '../../workflows/messages.ts';
import { Harness, canary, waitForStatus } from './harness.ts';

const FLOOD = Number(process.env.GLIDEPATH_HOSTILE_SIGNALS ?? 10_000);
const BATCH = 500;
const h = new Harness();
before(() => h.start());
after(() => h.stop());

const signer = new AssertionSigner(generateKeyPairSync('ed25519').privateKey, 600);
const forger = generateKeyPairSync('ed25519').privateKey;
const BOB = 'system:serviceaccount:tests:bob';

/** The release's workflow tasks from its history: signals each completed task carried and its time (server clock), and failed or timed-out tasks. */
async function workflowTasks(workflowId: string): Promise<{ completed: { signals: number; ms: number }[]; failed: number; failedCauses: string[] }> {
  const completed: { signals: number; ms: number }[] = [];
  const failedCauses: string[] = [];
  let unseen = 0; // signals since the last task started
  let carried = 0; // signals the current task (or its retry) carries
  let startedMs = 0;
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined): number => Number(t?.seconds ?? 0) * 1000 + Math.floor((t?.nanos ?? 0) / 1e6);
  let nextPageToken: Uint8Array | undefined;
  do {
    // Pages of 500 events: a whole flood's history is past the client's 4 MB message limit.
    const page = await h.env.client.workflowService.getWorkflowExecutionHistory({ namespace: h.env.namespace ?? 'default', execution: { workflowId }, maximumPageSize: 500, nextPageToken });
    for (const e of page.history?.events ?? []) {
      if (e.workflowExecutionSignaledEventAttributes) unseen++;
      else if (e.workflowTaskStartedEventAttributes) {
        carried += unseen;
        unseen = 0;
        startedMs = ms(e.eventTime);
      } else if (e.workflowTaskCompletedEventAttributes) {
        completed.push({ signals: carried, ms: ms(e.eventTime) - startedMs });
        carried = 0;
      } else if (e.workflowTaskFailedEventAttributes) failedCauses.push(e.workflowTaskFailedEventAttributes.failure?.message ?? 'failed');
      else if (e.workflowTaskTimedOutEventAttributes) failedCauses.push('timed out');
    }
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  return { completed, failed: failedCauses.length, failedCauses: [...new Set(failedCauses)] };
}

describe('bounded state', () => {
  test(`status and a proven abort keep working after ${FLOOD} hostile signals, forged proofs among them`, async () => {
    const p = canary('hostile', [{ kind: 'setWeight', weight: 10 }, { kind: 'pause' }]);
    const workflowId = releaseWorkflowId(p);
    h.identityPolicies.set(workflowId, { mode: 'required', publicKeys: [signer.publicKeyPem] });
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused');
    const claims = signer.sign({ sub: BOB, action: 'approve', releaseId: workflowId, namespace: p.namespace, attempt: 1 }, await h.env.currentTimeMs()).assertion;
    const forged = signClaims(JSON.parse(Buffer.from(claims.split('.')[1]!, 'base64url').toString()) as ActionClaims, forger);
    const hostile = [
      { by: BOB, proof: forged, reason: 'forged' }, // one in ten: a proof for bob signed with another key
      { by: 'mallory', reason: 'x'.repeat(1_500) }, // reasons are cut to 1024
      ...Array.from({ length: 5 }, () => ({ by: BOB, reason: 'trust me' })), // a claimed name
      {}, // no identity
      { by: 'mallory', full: 'yes' },
      { by: 'mallory', step: -1 },
    ];
    const wall = Date.now();
    for (let sent = 0; sent < FLOOD; sent += BATCH) {
      await Promise.all(Array.from({ length: Math.min(BATCH, FLOOD - sent) }, (_, i) => handle.signal(approveSignal, hostile[(sent + i) % hostile.length] as never)));
    }
    const s = await waitForStatus(handle, (x) => x.rejectedSignals?.total === FLOOD, 'every signal counted', 120_000);
    const sendMs = Date.now() - wall;
    const tasks = await workflowTasks(workflowId);
    const largest = tasks.completed.reduce((m, t) => (t.signals > m.signals ? t : m), { signals: 0, ms: 0 });
    assert.equal(tasks.failed, 0, `no workflow task failed or timed out (${tasks.failedCauses.join('; ')})`);
    assert.equal(s.phase, 'Paused');
    assert.equal(s.rejectedSignals?.byAction.approve, FLOOD);
    assert.equal(s.rejectedSignals?.last.length, 20);
    assert.ok(s.rejectedSignals?.last.every((e) => e.by === 'unauthenticated' && (e.reason?.length ?? 0) <= 1024), 'kept entries are bounded and carry no claimed name');
    assert.ok(s.audit.length < 10, `audit holds only what happened (${s.audit.length} entries)`);
    assert.ok(JSON.stringify(s).length < 64_000, `status stays small (${JSON.stringify(s).length} bytes)`);
    const abortProof = signer.sign({ sub: 'system:serviceaccount:tests:oncall', action: 'abort', releaseId: workflowId, namespace: p.namespace, attempt: 1 }, await h.env.currentTimeMs()).assertion;
    await handle.executeUpdate(abortUpdate, { args: [{ proof: abortProof, reason: 'flood drill' } as ActionInput] });
    await waitForStatus(handle, (x) => x.phase === 'Aborted', 'aborted');
    process.stdout.write(`# ${FLOOD} hostile signals (${Math.ceil(FLOOD / hostile.length)} with forged proofs) sent and counted in ${sendMs} ms, in ${tasks.completed.length} workflow tasks; the largest carried ${largest.signals} signals and ran ${largest.ms} ms\n`);
    await handle.terminate('test done');
  });
});
