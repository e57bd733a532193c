/**
 * The Services: pointing a Service at the canary/preview/stable pods (its own selector remembered
 * once in an annotation), and giving it back its own selector afterwards. Every change is a merge
 * patch guarded by resourceVersion and read back.
 */
import type { V1Deployment, V1Service } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type { ReleaseTarget } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { MERGE_PATCH } from './deployments.ts';
import { isNotFound } from './errors.ts';
import { ANNOTATIONS, FIELD_MANAGER, LABELS, rolePodLabels, sameSelector, serviceSelectorMatches, type Role } from './objects.ts';
import type { WorkloadRoom } from './room.ts';
import { POD_TEMPLATE_HASH, stablePodSelector } from './stable-pods.ts';

export type Services = ReturnType<typeof createServices>;

/** Whether a selector is one Glidepath set (a role's pods, or the stable's pinned by pod-template-hash), not the Service's own. */
const isOurs = (selector: Record<string, string>): boolean => LABELS.role in selector || POD_TEMPLATE_HASH in selector;

/** The stable Deployment's matchLabels (a copy), or undefined when it has none. */
export const stableMatchLabels = (stable: V1Deployment | undefined): Record<string, string> | undefined => {
  const ml = stable?.spec?.selector?.matchLabels;
  return ml && Object.keys(ml).length > 0 ? { ...ml } : undefined;
};

export function createServices(room: WorkloadRoom) {
  const { k } = room;

  const getService = (namespace: string, name: string): Promise<V1Service> =>
    k.call({ verb: 'get', resource: 'services', namespace, name }, () => k.core.readNamespacedService({ name, namespace }));

  const findService = async (namespace: string, name: string): Promise<V1Service | undefined> => {
    try {
      return await getService(namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };

  const requireService = async (target: ReleaseTarget, name: string, role: string): Promise<V1Service> => {
    const svc = await findService(target.namespace, name);
    if (!svc) throw ApplicationFailure.nonRetryable(`Service ${target.namespace}/${name} (the ${role}) not found`, ErrorType.NotFound);
    return svc;
  };

  /** Replaces the Service's selector (merge patch guarded by resourceVersion), then reads it back. */
  const patchSelector = async (svc: V1Service, selector: Record<string, string>, annotations: Record<string, string | null>): Promise<void> => {
    const namespace = svc.metadata?.namespace ?? '';
    const name = svc.metadata?.name ?? '';
    const current = svc.spec?.selector ?? {};
    const next: Record<string, string | null> = { ...selector };
    for (const key of Object.keys(current)) if (!(key in selector)) next[key] = null;
    await k.call({ verb: 'patch', resource: 'services', namespace, name }, () =>
      k.core.patchNamespacedService(
        { name, namespace, fieldManager: FIELD_MANAGER, body: { metadata: { resourceVersion: svc.metadata?.resourceVersion, annotations }, spec: { selector: next } } },
        MERGE_PATCH,
      ),
    );
    const back = await getService(namespace, name);
    if (!sameSelector(back.spec?.selector, selector)) {
      throw ApplicationFailure.nonRetryable(
        `Service ${namespace}/${name} reads back selector ${JSON.stringify(back.spec?.selector ?? {})} after setting ${JSON.stringify(selector)}`,
        ErrorType.VerificationFailed,
      );
    }
  };

  /** Points a Service at `selector`, remembering its own selector (once) so it can be restored. */
  const pointService = async (target: ReleaseTarget, name: string, role: string, selector: Record<string, string>): Promise<void> => {
    const svc = await requireService(target, name, role);
    const current = svc.spec?.selector ?? {};
    if (sameSelector(current, selector)) return;
    const annotations: Record<string, string | null> = { [ANNOTATIONS.release]: target.releaseId };
    const remembered = svc.metadata?.annotations?.[ANNOTATIONS.originalSelector];
    if (remembered === undefined && !isOurs(current)) annotations[ANNOTATIONS.originalSelector] = JSON.stringify(current);
    await patchSelector(svc, selector, annotations);
  };

  /** The Service's own selector: the one remembered when we first changed it, else the current one unless it is ours. */
  const ownSelector = (svc: V1Service, fallback: Record<string, string> | undefined): Record<string, string> | undefined => {
    const current = svc.spec?.selector ?? {};
    const remembered = svc.metadata?.annotations?.[ANNOTATIONS.originalSelector];
    if (remembered !== undefined) {
      try {
        return JSON.parse(remembered) as Record<string, string>;
      } catch {
        // unreadable: treated as lost
      }
    }
    return isOurs(current) ? fallback : current;
  };

  /** The selector {@link restoreService} gives the Service back, or undefined when it has nothing to do. */
  const selectorToRestore = (svc: V1Service, fallback: Record<string, string> | undefined): Record<string, string> | undefined => {
    const original = ownSelector(svc, fallback);
    const remembered = svc.metadata?.annotations?.[ANNOTATIONS.originalSelector];
    if (!original || (sameSelector(svc.spec?.selector, original) && remembered === undefined)) return undefined; // never changed by us
    return original;
  };

  /** Gives a Service back its own selector; `fallback` when the remembered one is lost but it still points at a glidepath role. */
  const restoreService = async (target: ReleaseTarget, name: string | undefined, fallback: Record<string, string> | undefined): Promise<void> => {
    if (!name) return;
    const svc = await findService(target.namespace, name);
    if (!svc) return;
    const original = selectorToRestore(svc, fallback);
    if (original) await patchSelector(svc, original, { [ANNOTATIONS.originalSelector]: null, [ANNOTATIONS.release]: null });
  };

  /** Whether {@link restoreService} would change the Service's selector (it is pointed elsewhere now). */
  const restoreWidens = async (target: ReleaseTarget, name: string | undefined, fallback: Record<string, string> | undefined): Promise<boolean> => {
    if (!name) return false;
    const svc = await findService(target.namespace, name);
    const original = svc && selectorToRestore(svc, fallback);
    return original !== undefined && !sameSelector(svc?.spec?.selector, original);
  };

  /**
   * A Service that must reach the stable pods only: its own selector when that cannot match `role`
   * pods, else pinned to the stable's own pods (its matchLabels and the pod-template-hash of its
   * current ReplicaSet: `role` pods carry the stable's template labels).
   */
  const keepOnStable = async (target: ReleaseTarget, name: string | undefined, which: string, stable: V1Deployment | undefined, role: Role): Promise<void> => {
    if (!name) return;
    const svc = stable ? await requireService(target, name, which) : await findService(target.namespace, name);
    if (!svc) return;
    const ml = stableMatchLabels(stable);
    const own = ownSelector(svc, ml);
    const pinned = stable && own && serviceSelectorMatches(own, rolePodLabels(stable, role)) ? await stablePodSelector(k, stable) : undefined;
    if (pinned) {
      await pointService(target, name, which, pinned);
    } else {
      await restoreService(target, name, ml);
    }
  };

  /** Whether the Service now selects exactly `selector` (e.g. the preview's pods). */
  const pointsAt = async (target: ReleaseTarget, name: string | undefined, selector: Record<string, string> | undefined): Promise<boolean> => {
    if (!name || !selector) return false;
    const svc = await findService(target.namespace, name);
    return svc !== undefined && sameSelector(svc.spec?.selector, selector);
  };

  return { getService, findService, requireService, pointService, restoreService, restoreWidens, keepOnStable, pointsAt };
}
