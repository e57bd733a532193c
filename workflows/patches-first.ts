/**
 * Patch decisions taken before a workflow's first await, so where its workflow tasks end cannot
 * change them.
 *
 * On replay the SDK answers `patched(id)` from the markers of the workflow task being replayed, not
 * of the whole history. Code after a local activity normally runs in the task that scheduled the
 * activity, but a worker may end that task right after the activity's marker (it happened under load:
 * test/replay/split-task/), and then the code after it runs in the next task. A `patched()` there
 * recorded its marker in the second task, while on replay the same call runs in the first one, where
 * the marker is not, answers false, and the replay fails with a nondeterminism error: the release is
 * stuck at its next replay (worker restart, cache eviction, upgrade).
 *
 * A workflow started with the gate patch decides every patch it may ask later right at its start,
 * in its first task whatever happens afterwards; the SDK remembers each answer for the run, so the
 * later calls get the same `true` and write nothing. Runs started before the gate (no gate marker)
 * decide as they always did. A patch added later goes on the workflow's list too (the group's is in
 * workflows/group/patches-first.ts, so a release does not evaluate the group's modules)
 * (test/replay/patches-first.test.ts checks the lists against the code): runs started before it
 * simply do not find it at their start and decide it where it is called.
 */
import * as wf from '@temporalio/workflow';
import { DRIFT_ON_PROMOTION_PATCH } from './drift/promotion.ts';
import { SIGNAL_PROOF } from './release/actions.ts';
import { UPDATE_REPLY_PATCH } from './release/reply-turns.ts';
import { CONFIG_PATCH } from './release/config.ts';
import { EXPERIMENT_PATCH, EXPERIMENT_WEIGHTS_PATCH } from './release/experiment.ts';
import { FREEZE_PATCH } from './release/freeze.ts';
import { WEBHOOK_GATES_PATCH } from './release/gates.ts';
import { NOTIFICATIONS_PATCH } from './release/notify.ts';
import { PROMOTION_OFF_STABLE } from './release/canary.ts';

/** The release's gate, and every patch the release may ask after its first await. */
export const RELEASE_PATCHES_FIRST = 'glidepath-release-patches-first';
export const RELEASE_LATER_PATCHES = [
  FREEZE_PATCH,
  CONFIG_PATCH,
  NOTIFICATIONS_PATCH,
  WEBHOOK_GATES_PATCH,
  EXPERIMENT_PATCH,
  EXPERIMENT_WEIGHTS_PATCH,
  PROMOTION_OFF_STABLE,
  SIGNAL_PROOF,
  DRIFT_ON_PROMOTION_PATCH,
  UPDATE_REPLY_PATCH,
] as const;

/** Call before the workflow's first await: for a run started with `gate`, decides every one of `later` now. */
export function decidePatchesFirst(gate: string, later: readonly string[]): void {
  if (!wf.patched(gate)) return;
  for (const id of later) wf.patched(id);
}
