/**
 * The experiment step's activities: its workloads (and Services) started (ready, with what each runs),
 * its weighted templates' share of the router's traffic set and taken back, and its workloads removed.
 * Delegates to the worker's experiment operations (activities/kubernetes/experiment.ts) and its
 * traffic router (activities/traffic/).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ExperimentTemplate, RunningTemplate, WeightDestination } from '../model/experiment.ts';
import { routerKey } from '../model/traffic-routing.ts';
import type { ActivityDeps, ReleaseTarget } from './contract.ts';
import { ErrorType } from './errors.ts';
import type { ExperimentOps } from './kubernetes/experiment.ts';

export function experimentActivities(deps: ActivityDeps) {
  const ops = (): ExperimentOps => {
    if (!deps.experiments) throw ApplicationFailure.nonRetryable('experiment steps are not available on this worker', ErrorType.InvalidSpec);
    return deps.experiments;
  };
  return {
    /** Every template of the step running and ready (with its Service when it has one); what each runs (for the analyses' args). */
    async startExperiment(target: ReleaseTarget, step: number, templates: ExperimentTemplate[]): Promise<RunningTemplate[]> {
      return ops().startExperiment(target, step, templates);
    },
    /**
     * The router carries the canary at `weight` and each destination (a weighted template's Service)
     * at its weight, the stable the rest; with no destinations, the experiment's are removed and the
     * canary stays at `weight`. Verified by read-back (retried until the router carries it).
     */
    async routeExperiment(target: ReleaseTarget, weight: number, destinations: WeightDestination[]): Promise<void> {
      const key = target.trafficRouting ? routerKey(target.trafficRouting) : undefined;
      const router = key === undefined ? undefined : deps.routers?.[key];
      if (!router) throw ApplicationFailure.nonRetryable(key === undefined ? 'experiment weights need a traffic router (strategy.canary.trafficRouting)' : `traffic router "${key}" is not available on this worker`, ErrorType.UnsupportedRouter);
      if (!router.experimentWeights) throw ApplicationFailure.nonRetryable(`experiment weights: the ${router.type} traffic router does not carry them (istio and smi do)`, ErrorType.UnsupportedRouter);
      await router.setWeight(target, weight, destinations);
      if ((await router.verifyWeight(target, weight, destinations)) === false) {
        throw new Error(`${router.type} does not carry weight ${weight} with ${destinations.map((d) => `${d.service} ${d.weight}`).join(', ') || 'no experiment destinations'} yet`); // retried
      }
    },
    /** Every experiment Service and workload of the release's workload gone (verified). */
    async removeExperiment(target: ReleaseTarget): Promise<{ removed: string[] }> {
      return ops().removeExperiment(target);
    },
  };
}
