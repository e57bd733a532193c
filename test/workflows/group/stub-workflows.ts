/**
 * The workflow bundle of the group tests: the real release group workflow, and a stub `release`
 * (children stubbed, Temporal's convention) whose behaviour per child comes from the test through
 * the `childStarted` activity: promote after a while, or end with another outcome; abort ends it.
 */
import * as wf from '@temporalio/workflow';
import { abortSignal, type Outcome, type ReleaseInput, type ReleaseResult } from '../../../workflows/messages.ts';

export { releaseGroup } from '../../../workflows/group.ts';

export interface ChildScript {
  outcome: Outcome;
  durationMs: number;
}

export interface StubChildActivities {
  childStarted(workflowId: string, image: string, taskQueue: string, steps: number, replicas?: number): Promise<ChildScript>;
  childEnded(workflowId: string, outcome: Outcome): Promise<void>;
}

const acts = wf.proxyActivities<StubChildActivities>({ startToCloseTimeout: '10s' });

export async function release(input: ReleaseInput): Promise<ReleaseResult> {
  const info = wf.workflowInfo();
  let aborted = false;
  wf.setHandler(abortSignal, () => {
    aborted = true;
  });
  const strategy = input.plan.strategy;
  const script = await acts.childStarted(info.workflowId, input.plan.image, info.taskQueue, strategy.type === 'canary' ? strategy.steps.length : -1, input.plan.replicas);
  await wf.condition(() => aborted, script.durationMs);
  const outcome: Outcome = aborted ? 'Aborted' : script.outcome;
  await acts.childEnded(info.workflowId, outcome);
  const result: ReleaseResult = { outcome, reason: outcome === 'Promoted' ? `promoted ${input.plan.image}` : `stub ${outcome}`, image: input.plan.image, attempts: 1 };
  if (outcome !== 'Promoted') throw wf.ApplicationFailure.create({ type: outcome, message: result.reason, details: [result], nonRetryable: true });
  return result;
}
