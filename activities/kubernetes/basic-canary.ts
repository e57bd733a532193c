/**
 * A canary without traffic routing whose release sets `maxSurge`/`maxUnavailable`: the weight is a
 * share of pods, as in Argo Rollouts. The canary grows and the stable shrinks in moves that keep
 * at most spec + maxSurge pods and at least spec − maxUnavailable available ones
 * (model/basic-canary.ts), each move written (the shrinking side first) and waited for before the
 * next. The stable's full size (its replicas when the release first shrank it) is recorded on it,
 * so a retry or a later release returns it there; promotion and abort move it back within the same
 * limits.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { nextCounts, targetCounts, type BasicCanaryLimits, type SideCount } from '../../model/basic-canary.ts';
import type { ReleaseTarget } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import type { Capacity } from './capacity.ts';
import { MERGE_PATCH, stableReplicas, type Deployments } from './deployments.ts';
import { FIELD_MANAGER, roleName, targetContainer } from './objects.ts';
import type { WorkloadRoom } from './room.ts';

/** On the stable Deployment while a basic canary has shrunk it: its full size (JSON: release, replicas). */
export const SPEC_REPLICAS_ANNOTATION = 'glidepath.dev/spec-replicas';

/** The limits of a target whose weights move pods (a canary with maxSurge/maxUnavailable and no router). */
export const limitsOf = (target: ReleaseTarget): BasicCanaryLimits | undefined => (target.strategy === 'canary' && !target.trafficRouting ? target.replicaLimits : undefined);

const side = (d: V1Deployment | undefined): SideCount => ({ replicas: d?.spec?.replicas ?? 0, available: d?.status?.availableReplicas ?? 0 });

/** The full size recorded on the stable, if a basic canary shrank it. */
export function recordedSpec(stable: V1Deployment | undefined): number | undefined {
  const raw = stable?.metadata?.annotations?.[SPEC_REPLICAS_ANNOTATION];
  if (!raw) return undefined;
  try {
    const n = (JSON.parse(raw) as { replicas?: unknown }).replicas;
    return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export type BasicCanary = ReturnType<typeof createBasicCanary>;

/**
 * `growCanary` writes the canary Deployment at a count and waits for it (with its PDB and Services),
 * as the canary operations do for every weight.
 */
export function createBasicCanary(room: WorkloadRoom, d: Deployments, cap: Capacity, growCanary: (target: ReleaseTarget, stable: V1Deployment, replicas: number) => Promise<void>) {
  const refuseHpa = async (target: ReleaseTarget): Promise<void> => {
    const hpas = await cap.stableHpas(target);
    if (hpas.length > 0) {
      throw ApplicationFailure.nonRetryable(
        `spec.strategy.canary.maxSurge/maxUnavailable: HorizontalPodAutoscaler ${hpas.map((h) => h.metadata?.name).join(', ')} scales Deployment ${target.namespace}/${target.workload.name}; a canary that shrinks the stable cannot share it with an autoscaler (remove maxSurge/maxUnavailable: the stable then keeps its size)`,
        ErrorType.InvalidSpec,
      );
    }
  };

  /** The stable's replicas set (and its full-size record set, or removed with null), read back. */
  const setStableReplicas = async (target: ReleaseTarget, replicas: number, record: string | null): Promise<void> => {
    const { namespace } = target;
    const name = target.workload.name;
    const body = { metadata: { annotations: { [SPEC_REPLICAS_ANNOTATION]: record } }, spec: { replicas } };
    await room.k.call({ verb: 'patch', resource: 'deployments.apps', namespace, name }, () => room.k.apps.patchNamespacedDeployment({ name, namespace, body, fieldManager: FIELD_MANAGER }, MERGE_PATCH));
    const got = await d.getDeployment(namespace, name);
    if (got.spec?.replicas !== replicas) {
      throw ApplicationFailure.nonRetryable(`Deployment ${namespace}/${name} reads back replicas ${got.spec?.replicas} after setting ${replicas}`, ErrorType.VerificationFailed);
    }
  };

  /** The stable's full size: recorded, or recorded now from its replicas. */
  const specOf = async (target: ReleaseTarget, stable: V1Deployment): Promise<number> => {
    const recorded = recordedSpec(stable);
    if (recorded !== undefined) return recorded;
    const spec = stableReplicas(stable);
    await setStableReplicas(target, spec, JSON.stringify({ release: target.releaseId, replicas: spec }));
    return spec;
  };

  /**
   * Moves pods until the split for `weight` is reached: `grow` is the side the weight counts
   * (`canary` normally; the stable when the release goes back to it).
   */
  const move = async (target: ReleaseTarget, limits: BasicCanaryLimits, spec: number, weight: number): Promise<{ canary: number; stable: number }> => {
    const goal = targetCounts(spec, weight, limits);
    const canaryName = roleName(target.workload.name, 'canary');
    for (let i = 0; i < 4 * spec + 10; i++) {
      const stable = await d.getStable(target);
      const canary = await d.findRole(target, 'canary');
      const now = { canary: side(canary), stable: side(stable) };
      if (now.canary.replicas === goal.canary && now.stable.replicas === goal.stable) {
        await d.waitRolledOut(target, target.workload.name);
        if (canary) await d.waitRolledOut(target, canaryName);
        return goal;
      }
      const next = nextCounts(spec, weight, limits, now.canary, now.stable);
      if (next.canary === now.canary.replicas && next.stable === now.stable.replicas) {
        // No move is allowed until more pods are available.
        await d.waitRolledOut(target, target.workload.name);
        if (canary) await d.waitRolledOut(target, canaryName);
        continue;
      }
      const writeStable = () => (next.stable !== now.stable.replicas ? setStableReplicas(target, next.stable, JSON.stringify({ release: target.releaseId, replicas: spec })) : Promise.resolve());
      // A canary Deployment that is gone is made again only to hold pods (never at 0, e.g. while an abort moves back).
      const writeCanary = () => (next.canary !== now.canary.replicas || (!canary && next.canary > 0) ? growCanary(target, stable, next.canary) : Promise.resolve());
      if (next.stable < now.stable.replicas) {
        await writeStable();
        await writeCanary();
      } else {
        await writeCanary();
        await writeStable();
      }
      await d.waitRolledOut(target, target.workload.name);
    }
    throw ApplicationFailure.retryable(`Deployment ${target.namespace}/${target.workload.name}: the canary/stable split for weight ${weight} was not reached in ${4 * spec + 10} moves`);
  };

  return {
    refuseHpa,

    /** The canary at its share of the stable's full size for `weight`, the stable shrunk to the rest. */
    async scaleForWeight(target: ReleaseTarget, limits: BasicCanaryLimits, weight: number): Promise<{ canaryReplicas: number }> {
      await refuseHpa(target);
      const spec = await specOf(target, await d.getStable(target));
      return { canaryReplicas: (await move(target, limits, spec, weight)).canary };
    },

    /**
     * Promotion: the canary takes every pod (weight 100, the stable at 0), the stable takes the new
     * image while it has no pods, then the pods move back to the stable at its full size (both sides
     * run the new image); the record goes. Without steps this is the whole rolling update.
     */
    async promote(target: ReleaseTarget, limits: BasicCanaryLimits): Promise<void> {
      await refuseHpa(target);
      const stable = await d.getStable(target);
      if (recordedSpec(stable) === undefined && targetContainer(stable, target).image === target.image) return; // already promoted (a retry)
      const spec = await specOf(target, stable); // a canary without steps starts its moves here
      await move(target, limits, spec, 100);
      await d.setStable(target, await d.getStable(target), { image: target.image, config: target.config }, true);
      await move(target, limits, spec, 0);
      await setStableReplicas(target, spec, null);
    },

    /** Abort: the stable (its image put back first) returns to its full size as the canary shrinks, within the limits; the record goes. */
    async restore(target: ReleaseTarget, limits: BasicCanaryLimits, stableImage: string | undefined): Promise<boolean> {
      const stable = await d.findStable(target);
      const spec = recordedSpec(stable);
      if (!stable || spec === undefined) return false;
      await d.restoreStable(target, stableImage);
      await move(target, limits, spec, 0);
      await setStableReplicas(target, spec, null);
      return true;
    },
  };
}
