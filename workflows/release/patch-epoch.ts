/**
 * One patch marker for a new release instead of fourteen.
 *
 * Every `patched(id)` a workflow asks for the first time writes two history events: the marker, and
 * an upsert of the `TemporalChangeVersion` search attribute (sdk-core adds it; each one is also a
 * visibility write). A release asked fourteen patches at its start (workflows/patches-first.ts), so
 * 28 of the 56 events it wrote before its first pause were patch bookkeeping, and a burst of 1,000
 * releases spent the Temporal server's CPU on them (docs/operations.md, "A burst of 1,000").
 *
 * A release started with an epoch asks only that epoch's patch: every patch that existed when the
 * epoch was introduced is on for it, without a marker, because such a run is new code through and
 * through. A release started before has no epoch marker: on replay `patched(<epoch>)` answers false
 * there, and it asks every patch where it always did.
 * The epoch is decided first, before any other patch, in the workflow's first task.
 * A patch added after the epoch is asked with `wf.patched` as usual (and goes on patches-first's list).
 * Rolling a worker back to code without the epoch is not supported once releases have started with it
 * (the older code would ask patches these runs never recorded).
 *
 * A later epoch covers its predecessor's patches and those added since (RELEASE_EPOCHS, newest
 * first): a new release records the newest epoch's marker alone; a run started under an older epoch
 * finds that epoch's marker on replay and asks a patch added after it where it always did.
 */
import * as wf from '@temporalio/workflow';

/** The first epoch (2026-12-03). */
export const RELEASE_PATCH_EPOCH_1 = 'glidepath-release-epoch-1';
/** The second epoch (2026-12-04): the first's patches and update replies after whole microtask turns. */
export const RELEASE_PATCH_EPOCH_2 = 'glidepath-release-epoch-2';

/** The release patches the first epoch switches on: every one that existed when it was introduced. */
const EPOCH_1_PATCHES: readonly string[] = [
  'glidepath-release-identity',
  'glidepath-release-2',
  'glidepath-release-outcome-fails',
  'glidepath-promote-once-per-pause',
  'glidepath-release-patches-first',
  'glidepath-freeze-windows',
  'glidepath-release-config',
  'glidepath-notifications',
  'glidepath-webhook-gates',
  'glidepath-experiment-step',
  'glidepath-experiment-weights',
  'glidepath-promotion-off-stable',
  'glidepath-signal-proof',
  'glidepath-drift-on-promotion',
];

/** The epochs, newest first: each one's marker and the patches it switches on. */
export const RELEASE_EPOCHS: readonly { id: string; patches: readonly string[] }[] = [
  { id: RELEASE_PATCH_EPOCH_2, patches: [...EPOCH_1_PATCHES, 'glidepath-update-reply-after-turns'] },
  { id: RELEASE_PATCH_EPOCH_1, patches: EPOCH_1_PATCHES },
];

/** The patches a new release has on without a marker: the newest epoch's. */
export const RELEASE_EPOCH_PATCHES: readonly string[] = RELEASE_EPOCHS[0]!.patches;

/** The patches this run's epoch switches on: undefined until the release decides it (and in every other workflow), empty before the first epoch. */
let covered: readonly string[] | undefined;

/**
 * Decides the epoch; call first in the release workflow, before its first await and before any other
 * patch. Asks the epochs newest first and stops at the first the run has (a new run: the newest, which
 * it records); true when the run has one.
 */
export function decideReleaseEpoch(): boolean {
  const epoch = RELEASE_EPOCHS.find((e) => wf.patched(e.id));
  covered = epoch?.patches ?? [];
  return epoch !== undefined;
}

/**
 * `wf.patched(id)` for a release: true without a marker for a patch its epoch covers. Outside a
 * release that decided its epoch (another workflow calling shared code), the plain SDK call.
 */
export function releasePatched(id: string): boolean {
  if (covered?.includes(id)) return true;
  return wf.patched(id);
}

/** With an epoch, at the start: each of `later` the epoch does not cover (a patch added after it) is decided now; the ones it covers write nothing. */
export function decideLaterPatches(later: readonly string[]): void {
  for (const id of later) releasePatched(id);
}
