/** What the activities are told about a release: its workload, image, strategy and the objects it steers. */
import type { ReleaseTarget } from '../../activities/contract.ts';
import type { ReleasePlan } from '../../model/types.ts';

export function targetOf(plan: ReleasePlan, releaseId: string, runId?: string): ReleaseTarget {
  return {
    releaseId,
    ...(runId ? { runId } : {}),
    namespace: plan.namespace,
    workload: plan.workload,
    image: plan.image,
    strategy: plan.strategy.type,
    progressDeadlineSeconds: plan.progressDeadlineSeconds,
    ...(plan.readinessProbePolicy ? { readinessProbePolicy: plan.readinessProbePolicy } : {}),
    ...(plan.replicas !== undefined ? { replicas: plan.replicas } : {}),
    ...(plan.strategy.type === 'canary'
      ? { stableService: plan.strategy.stableService, canaryService: plan.strategy.canaryService, trafficRouting: plan.strategy.trafficRouting, ...(plan.strategy.replicaLimits ? { replicaLimits: plan.strategy.replicaLimits } : {}) }
      : plan.strategy.type === 'blueGreen'
        ? { activeService: plan.strategy.activeService, previewService: plan.strategy.previewService }
        : plan.strategy.maxSurge !== undefined
          ? { maxSurge: plan.strategy.maxSurge }
          : {}),
  };
}
