/**
 * Where a release group or API version a Git source started stands, and whether its end is written
 * back to Git (workflows/git-source/revert.ts decides nothing else):
 * - A group that ended `RolledBack` or `Aborted` with every cell back where it was (none still
 *   promoted, no compensation that did not complete) is reverted. One that ended so with a cell still
 *   on the group's image (an abort under `onFailure: rollback-failed`, a compensation that failed)
 *   is kept: Git would no longer say what runs. `Promoted` succeeded; `Failed` (rollback-failed: only
 *   the failed member went back) is kept, as a release that failed is.
 * - An API version has no rollback: the API workflow introduces it once and, when an activity fails
 *   for good while it is `Introducing`, marks it `Failed` without serving it (it undoes nothing; the
 *   route was never added). That failed introduction is what is written back: Git stops claiming a
 *   version that does not serve. `Serving` (or any later phase) succeeded; a failure after it served
 *   (a retirement step) is kept.
 * A workflow ID that now holds something the source did not start from this commit is `gone`.
 */
import type { Client } from '@temporalio/client';
import { parseAllDocuments } from 'yaml';
import { API_VERSION_KIND } from '../../model/api-version.ts';
import { apiStatusQuery, type ApiStatus } from '../../workflows/api-version-messages.ts';
import { groupStatusQuery, type GroupStatus } from '../../workflows/group/messages.ts';
import type { DocumentOutcome, ReleaseWatch } from '../../workflows/git-source/messages.ts';
import { openCache } from './git-cli.ts';
import { describeIfAny } from './start-documents.ts';

const GROUP_SETTLED = ['Promoted', 'RolledBack', 'Aborted', 'Failed'];

/** The cells a group left on its own image: promoted and never compensated, or whose compensation did not complete. */
export function cellsNotBack(s: Pick<GroupStatus, 'cells'>): string[] {
  return s.cells.filter((c) => c.phase === 'Promoted' || (c.phase === 'Failed' && /^compensation to /.test(c.message ?? ''))).map((c) => `${c.member}@${c.cluster}`);
}

export function groupOutcome(s: Pick<GroupStatus, 'phase' | 'message' | 'cells' | 'name'>, workflowId: string): DocumentOutcome {
  if (!GROUP_SETTLED.includes(s.phase)) return { state: 'running', phase: s.phase };
  const base = { state: 'settled' as const, phase: s.phase, message: s.message.slice(0, 500), revertOf: workflowId, what: `group ${s.name}` };
  if (s.phase === 'Promoted') return { ...base, writeBack: 'succeeded' };
  if (s.phase === 'Failed') return { ...base, writeBack: 'kept' };
  const left = cellsNotBack(s);
  if (left.length > 0) return { ...base, writeBack: 'kept', detail: `${left.slice(0, 10).join(', ')}${left.length > 10 ? ` and ${left.length - 10} more` : ''} still on the group's image; Git is left as it is` };
  return { ...base, writeBack: 'revert' };
}

/** The version an ApiVersion file introduces (its `spec.version`), read at the commit. */
async function versionAt(w: ReleaseWatch): Promise<string | undefined> {
  const git = await openCache(w.sourceId);
  const text = await git(['cat-file', 'blob', `${w.commit}:${w.file}`], { allowExit: [128] });
  if (text.code !== 0) return undefined;
  const doc = parseAllDocuments(text.stdout).map((d) => d.toJS() as { kind?: unknown; spec?: { version?: unknown } } | null).find((d) => d?.kind === API_VERSION_KIND);
  return typeof doc?.spec?.version === 'string' ? doc.spec.version : undefined;
}

/**
 * The version's outcome when its latest introduction is the one from `w.commit` (its reason names the
 * commit: activities/git/start-documents.ts), else `gone`.
 */
export function apiVersionOutcome(s: Pick<ApiStatus, 'versions' | 'audit' | 'service'>, w: ReleaseWatch, version: string): DocumentOutcome {
  const v = s.versions.find((x) => x.version === version);
  const introduced = [...s.audit].reverse().find((a) => (a.action === 'introduce' || a.action === 'register') && a.detail?.startsWith(`${version} at `));
  if (!v || !introduced?.reason?.includes(`${w.file} at ${w.commit} `)) return { state: 'gone' };
  if (v.phase === 'Introducing') return { state: 'running', phase: v.phase };
  const base = { state: 'settled' as const, phase: v.phase, message: v.message.slice(0, 500), revertOf: `${w.workflowId}/${version}`, what: `API version ${s.service} ${version}` };
  if (v.phase === 'Failed') return /^Introducing: /.test(v.message) ? { ...base, writeBack: 'revert' } : { ...base, writeBack: 'kept' };
  return { ...base, writeBack: 'succeeded' };
}

export function createDocumentOutcomes(deps: { client: Pick<Client, 'workflow'> }) {
  return {
    /** Where a group or API version the source started stands (see the file's comment). */
    async gitDocumentOutcome(w: ReleaseWatch): Promise<DocumentOutcome> {
      const d = await describeIfAny(deps.client, w.workflowId);
      if (!d) return { state: 'gone' };
      const handle = deps.client.workflow.getHandle(w.workflowId, d.runId);
      if (w.kind === 'group') {
        if (d.memo?.gitSource !== w.sourceId || d.memo?.gitCommit !== w.commit || d.memo?.gitFile !== w.file) return { state: 'gone' };
        return groupOutcome(await handle.query(groupStatusQuery), w.workflowId);
      }
      const version = await versionAt(w);
      if (version === undefined) return { state: 'gone' };
      return apiVersionOutcome(await handle.query(apiStatusQuery), w, version);
    },
  };
}
