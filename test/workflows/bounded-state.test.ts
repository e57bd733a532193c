/**
 * Bounded state under a flood of hostile signals (time skipping, stubbed activities): ignored
 * signals are counted and the last few kept, the audit trail and the status stay small, and status
 * and abort keep working. Apart from the other workflow tests because it sends many signals:
 * 2,000 by default; GLIDEPATH_HOSTILE_SIGNALS=10000 for the full flood, which the Java test server
 * (no sticky cache: every workflow task replays the whole history) cannot always take on a loaded
 * 2-core machine within the SDK's 5 s workflow-task limit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { abortUpdate, approveSignal } from '../../workflows/messages.ts';
import { Harness, canary, waitForStatus } from './harness.ts';

const FLOOD = Number(process.env.GLIDEPATH_HOSTILE_SIGNALS ?? 2_000);
const h = new Harness();
before(() => h.start());
after(() => h.stop());

describe('bounded state', () => {
  test('status and abort keep working after a flood of hostile signals', async () => {
    const p = canary('hostile', [{ kind: 'setWeight', weight: 10 }, { kind: 'pause' }]);
    const handle = await h.begin(p);
    await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused');
    const hostile = [
      { by: 'mallory', reason: 'x'.repeat(1_500) }, // approve with no gate pending; reasons are cut to 1024
      ...Array.from({ length: 24 }, () => ({ by: 'mallory', reason: 'trust me' })),
      {}, // no identity
      { by: 'mallory', full: 'yes' },
      { by: 'mallory', step: -1 },
    ];
    const wall = Date.now();
    for (let sent = 0; sent < FLOOD; sent += 500) {
      await Promise.all(Array.from({ length: Math.min(500, FLOOD - sent) }, (_, i) => handle.signal(approveSignal, hostile[(sent + i) % hostile.length] as never)));
    }
    const s = await waitForStatus(handle, (x) => x.rejectedSignals?.total === FLOOD, 'every signal counted', 120_000);
    const sendMs = Date.now() - wall;
    assert.equal(s.rejectedSignals?.byAction.approve, FLOOD);
    assert.equal(s.rejectedSignals?.last.length, 20);
    assert.ok(s.rejectedSignals?.last.every((e) => (e.reason?.length ?? 0) <= 1024), 'kept entries are bounded too');
    assert.ok(s.audit.length < 10, `audit holds only what happened (${s.audit.length} entries)`);
    assert.ok(JSON.stringify(s).length < 64_000, `status stays small (${JSON.stringify(s).length} bytes)`);
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall' }] });
    await waitForStatus(handle, (x) => x.phase === 'Aborted', 'aborted');
    process.stdout.write(`# ${FLOOD} hostile signals sent and counted in ${sendMs} ms\n`);
    await handle.terminate('test done');
  });
});
