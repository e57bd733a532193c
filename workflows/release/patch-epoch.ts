/**
 * One patch marker for a new release instead of fourteen.
 *
 * Every `patched(id)` a workflow asks for the first time writes two history events: the marker, and
 * an upsert of the `TemporalChangeVersion` search attribute (sdk-core adds it; each one is also a
 * visibility write). A release asked fourteen patches at its start (workflows/patches-first.ts), so
 * 28 of the 56 events it wrote before its first pause were patch bookkeeping, and a burst of 1,000
 * releases spent the Temporal server's CPU on them (docs/operations.md, "A burst of 1,000").
 *
 * A release started with RELEASE_PATCH_EPOCH asks only that patch: every patch that existed when the
 * epoch was introduced (RELEASE_EPOCH_PATCHES) is on for it, without a marker, because such a run is
 * new code through and through. A release started before has no epoch marker: on replay
 * `patched(RELEASE_PATCH_EPOCH)` answers false there, and it asks every patch where it always did.
 * The epoch is decided first, before any other patch, in the workflow's first task.
 * A patch added after the epoch is asked with `wf.patched` as usual (and goes on patches-first's list).
 * Rolling a worker back to code without the epoch is not supported once releases have started with it
 * (the older code would ask patches these runs never recorded).
 */
import * as wf from '@temporalio/workflow';

export const RELEASE_PATCH_EPOCH = 'glidepath-release-epoch-1';

/** The release patches the epoch switches on: every one that existed when the epoch was introduced. */
export const RELEASE_EPOCH_PATCHES: readonly string[] = [
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

/** This run's epoch: undefined until the release decides it (and in every other workflow). */
let epoch: boolean | undefined;

/** Decides the epoch; call first in the release workflow, before its first await and before any other patch. */
export function decideReleaseEpoch(): boolean {
  epoch = wf.patched(RELEASE_PATCH_EPOCH);
  return epoch;
}

/**
 * `wf.patched(id)` for a release: true without a marker for a patch the epoch covers, in a run started
 * with it. Outside a release that decided its epoch (another workflow calling shared code), the plain SDK call.
 */
export function releasePatched(id: string): boolean {
  if (epoch === true && RELEASE_EPOCH_PATCHES.includes(id)) return true;
  return wf.patched(id);
}

/** With the epoch, at the start: each of `later` the epoch does not cover (a patch added after it) is decided now; the ones it covers write nothing. */
export function decideLaterPatches(later: readonly string[]): void {
  for (const id of later) releasePatched(id);
}
