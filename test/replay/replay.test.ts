/**
 * Replays recorded histories against the current workflow code: a change to deployed workflow
 * logic that is not behind `patched()` makes this fail with a nondeterminism error.
 * Histories are recorded by the time-skipping suite: RECORD_HISTORIES=1 npm test.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { HISTORY_DIR, Harness } from '../workflows/harness.ts';

test('every recorded release history replays against the current workflow code', async () => {
  const files = (await readdir(HISTORY_DIR)).filter((f) => f.endsWith('.binpb')).sort();
  assert.ok(files.length >= 8, `expected the recorded histories in ${HISTORY_DIR}, found ${files.length}`);
  const workflowBundle = await Harness.workflowBundle();
  const histories = await Promise.all(
    files.map(async (f) => ({ workflowId: f.replace(/\.binpb$/, ''), history: proto.temporal.api.history.v1.History.decode(await readFile(path.join(HISTORY_DIR, f))) })),
  );
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ workflowBundle }, histories)) {
    replayed++;
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  assert.equal(replayed, files.length);
  assert.deepEqual(failures, []);
});
