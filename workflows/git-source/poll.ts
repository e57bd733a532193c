/**
 * One poll of a Git source: fetch the head; if it is new, read and lint its documents; start the
 * releases, release groups and API versions whose spec changed since the last commit seen; retry the
 * changes that found their workload (or group) in flight. Every failure becomes a named condition and
 * the source keeps watching.
 */
import * as wf from '@temporalio/workflow';
import type { GitActivities } from '../../activities/git/index.ts';
import type { CommitRecord, DocumentKind, FetchedHead, GitSourceInput, PendingStart, ReadResult, SourceRef, StartRequest, StartResult, TrackedSpec } from './messages.ts';
import { MAX_TRACKED_FILES } from './messages.ts';
import type { SourceState } from './state.ts';
import { watchReleases } from './revert.ts';
import { now } from './state.ts';

const NON_RETRYABLE = ['GitAuthFailed', 'GitNotFound', 'GitInvalidSource', 'InvalidSpec'];
const git = wf.proxyActivities<GitActivities>({
  startToCloseTimeout: '3m',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
});
/** Starting a release is idempotent (the activity finds its own start), so it may be retried freely. */
const starts = wf.proxyActivities<GitActivities>({
  startToCloseTimeout: '2m',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
});

/**
 * Runs that record this marker start ReleaseGroup and ApiVersion documents too (a group workflow, an
 * introduction on the API's workflow); before it they were linted only. Asked only when a commit holds
 * such documents, so histories without them replay unchanged.
 */
export const GIT_GROUPS_AND_APIS = 'glidepath-git-groups-and-apis';

/**
 * Runs that record this marker watch the groups and API versions they start, as releases are watched:
 * a group that rolls back and an API version whose introduction fails are written back to Git
 * (workflows/git-source/revert.ts). Asked only when such a document starts.
 */
export const GIT_REVERT_GROUPS_AND_APIS = 'glidepath-git-revert-groups-and-apis';

/** A document at a commit as the source tracks it; `kind` is absent for a release. */
type Doc = Omit<TrackedSpec, 'commit'>;

/** The documents the source starts from `read`: its releases, and its groups and API versions once patched. */
function documentsOf(read: ReadResult): Doc[] {
  const releases: Doc[] = read.releases.map((r) => ({ file: r.file, specHash: r.specHash, workflowId: r.workflowId }));
  const others = read.others ?? [];
  if (others.length === 0 || !wf.patched(GIT_GROUPS_AND_APIS)) return releases;
  return [...releases, ...others.map((o) => ({ kind: o.kind, file: o.file, specHash: o.specHash, workflowId: o.workflowId }))];
}

const kindOf = (kind: DocumentKind | undefined) => (kind ? { kind } : {});

/** What starting a document means: a release, a release group, or introducing an API version. */
function startDocument(kind: DocumentKind | undefined, req: StartRequest): Promise<StartResult> {
  if (kind === 'group') return starts.gitStartGroup(req);
  if (kind === 'apiVersion') return starts.gitIntroduceApiVersion(req);
  return starts.gitStartRelease(req);
}

const STARTED_ACTION: Record<DocumentKind | 'release', string> = { release: 'release-started', group: 'group-started', apiVersion: 'api-version-introduced' };

/** The initiator recorded on releases started from Git: who wrote the commit. */
export function initiatorOf(head: Pick<FetchedHead, 'authorEmail'>): string {
  const email = head.authorEmail.replace(/[^\w.@+-]/g, '');
  return email ? `git:${email}` : 'git:unknown';
}

function failureType(err: unknown): string | undefined {
  const cause = err instanceof wf.ActivityFailure ? err.cause : err;
  return cause instanceof wf.ApplicationFailure ? (cause.type ?? undefined) : undefined;
}

function failureMessage(err: unknown): string {
  const cause = err instanceof wf.ActivityFailure ? err.cause : err;
  return (cause instanceof Error ? cause.message : String(cause)).slice(0, 500);
}

export async function pollOnce(input: GitSourceInput, s: SourceState): Promise<void> {
  const st = s.status;
  const ref: SourceRef = { sourceId: st.sourceId, repository: st.repository, branch: st.branch, path: st.path, ...(input.credentials ? { credentials: input.credentials } : {}) };
  await pollHead(input, ref, s);
  if (st.watching.length > 0) await watchReleases(ref, s, input.revert === 'branch');
}

async function pollHead(input: GitSourceInput, ref: SourceRef, s: SourceState): Promise<void> {
  const st = s.status;
  st.polls++;
  st.lastPolledAt = now();
  let head: FetchedHead;
  try {
    // Sources from before the signing policy have no trusted commit: the last commit seen was accepted.
    const trusted = st.trustedCommit ?? st.lastCommit;
    head = await git.gitFetchHead({ ...ref, ...(st.lastCommit ? { lastCommit: st.lastCommit } : {}), ...(trusted ? { trustedCommit: trusted } : {}) });
  } catch (err) {
    const type = failureType(err);
    const condition = type === 'GitAuthFailed' ? 'AuthFailed' : type === 'GitNotFound' ? 'NotFound' : 'Unreachable';
    s.condition(condition, `${st.repository} (${st.branch}): ${failureMessage(err)}; retried at the next poll`);
    return;
  }
  if (head.commit === st.lastCommit) {
    if (st.pending.length > 0) await startPending(ref, s, initiatorOf(head));
    else if (st.condition.type === 'Unreachable' || st.condition.type === 'AuthFailed' || st.condition.type === 'NotFound') s.condition('Watching', `${st.repository} answers again`);
    return;
  }
  await newCommit(input, ref, s, head);
}

async function newCommit(input: GitSourceInput, ref: SourceRef, s: SourceState, head: FetchedHead): Promise<void> {
  const st = s.status;
  const forcePushed = st.lastCommit !== undefined && head.descends === false;
  if (forcePushed) {
    s.condition('ForcePushed', `history of ${st.branch} was rewritten: ${head.commit.slice(0, 12)} does not descend from the last commit seen ${st.lastCommit?.slice(0, 12)}; its documents are compared with the last ones seen`, head.commit);
  }
  const initiator = initiatorOf(head);
  const base: Omit<CommitRecord, 'result'> = { commit: head.commit, at: now(), subject: head.subject, releases: [], ...(forcePushed ? { forcePushed } : {}) };
  if (head.signature && !head.signature.verified && head.revertOf === undefined) {
    // The last commit stays: every poll checks the head again until a commit that verifies replaces it.
    s.record({ ...base, result: 'signature-refused', problems: [head.signature.detail] });
    s.condition('SignatureRefused', `${head.commit.slice(0, 12)} is refused, nothing started: ${head.signature.detail} (signing policy .glidepath/allowed_signers at ${head.signature.policyCommit.slice(0, 12)})`, head.commit);
    return;
  }
  let read: ReadResult;
  try {
    read = await git.gitReadCommit({ ...ref, commit: head.commit, initiator });
  } catch (err) {
    s.condition('Unreachable', `reading ${head.commit.slice(0, 12)}: ${failureMessage(err)}; retried at the next poll`, head.commit);
    return; // lastCommit stays: the commit is read again
  }
  const firstCommit = st.lastCommit === undefined;
  st.lastCommit = head.commit;
  // An unverified Glidepath revert (it is unsigned) is read, starts nothing, and never becomes trusted.
  if (!head.signature || head.signature.verified) st.trustedCommit = head.commit;
  if (read.problems.length > 0) {
    const more = read.moreProblems > 0 ? ` … and ${read.moreProblems} more` : '';
    s.record({ ...base, result: 'lint-failed', problems: read.problems });
    s.condition('LintFailed', `${head.commit.slice(0, 12)} fails lint, nothing started: ${read.problems.join('; ')}${more}`.slice(0, 2000), head.commit);
    return;
  }
  const docs = documentsOf(read);
  if (firstCommit) st.groupsAndApisTracked = true;
  else adoptGroupsAndApis(s, docs, head.commit);
  const previous = new Map(st.tracked.map((t) => [t.file, t]));
  const changed = docs.filter((r) => previous.get(r.file)?.specHash !== r.specHash);
  // Files gone from the path stop being tracked (their releases, if any, are left as they are).
  st.tracked = st.tracked.filter((t) => docs.some((r) => r.file === t.file));
  st.pending = st.pending.filter((p) => docs.some((r) => r.file === p.file && r.specHash === p.specHash));
  // Taken as running (a baseline, or Glidepath's own revert): the commit is the file's last good one too.
  const track = (r: Doc) => {
    st.tracked = [...st.tracked.filter((t) => t.file !== r.file), { ...kindOf(r.kind), file: r.file, specHash: r.specHash, workflowId: r.workflowId, commit: head.commit, lastGood: head.commit }].slice(-MAX_TRACKED_FILES);
  };
  if (head.revertOf !== undefined) {
    for (const r of changed) track(r);
    s.record({ ...base, result: 'glidepath-revert' });
    s.audit('glidepath-revert', `${head.commit.slice(0, 12)} is Glidepath's own revert of ${head.revertOf}: nothing started`, head.commit);
    if (!forcePushed) s.condition('Watching', `at ${head.commit.slice(0, 12)}`, head.commit);
    return;
  }
  if (firstCommit && !input.startExisting) {
    for (const r of docs) track(r);
    s.record({ ...base, result: 'baseline' });
    s.audit('baseline', `${docs.length} release file(s) at ${head.commit.slice(0, 12)} taken as running; later changes start releases`, head.commit);
    s.condition('Watching', `at ${head.commit.slice(0, 12)}`, head.commit);
    return;
  }
  if (changed.length === 0) {
    s.record({ ...base, result: 'unchanged' });
    if (!forcePushed) s.condition('Watching', `at ${head.commit.slice(0, 12)}`, head.commit);
    return;
  }
  st.pending = [...st.pending.filter((p) => !changed.some((c) => c.file === p.file)), ...changed.map((c) => ({ ...kindOf(c.kind), file: c.file, specHash: c.specHash, workflowId: c.workflowId, commit: head.commit }))].slice(-MAX_TRACKED_FILES);
  const record: CommitRecord = { ...base, result: 'released' };
  await startPending(ref, s, initiator, record, forcePushed);
}

/**
 * A source from before ReleaseGroup and ApiVersion documents were started from Git did not track them:
 * the first commit it reads with such documents takes them as running (as a source's first commit
 * does) rather than starting every one; later changes start them.
 */
function adoptGroupsAndApis(s: SourceState, docs: Doc[], commit: string): void {
  const st = s.status;
  const others = docs.filter((d) => d.kind !== undefined);
  if (st.groupsAndApisTracked || others.length === 0) return;
  st.groupsAndApisTracked = true;
  const untracked = others.filter((d) => !st.tracked.some((t) => t.file === d.file));
  st.tracked = [...st.tracked, ...untracked.map((d) => ({ ...d, commit }))].slice(-MAX_TRACKED_FILES);
  s.audit('baseline', `${untracked.length} ReleaseGroup/ApiVersion file(s) at ${commit.slice(0, 12)} taken as running (this source did not track them before); later changes start them`, commit);
}

/** Starts every pending change; a started one is tracked, one whose workload (or group) is busy stays pending. */
async function startPending(ref: SourceRef, s: SourceState, initiator: string, record?: CommitRecord, forcePushed = false): Promise<void> {
  const st = s.status;
  const results: { p: PendingStart; r: StartResult }[] = [];
  for (const p of [...st.pending]) {
    let r: StartResult;
    try {
      r = await startDocument(p.kind, { ...ref, commit: p.commit, file: p.file, specHash: p.specHash, initiator });
    } catch (err) {
      r = { outcome: 'failed', workflowId: p.workflowId, detail: failureMessage(err) };
    }
    results.push({ p, r });
    // The content running before this start: the file's last good commit (entries from before it was kept: their commit).
    const before = st.tracked.find((t) => t.file === p.file);
    const lastGood = before && before.commit !== p.commit ? (before.lastGood ?? before.commit) : before?.lastGood;
    if (r.outcome === 'started' || r.outcome === 'already-started' || r.outcome === 'failed') {
      st.pending = st.pending.filter((x) => x.file !== p.file);
      if (r.outcome !== 'failed') st.tracked = [...st.tracked.filter((t) => t.file !== p.file), { ...kindOf(p.kind), file: p.file, specHash: p.specHash, workflowId: p.workflowId, commit: p.commit, ...(lastGood ? { lastGood } : {}) }].slice(-MAX_TRACKED_FILES);
    }
    if (r.outcome === 'started') s.audit(STARTED_ACTION[p.kind ?? 'release'], `${r.workflowId} from ${p.file}`, p.commit);
    // Started documents are watched: a rollback is written back to Git (groups and API versions on runs with the marker).
    if ((r.outcome === 'started' || r.outcome === 'already-started') && (p.kind === undefined || wf.patched(GIT_REVERT_GROUPS_AND_APIS))) {
      const watch = { sourceId: st.sourceId, workflowId: r.workflowId, file: p.file, commit: p.commit, ...kindOf(p.kind), ...(p.kind && lastGood ? { baseCommit: lastGood } : {}) };
      // The versions of one API share its workflow: each file is watched on its own.
      st.watching = [...st.watching.filter((w) => w.workflowId !== r.workflowId || (p.kind === 'apiVersion' && w.file !== p.file)), watch].slice(-MAX_TRACKED_FILES);
    }
  }
  if (record) {
    record.releases = results.map(({ p, r }) => ({ ...kindOf(p.kind), file: p.file, workflowId: r.workflowId, outcome: r.outcome, ...(r.detail ? { detail: r.detail } : {}) }));
    if (st.pending.length > 0) record.result = 'pending';
    s.record(record);
  }
  const failed = results.find((x) => x.r.outcome === 'failed');
  const busy = results.find((x) => x.r.outcome === 'in-flight');
  if (failed) s.condition('StartFailed', `${failed.p.file} at ${failed.p.commit.slice(0, 12)}: ${failed.r.detail ?? ''}`, failed.p.commit);
  else if (busy) s.condition('ReleaseInFlight', `${busy.p.file}: ${busy.r.detail ?? ''}`, busy.p.commit);
  else if (!forcePushed) s.condition('Watching', `at ${st.lastCommit?.slice(0, 12) ?? ''}`, st.lastCommit);
}
