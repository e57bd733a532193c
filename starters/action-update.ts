/**
 * Sends an action (promote, abort…) as a workflow update until it has an answer. Under load the
 * update can wait longer than one call's deadline before the release's worker admits it; the call
 * then fails with a timeout although the update is still pending on the server (and may still be
 * applied). Each retry carries the same update ID, which the server deduplicates, so the action is
 * applied at most once and the caller learns its outcome: accepted (the status after it) or refused
 * (WorkflowUpdateFailedError, with the reason) — never an unknown. An update lost with a failed workflow
 * task (below) is sent again the same way.
 */
import { randomUUID } from 'node:crypto';
import { ServiceError, WorkflowUpdateRPCTimeoutOrCancelledError, type WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';

/** Calls before giving up (each waits up to the server's deadline for the update to be admitted). */
export const ACTION_UPDATE_ATTEMPTS = 10;

/**
 * The server dropped the update because the workflow task it rode in failed: an update that arrives
 * in the very task that ends the release (the completion is refused while an update is pending) is
 * answered FAILED_PRECONDITION "… unexpected workflow task failure". Sent again, it meets the ended
 * release (not found: not in flight) or the retried task.
 */
const GRPC_FAILED_PRECONDITION = 9; // the gRPC status code
function lostToTaskFailure(err: unknown): boolean {
  const cause = (err as { cause?: { code?: number; details?: string } } | undefined)?.cause;
  return err instanceof ServiceError && cause?.code === GRPC_FAILED_PRECONDITION && /workflow task failure/i.test(cause.details ?? '');
}

export async function executeActionUpdate<Ret, Arg>(handle: WorkflowHandle, def: UpdateDefinition<Ret, [Arg]>, input: Arg): Promise<Ret> {
  const updateId = randomUUID();
  for (let attempt = 1; ; attempt++) {
    try {
      return await handle.executeUpdate(def, { args: [input], updateId });
    } catch (err) {
      if (!(err instanceof WorkflowUpdateRPCTimeoutOrCancelledError || lostToTaskFailure(err)) || attempt >= ACTION_UPDATE_ATTEMPTS) throw err;
    }
  }
}
