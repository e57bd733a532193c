/**
 * The activities the release workflow calls, composed from the real parts the worker injects:
 * `createActivities(deps)`. Tests of the workflow stub this object; tests of each part run it
 * against the real server it talks to.
 */
import { ApplicationFailure } from '@temporalio/common';
import { startProblems } from '../model/plan.ts';
import { groupPlanProblems } from '../model/group-plan-schema.ts';
import { routerKey } from '../model/traffic-routing.ts';
import type { AnalysisRunSpec, HeaderRoutingMatch, ReleasePlan, RouteMatch } from '../model/types.ts';
import { runAnalysis } from './analysis.ts';
import { createBuildActivities, type BuildActivities } from './build/index.ts';
import type { ActivityDeps, CanaryScale, CleanupReport, PreflightResult, ReleaseTarget, RollingOps, TrafficRouter } from './contract.ts';
import type { BatchStep } from '../model/rolling.ts';
import { ErrorType } from './errors.ts';
import { activityContext } from './kubernetes/context.ts';
import { experimentActivities } from './experiment.ts';
import { configActivities } from './kubernetes/config-activities.ts';

export function createActivities(deps: ActivityDeps) {
  const routerFor = (target: ReleaseTarget): TrafficRouter | undefined => {
    const routing = target.trafficRouting;
    if (!routing) return undefined;
    const type = routerKey(routing) ?? '';
    const router = deps.routers?.[type];
    if (!router) throw ApplicationFailure.nonRetryable(`traffic router "${type}" is not available on this worker`, ErrorType.UnsupportedRouter);
    return router;
  };

  const unsupportedStep = (router: TrafficRouter | undefined, step: string): ApplicationFailure =>
    ApplicationFailure.nonRetryable(
      router ? `${step}: the ${router.type} traffic router on this worker does not implement it` : `${step} needs a traffic router (strategy.canary.trafficRouting)`,
      ErrorType.UnsupportedRouter,
    );

  const build = createBuildActivities(deps);

  const rollingFor = (target: ReleaseTarget): RollingOps => {
    const ops = deps.rolling?.[target.workload.kind];
    if (!ops) throw ApplicationFailure.nonRetryable(`strategy.rolling of a ${target.workload.kind} is not available on this worker`, ErrorType.InvalidSpec);
    return ops;
  };

  return {
    buildImage: build.buildImage,
    verifyImage: build.verifyImage,

    /**
     * The start-time validation, run once as a local activity: its answer is in history, so a rule
     * tightened later never changes what a running release replays (docs/spec.md, Versioning).
     */
    async validatePlan(plan: ReleasePlan, initiator: string): Promise<string[]> {
      return startProblems(plan, initiator);
    },

    /**
     * A release group's start-time check, a local activity for the same reasons; and the model's
     * zod schemas cannot run inside the workflow on the production worker, whose preloaded modules
     * are frozen (docs/operations.md).
     */
    async validateGroup(group: unknown): Promise<string[]> {
      return groupPlanProblems(group);
    },

    async preflight(target: ReleaseTarget): Promise<PreflightResult> {
      if (target.strategy === 'rolling') return rollingFor(target).preflight(target);
      routerFor(target); // a router this worker lacks fails before anything is touched
      return deps.workload.preflight(target);
    },

    async ensureCanary(target: ReleaseTarget): Promise<void> {
      await deps.workload.ensureCanary(target);
    },

    /**
     * Pods before traffic when the weight rises, traffic before pods when it falls: the canary is
     * first scaled up only (never down), then the router takes the weight and is verified, then the
     * canary is scaled to its size for the weight. Traffic never reaches pods that are not ready, and
     * pods never go while the router still sends them their share.
     */
    async setWeight(target: ReleaseTarget, weight: number): Promise<{ canaryReplicas: number }> {
      const router = routerFor(target);
      if (!router) return deps.workload.scaleCanaryForWeight(target, weight); // replica ratio: the pods are the traffic
      await deps.workload.scaleCanaryForWeight(target, weight, { upOnly: true });
      await router.setWeight(target, weight);
      if ((await router.verifyWeight(target, weight)) === false) {
        throw new Error(`${router.type} does not carry weight ${weight} yet`); // retried
      }
      return deps.workload.scaleCanaryForWeight(target, weight);
    },

    /** A header route to the canary (Argo's setHeaderRoute); an empty match removes it. */
    async setHeaderRoute(target: ReleaseTarget, route: { name: string; match: HeaderRoutingMatch[] }): Promise<void> {
      const router = routerFor(target);
      if (!router?.setHeaderRoute) throw unsupportedStep(router, 'setHeaderRoute');
      await router.setHeaderRoute(target, route);
    },

    /** A mirror route copying `percentage` of matching requests to the canary (Argo's setMirrorRoute); an empty match removes it. */
    async setMirrorRoute(target: ReleaseTarget, route: { name: string; percentage: number; match: RouteMatch[] }): Promise<void> {
      const router = routerFor(target);
      if (!router?.setMirrorRoute) throw unsupportedStep(router, 'setMirrorRoute');
      await router.setMirrorRoute(target, route);
    },

    async setCanaryScale(target: ReleaseTarget, scale: CanaryScale, currentWeight: number): Promise<{ canaryReplicas: number }> {
      return deps.workload.setCanaryScale(target, scale, currentWeight);
    },

    /**
     * Stable takes the new image; all traffic to stable; only then does the canary go. With
     * `keepCanary` it stops once traffic is on stable (the workflow waits the scale-down delay, then
     * calls `removeCanary`). With `pinStable` (the workflow sent all traffic to the canary first) the
     * stable Service reaches the new stable's pods only before traffic comes back to it.
     */
    async promoteCanary(target: ReleaseTarget, opts: { keepCanary?: boolean; pinStable?: boolean } = {}): Promise<void> {
      const router = routerFor(target);
      await deps.workload.promoteCanary(target, {
        ...(router ? { beforeCanaryRemoved: () => router.removeManagedRoutes(target) } : {}),
        ...(router?.unpinStable ? { beforeStableRolls: () => router.unpinStable?.(target) ?? Promise.resolve() } : {}),
        ...(opts.keepCanary ? { keepCanary: true } : {}),
        ...(opts.pinStable ? { pinStable: true } : {}),
      });
    },

    /** The canary goes (scaled to zero and removed) and the services are restored; nothing else is touched. */
    async removeCanary(target: ReleaseTarget): Promise<void> {
      await deps.workload.removeCanary(target);
    },

    /** All traffic to stable: router weight 0 and the managed routes removed; no pod is touched. */
    async routeToStable(target: ReleaseTarget): Promise<void> {
      const router = routerFor(target);
      if (!router) return;
      await router.setWeight(target, 0);
      await router.removeManagedRoutes(target);
    },

    /** Traffic weight only, the canary's size unchanged (after setCanaryScale with replicas or weight, as Argo keeps it). */
    async routeWeight(target: ReleaseTarget, weight: number): Promise<void> {
      const router = routerFor(target);
      if (!router) throw unsupportedStep(router, 'setWeight with a fixed canary scale');
      await router.setWeight(target, weight);
      if ((await router.verifyWeight(target, weight)) === false) throw new Error(`${router.type} does not carry weight ${weight} yet`); // retried
    },

    /**
     * All traffic to a ready stable first, then the canary goes; stable replicas are never reduced.
     * Every part runs even when one fails (a routing object that is gone does not keep the canary);
     * the failures come out together as one retryable error. Returns the drift found (objects
     * someone else changed during the release, left as they are) for the audit (`void` is allowed
     * for workflow stubs). With `keepCanary` it stops once traffic is on the ready stable (a promotion
     * that failed while the canary carried all traffic: the workflow waits the delay, then calls again).
     */
    async abortCanary(target: ReleaseTarget, stableImage: string | undefined, opts: { keepCanary?: boolean } = {}): Promise<CleanupReport | void> {
      const router = routerFor(target);
      const routeToStable = router
        ? [
            { part: `${router.type} weight 0`, run: () => router.setWeight(target, 0) },
            { part: `${router.type} managed routes removed`, run: () => router.removeManagedRoutes(target) },
          ]
        : [];
      const report = await deps.workload.abortCanary(target, stableImage, { routeToStable, ...(opts.keepCanary ? { keepCanary: true } : {}) });
      for (const d of report.drift) activityContext()?.log.warn(`abort of ${target.namespace}/${target.workload.name}: ${d}`);
      return report;
    },

    async deployPreview(target: ReleaseTarget, replicas: number | undefined): Promise<void> {
      await deps.workload.deployPreview(target, replicas);
    },

    async switchActive(target: ReleaseTarget, to: 'preview' | 'stable'): Promise<void> {
      await deps.workload.switchActive(target, to);
    },

    async finalizeBlueGreen(target: ReleaseTarget): Promise<void> {
      await deps.workload.finalizeBlueGreen(target);
    },

    async abortBlueGreen(target: ReleaseTarget, stableImage: string | undefined): Promise<CleanupReport | void> {
      return deps.workload.abortBlueGreen(target, stableImage);
    },

    /** strategy.rolling: the new template in place with no pod moved (a StatefulSet's partition raised above every ordinal). */
    async beginRolling(target: ReleaseTarget): Promise<{ replicas: number }> {
      return rollingFor(target).begin(target);
    },

    /** strategy.rolling: a cumulative batch of replicas on the new revision, verified ready. */
    async rollBatch(target: ReleaseTarget, step: BatchStep): Promise<{ updated: number; replicas: number }> {
      return rollingFor(target).batch(target, step);
    },

    /** strategy.rolling: the rest of the replicas on the new revision, verified ready (promotion). */
    async completeRolling(target: ReleaseTarget): Promise<{ updated: number; replicas: number }> {
      return rollingFor(target).complete(target);
    },

    /** strategy.rolling: the old template back where this release wrote it, the updated pods rolled back and ready. */
    async abortRolling(target: ReleaseTarget, stableImage: string | undefined): Promise<CleanupReport | void> {
      const report = await rollingFor(target).abort(target, stableImage);
      for (const d of report.drift) activityContext()?.log.warn(`abort of ${target.namespace}/${target.workload.name}: ${d}`);
      return report;
    },

    async runAnalysis(target: ReleaseTarget, run: AnalysisRunSpec, opts: { background: boolean }) {
      return runAnalysis(deps, target, run, opts);
    },

    ...experimentActivities(deps),
    ...configActivities(deps),
  };
}

/** The rollout activities (what workflow stubs implement); the build activities are typed apart, a stub of a plan without experiment steps (spec.config) needs no experiment (config) activities, and the group's start check is the group workflow's. */
export type ReleaseActivities = Omit<ReturnType<typeof createActivities>, keyof BuildActivities | keyof ExperimentActivities | keyof ConfigActivities | 'validateGroup'> & Partial<ExperimentActivities> & Partial<ConfigActivities>;
type ExperimentActivities = ReturnType<typeof experimentActivities>;
type ConfigActivities = ReturnType<typeof configActivities>;
export type { BuildActivities };
