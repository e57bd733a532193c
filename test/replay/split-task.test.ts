/**
 * A known defect, recorded so it is not lost (a todo test: its failure is reported, not fatal).
 *
 * test/replay/split-task/ holds a release history written by a real worker (the upgrade test's
 * previous version, 2026-12-03) whose start ran over two workflow tasks: the two local activities of
 * the start (identity policy, plan validation) were recorded at the end of the first task, and the
 * code after them (search attributes, `patched('glidepath-freeze-windows')`, the freeze windows'
 * local activity) ran in a second one. Every other recorded history has all of it in one task.
 * Replaying it fails, with the current workflow code and with the code that wrote it:
 * "[TMPRL1100] Nondeterminism error: Non-deprecated patch marker encountered for change
 * glidepath-freeze-windows, but there is no corresponding change command!" On replay the code after
 * the local activities runs within the first task, where the freeze marker is not, so `patched()`
 * answers false there. A release with that history is stuck at its next replay (a worker restart,
 * a cache eviction, an upgrade). When this passes, move the file into test/replay/histories.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { Harness } from '../workflows/harness.ts';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'split-task');

test('a release whose start ran over two workflow tasks replays', { todo: 'known defect: the freeze patch is decided in the wrong task on replay (see the file header)' }, async () => {
  const files = (await readdir(DIR)).filter((f) => f.endsWith('.binpb'));
  assert.ok(files.length > 0);
  const workflowBundle = await Harness.workflowBundle();
  const failures: string[] = [];
  for (const f of files) {
    const history = proto.temporal.api.history.v1.History.decode(await readFile(path.join(DIR, f)));
    await Worker.runReplayHistory({ workflowBundle }, history, f.replace(/\.binpb$/, '')).catch((err: Error) => failures.push(`${f}: ${err.message}`));
  }
  assert.deepEqual(failures, []);
});
