/**
 * The activities the release workflow calls, composed from the real parts the worker injects:
 * `createActivities(deps)`. Tests of the workflow stub this object; tests of each part run it
 * against the real server it talks to.
 */
import { ApplicationFailure } from '@temporalio/common';
import { startProblems } from '../spec/plan.ts';
import { routerKey } from '../spec/traffic-routing.ts';
import type { AnalysisRunSpec, HeaderRoutingMatch, ReleasePlan, RouteMatch } from '../spec/types.ts';
import { runAnalysis } from './analysis.ts';
import { createBuildActivities, type BuildActivities } from './build/index.ts';
import type { ActivityDeps, CanaryScale, PreflightResult, ReleaseTarget, TrafficRouter } from './contract.ts';
import { ErrorType } from './errors.ts';

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

    async preflight(target: ReleaseTarget): Promise<PreflightResult> {
      routerFor(target); // a router this worker lacks fails before anything is touched
      return deps.workload.preflight(target);
    },

    async ensureCanary(target: ReleaseTarget): Promise<void> {
      await deps.workload.ensureCanary(target);
    },

    /** Scale first, then shift traffic, then verify: traffic never reaches pods that are not ready. */
    async setWeight(target: ReleaseTarget, weight: number): Promise<{ canaryReplicas: number }> {
      const router = routerFor(target);
      const scaled = await deps.workload.scaleCanaryForWeight(target, weight);
      if (router) {
        await router.setWeight(target, weight);
        if ((await router.verifyWeight(target, weight)) === false) {
          throw new Error(`${router.type} does not carry weight ${weight} yet`); // retried
        }
      }
      return scaled;
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
     * calls `removeCanary`).
     */
    async promoteCanary(target: ReleaseTarget, opts: { keepCanary?: boolean } = {}): Promise<void> {
      const router = routerFor(target);
      await deps.workload.promoteCanary(target, {
        ...(router ? { beforeCanaryRemoved: () => router.removeManagedRoutes(target) } : {}),
        ...(opts.keepCanary ? { keepCanary: true } : {}),
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

    /** All traffic to stable first, then the canary goes; stable replicas are never reduced. */
    async abortCanary(target: ReleaseTarget, stableImage: string | undefined): Promise<void> {
      const router = routerFor(target);
      if (router) {
        await router.setWeight(target, 0);
        await router.removeManagedRoutes(target);
      }
      await deps.workload.abortCanary(target, stableImage);
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

    async abortBlueGreen(target: ReleaseTarget, stableImage: string | undefined): Promise<void> {
      await deps.workload.abortBlueGreen(target, stableImage);
    },

    async runAnalysis(target: ReleaseTarget, run: AnalysisRunSpec, opts: { background: boolean }) {
      return runAnalysis(deps, target, run, opts);
    },
  };
}

/** The rollout activities (what workflow stubs implement); the build activities are typed apart. */
export type ReleaseActivities = Omit<ReturnType<typeof createActivities>, keyof BuildActivities>;
export type { BuildActivities };
