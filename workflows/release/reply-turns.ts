/**
 * When an update replies: after the release has acted on what its handler changed, so that the reply
 * shows the state after the action (a promote at a pause replies with the step it moved on to).
 */
import * as wf from '@temporalio/workflow';
import { releasePatched } from './patch-epoch.ts';

/**
 * Update replies after whole turns of the workflow's microtask queue (see afterTurn) instead of after
 * two awaits of a condition that is already true. Those awaits are a fixed number of microtask turns,
 * and the release's way from a pause to its next step is not: in CI, of the promotes accepted across
 * 200 releases, one replied Paused with its next step already entered (test/e2e/actions-under-load.test.ts).
 */
export const UPDATE_REPLY_PATCH = 'glidepath-update-reply-after-turns';

/**
 * The reply of releases without UPDATE_REPLY_PATCH: resolves after two conditions that are already
 * true, a fixed number of microtask turns, which usually lets the release reach its next wait first.
 */
export async function settledBeforePatch(): Promise<void> {
  await wf.condition(() => true);
  await wf.condition(() => true);
}

/**
 * Resolves after the workflow has run every microtask pending when it was called. The SDK asks a
 * blocked condition only between its passes through the microtask queue (each runs until the queue
 * is empty); this one queues a microtask when first asked and holds until it has run, so it cannot
 * pass before a whole pass has.
 */
function afterTurn(): Promise<void> {
  let queued = false;
  let ran = false;
  return wf.condition(() => {
    if (!queued) {
      queued = true;
      void Promise.resolve().then(() => (ran = true));
    }
    return ran;
  });
}

/** After two whole turns: the release has run up to its next wait (an activity, a timer, a condition it cannot pass). */
export async function settledAfterTurns(): Promise<void> {
  await afterTurn();
  await afterTurn();
}

/**
 * Resolves once the workflow has acted on what a handler just changed, so that an update replies with
 * the state after its action. Asked in the handler, after its action: a release without the patch
 * awaits exactly what it always did (the same microtask turns, so its history replays).
 */
export function settled(): Promise<void> {
  return releasePatched(UPDATE_REPLY_PATCH) ? settledAfterTurns() : settledBeforePatch();
}
