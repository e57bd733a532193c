/**
 * The Git source's activities: fetch the branch head into the source's cache repository, read and
 * lint the documents at a commit, start a release from one file at a commit, watch what was started
 * and write a rollback back to Git. A start is exactly
 * once per (source, commit, file): the release's memo names them, and a retry that finds its own
 * release answers "already started" instead of starting another.
 */
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowExecutionAlreadyStartedError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { serviceKey } from '../../model/types.ts';
import { SERVICE_ATTRIBUTE } from '../../workflows/messages.ts';
import { WORKFLOW_TASK_TIMEOUT } from '../../workflows/start-options.ts';
import { COMMIT_ATTRIBUTE, type ReleaseWatch, type WatchedOutcome, type FetchedHead, type ReadResult, type SourceRef, type StartRequest, type StartResult } from '../../workflows/git-source/messages.ts';
import { openCache } from './git-cli.ts';
import { originOf, readAt } from './read.ts';
import { createDocumentStarts, describeIfAny, memoOf, sameStart } from './start-documents.ts';
import { writeRevert, type RevertRequest, type RevertResult } from './revert.ts';
import { writeFilesRevert, type FilesRevertRequest, type FilesRevertResult } from './revert-files.ts';
import { createDocumentOutcomes } from './document-outcome.ts';
import { checkSignature } from './signatures.ts';
import { UPDATES, statusQuery } from '../../workflows/messages.ts';

const HEAD_REF = 'refs/glidepath/head';
/** Phases of a release that has an outcome and only waits for a retry: a newer commit closes it. */
const WAITING_FOR_RETRY = ['Aborted', 'RolledBack'];
/** How long a closed release may take to end before the start is answered as in flight (retried at the next poll). */
const CLOSE_WAIT_MS = 30_000;

export interface GitActivityDeps {
  client: Pick<Client, 'workflow'>;
  taskQueue: string;
}

type SourceAt = SourceRef;

export function createGitActivities(deps: GitActivityDeps) {
  const describe = (id: string) => describeIfAny(deps.client, id);

  /**
   * Closes the release `id` when it has an outcome and only waits for a retry (as `release start
   * --replace` does), and waits until it ended. Undefined when it closed; otherwise why not.
   */
  const closeFinished = async (id: string, req: StartRequest): Promise<string | undefined> => {
    const handle = deps.client.workflow.getHandle(id);
    const s = await handle.query(statusQuery);
    if (!WAITING_FOR_RETRY.includes(s.phase)) return `it is ${s.phase}`;
    try {
      await handle.executeUpdate(UPDATES.abort, { args: [{ by: req.initiator, reason: `closed by the Git source: ${req.file} at ${req.commit} supersedes it` }] });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) return `it is ${s.phase} and refused to be closed: ${err.cause instanceof Error ? err.cause.message : String(err.cause)}`;
      throw err;
    }
    const ended = await Promise.race([handle.result().then(() => true, () => true), new Promise<false>((r) => setTimeout(() => r(false), CLOSE_WAIT_MS).unref())]);
    return ended ? undefined : `it was closed but has not ended after ${CLOSE_WAIT_MS / 1000}s`;
  };

  return {
    ...createDocumentStarts(deps),
    ...createDocumentOutcomes(deps),
    /**
     * Fetches the branch and answers its head, whether it descends from `lastCommit`, and, when the
     * repository has a signing policy at `trustedCommit`, whether the head's signature verifies.
     */
    async gitFetchHead(s: SourceAt & { lastCommit?: string; trustedCommit?: string }): Promise<FetchedHead> {
      const git = await openCache(s.sourceId, s.credentials);
      await git(['fetch', '--quiet', '--no-tags', '--', s.repository, `+refs/heads/${s.branch}:${HEAD_REF}`]);
      const commit = (await git(['rev-parse', '--verify', `${HEAD_REF}^{commit}`])).stdout.trim();
      const sep = '\x1f';
      const { stdout } = await git(['log', '-1', `--format=%s${sep}%ae${sep}%(trailers:key=Glidepath-Revert-Of,valueonly,separator=%x2C)`, commit]);
      const [subject = '', authorEmail = '', revertOf = ''] = stdout.replace(/\n+$/, '').split(sep);
      let descends: boolean | undefined;
      if (s.lastCommit && s.lastCommit !== commit) {
        // Exit 0: an ancestor; 1: not; 128: the last commit is no longer known (rewritten away).
        const { code } = await git(['merge-base', '--is-ancestor', s.lastCommit, commit], { allowExit: [1, 128] });
        descends = code === 0;
      }
      const signature = await checkSignature(git, commit, s.trustedCommit);
      return {
        commit,
        ...(signature ? { signature } : {}),
        ...(descends !== undefined ? { descends } : {}),
        subject: subject.slice(0, 200),
        authorEmail: authorEmail.slice(0, 200),
        ...(revertOf.trim() ? { revertOf: revertOf.trim().slice(0, 300) } : {}),
      };
    },

    /** The documents under the source's path at `commit`, linted exactly as `glidepath lint` does. */
    async gitReadCommit(s: SourceAt & { commit: string; initiator: string }): Promise<ReadResult> {
      const { releases, others, notStarted, problems, moreProblems } = await readAt(s, s.commit, s.initiator);
      return { releases, others, notStarted, problems, moreProblems };
    },

    /**
     * Where a release the source started stands: its phase and images, or `gone` when the workflow ID
     * now holds a release someone else started (or none).
     */
    async gitReleaseOutcome(w: ReleaseWatch): Promise<WatchedOutcome> {
      const d = await describe(w.workflowId);
      if (!d || d.memo?.gitSource !== w.sourceId || d.memo?.gitCommit !== w.commit || d.memo?.gitFile !== w.file) return { state: 'gone' };
      const s = await deps.client.workflow.getHandle(w.workflowId, d.runId).query(statusQuery);
      return { state: 'known', phase: s.phase, canaryImage: s.canaryImage, ...(s.stableImage ? { stableImage: s.stableImage } : {}), message: s.message.slice(0, 500) };
    },

    /** Commits and pushes the revert of a release that rolled back or was aborted (activities/git/revert.ts). */
    async gitWriteRevert(r: RevertRequest): Promise<RevertResult> {
      return writeRevert(r);
    },

    /** Commits and pushes the revert of a group that rolled back or an API version whose introduction failed (activities/git/revert-files.ts). */
    async gitWriteFilesRevert(r: FilesRevertRequest): Promise<FilesRevertResult> {
      return writeFilesRevert(r);
    },

    /**
     * Starts the release of `file` at `commit` (once). A release of the workload that has finished and
     * only waits for a retry is closed first (as `release start --replace` does); one in progress is
     * answered as in flight, never replaced.
     */
    async gitStartRelease(req: StartRequest): Promise<StartResult> {
      const read = await readAt(req, req.commit, req.initiator);
      const plan = read.plans.get(req.file);
      const doc = read.releases.find((r) => r.file === req.file);
      if (!plan || !doc) throw ApplicationFailure.nonRetryable(`${req.file} at ${req.commit} is not a valid release file: ${read.problems.join('; ').slice(0, 500)}`, 'InvalidSpec');
      if (doc.specHash !== req.specHash) throw ApplicationFailure.nonRetryable(`${req.file} at ${req.commit} does not read as it did (spec hash differs)`, 'InvalidSpec');
      const workflowId = doc.workflowId;
      const current = await describe(workflowId);
      if (current && sameStart(current.memo, req)) return { outcome: 'already-started', workflowId };
      const source = originOf(req);
      const start = () =>
        deps.client.workflow.start('release', {
          taskQueue: deps.taskQueue,
          workflowId,
          args: [{ plan: { ...plan, source }, initiator: req.initiator }],
          workflowIdConflictPolicy: 'FAIL',
          workflowIdReusePolicy: 'ALLOW_DUPLICATE',
          workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
          staticSummary: `${plan.strategy.type === 'blueGreen' ? 'blue/green' : plan.strategy.type} of ${serviceKey(plan)} → ${plan.image} from ${req.commit.slice(0, 12)}`,
          memo: memoOf(req),
          typedSearchAttributes: [
            { key: SERVICE_ATTRIBUTE, value: serviceKey(plan) },
            { key: COMMIT_ATTRIBUTE, value: req.commit },
          ],
        });
      for (let attempt = 0; ; attempt++) {
        try {
          await start();
          return { outcome: 'started', workflowId };
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
          const running = await describe(workflowId);
          if (running && sameStart(running.memo, req)) return { outcome: 'already-started', workflowId };
          // A newer commit supersedes a release that only waits for a retry; one in progress is left alone.
          const notClosed = attempt === 0 ? await closeFinished(workflowId, req) : 'it is still running';
          if (notClosed === undefined) continue;
          const from = typeof running?.memo?.gitCommit === 'string' ? ` from ${running.memo.gitCommit.slice(0, 12)}` : '';
          return { outcome: 'in-flight', workflowId, detail: `a release of ${serviceKey(plan)} is in flight: ${workflowId}${from} (${notClosed}); this change starts when it ends` };
        }
      }
    },
  };
}

export type GitActivities = ReturnType<typeof createGitActivities>;
