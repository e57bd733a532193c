/**
 * The canary operations: the canary Deployment (the stable's template, new image) scaled for each
 * weight, promotion (stable first, then traffic, then the canary goes) and abort (the healthy side
 * keeps serving until the stable is ready; every part done that can be, drift reported).
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type { CanaryScale, PromoteOptions, ReleaseTarget } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { createBasicCanary, limitsOf } from './basic-canary.ts';
import type { Capacity } from './capacity.ts';
import { CleanupParts, type CleanupReport } from './cleanup.ts';
import { desiredReplicas, stableReplicas, type Deployments } from './deployments.ts';
import { cancellationSignal, sleep } from './context.ts';
import { LABELS, replicasForWeight, roleName, workloadLabelValue } from './objects.ts';
import { rolloutState } from './rollout.ts';
import type { WorkloadRoom } from './room.ts';
import { stableMatchLabels, type Services } from './services.ts';
import { selectorString } from './stable-pods.ts';

export interface AbortHooks {
  /** The parts that send all traffic to stable (the router: weight 0, managed routes removed), run in order, each even when one before failed. */
  routeToStable?: { part: string; run: () => Promise<void> }[];
  /**
   * Stop once traffic is on a ready stable, the canary kept (removed by a later call, after a delay): while
   * the canary still serves, the stable is put back first (even when it is ready) and its Service pinned to
   * the stable's own pods, so neither a rolling stable nor the canary's pods carry traffic when they go.
   */
  keepCanary?: boolean;
}

/** Whether a role Deployment is rolled out with at least one available pod (it can serve). */
export const canServe = (d: V1Deployment | undefined): boolean => d !== undefined && rolloutState(d).done && (d.status?.availableReplicas ?? 0) > 0;

const checkWeight = (weight: number): void => {
  if (!Number.isFinite(weight) || weight < 0 || weight > 100) {
    throw ApplicationFailure.nonRetryable(`canary weight must be between 0 and 100, got ${weight}`, ErrorType.InvalidSpec);
  }
};

export function createCanaryOps(room: WorkloadRoom, d: Deployments, svc: Services, cap: Capacity) {
  /** The canary at `replicas` (with its PDB), its Services pointed, then waited for. */
  const convergeCanary = async (target: ReleaseTarget, stable: V1Deployment, replicas: number): Promise<void> => {
    const canary = await d.applyRole(target, stable, 'canary', replicas);
    await cap.ensureRolePdb(target, stable, 'canary', canary);
    if (target.canaryService) await svc.pointService(target, target.canaryService, 'canaryService', canary.spec?.selector?.matchLabels ?? {});
    await svc.keepOnStable(target, target.stableService, 'stableService', stable, 'canary'); // never reaches canary pods
    await d.waitRolledOut(target, roleName(target.workload.name, 'canary'));
  };

  /** A canary without a router whose release sets maxSurge/maxUnavailable: the stable shrinks as the canary grows. */
  const basic = createBasicCanary(room, d, cap, convergeCanary);

  /** Sizes the canary from the release's desired count, else the stable's live desired count (never below the floor held on its HPA). `upOnly` never scales it down. */
  const scaleCanary = async (target: ReleaseTarget, replicasOf: (stableReplicas: number) => number, upOnly = false): Promise<{ canaryReplicas: number }> => {
    const stable = await d.getStable(target);
    const floor = await cap.holdFloor(target, stable);
    let canaryReplicas = replicasOf(desiredReplicas(target, stable, Math.max(stableReplicas(stable), floor ?? 0)));
    if (upOnly) canaryReplicas = Math.max(canaryReplicas, (await d.findRole(target, 'canary'))?.spec?.replicas ?? 0);
    await convergeCanary(target, stable, canaryReplicas);
    return { canaryReplicas };
  };

  /**
   * Waits until no canary pod is left: a deleted Deployment's pods go after it, and a stable Service
   * given back a selector broad enough to reach them would send them requests meanwhile. Retryable
   * failure past the progress deadline, naming the pods still there.
   */
  const untilCanaryPodsGone = async (target: ReleaseTarget): Promise<void> => {
    const { namespace } = target;
    const labelSelector = selectorString({ [LABELS.role]: 'canary', [LABELS.workload]: workloadLabelValue(target.workload.name) });
    const signal = cancellationSignal(room.signal);
    const end = Date.now() + target.progressDeadlineSeconds * 1000;
    for (;;) {
      const pods = await room.k.call({ verb: 'list', resource: 'pods', namespace }, () => room.k.core.listNamespacedPod({ namespace, labelSelector }));
      const left = pods.items.map((p) => p.metadata?.name ?? '');
      if (left.length === 0) return;
      if (Date.now() > end) throw new Error(`canary pods of ${namespace}/${target.workload.name} still there ${target.progressDeadlineSeconds}s after its removal: ${left.slice(0, 5).join(', ')}`); // retried
      room.heartbeat({ waiting: `canary pods of ${namespace}/${target.workload.name} gone`, left: left.length });
      await sleep(Math.min(200, room.pollIntervalMs), signal);
    }
  };

  /**
   * The canary Deployment and its PDB deleted; its pods waited for only while the stable Service points
   * elsewhere (pinned to the stable's pods): it gets its own selector back next, which may reach them.
   * Otherwise nothing Glidepath gives back selects them any more: a Service that selects the workload's
   * labels reached them all along, and terminating pods leave the endpoints at once.
   */
  const deleteCanary = async (target: ReleaseTarget, stable: V1Deployment | undefined): Promise<void> => {
    const widens = await svc.restoreWidens(target, target.stableService, stableMatchLabels(stable));
    await d.deleteRole(target, 'canary');
    await cap.removeRolePdb(target, 'canary');
    if (widens) await untilCanaryPodsGone(target);
  };

  /** Canary Service back to its own selector, the canary (and its PDB, and its pods while the stable Service is pinned) gone, then the stable Service (a broad selector is safe once no canary pods are left). */
  const removeCanary = async (target: ReleaseTarget): Promise<void> => {
    const stable = await d.findStable(target);
    await svc.restoreService(target, target.canaryService, stableMatchLabels(stable));
    await deleteCanary(target, stable);
    await svc.restoreService(target, target.stableService, stableMatchLabels(stable));
  };

  return {
    async ensureCanary(target: ReleaseTarget): Promise<void> {
      if (limitsOf(target)) await basic.refuseHpa(target);
      const stable = await d.getStable(target);
      await cap.holdFloor(target, stable);
      await convergeCanary(target, stable, 0);
    },

    async scaleCanaryForWeight(target: ReleaseTarget, weight: number, opts: { upOnly?: boolean } = {}): Promise<{ canaryReplicas: number }> {
      checkWeight(weight);
      const limits = limitsOf(target);
      if (limits) return basic.scaleForWeight(target, limits, weight);
      return scaleCanary(target, (n) => replicasForWeight(n, weight), opts.upOnly);
    },

    async setCanaryScale(target: ReleaseTarget, scale: CanaryScale, currentWeight: number): Promise<{ canaryReplicas: number }> {
      if (limitsOf(target)) throw ApplicationFailure.nonRetryable('setCanaryScale cannot size a canary whose weights move pods (maxSurge/maxUnavailable without trafficRouting)', ErrorType.InvalidSpec);
      if ('replicas' in scale) {
        if (!Number.isInteger(scale.replicas) || scale.replicas < 0) throw ApplicationFailure.nonRetryable(`canary replicas must be a whole number ≥ 0, got ${scale.replicas}`, ErrorType.InvalidSpec);
        return scaleCanary(target, () => scale.replicas);
      }
      const weight = 'weight' in scale ? scale.weight : currentWeight;
      checkWeight(weight);
      return scaleCanary(target, (n) => replicasForWeight(n, weight));
    },

    /**
     * The stable's pins released (its current ReplicaSet's pods are about to go: the stable Service
     * and the router's stable side select the whole workload, the canary's pods run the new image
     * too); stable takes the new image and is ready; traffic to stable; the HPA floor goes back; then
     * (unless kept) the canary goes.
     */
    async promoteCanary(target: ReleaseTarget, opts: PromoteOptions = {}): Promise<void> {
      await opts.beforeStableRolls?.();
      await svc.restoreService(target, target.stableService, stableMatchLabels(await d.findStable(target)));
      const limits = limitsOf(target);
      if (limits) await basic.promote(target, limits); // the stable back at full size with the new image, within the limits
      const rolled = await d.rollStableForward(target);
      // Traffic comes back to the stable Service: it must reach the new stable's pods only, never the canary's about to go.
      if (opts.pinStable) await svc.keepOnStable(target, target.stableService, 'stableService', rolled, 'canary');
      await opts.beforeCanaryRemoved?.();
      await cap.releaseFloor(target);
      if (!opts.keepCanary) await removeCanary(target);
    },

    removeCanary,

    /**
     * All traffic back on a ready stable, then the canary goes; stable replicas are never written.
     * When a promotion left the stable half-updated while the canary still serves, the stable is
     * put back and waited for first (with `keepCanary`, always, and the call stops once traffic is on
     * the stable). Every part runs; failures come out together (retryable).
     */
    async abortCanary(target: ReleaseTarget, stableImage: string | undefined, hooks: AbortHooks = {}): Promise<CleanupReport> {
      const parts = new CleanupParts();
      const stable = await d.findStable(target);
      const canary = await d.findRole(target, 'canary');
      let stableReady = stable === undefined || rolloutState(stable).done;
      if ((!stableReady || hooks.keepCanary) && canServe(canary)) {
        // The healthy canary keeps its traffic until the stable it returns to is ready.
        stableReady = await parts.run('stable Deployment put back', () => d.restoreStable(target, stableImage));
        if (stableReady && hooks.keepCanary) {
          stableReady = await parts.run('stable Service on the stable pods', async () => svc.keepOnStable(target, target.stableService, 'stableService', await d.findStable(target), 'canary'));
        }
      }
      if (!stableReady && canServe(canary)) {
        parts.skip('traffic to stable', 'the stable is not ready and the canary still serves');
        parts.skip('canary removed', 'the stable is not ready and the canary still serves');
        return parts.finish(`abort of ${target.namespace}/${target.workload.name}`);
      }
      const limits = limitsOf(target);
      if (limits && !(await parts.run('stable back to full size', async () => void (await basic.restore(target, limits, stableImage))))) {
        parts.skip('canary removed', 'the stable is not back at full size');
        return parts.finish(`abort of ${target.namespace}/${target.workload.name}`);
      }
      let routed = true;
      for (const step of hooks.routeToStable ?? []) {
        // A routing object that is gone routes nothing to the canary: the canary may still go.
        if (!(await parts.run(step.part, step.run)) && !parts.failedNotFound(step.part)) routed = false;
      }
      if (!routed) {
        parts.skip('canary removed', 'traffic may still reach it');
      } else if (!hooks.keepCanary) {
        // (keepCanary: the canary stays until the caller's delay has passed; it calls again to remove it.)
        await parts.run('canary Service restored', () => svc.restoreService(target, target.canaryService, stableMatchLabels(stable)));
        await parts.run('canary removed', () => deleteCanary(target, stable));
        await parts.run('stable Service restored', () => svc.restoreService(target, target.stableService, stableMatchLabels(stable)));
      }
      await parts.run('stable Deployment put back', () => d.restoreStable(target, stableImage));
      await parts.run('HorizontalPodAutoscaler floor released', () => cap.releaseFloor(target));
      return parts.finish(`abort of ${target.namespace}/${target.workload.name}`);
    },
  };
}
