/**
 * A promoted release starts its workload's drift watch, or gives the running one its promotion as
 * the new reference (activity `driftFollowPromotion`: signal-with-start on `drift_<namespace>_<workload>`,
 * so one watch per workload). Whether and with which policy is the worker's setting
 * (`GLIDEPATH_DRIFT_ON_PROMOTION`, docs/drift.md). A failure is audited; the release's outcome stands.
 * Releases started before DRIFT_ON_PROMOTION_PATCH issue no such command. Workflow-safe.
 */
import * as wf from '@temporalio/workflow';
import type { DriftActivities } from '../../activities/drift.ts';
import type { ReleaseTarget } from '../../activities/contract.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../../activities/errors.ts';

/** Marks releases that start (or refresh) the workload's drift watch when they promote. */
export const DRIFT_ON_PROMOTION_PATCH = 'glidepath-drift-on-promotion';

const follow = wf.proxyActivities<Pick<DriftActivities, 'driftFollowPromotion'>>({
  startToCloseTimeout: '30s',
  // NotFoundError: a worker without the activity (an older one) answers at once instead of being retried.
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES, 'NotFoundError'] },
});

/** Starts or refreshes the watch for `image` promoted on `target`; returns the audit detail and whether it was done (undefined: skipped by the worker's setting or the workload, nothing to audit). */
export async function followPromotion(target: ReleaseTarget, image: string): Promise<{ ok: boolean; detail: string } | undefined> {
  try {
    const r = await follow.driftFollowPromotion({ releaseId: target.releaseId, target: { ...target, image }, image });
    if ('skipped' in r) return undefined;
    return { ok: true, detail: `${r.watchId} watches ${image} (a new watch: policy ${r.policy}, every ${r.interval})` };
  } catch (err) {
    const cause = err instanceof wf.ActivityFailure ? err.cause : err;
    return { ok: false, detail: `drift watch not started: ${(cause instanceof Error ? cause.message : String(cause)).slice(0, 300)}` };
  }
}
