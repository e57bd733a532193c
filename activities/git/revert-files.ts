/**
 * Rollback of a release group or an API version written back to Git: one commit that puts the files
 * that define it back to their content at the base commit (the last commit the source saw them
 * deployed from; without one, the started commit's parent). A group's files are its ReleaseGroup file
 * and its member files (as the group names them at the started commit or at the base); an API
 * version's is its ApiVersion file. A file the base does not hold (added with the change) is removed.
 * Every file must be at the branch head as the started commit left it: a newer commit that changed one
 * is a conflict, and nothing is written. Same author, trailers, push without force, review branch and
 * "found instead of written twice" as a release's revert (activities/git/revert.ts).
 */
import { posix } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { isGroupDoc, memberFiles, parseGroup } from '../../model/group.ts';
import type { DocumentKind } from '../../workflows/git-source/messages.ts';
import { openCache } from './git-cli.ts';
import { REVERT_TRAILER, REVERTED_COMMIT_TRAILER, branchHead, commitAndPush, type Git, type RevertResult, type RevertTarget, type TreeChange } from './revert.ts';

export interface FilesRevertRequest extends RevertTarget {
  kind: DocumentKind;
  /** The `Glidepath-Revert-Of` value: the group's workflow ID, or `<API workflow ID>/<version>`. */
  revertOf: string;
  /** What ended, for the message: `group payments/shop`, `API version shop/orders v3`. */
  what: string;
  /** The ReleaseGroup or ApiVersion file. */
  file: string;
  /** The commit it was started from. */
  commit: string;
  /** The commit whose content is restored; absent: `commit`'s first parent. */
  baseCommit?: string;
  phase: string;
  /** Why it ended (its status message), for the commit message. */
  reason: string;
}

export type FilesRevertResult = RevertResult | { outcome: 'nothing'; detail: string };

/** A file's blob and mode at a commit; undefined when the commit does not hold it. */
async function entryAt(git: Git, commit: string, file: string): Promise<{ id: string; mode: string } | undefined> {
  const { stdout } = await git(['ls-tree', '--full-tree', commit, '--', file]);
  const m = /^(\d+) blob ([0-9a-f]+)\t/.exec(stdout);
  return m ? { mode: m[1] as string, id: m[2] as string } : undefined;
}

/** The member files a ReleaseGroup file names at `commit` (paths in the repository); none when it is not there or not a group. */
async function membersAt(git: Git, commit: string, file: string): Promise<string[]> {
  const text = await git(['cat-file', 'blob', `${commit}:${file}`], { allowExit: [128] });
  if (text.code !== 0) return [];
  try {
    const doc = parseAllDocuments(text.stdout).map((d) => d.toJS() as unknown).find((d) => isGroupDoc(d));
    if (doc === undefined) return [];
    return [...memberFiles(parseGroup(file, doc)).values()].flat().map((f) => posix.normalize(posix.join(posix.dirname(file), f)));
  } catch {
    return []; // a base that does not read as a group names no members
  }
}

/** The files a revert of `r` puts back: the document's file, and a group's member files at either commit. */
async function filesOf(git: Git, r: FilesRevertRequest, base: string): Promise<string[]> {
  if (r.kind !== 'group') return [r.file];
  return [...new Set([r.file, ...(await membersAt(git, r.commit, r.file)), ...(await membersAt(git, base, r.file))])].sort();
}

export function filesRevertMessage(r: FilesRevertRequest, base: string, restored: readonly string[], removed: readonly string[]): string {
  const reason = r.reason.replace(/\s+/g, ' ').slice(0, 500);
  return [
    `Revert ${r.file} to ${base.slice(0, 12)}: ${r.revertOf} ${r.phase}`,
    '',
    `The ${r.what} from ${r.commit.slice(0, 12)} ended ${r.phase}: ${reason}`,
    '',
    ...(restored.length > 0 ? [`Restored as at ${base.slice(0, 12)}: ${restored.join(', ')}`] : []),
    ...(removed.length > 0 ? [`Removed (not there at ${base.slice(0, 12)}): ${removed.join(', ')}`] : []),
    '',
    `${REVERT_TRAILER}: ${r.revertOf}`,
    `${REVERTED_COMMIT_TRAILER}: ${r.commit}`,
    '',
  ].join('\n');
}

export async function writeFilesRevert(r: FilesRevertRequest): Promise<FilesRevertResult> {
  const git = await openCache(r.sourceId, r.credentials);
  const { head, found } = await branchHead(git, r, r.revertOf, r.commit);
  if (found) return { outcome: 'already-committed', commit: found };
  let base = r.baseCommit;
  if (base === undefined) {
    const parent = await git(['rev-parse', '--verify', '--quiet', `${r.commit}^1`], { allowExit: [1] });
    if (parent.code !== 0) return { outcome: 'nothing', detail: `${r.commit.slice(0, 12)} has no parent and the source saw no earlier content of ${r.file}; nothing to restore` };
    base = parent.stdout.trim();
  }
  const changes: TreeChange[] = [];
  for (const file of await filesOf(git, r, base)) {
    const [then, started, now] = await Promise.all([entryAt(git, base, file), entryAt(git, r.commit, file), entryAt(git, head, file)]);
    if (now?.id !== started?.id || now?.mode !== started?.mode) {
      return { outcome: 'conflict', detail: `${file} at ${head.slice(0, 12)} is not as ${r.commit.slice(0, 12)} left it (a newer commit changed it); nothing reverted` };
    }
    if (then?.id !== started?.id || then?.mode !== started?.mode) changes.push({ file, blob: then });
  }
  if (changes.length === 0) return { outcome: 'nothing', detail: `the files of ${r.what} are the same at ${r.commit.slice(0, 12)} and ${base.slice(0, 12)}; nothing to restore` };
  const restored = changes.filter((c) => c.blob).map((c) => c.file);
  const removed = changes.filter((c) => !c.blob).map((c) => c.file);
  const commit = await commitAndPush(git, r, head, changes, filesRevertMessage(r, base, restored, removed));
  return { outcome: 'committed', commit };
}
