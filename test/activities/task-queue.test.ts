/**
 * The task-queue poller check against the real Temporal dev server (TEMPORAL_ADDRESS): a queue a
 * worker polls has a poller; a queue nobody polls has none; one whose worker stopped is not counted
 * once its last poll is older than the window.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createTaskQueueActivities } from '../../activities/task-queue.ts';
import { temporalSettings } from '../../workers/config.ts';

const address = process.env.TEMPORAL_ADDRESS;
const suffix = Math.random().toString(36).slice(2, 7);
let client: Client;
let native: NativeConnection;

before(async () => {
  if (!address) return;
  client = new Client({ connection: await Connection.connect({ address }) });
  native = await NativeConnection.connect({ address });
});
after(async () => {
  await client?.connection.close();
  await native?.close();
});

test('pollers of a polled queue, none of an unpolled one', { skip: address ? false : 'needs TEMPORAL_ADDRESS (a dev server: scripts/dev-server.sh)' }, async () => {
  const { taskQueuePollers } = createTaskQueueActivities(client);
  const queue = `glidepath@poll-${suffix}`;
  const worker = await Worker.create({ connection: native, taskQueue: queue, activities: { noop: async () => {} } });
  const running = worker.run();
  try {
    let seen = 0;
    for (let i = 0; i < 50 && seen === 0; i++) {
      seen = (await taskQueuePollers(queue, 90_000)).pollers;
      if (seen === 0) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(seen, 1);
    assert.deepEqual(await taskQueuePollers(`glidepath@nobody-${suffix}`, 90_000), { pollers: 0 });
  } finally {
    worker.shutdown();
    await running;
  }
  // A stopped worker's last poll ages out of the window (here: a clock 2 minutes ahead).
  const later = createTaskQueueActivities(client, () => Date.now() + 120_000);
  assert.deepEqual(await later.taskQueuePollers(queue, 90_000), { pollers: 0 });
});

test('a cluster worker polls glidepath@<cluster>; a contradicting or malformed setting is refused', () => {
  assert.equal(temporalSettings({ GLIDEPATH_CLUSTER: 'prod-eu' }).taskQueue, 'glidepath@prod-eu');
  assert.equal(temporalSettings({ GLIDEPATH_CLUSTER: 'prod-eu', GLIDEPATH_TASK_QUEUE: 'glidepath@prod-eu' }).taskQueue, 'glidepath@prod-eu');
  assert.equal(temporalSettings({}).taskQueue, 'glidepath');
  assert.throws(() => temporalSettings({ GLIDEPATH_CLUSTER: 'Prod_EU' }), /GLIDEPATH_CLUSTER=Prod_EU: must be a DNS-1123 label/);
  assert.throws(() => temporalSettings({ GLIDEPATH_CLUSTER: 'eu', GLIDEPATH_TASK_QUEUE: 'other' }), /contradicts GLIDEPATH_CLUSTER=eu/);
});
