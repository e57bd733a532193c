/**
 * When an update replies (workflows/release/reply-turns.ts), in Temporal's workflow sandbox on the
 * time-skipping test server: the update ends the workflow's wait, and the workflow takes a number of
 * microtask turns before it moves on. A reply after whole turns sees it moved on however many turns it
 * took; the reply of releases without the patch, after a fixed number of turns, does not once they are
 * many (the defect CI's actions-under-load test met: a promote replied Paused with the next step entered).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startSandboxWorker, type SandboxWorker } from '../support/sandbox-worker.ts';
import { goUpdate, type replyProbe } from '../fixtures/reply-turns/workflow.ts';

let sandbox: SandboxWorker;

before(async () => {
  sandbox = await startSandboxWorker(new URL('../fixtures/reply-turns/workflow.ts', import.meta.url), 'reply-turns');
});

after(async () => {
  await sandbox?.stop();
});

/** Whether the workflow had moved on when the update `how` replied, `turns` microtask turns after the wait it ended. */
async function movedOnAtReply(turns: number, how: 'after-turns' | 'before-patch'): Promise<boolean> {
  const handle = await sandbox.env.client.workflow.start<typeof replyProbe>('replyProbe', { taskQueue: 'reply-turns', workflowId: `reply-${how}-${turns}`, args: [turns] });
  const reply = await handle.executeUpdate(goUpdate, { args: [how] });
  assert.equal(await handle.result(), true, 'the workflow moved on in the end');
  return reply;
}

test('a reply after whole turns sees the workflow moved on, however many turns it took', async () => {
  for (const turns of [0, 1, 5, 50, 500]) assert.equal(await movedOnAtReply(turns, 'after-turns'), true, `${turns} turns`);
});

test('the reply of releases without the patch comes before a workflow that takes many turns has moved on', async () => {
  assert.equal(await movedOnAtReply(0, 'before-patch'), true, 'no turns: it had');
  assert.equal(await movedOnAtReply(50, 'before-patch'), false, '50 turns: it had not');
});
