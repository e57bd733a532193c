/** The documents of a source at one commit, linted: what every start reads again before it starts. */
import { ApplicationFailure } from '@temporalio/common';
import type { SourceRef } from '../../workflows/git-source/messages.ts';
import { GitErrorType, openCache } from './git-cli.ts';
import { lintCommit, materialize, type LintedCommit } from './documents.ts';

const COMMIT = /^[0-9a-f]{40}$/;

export async function readAt(s: SourceRef, commit: string, initiator: string): Promise<LintedCommit> {
  if (!COMMIT.test(commit)) throw ApplicationFailure.nonRetryable(`not a commit ID: ${commit.slice(0, 80)}`, GitErrorType.InvalidSource);
  const git = await openCache(s.sourceId, s.credentials);
  const m = await materialize(git, commit, s.path);
  if ('problem' in m) return { releases: [], others: [], notStarted: [], problems: [m.problem], moreProblems: 0, plans: new Map(), groups: new Map(), apiVersions: new Map() };
  try {
    return await lintCommit(m, initiator);
  } finally {
    m.cleanup();
  }
}

/** Where a start from Git came from, as the started workflow records it (its source and memo). */
export function originOf(req: SourceRef & { file: string; commit: string }): string {
  return `${req.file} at ${req.commit} of ${req.repository} (${req.branch})`;
}
