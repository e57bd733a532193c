/**
 * Rollback written back to Git: when a release the source started rolls back or is aborted, a commit
 * on the branch (or, with `reviewBranch`, on a review branch of its own made from the branch's head)
 * puts the image that was running before back into the release file, authored as
 * Glidepath, naming the release and why it ended, with the trailers the source recognises as its own
 * (`Glidepath-Revert-Of: <release>`, `Glidepath-Reverted-Commit: <commit>`). Built with git plumbing in
 * the source's cache repository (no work tree) and pushed without force: a branch that moved meanwhile
 * is fetched again on the retry. Exactly once: a revert already on the branch for the same release and
 * commit is found and answered. A file that a newer commit changed (the failed image is no longer in
 * it) is a conflict: nothing is written.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SourceRef } from '../../workflows/git-source/messages.ts';
import { openCache } from './git-cli.ts';

export const REVERT_TRAILER = 'Glidepath-Revert-Of';
export const REVERTED_COMMIT_TRAILER = 'Glidepath-Reverted-Commit';
const HEAD_REF = 'refs/glidepath/head';
/** How far back the branch is searched for a revert already written. */
const SEARCH_DEPTH = 50;
export const GLIDEPATH_AUTHOR = { name: 'Glidepath', email: 'glidepath@localhost' };

export interface RevertRequest extends SourceRef {
  releaseId: string;
  file: string;
  /** The commit the release was started from. */
  commit: string;
  phase: 'RolledBack' | 'Aborted';
  failedImage: string;
  /** The image running before the release (its status' stable image). */
  restoreImage: string;
  /** Why the release ended (its status message), for the commit message. */
  reason: string;
  /** Propose the revert on this branch (created from the source branch's head) instead of committing to the branch. */
  reviewBranch?: string;
}

export type RevertResult = { outcome: 'committed' | 'already-committed'; commit: string } | { outcome: 'conflict'; detail: string };
const REVIEW_REF = 'refs/glidepath/review';

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `text` with every `image:` value equal to `from` set to `to` (quotes and comments kept); undefined when none is. */
export function replaceImage(text: string, from: string, to: string): string | undefined {
  const line = new RegExp(`^(\\s*(?:-\\s+)?image:\\s*)(["']?)${escape(from)}\\2(\\s*(?:#.*)?)$`, 'gm');
  if (!line.test(text)) return undefined;
  return text.replace(line, (_m, head: string, quote: string, tail: string) => `${head}${quote}${to}${quote}${tail}`);
}

export function revertMessage(r: RevertRequest): string {
  const reason = r.reason.replace(/\s+/g, ' ').slice(0, 500);
  return [
    `Revert ${r.file} to ${r.restoreImage}: ${r.releaseId} ${r.phase}`,
    '',
    `The release of ${r.failedImage} from ${r.commit.slice(0, 12)} ended ${r.phase}: ${reason}`,
    '',
    `${REVERT_TRAILER}: ${r.releaseId}`,
    `${REVERTED_COMMIT_TRAILER}: ${r.commit}`,
    '',
  ].join('\n');
}

type Git = Awaited<ReturnType<typeof openCache>>;

/** The revert of `r` among the last commits up to `tip`, if one was written. */
async function findRevert(git: Git, tip: string, r: RevertRequest): Promise<string | undefined> {
  const sep = '\x1f';
  const log = await git(['log', `-${SEARCH_DEPTH}`, `--format=%H${sep}%(trailers:key=${REVERT_TRAILER},valueonly,separator=%x2C)${sep}%(trailers:key=${REVERTED_COMMIT_TRAILER},valueonly,separator=%x2C)%x1e`, tip]);
  for (const entry of log.stdout.split('\x1e')) {
    const [id = '', of = '', reverted = ''] = entry.trim().split(sep);
    if (of.trim() === r.releaseId && reverted.trim() === r.commit) return id;
  }
  return undefined;
}

/** The revert already proposed on the review branch (a retry after the push), if that branch exists. */
async function findOnReviewBranch(git: Git, r: RevertRequest & { reviewBranch?: string }): Promise<string | undefined> {
  const listed = await git(['ls-remote', '--heads', '--', r.repository, `refs/heads/${r.reviewBranch}`]);
  if (listed.stdout.trim() === '') return undefined;
  await git(['fetch', '--quiet', '--no-tags', '--', r.repository, `+refs/heads/${r.reviewBranch}:${REVIEW_REF}`]);
  const tip = (await git(['rev-parse', '--verify', `${REVIEW_REF}^{commit}`])).stdout.trim();
  return findRevert(git, tip, r);
}

export async function writeRevert(r: RevertRequest): Promise<RevertResult> {
  const git = await openCache(r.sourceId, r.credentials);
  await git(['fetch', '--quiet', '--no-tags', '--', r.repository, `+refs/heads/${r.branch}:${HEAD_REF}`]);
  const head = (await git(['rev-parse', '--verify', `${HEAD_REF}^{commit}`])).stdout.trim();
  const found = (await findRevert(git, head, r)) ?? (r.reviewBranch ? await findOnReviewBranch(git, r) : undefined);
  if (found) return { outcome: 'already-committed', commit: found };
  const current = await git(['cat-file', 'blob', `${head}:${r.file}`], { allowExit: [128] });
  if (current.code !== 0) return { outcome: 'conflict', detail: `${r.file} is no longer on ${r.branch} at ${head.slice(0, 12)}; nothing reverted` };
  const next = replaceImage(current.stdout, r.failedImage, r.restoreImage);
  if (next === undefined) return { outcome: 'conflict', detail: `${r.file} at ${head.slice(0, 12)} no longer releases ${r.failedImage} (a newer commit changed it); nothing reverted` };
  const dir = mkdtempSync(join(tmpdir(), 'glidepath-git-revert-'));
  try {
    const indexEnv = { GIT_INDEX_FILE: join(dir, 'index') };
    const blob = (await git(['hash-object', '-w', '--stdin'], { input: next })).stdout.trim();
    await git(['read-tree', head], { env: indexEnv });
    await git(['update-index', '--cacheinfo', `100644,${blob},${r.file}`], { env: indexEnv });
    const tree = (await git(['write-tree'], { env: indexEnv })).stdout.trim();
    const author = { GIT_AUTHOR_NAME: GLIDEPATH_AUTHOR.name, GIT_AUTHOR_EMAIL: GLIDEPATH_AUTHOR.email, GIT_COMMITTER_NAME: GLIDEPATH_AUTHOR.name, GIT_COMMITTER_EMAIL: GLIDEPATH_AUTHOR.email };
    const commit = (await git(['commit-tree', tree, '-p', head, '-F', '-'], { input: revertMessage(r), env: author })).stdout.trim();
    // Without force: a branch that moved since the fetch (or a review branch that exists) refuses it, and the retry starts over.
    await git(['push', '--quiet', '--', r.repository, `${commit}:refs/heads/${r.reviewBranch ?? r.branch}`]);
    return { outcome: 'committed', commit };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
