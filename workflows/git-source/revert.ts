/**
 * Rollback written back: the releases, groups and API versions a source started are watched until
 * they settle. A release that rolled back or was aborted gets a revert commit on the branch, or on a
 * review branch of its own when the source says `revert: branch` (activities/git/revert.ts), that
 * restores the image running before it; a group that rolled back (or an API version whose
 * introduction failed) gets one that restores its files as at their last good commit
 * (activities/git/revert-files.ts, activities/git/document-outcome.ts). A revert that conflicts with
 * a newer commit is the named condition RevertConflict (nothing written); one that cannot be pushed
 * now is RevertFailed and retried.
 */
import * as wf from '@temporalio/workflow';
import type { GitActivities } from '../../activities/git/index.ts';
import type { DocumentOutcome, ReleaseWatch, SourceRef, WatchedOutcome } from './messages.ts';
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
  const done = (w: ReleaseWatch) => (st.watching = st.watching.filter((x) => x.workflowId !== w.workflowId || x.commit !== w.commit || x.file !== w.file));
  for (const w of [...st.watching]) {
    if (w.kind !== undefined) {
      await watchDocument(ref, s, w, toReviewBranch, () => done(w));
      continue;
    }
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
      if (o.phase === 'Promoted') succeeded(s, w);
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

/** The file's content at the watched commit ran: it is the file's last good commit (what a later revert restores). */
function succeeded(s: SourceState, w: ReleaseWatch): void {
  const t = s.status.tracked.find((x) => x.file === w.file && x.commit === w.commit);
  if (t) t.lastGood = w.commit;
}

/** A group or API version: written back when its outcome says so (activities/git/document-outcome.ts). */
async function watchDocument(ref: SourceRef, s: SourceState, w: ReleaseWatch, toReviewBranch: boolean, done: () => void): Promise<void> {
  const st = s.status;
  let o: DocumentOutcome;
  try {
    o = await git.gitDocumentOutcome(w);
  } catch {
    return; // asked again at the next poll
  }
  if (o.state === 'running') return;
  if (o.state === 'gone' || o.writeBack !== 'revert') done();
  if (o.state === 'gone') {
    s.audit('watch-ended', `${w.workflowId} no longer holds what ${w.file} at ${w.commit.slice(0, 12)} started`, w.commit);
    return;
  }
  if (o.writeBack === 'succeeded') return succeeded(s, w);
  if (o.writeBack === 'kept') {
    if (o.detail) s.audit('revert-skipped', `${o.revertOf} ${o.phase}: ${o.detail}`, w.commit);
    return;
  }
  const reviewBranch = toReviewBranch ? reviewBranchOf(o.revertOf, w.commit) : undefined;
  try {
    const r = await git.gitWriteFilesRevert({ ...ref, kind: w.kind ?? 'group', revertOf: o.revertOf, what: o.what, file: w.file, commit: w.commit, ...(w.baseCommit ? { baseCommit: w.baseCommit } : {}), phase: o.phase, reason: o.message, ...(reviewBranch ? { reviewBranch } : {}) });
    done();
    const restores = `restores ${w.file}${w.baseCommit ? ` as at ${w.baseCommit.slice(0, 12)}` : ''} after ${o.revertOf} ${o.phase}`;
    if (r.outcome === 'conflict') s.condition('RevertConflict', `${o.revertOf} ${o.phase}: ${r.detail}`, w.commit);
    else if (r.outcome === 'nothing') s.audit('revert-skipped', `${o.revertOf} ${o.phase}: ${r.detail}`, w.commit);
    else if (reviewBranch) s.audit('revert-proposed', `${r.commit.slice(0, 12)} on branch ${reviewBranch} ${restores}; merging it rolls ${st.branch} back${r.outcome === 'already-committed' ? ' (already proposed)' : ''}`, r.commit);
    else s.audit('revert-committed', `${r.commit.slice(0, 12)} ${restores}${r.outcome === 'already-committed' ? ' (already on the branch)' : ''}`, r.commit);
  } catch (err) {
    s.condition('RevertFailed', `${o.revertOf} ${o.phase}: writing the revert failed: ${message(err)}; retried at the next poll`, w.commit);
  }
}
