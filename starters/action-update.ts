/**
 * Sends an action (promote, abort…) as a workflow update until it has an answer. Under load the
 * update can wait longer than one call's deadline before the release's worker admits it; the call
 * then fails with a timeout although the update is still pending on the server (and may still be
 * applied). Each retry carries the same update ID, which the server deduplicates, so the action is
 * applied at most once and the caller learns its outcome: accepted (the status after it) or refused
 * (WorkflowUpdateFailedError, with the reason) — never an unknown.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowUpdateRPCTimeoutOrCancelledError, type WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';

/** Calls before giving up (each waits up to the server's deadline for the update to be admitted). */
export const ACTION_UPDATE_ATTEMPTS = 10;

export async function executeActionUpdate<Ret, Arg>(handle: WorkflowHandle, def: UpdateDefinition<Ret, [Arg]>, input: Arg): Promise<Ret> {
  const updateId = randomUUID();
  for (let attempt = 1; ; attempt++) {
    try {
      return await handle.executeUpdate(def, { args: [input], updateId });
    } catch (err) {
      if (!(err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) || attempt >= ACTION_UPDATE_ATTEMPTS) throw err;
    }
  }
}
