/**
 * Rollback written back: the releases a source started are watched until they settle; one that rolled
 * back or was aborted gets a revert commit on the branch, or on a review branch of its own when the
 * source says `revert: branch` (activities/git/revert.ts), that restores the image running before it. A revert that conflicts with a newer commit is the named condition
 * RevertConflict (nothing written); one that cannot be pushed now is RevertFailed and retried.
 */
import * as wf from '@temporalio/workflow';
import type { GitActivities } from '../../activities/git/index.ts';
import type { ReleaseWatch, SourceRef, WatchedOutcome } from './messages.ts';
import type { SourceState } from './state.ts';
import { reviewBranchOf } from './source.ts';

const git = wf.proxyActivities<GitActivities>({
  startToCloseTimeout: '3m',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: ['GitAuthFailed', 'GitNotFound'] },
});

function message(err: unknown): string {
  const cause = err instanceof wf.ActivityFailure ? err.cause : err;
  return (cause instanceof Error ? cause.message : String(cause)).slice(0, 500);
}

/** `toReviewBranch`: the revert goes to a review branch of its own instead of the source's branch. */
export async function watchReleases(ref: SourceRef, s: SourceState, toReviewBranch = false): Promise<void> {
  const st = s.status;
  const done = (w: ReleaseWatch) => (st.watching = st.watching.filter((x) => x.workflowId !== w.workflowId || x.commit !== w.commit));
  for (const w of [...st.watching]) {
    let o: WatchedOutcome;
    try {
      o = await git.gitReleaseOutcome(w);
    } catch {
      continue; // asked again at the next poll
    }
    if (o.state === 'gone') {
      done(w);
      s.audit('release-replaced', `${w.workflowId} no longer holds the release started from ${w.file}`, w.commit);
      continue;
    }
    if (o.phase === 'Promoted' || o.phase === 'Failed') {
      done(w);
      continue;
    }
    if (o.phase !== 'RolledBack' && o.phase !== 'Aborted') continue;
    if (!o.stableImage || o.stableImage === o.canaryImage) {
      done(w);
      s.audit('revert-skipped', `${w.workflowId} ${o.phase}, but the image running before it is unknown or the same; nothing to write back`, w.commit);
      continue;
    }
    try {
      const reviewBranch = toReviewBranch ? reviewBranchOf(w.workflowId, w.commit) : undefined;
      const r = await git.gitWriteRevert({ ...ref, releaseId: w.workflowId, file: w.file, commit: w.commit, phase: o.phase, failedImage: o.canaryImage, restoreImage: o.stableImage, reason: o.message, ...(reviewBranch ? { reviewBranch } : {}) });
      done(w);
      if (r.outcome === 'conflict') s.condition('RevertConflict', `${w.workflowId} ${o.phase}: ${r.detail}`, w.commit);
      else if (reviewBranch) s.audit('revert-proposed', `${r.commit.slice(0, 12)} on branch ${reviewBranch} restores ${o.stableImage} in ${w.file} after ${w.workflowId} ${o.phase}; merging it rolls ${st.branch} back${r.outcome === 'already-committed' ? ' (already proposed)' : ''}`, r.commit);
      else s.audit('revert-committed', `${r.commit.slice(0, 12)} restores ${o.stableImage} in ${w.file} after ${w.workflowId} ${o.phase}${r.outcome === 'already-committed' ? ' (already on the branch)' : ''}`, r.commit);
    } catch (err) {
      s.condition('RevertFailed', `${w.workflowId} ${o.phase}: writing the revert failed: ${message(err)}; retried at the next poll`, w.commit);
    }
  }
}
