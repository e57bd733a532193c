/**
 * Patch decisions must not depend on where a worker ends its workflow tasks (workflows/patches-first.ts).
 *
 * A worker ends a task right after a local activity's marker when it answers a query while the
 * activity runs (sdk-core forces a new task then); the code after the activity lands in the next
 * task. test/replay/split-task/ holds such a history, written by a real worker under load.
 * test/replay/split-history.ts rewrites any recorded history into that shape at each local-activity
 * marker. test/replay/patches-first/ holds histories recorded with the gate
 * (RECORD_HISTORIES=1 RECORD_HISTORIES_DIR=test/replay/patches-first npm test -- <files>), and one
 * split by a real worker: release_tests_repro5554-0, started on the dev server and queried at once
 * while its task queue was busy (120 of 120 such releases split after their first local activity).
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { GROUP_LATER_PATCHES, GROUP_PATCHES_FIRST } from '../../workflows/group/patches-first.ts';
import { RELEASE_LATER_PATCHES, RELEASE_PATCHES_FIRST } from '../../workflows/patches-first.ts';
import { RELEASE_EPOCHS, RELEASE_EPOCH_PATCHES, RELEASE_PATCH_EPOCH_1, RELEASE_PATCH_EPOCH_2 } from '../../workflows/release/patch-epoch.ts';
import { patchMarkerIds } from '../support/patch-markers.ts';
import { HISTORY_DIR, Harness } from '../workflows/harness.ts';
import { splitAfter, splitPoints } from './split-history.ts';

type History = proto.temporal.api.history.v1.History;
const HERE = path.dirname(fileURLToPath(import.meta.url));
const GATED_DIR = path.join(HERE, 'patches-first');
const REAL_SPLIT_DIR = path.join(HERE, 'split-task');
const EPOCH_DIR = path.join(HERE, 'epoch');
const EPOCH_2_DIR = path.join(HERE, 'epoch-2');
const ROOT = path.resolve(HERE, '../..');
const PATCH_MARKER_ERROR = /Non-deprecated patch marker encountered for change ([\w-]+)/;

async function histories(dir: string): Promise<{ workflowId: string; history: History }[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.binpb')).sort();
  return Promise.all(files.map(async (f) => ({ workflowId: f.replace(/\.binpb$/, ''), history: proto.temporal.api.history.v1.History.decode(await readFile(path.join(dir, f))) })));
}

/** The replay's nondeterminism message, or undefined when it replayed. */
async function replayError(workflowId: string, history: History): Promise<string | undefined> {
  return Worker.runReplayHistory({ workflowBundle: await Harness.workflowBundle() }, history, workflowId).then(
    () => undefined,
    (err: Error) => err.message,
  );
}

/** Replays each history whole and split after each of its local-activity markers: the failures, and how many splits ran. */
async function replayWholeAndSplit(runs: { workflowId: string; history: History }[]): Promise<{ failures: string[]; splits: number }> {
  const failures: string[] = [];
  let splits = 0;
  for (const { workflowId, history } of runs) {
    const whole = await replayError(workflowId, history);
    if (whole) failures.push(`${workflowId}: ${whole}`);
    for (const at of splitPoints(history)) {
      splits++;
      const err = await replayError(workflowId, splitAfter(history, at));
      if (err) failures.push(`${workflowId} split after event ${at}: ${err}`);
    }
  }
  return { failures, splits };
}

test('the rewrite reproduces the defect the real split history shows, on releases started before the gate', async () => {
  const [real] = await histories(REAL_SPLIT_DIR);
  assert.ok(real, `a history in ${REAL_SPLIT_DIR}`);
  const realError = await replayError(real.workflowId, real.history);
  assert.match(realError ?? 'replayed', PATCH_MARKER_ERROR, 'the real split history (started before the gate) cannot replay');
  // The same kind of release recorded in one task replays; rewritten with the split where the real one has it, it fails the same way.
  const recorded = (await histories(HISTORY_DIR)).find((h) => h.workflowId === 'release_tests_promoted');
  assert.ok(recorded, 'release_tests_promoted.binpb among the recorded histories');
  assert.equal(patchMarkerIds(recorded.history).includes(RELEASE_PATCHES_FIRST), false, 'recorded before the gate');
  assert.equal(await replayError(recorded.workflowId, recorded.history), undefined);
  const errors = await Promise.all(splitPoints(recorded.history).map((at) => replayError(recorded.workflowId, splitAfter(recorded.history, at))));
  assert.deepEqual(
    errors.map((e) => e?.match(PATCH_MARKER_ERROR)?.[1]),
    [undefined, realError?.match(PATCH_MARKER_ERROR)?.[1], undefined],
    'split after identity: replays; after validation: the freeze patch fails as in the real history; after the freeze windows: replays',
  );
});

test('releases and groups started with the gate replay wherever their tasks were split', async () => {
  const gated = await histories(GATED_DIR);
  assert.ok(gated.length >= 10, `the gated histories in ${GATED_DIR}`);
  for (const { workflowId, history } of gated) {
    assert.ok(patchMarkerIds(history).some((id) => id === RELEASE_PATCHES_FIRST || id === GROUP_PATCHES_FIRST), `${workflowId} was recorded with a gate`);
  }
  const { failures, splits } = await replayWholeAndSplit(gated);
  assert.deepEqual(failures, []);
  assert.ok(splits >= 2 * gated.length, `every history has local-activity markers to split after (${splits} splits in ${gated.length} histories)`);
});

/** The release patches of the first epoch: every one that existed while new releases started with the gate. */
const GATE_ERA_PATCHES = RELEASE_EPOCHS.find((e) => e.id === RELEASE_PATCH_EPOCH_1)?.patches ?? [];

test('the gated histories hold the gate and every patch on its list', async () => {
  const ids = new Set((await histories(GATED_DIR)).flatMap(({ history }) => patchMarkerIds(history)));
  // A release patch added after the first epoch cannot be in a gated history: a new release starts with an epoch.
  const gateEra = RELEASE_LATER_PATCHES.filter((id) => GATE_ERA_PATCHES.includes(id));
  assert.ok(gateEra.length >= 9, `the later patches of the gate's time (${gateEra.join(', ')})`);
  for (const id of [RELEASE_PATCHES_FIRST, ...gateEra, GROUP_PATCHES_FIRST, ...GROUP_LATER_PATCHES]) assert.ok(ids.has(id), `no gated history records ${id}`);
});

/** Patches decided before the first await in any case (the workflow functions' first lines, or handler registration). */
const DECIDED_AT_START = {
  release: ['glidepath-release-2', 'glidepath-release-outcome-fails', 'glidepath-promote-once-per-pause', 'glidepath-release-identity', RELEASE_PATCHES_FIRST],
  group: ['glidepath-group-validate-once', 'glidepath-group-identity', GROUP_PATCHES_FIRST],
};
/** In a module the group imports, but asked only by a function the group does not call (release/notify.ts's notifierFor; the group has groupNotifierFor). */
const GROUP_IMPORTS_UNASKED = ['glidepath-notifications'];

test('every patch the release or group workflow asks is decided at its start or on its list', async () => {
  const constants = await patchConstants();
  const release = await patchesAsked('workflows/release.ts', constants);
  const group = await patchesAsked('workflows/group.ts', constants);
  assert.ok(release.length >= 10 && group.length >= 4, `found the calls (release ${release.join(', ')}; group ${group.join(', ')})`);
  assert.deepEqual(release.filter((id) => !DECIDED_AT_START.release.includes(id) && !RELEASE_LATER_PATCHES.includes(id as never)), []);
  assert.deepEqual(group.filter((id) => !DECIDED_AT_START.group.includes(id) && !GROUP_LATER_PATCHES.includes(id as never) && !GROUP_IMPORTS_UNASKED.includes(id)), []);
});

/** `export const NAME = 'glidepath-…'` across workflows/. */
async function patchConstants(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const file of await readdir(path.join(ROOT, 'workflows'), { recursive: true })) {
    if (!file.endsWith('.ts')) continue;
    for (const m of (await readFile(path.join(ROOT, 'workflows', file), 'utf8')).matchAll(/export const (\w+) = '(glidepath-[\w-]+)'/g)) out.set(m[1]!, m[2]!);
  }
  return out;
}

/** The patch IDs asked by `wf.patched(…)` or `releasePatched(…)` in the modules the entry imports (following relative imports that run code: not `import type`, not through patches-first.ts). */
async function patchesAsked(entry: string, constants: Map<string, string>): Promise<string[]> {
  const seen = new Set<string>();
  const asked = new Set<string>();
  const queue = [path.join(ROOT, entry)];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file) || !file.startsWith(path.join(ROOT, 'workflows')) || ['patches-first.ts', 'patch-epoch.ts'].includes(path.basename(file))) continue;
    seen.add(file);
    const source = await readFile(file, 'utf8');
    for (const m of source.matchAll(/^import (?!type )[^;]*?from '(\.[^']+\.ts)'/gms)) queue.push(path.resolve(path.dirname(file), m[1]!));
    for (const m of source.matchAll(/(?:wf\.patched|releasePatched)\((?:'([\w-]+)'|(\w+))\)/g)) {
      const id = m[1] ?? constants.get(m[2]!);
      assert.ok(id, `${path.relative(ROOT, file)}: patched(${m[2]}) names no constant of workflows/`);
      asked.add(id);
    }
  }
  return [...asked].sort();
}

// ---- the release patch epoch (workflows/release/patch-epoch.ts) --------------------------------------
// test/replay/epoch/ and test/replay/epoch-2/ hold releases recorded with each epoch
// (RECORD_HISTORIES=1 RECORD_HISTORIES_DIR=test/replay/epoch-2 npm test -- 'test/workflows/*.test.ts', the release_tests_* files).

test('the release epoch covers every release patch asked at the start or on the later list, by their real IDs', async () => {
  const known = new Set((await patchConstants()).values());
  for (const epoch of RELEASE_EPOCHS) {
    assert.ok(known.has(epoch.id), `${epoch.id} is a patch constant of workflows/`);
    assert.deepEqual(epoch.patches.filter((id) => !known.has(id)), [], `every ID ${epoch.id} covers is a patch constant of workflows/`);
  }
  // Each epoch covers all of its predecessor's patches.
  for (let i = 0; i + 1 < RELEASE_EPOCHS.length; i++) {
    const [newer, older] = [RELEASE_EPOCHS[i]!, RELEASE_EPOCHS[i + 1]!];
    assert.deepEqual(older.patches.filter((id) => !newer.patches.includes(id)), [], `${newer.id} covers ${older.id}'s patches`);
  }
  // A patch added after the newest epoch is asked as usual: it would be listed here as outside the epoch.
  assert.deepEqual([...DECIDED_AT_START.release, ...RELEASE_LATER_PATCHES].filter((id) => !RELEASE_EPOCH_PATCHES.includes(id)), []);
});

/** Releases recorded with an epoch: each holds that epoch's marker alone and one TemporalChangeVersion upsert, and replays whole and split. */
async function checkEpochHistories(dir: string, epoch: string): Promise<void> {
  const runs = await histories(dir);
  assert.ok(runs.length >= 10, `the epoch histories in ${dir}`);
  for (const { workflowId, history } of runs) {
    assert.deepEqual(patchMarkerIds(history), [epoch], `${workflowId}: the epoch's marker only`);
    const versionUpserts = (history.events ?? []).filter((e) => e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.TemporalChangeVersion);
    assert.equal(versionUpserts.length, 1, `${workflowId}: one TemporalChangeVersion upsert`);
  }
  const { failures, splits } = await replayWholeAndSplit(runs);
  assert.deepEqual(failures, []);
  assert.ok(splits >= runs.length, `the histories have local-activity markers to split after (${splits} splits in ${runs.length} histories)`);
}

// test/replay/epoch/ was recorded by the code of 2026-12-03 (the first epoch): those releases still replay, asking
// a patch added since where they always asked it (on replay: not there, so the code they ran).
test('releases started with the first epoch record one patch marker and one TemporalChangeVersion upsert, and replay wherever their tasks were split', async () => {
  await checkEpochHistories(EPOCH_DIR, RELEASE_PATCH_EPOCH_1);
});

test('releases started with the second epoch record its marker alone, replies after whole turns included, and replay wherever their tasks were split', async () => {
  const runs = await histories(EPOCH_2_DIR);
  const updates = runs.flatMap(({ history }) => (history.events ?? []).filter((e) => e.workflowExecutionUpdateCompletedEventAttributes)).length;
  assert.ok(updates >= 20, `the histories hold replies to updates (${updates})`);
  await checkEpochHistories(EPOCH_2_DIR, RELEASE_PATCH_EPOCH_2);
});
