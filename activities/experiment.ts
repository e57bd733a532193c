/**
 * The experiment step's activities: its workloads started (ready, with what each runs) and removed.
 * Delegates to the worker's experiment operations (activities/kubernetes/experiment.ts).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ExperimentTemplate, RunningTemplate } from '../model/experiment.ts';
import type { ActivityDeps, ReleaseTarget } from './contract.ts';
import { ErrorType } from './errors.ts';
import type { ExperimentOps } from './kubernetes/experiment.ts';

export function experimentActivities(deps: ActivityDeps) {
  const ops = (): ExperimentOps => {
    if (!deps.experiments) throw ApplicationFailure.nonRetryable('experiment steps are not available on this worker', ErrorType.InvalidSpec);
    return deps.experiments;
  };
  return {
    /** Every template of the step running and ready; what each runs (for the analyses' args). */
    async startExperiment(target: ReleaseTarget, step: number, templates: ExperimentTemplate[]): Promise<RunningTemplate[]> {
      return ops().startExperiment(target, step, templates);
    },
    /** Every experiment workload of the release's workload gone (verified). */
    async removeExperiment(target: ReleaseTarget): Promise<{ removed: string[] }> {
      return ops().removeExperiment(target);
    },
  };
}
