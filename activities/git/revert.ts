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

export type Git = Awaited<ReturnType<typeof openCache>>;

/** The revert of `revertOf` started from `commit` among the last commits up to `tip`, if one was written. */
async function findRevert(git: Git, tip: string, revertOf: string, commit: string): Promise<string | undefined> {
  const sep = '\x1f';
  const log = await git(['log', `-${SEARCH_DEPTH}`, `--format=%H${sep}%(trailers:key=${REVERT_TRAILER},valueonly,separator=%x2C)${sep}%(trailers:key=${REVERTED_COMMIT_TRAILER},valueonly,separator=%x2C)%x1e`, tip]);
  for (const entry of log.stdout.split('\x1e')) {
    const [id = '', of = '', reverted = ''] = entry.trim().split(sep);
    if (of.trim() === revertOf && reverted.trim() === commit) return id;
  }
  return undefined;
}

/** Where a revert goes: the source's branch, or a review branch of its own. */
export type RevertTarget = SourceRef & { reviewBranch?: string | undefined };

/** The revert already proposed on the review branch (a retry after the push), if that branch exists. */
async function findOnReviewBranch(git: Git, r: RevertTarget, revertOf: string, commit: string): Promise<string | undefined> {
  const listed = await git(['ls-remote', '--heads', '--', r.repository, `refs/heads/${r.reviewBranch}`]);
  if (listed.stdout.trim() === '') return undefined;
  await git(['fetch', '--quiet', '--no-tags', '--', r.repository, `+refs/heads/${r.reviewBranch}:${REVIEW_REF}`]);
  const tip = (await git(['rev-parse', '--verify', `${REVIEW_REF}^{commit}`])).stdout.trim();
  return findRevert(git, tip, revertOf, commit);
}

/**
 * Fetches the branch head and looks for the revert of `revertOf` from `commit` already written (on the
 * branch, or on the review branch): `found` is it; otherwise `head` is the commit to build on.
 */
export async function branchHead(git: Git, r: RevertTarget, revertOf: string, commit: string): Promise<{ head: string; found?: string }> {
  await git(['fetch', '--quiet', '--no-tags', '--', r.repository, `+refs/heads/${r.branch}:${HEAD_REF}`]);
  const head = (await git(['rev-parse', '--verify', `${HEAD_REF}^{commit}`])).stdout.trim();
  const found = (await findRevert(git, head, revertOf, commit)) ?? (r.reviewBranch ? await findOnReviewBranch(git, r, revertOf, commit) : undefined);
  return found ? { head, found } : { head };
}

/** A file of the revert: its new blob (with its mode), or `undefined` to remove it. */
export interface TreeChange {
  file: string;
  blob?: { id: string; mode: string } | undefined;
}

/**
 * Commits `changes` on `head` as Glidepath with `message` and pushes it without force to the branch
 * (or the review branch): a branch that moved since the fetch (or a review branch that exists) refuses
 * it, and the activity's retry starts over.
 */
export async function commitAndPush(git: Git, r: RevertTarget, head: string, changes: readonly TreeChange[], message: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'glidepath-git-revert-'));
  try {
    const indexEnv = { GIT_INDEX_FILE: join(dir, 'index') };
    await git(['read-tree', head], { env: indexEnv });
    // Mode 0 removes the path from the index (no work tree is needed, as --force-remove would).
    const info = changes.map((c) => (c.blob ? `${c.blob.mode} ${c.blob.id}\t${c.file}` : `0 ${'0'.repeat(40)}\t${c.file}`)).join('\n');
    await git(['update-index', '--index-info'], { env: indexEnv, input: `${info}\n` });
    const tree = (await git(['write-tree'], { env: indexEnv })).stdout.trim();
    const author = { GIT_AUTHOR_NAME: GLIDEPATH_AUTHOR.name, GIT_AUTHOR_EMAIL: GLIDEPATH_AUTHOR.email, GIT_COMMITTER_NAME: GLIDEPATH_AUTHOR.name, GIT_COMMITTER_EMAIL: GLIDEPATH_AUTHOR.email };
    const commit = (await git(['commit-tree', tree, '-p', head, '-F', '-'], { input: message, env: author })).stdout.trim();
    await git(['push', '--quiet', '--', r.repository, `${commit}:refs/heads/${r.reviewBranch ?? r.branch}`]);
    return commit;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function writeRevert(r: RevertRequest): Promise<RevertResult> {
  const git = await openCache(r.sourceId, r.credentials);
  const { head, found } = await branchHead(git, r, r.releaseId, r.commit);
  if (found) return { outcome: 'already-committed', commit: found };
  const current = await git(['cat-file', 'blob', `${head}:${r.file}`], { allowExit: [128] });
  if (current.code !== 0) return { outcome: 'conflict', detail: `${r.file} is no longer on ${r.branch} at ${head.slice(0, 12)}; nothing reverted` };
  const next = replaceImage(current.stdout, r.failedImage, r.restoreImage);
  if (next === undefined) return { outcome: 'conflict', detail: `${r.file} at ${head.slice(0, 12)} no longer releases ${r.failedImage} (a newer commit changed it); nothing reverted` };
  const blob = (await git(['hash-object', '-w', '--stdin'], { input: next })).stdout.trim();
  const commit = await commitAndPush(git, r, head, [{ file: r.file, blob: { id: blob, mode: '100644' } }], revertMessage(r));
  return { outcome: 'committed', commit };
}
