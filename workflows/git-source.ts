/**
 * The Git source workflow: one per (repository, branch, path), ID `gitsource:<repo>:<branch>:<path>`
 * (workflows/git-source/source.ts). It polls the branch on a durable timer and at once when woken (the
 * webhook's `wake` signal; a forged wake costs one fetch, it decides nothing); each poll is
 * workflows/git-source/poll.ts; then the releases and groups it started that rolled back or were aborted, and
 * the API versions whose introduction failed, are written back to Git as reverts (workflows/git-source/revert.ts). Its lists are bounded and it continues as new when Temporal suggests
 * it, carrying its status. Deterministic: activities are imported as types only.
 */
import * as wf from '@temporalio/workflow';
import { parseDuration } from '../model/duration.ts';
import { WATCH_INTERVAL_MS, gitSourceStatusQuery, wakeSignal, type GitSourceInput } from './git-source/messages.ts';
import { pollOnce } from './git-source/poll.ts';
import { gitSourceWorkflowId, sourceProblems } from './git-source/source.ts';
import { SourceState } from './git-source/state.ts';

export async function gitSource(input: GitSourceInput): Promise<void> {
  const problems = sourceProblems(input);
  if (problems.length > 0) throw wf.ApplicationFailure.nonRetryable(`invalid Git source: ${problems.join('; ')}`, 'InvalidSpec');
  const info = wf.workflowInfo();
  const expected = gitSourceWorkflowId(input);
  if (info.workflowId !== expected) throw wf.ApplicationFailure.nonRetryable(`workflow ID must be ${expected} (one source per repository, branch and path), got ${info.workflowId}`, 'InvalidSpec');
  const s = new SourceState(input, info.workflowId);
  const st = s.status;
  st.pollIntervalMs = parseDuration(input.pollInterval); // a new interval applies after continue-as-new too
  let woken = input.woken === true;
  wf.setHandler(gitSourceStatusQuery, () => st);
  wf.setHandler(wakeSignal, (req) => {
    st.wakes++;
    woken = true;
    const by = typeof req?.by === 'string' ? req.by.slice(0, 100) : 'unknown';
    const commit = typeof req?.commit === 'string' && /^[0-9a-f]{40}$/.test(req.commit) ? req.commit : undefined;
    if (st.wakes <= 1 || commit) s.audit('wake', `woken by ${by}${commit ? ` for ${commit.slice(0, 12)}` : ''}`, commit);
  });

  let polls = 0;
  for (;;) {
    woken = false;
    await pollOnce(input, s);
    polls++;
    const full = input.pollsPerRun !== undefined ? polls >= input.pollsPerRun : wf.workflowInfo().continueAsNewSuggested;
    if (full) break;
    // While releases it started have not settled, it looks more often: a rollback is written back soon.
    await wf.condition(() => woken, st.watching.length > 0 ? Math.min(st.pollIntervalMs, WATCH_INTERVAL_MS) : st.pollIntervalMs);
  }
  st.continuedAsNew++;
  s.audit('continue-as-new', `after ${polls} poll(s), history at ${wf.workflowInfo().historyLength} events`);
  await wf.condition(wf.allHandlersFinished);
  await wf.continueAsNew<typeof gitSource>({ ...input, state: st, woken });
}
