/**
 * Starting the ReleaseGroup and ApiVersion documents of a commit, as the CLI's `group start` and
 * `api introduce` do, once per (source, commit, file). Each reads the commit again and starts only
 * what still reads as the workflow decided (the same spec hash).
 * - A group is a `releaseGroup` workflow `group_<namespace>_<name>` whose memo names the source,
 *   commit and file, with the commit as its GlidepathCommit search attribute and in its plan's source.
 *   A group (or one of its members' workloads) in flight is answered as in flight: the change starts
 *   when it ends. A cluster no worker serves is not refused (`group start --no-worker-check`): its
 *   members wait for their worker.
 * - An API version is introduced on the API's one long-lived workflow `api-<namespace>-<api>`
 *   (update-with-start, as `api introduce`), the commit in the introduction's reason (the API's audit).
 *   The same spec already in place is left alone; a version the workflow refuses to introduce again
 *   (it serves: the API workflow introduces a version once, a changed one is a new version) is a
 *   failed start with the workflow's words.
 */
import { ApplicationFailure } from '@temporalio/common';
import { WithStartWorkflowOperation, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { apiKey } from '../../model/api-version.ts';
import { clusterTaskQueue, memberPlan } from '../../model/group-plan.ts';
import { releaseWorkflowId } from '../../model/types.ts';
import { API_WORKFLOW_TYPE, apiStatusQuery, introduceVersionUpdate } from '../../workflows/api-version-messages.ts';
import { SERVICE_ATTRIBUTE } from '../../workflows/messages.ts';
import { WORKFLOW_TASK_TIMEOUT } from '../../workflows/start-options.ts';
import { COMMIT_ATTRIBUTE, type StartRequest, type StartResult } from '../../workflows/git-source/messages.ts';
import { apiVersionSpecHash } from './documents.ts';
import { originOf, readAt } from './read.ts';

export interface DocumentStartDeps {
  client: Pick<Client, 'workflow'>;
  taskQueue: string;
}

/** A started workflow's memo: which source, commit and file started it. */
export function memoOf(req: StartRequest) {
  return { gitSource: req.sourceId, gitCommit: req.commit, gitFile: req.file };
}

export function sameStart(memo: Record<string, unknown> | undefined, req: StartRequest): boolean {
  const want = memoOf(req);
  return memo?.gitSource === want.gitSource && memo?.gitCommit === want.gitCommit && memo?.gitFile === want.gitFile;
}

function invalid(req: StartRequest, what: string, problems: string[]): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${req.file} at ${req.commit} is not a valid ${what} file: ${problems.join('; ').slice(0, 500)}`, 'InvalidSpec');
}

function changed(req: StartRequest): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${req.file} at ${req.commit} does not read as it did (spec hash differs)`, 'InvalidSpec');
}

/** The workflow's description, or undefined when no workflow has that ID. */
export async function describeIfAny(client: Pick<Client, 'workflow'>, id: string) {
  try {
    return await client.workflow.getHandle(id).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

export function createDocumentStarts(deps: DocumentStartDeps) {
  const describe = (id: string) => describeIfAny(deps.client, id);

  return {
    /** Starts the `releaseGroup` workflow of the ReleaseGroup file `req.file` at `req.commit` (once). */
    async gitStartGroup(req: StartRequest): Promise<StartResult> {
      const read = await readAt(req, req.commit, req.initiator);
      const plan = read.groups.get(req.file);
      const doc = read.others.find((o) => o.kind === 'group' && o.file === req.file);
      if (!plan || !doc) throw invalid(req, 'ReleaseGroup', read.problems);
      if (doc.specHash !== req.specHash) throw changed(req);
      const workflowId = doc.workflowId;
      const busy = (why: string): StartResult => ({ outcome: 'in-flight', workflowId, detail: `${why}; this change starts when it ends` });
      const current = await describe(workflowId);
      if (current && sameStart(current.memo, req)) return { outcome: 'already-started', workflowId };
      if (current?.status.name === 'RUNNING') {
        const from = typeof current.memo?.gitCommit === 'string' ? ` from ${current.memo.gitCommit.slice(0, 12)}` : '';
        return busy(`group ${doc.name} is in flight: ${workflowId}${from}`);
      }
      // As `group start`: a member's workload in flight in another release or group is not started over.
      for (const cluster of plan.waves.flatMap((w) => w.clusters)) {
        for (const m of plan.members) {
          const id = releaseWorkflowId(memberPlan(plan, m, cluster));
          if ((await describe(id))?.status.name === 'RUNNING') return busy(`member ${m.name}: workload ${m.plan.namespace}/${m.plan.workload.name} in ${cluster} is in flight (${id}, on ${clusterTaskQueue(cluster)})`);
        }
      }
      try {
        await deps.client.workflow.start('releaseGroup', {
          taskQueue: deps.taskQueue,
          workflowId,
          args: [{ group: { ...plan, source: originOf(req) }, initiator: req.initiator }],
          workflowIdConflictPolicy: 'FAIL',
          workflowIdReusePolicy: 'ALLOW_DUPLICATE',
          workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
          staticSummary: `group ${doc.name}: ${plan.members.length} member(s) from ${req.commit.slice(0, 12)}`,
          memo: memoOf(req),
          typedSearchAttributes: [{ key: COMMIT_ATTRIBUTE, value: req.commit }],
        });
        return { outcome: 'started', workflowId };
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        const running = await describe(workflowId);
        if (running && sameStart(running.memo, req)) return { outcome: 'already-started', workflowId };
        return busy(`group ${doc.name} is in flight: ${workflowId}`);
      }
    },

    /** Introduces the API version of the ApiVersion file `req.file` at `req.commit`, as `api introduce` does. */
    async gitIntroduceApiVersion(req: StartRequest): Promise<StartResult> {
      const read = await readAt(req, req.commit, req.initiator);
      const plan = read.apiVersions.get(req.file);
      const doc = read.others.find((o) => o.kind === 'apiVersion' && o.file === req.file);
      if (!plan || !doc) throw invalid(req, 'ApiVersion', read.problems);
      if (doc.specHash !== req.specHash) throw changed(req);
      const workflowId = doc.workflowId;
      if (await describe(workflowId)) {
        // A retry after the introduction, or the same spec introduced otherwise: left alone.
        const status = await deps.client.workflow.getHandle(workflowId).query(apiStatusQuery);
        const v = status.versions.find((x) => x.version === plan.version);
        if (v && v.phase !== 'Failed' && v.phase !== 'Retired' && apiVersionSpecHash(v.plan) === req.specHash) return { outcome: 'already-started', workflowId };
      }
      const startWorkflowOperation = new WithStartWorkflowOperation(API_WORKFLOW_TYPE, {
        workflowId,
        taskQueue: deps.taskQueue,
        args: [{ namespace: plan.namespace, api: plan.api }],
        workflowIdConflictPolicy: 'USE_EXISTING',
        typedSearchAttributes: [{ key: SERVICE_ATTRIBUTE, value: apiKey(plan) }],
      });
      try {
        await deps.client.workflow.executeUpdateWithStart(introduceVersionUpdate, { args: [{ plan, by: req.initiator, reason: `from ${originOf(req)}` }], startWorkflowOperation });
      } catch (err) {
        if (!(err instanceof WorkflowUpdateFailedError)) throw err;
        const why = err.cause instanceof Error ? err.cause.message : String(err.cause);
        return { outcome: 'failed', workflowId, detail: `${workflowId} refused to introduce ${doc.name}: ${why}`.slice(0, 500) };
      }
      return { outcome: 'started', workflowId };
    },
  };
}
