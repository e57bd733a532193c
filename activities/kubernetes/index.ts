/**
 * {@link WorkloadOps} on a real cluster with @kubernetes/client-node: canary and preview
 * Deployments derived from the user's (stable) Deployment, replica-ratio canary weights, Service
 * selector switches for blue/green, and preflight checks. Every operation converges the cluster to
 * a described state, so running it twice (a Temporal retry) changes nothing the second time.
 * The object model and each operation are described in docs/kubernetes.md.
 */
import { PatchStrategy, setHeaderOptions, type KubeConfig, type V1Deployment, type V1Service } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type { CanaryScale, PreflightResult, PromoteOptions, ReleaseTarget, WorkloadOps } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { describeAccess, requiredAccess } from './access.ts';
import { createKubeClients } from './client.ts';
import { activityHeartbeat, cancellationSignal, type Heartbeat } from './context.ts';
import { isNotFound } from './errors.ts';
import {
  ANNOTATIONS,
  FIELD_MANAGER,
  LABELS,
  buildRoleDeployment,
  labelSelectorMatches,
  replicasForWeight,
  roleName,
  rolePodLabels,
  roleSelector,
  sameSelector,
  serviceSelectorMatches,
  targetContainer,
  type Role,
} from './objects.ts';
import { rolloutState, waitForRollout } from './rollout.ts';

export interface KubernetesWorkloadOptions {
  /** A stable container without a readiness probe fails preflight (`fail`, the default) or only warns. */
  readinessProbe?: 'fail' | 'warn';
  /** How often a rollout wait polls the Deployment. Default 500 ms. */
  pollIntervalMs?: number;
  /** Per-request timeout for every apiserver call. Default 15 s: half the rollout activities' 30 s heartbeat timeout, so a hung request inside a wait cannot outlast a heartbeat. */
  requestTimeoutMs?: number;
  /** Where rollout waits report progress. Default: the running activity's heartbeat (nothing outside an activity). */
  heartbeat?: Heartbeat;
  /** Cancels waits and requests, in addition to the running activity's cancellation. */
  signal?: AbortSignal;
}

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const STRATEGIC_PATCH = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

export function createKubernetesWorkload(kc: KubeConfig, opts: KubernetesWorkloadOptions = {}): WorkloadOps {
  const k = createKubeClients(kc, { requestTimeoutMs: opts.requestTimeoutMs ?? 15_000, signal: opts.signal });
  const pollIntervalMs = opts.pollIntervalMs ?? 500;
  const heartbeat = opts.heartbeat ?? activityHeartbeat;
  const readinessPolicy = opts.readinessProbe ?? 'fail';

  // ---- Deployments ---------------------------------------------------------------------------------

  const getDeployment = (namespace: string, name: string): Promise<V1Deployment> =>
    k.call({ verb: 'get', resource: 'deployments.apps', namespace, name }, () => k.apps.readNamespacedDeployment({ name, namespace }));

  const findDeployment = async (namespace: string, name: string): Promise<V1Deployment | undefined> => {
    try {
      return await getDeployment(namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };

  const getStable = async (target: ReleaseTarget): Promise<V1Deployment> => {
    try {
      return await getDeployment(target.namespace, target.workload.name);
    } catch (err) {
      if (isNotFound(err)) {
        throw ApplicationFailure.nonRetryable(`Deployment ${target.namespace}/${target.workload.name} not found (the workload of release ${target.releaseId})`, ErrorType.NotFound);
      }
      throw err;
    }
  };

  const waitRolledOut = (namespace: string, name: string, boundSeconds: number): Promise<V1Deployment> =>
    waitForRollout(() => getDeployment(namespace, name), `Deployment ${namespace}/${name}`, {
      pollIntervalMs,
      timeoutMs: (boundSeconds + 60) * 1000,
      heartbeat,
      signal: cancellationSignal(opts.signal),
    });

  /** Server-side apply of the canary/preview Deployment, then a read-back of what matters. */
  const applyRole = async (target: ReleaseTarget, stable: V1Deployment, role: Role, replicas: number): Promise<V1Deployment> => {
    const desired = buildRoleDeployment(stable, target, role, replicas);
    const name = roleName(target.workload.name, role);
    await k.call({ verb: 'apply', resource: 'deployments.apps', namespace: target.namespace, name }, () =>
      k.objects.patch(desired, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply),
    );
    const got = await getDeployment(target.namespace, name);
    const container = targetContainer(stable, target).name;
    const problems: string[] = [];
    if (got.spec?.replicas !== replicas) problems.push(`replicas ${got.spec?.replicas}, expected ${replicas}`);
    const image = got.spec?.template?.spec?.containers?.find((c) => c.name === container)?.image;
    if (image !== target.image) problems.push(`container ${container} image ${image}, expected ${target.image}`);
    if (!sameSelector(got.spec?.selector?.matchLabels, desired.spec?.selector?.matchLabels)) {
      problems.push(`selector ${JSON.stringify(got.spec?.selector?.matchLabels)}, expected ${JSON.stringify(desired.spec?.selector?.matchLabels)} (a selector cannot change: delete ${name} to recreate it)`);
    }
    if (problems.length > 0) {
      throw ApplicationFailure.nonRetryable(`Deployment ${target.namespace}/${name} reads back differently after apply: ${problems.join('; ')}`, ErrorType.VerificationFailed);
    }
    return got;
  };

  /** Scales to zero (so its pods go at once), then deletes; absent is fine. */
  const removeRole = async (target: ReleaseTarget, role: Role): Promise<void> => {
    const namespace = target.namespace;
    const name = roleName(target.workload.name, role);
    const existing = await findDeployment(namespace, name);
    if (!existing) return;
    if (existing.metadata?.labels?.[LABELS.managedBy] !== 'glidepath') {
      throw ApplicationFailure.nonRetryable(`Deployment ${namespace}/${name} is not managed by glidepath (label ${LABELS.managedBy}); refusing to delete it`, ErrorType.PreflightFailed);
    }
    const site = { namespace, name, resource: 'deployments.apps' };
    try {
      if ((existing.spec?.replicas ?? 1) > 0 && !existing.metadata?.deletionTimestamp) {
        await k.call({ ...site, verb: 'patch' }, () =>
          k.apps.patchNamespacedDeployment({ name, namespace, body: { spec: { replicas: 0 } }, fieldManager: FIELD_MANAGER }, MERGE_PATCH),
        );
      }
      await k.call({ ...site, verb: 'delete' }, () => k.apps.deleteNamespacedDeployment({ name, namespace, propagationPolicy: 'Background' }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  };

  /** Sets the target container of the stable Deployment to `image` (only the image), recording the previous one. */
  const setStableImage = async (target: ReleaseTarget, stable: V1Deployment, image: string, recordPrevious: boolean): Promise<boolean> => {
    const container = targetContainer(stable, target);
    if (container.image === image) return false;
    const namespace = target.namespace;
    const name = target.workload.name;
    const annotations: Record<string, string> = { [ANNOTATIONS.release]: target.releaseId };
    if (recordPrevious && container.image) annotations[ANNOTATIONS.previousImage] = container.image;
    await k.call({ verb: 'patch', resource: 'deployments.apps', namespace, name }, () =>
      k.apps.patchNamespacedDeployment(
        { name, namespace, fieldManager: FIELD_MANAGER, body: { metadata: { annotations }, spec: { template: { spec: { containers: [{ name: container.name, image }] } } } } },
        STRATEGIC_PATCH,
      ),
    );
    const got = await getDeployment(namespace, name);
    const now = got.spec?.template?.spec?.containers?.find((c) => c.name === container.name)?.image;
    if (now !== image) {
      throw ApplicationFailure.nonRetryable(`Deployment ${namespace}/${name} container ${container.name} reads back image ${now} after setting ${image}`, ErrorType.VerificationFailed);
    }
    return true;
  };

  // ---- Services ------------------------------------------------------------------------------------

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
    if (remembered === undefined && !(LABELS.role in current)) annotations[ANNOTATIONS.originalSelector] = JSON.stringify(current);
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
    return LABELS.role in current ? fallback : current;
  };

  /** Gives a Service back its own selector; `fallback` when the remembered one is lost but it still points at a glidepath role. */
  const restoreService = async (target: ReleaseTarget, name: string | undefined, fallback: Record<string, string> | undefined): Promise<void> => {
    if (!name) return;
    const svc = await findService(target.namespace, name);
    if (!svc) return;
    const original = ownSelector(svc, fallback);
    const remembered = svc.metadata?.annotations?.[ANNOTATIONS.originalSelector];
    if (!original || (sameSelector(svc.spec?.selector, original) && remembered === undefined)) return; // never changed by us
    await patchSelector(svc, original, { [ANNOTATIONS.originalSelector]: null, [ANNOTATIONS.release]: null });
  };

  /**
   * A Service that must reach the stable pods only: its own selector when that cannot match `role`
   * pods, else (a broad selector, e.g. `tier: frontend`) pinned to the stable Deployment's matchLabels.
   */
  const keepOnStable = async (target: ReleaseTarget, name: string | undefined, which: string, stable: V1Deployment | undefined, role: Role): Promise<void> => {
    if (!name) return;
    const svc = stable ? await requireService(target, name, which) : await findService(target.namespace, name);
    if (!svc) return;
    const ml = stableMatchLabels(stable);
    const own = ownSelector(svc, ml);
    if (stable && ml && own && serviceSelectorMatches(own, rolePodLabels(stable, role))) {
      await pointService(target, name, which, ml);
    } else {
      await restoreService(target, name, ml);
    }
  };

  const stableMatchLabels = (stable: V1Deployment | undefined): Record<string, string> | undefined => {
    const ml = stable?.spec?.selector?.matchLabels;
    return ml && Object.keys(ml).length > 0 ? { ...ml } : undefined;
  };

  // ---- canary --------------------------------------------------------------------------------------

  /** The canary at `replicas`, its Services pointed, then waited for. */
  const convergeCanary = async (target: ReleaseTarget, stable: V1Deployment, replicas: number): Promise<void> => {
    await applyRole(target, stable, 'canary', replicas);
    if (target.canaryService) await pointService(target, target.canaryService, 'canaryService', roleSelector(stable, 'canary'));
    await keepOnStable(target, target.stableService, 'stableService', stable, 'canary'); // never reaches canary pods
    await waitRolledOut(target.namespace, roleName(target.workload.name, 'canary'), target.progressDeadlineSeconds);
  };

  const stableReplicas = (stable: V1Deployment): number => stable.spec?.replicas ?? 1;

  const scaleCanary = async (target: ReleaseTarget, replicasOf: (stableReplicas: number) => number): Promise<{ canaryReplicas: number }> => {
    const stable = await getStable(target);
    const canaryReplicas = replicasOf(stableReplicas(stable));
    await convergeCanary(target, stable, canaryReplicas);
    return { canaryReplicas };
  };

  const checkWeight = (weight: number): void => {
    if (!Number.isFinite(weight) || weight < 0 || weight > 100) {
      throw ApplicationFailure.nonRetryable(`canary weight must be between 0 and 100, got ${weight}`, ErrorType.InvalidSpec);
    }
  };

  /** Puts the stable Deployment back on `stableImage` (or, without one, the image this release replaced) and waits. */
  const restoreStable = async (target: ReleaseTarget, stable: V1Deployment | undefined, stableImage: string | undefined): Promise<void> => {
    if (!stable) return; // nothing left to put back
    const annotations = stable.metadata?.annotations ?? {};
    const back = stableImage ?? (annotations[ANNOTATIONS.release] === target.releaseId ? annotations[ANNOTATIONS.previousImage] : undefined);
    if (back === undefined) return;
    const changed = await setStableImage(target, stable, back, false);
    // Wait when we changed it now, or when a previous attempt of this release did (a retry must still see it ready);
    // a stable this release never touched is the user's business, even when it is not rolled out.
    const ours = annotations[ANNOTATIONS.release] === target.releaseId;
    if (changed || (ours && !rolloutState(stable).done)) await waitRolledOut(target.namespace, target.workload.name, target.progressDeadlineSeconds);
  };

  /** Canary Service back to its own selector, the canary gone, then the stable Service (a broad selector is safe once no canary pods are left). */
  const removeCanary = async (target: ReleaseTarget): Promise<void> => {
    const stable = await findDeployment(target.namespace, target.workload.name);
    await restoreService(target, target.canaryService, stableMatchLabels(stable));
    await removeRole(target, 'canary');
    await restoreService(target, target.stableService, stableMatchLabels(stable));
  };

  // ---- the operations ------------------------------------------------------------------------------

  return {
    async preflight(target: ReleaseTarget): Promise<PreflightResult> {
      const where = `${target.namespace}/${target.workload.name}`;
      if (target.workload.kind !== 'Deployment') {
        throw ApplicationFailure.nonRetryable(`workload ${where} is a ${String(target.workload.kind)}; only Deployments are supported`, ErrorType.InvalidSpec);
      }
      if (target.strategy === 'blueGreen' && !target.activeService) {
        throw ApplicationFailure.nonRetryable(`blue/green release of ${where} needs an activeService`, ErrorType.InvalidSpec);
      }

      // Permissions first, so a Forbidden names every missing verb at once.
      const needed = requiredAccess(target);
      const reviews = await Promise.all(
        needed.map((a) =>
          k.call({ verb: 'create', resource: 'selfsubjectaccessreviews.authorization.k8s.io' }, () =>
            k.authz.createSelfSubjectAccessReview({
              body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { namespace: target.namespace, group: a.group, resource: a.resource, verb: a.verb } } },
            }),
          ),
        ),
      );
      const denied = needed.filter((_, i) => !reviews[i]?.status?.allowed);
      if (denied.length > 0) {
        throw ApplicationFailure.nonRetryable(
          `not allowed in namespace ${target.namespace}: ${denied.map(describeAccess).join(', ')} (grant them to the worker's identity; see deploy/rbac.yaml)`,
          ErrorType.Forbidden,
        );
      }

      const stable = await getStable(target);
      const container = targetContainer(stable, target);
      const warnings: string[] = [];
      if (!container.readinessProbe) {
        const msg = `container ${container.name} of Deployment ${where} has no readinessProbe: pods count as ready as soon as they start, so a canary cannot be judged by readiness`;
        if (readinessPolicy === 'fail') throw ApplicationFailure.nonRetryable(msg, ErrorType.PreflightFailed);
        warnings.push(msg);
      }
      if (!container.image) throw ApplicationFailure.nonRetryable(`container ${container.name} of Deployment ${where} has no image`, ErrorType.PreflightFailed);

      for (const [role, name] of [
        ['stableService', target.stableService],
        ['canaryService', target.canaryService],
        ['activeService', target.activeService],
        ['previewService', target.previewService],
      ] as const) {
        if (name) await requireService(target, name, role);
      }

      const podLabels = stable.spec?.template?.metadata?.labels ?? {};
      const pdbs = await k.call({ verb: 'list', resource: 'poddisruptionbudgets.policy', namespace: target.namespace }, () =>
        k.policy.listNamespacedPodDisruptionBudget({ namespace: target.namespace }),
      );
      if (!pdbs.items.some((p) => labelSelectorMatches(p.spec?.selector, podLabels))) {
        warnings.push(`no PodDisruptionBudget in ${target.namespace} selects the pods of ${where}: a node drain during the release may take them all at once`);
      }

      const role: Role = target.strategy === 'blueGreen' ? 'preview' : 'canary';
      const leftover = await findDeployment(target.namespace, roleName(target.workload.name, role));
      const owner = leftover?.metadata?.annotations?.[ANNOTATIONS.release];
      if (leftover && leftover.metadata?.labels?.[LABELS.managedBy] !== 'glidepath') {
        throw ApplicationFailure.nonRetryable(`Deployment ${target.namespace}/${roleName(target.workload.name, role)} exists and is not managed by glidepath`, ErrorType.PreflightFailed);
      }
      if (leftover && owner !== target.releaseId) warnings.push(`${role} Deployment ${roleName(target.workload.name, role)} left by release ${owner ?? 'unknown'} will be taken over`);
      if (!rolloutState(stable).done) warnings.push(`Deployment ${where} is not fully rolled out: ${rolloutState(stable).message}`);

      return { stableImage: container.image, replicas: stableReplicas(stable), warnings };
    },

    async ensureCanary(target: ReleaseTarget): Promise<void> {
      const stable = await getStable(target);
      await convergeCanary(target, stable, 0);
    },

    async scaleCanaryForWeight(target: ReleaseTarget, weight: number): Promise<{ canaryReplicas: number }> {
      checkWeight(weight);
      return scaleCanary(target, (n) => replicasForWeight(n, weight));
    },

    async setCanaryScale(target: ReleaseTarget, scale: CanaryScale, currentWeight: number): Promise<{ canaryReplicas: number }> {
      if ('replicas' in scale) {
        if (!Number.isInteger(scale.replicas) || scale.replicas < 0) throw ApplicationFailure.nonRetryable(`canary replicas must be a whole number ≥ 0, got ${scale.replicas}`, ErrorType.InvalidSpec);
        return scaleCanary(target, () => scale.replicas);
      }
      const weight = 'weight' in scale ? scale.weight : currentWeight;
      checkWeight(weight);
      return scaleCanary(target, (n) => replicasForWeight(n, weight));
    },

    async promoteCanary(target: ReleaseTarget, opts: PromoteOptions = {}): Promise<void> {
      const stable = await getStable(target);
      const changed = await setStableImage(target, stable, target.image, true);
      if (changed || !rolloutState(stable).done) await waitRolledOut(target.namespace, target.workload.name, target.progressDeadlineSeconds);
      await opts.beforeCanaryRemoved?.();
      if (opts.keepCanary) return;
      await removeCanary(target);
    },

    removeCanary,

    async abortCanary(target: ReleaseTarget, stableImage: string | undefined): Promise<void> {
      // The canary goes first (it is the new version); stable replicas are never written.
      await removeRole(target, 'canary');
      const stable = await findDeployment(target.namespace, target.workload.name);
      await restoreService(target, target.canaryService, stableMatchLabels(stable));
      await restoreService(target, target.stableService, stableMatchLabels(stable));
      await restoreStable(target, stable, stableImage);
    },

    async deployPreview(target: ReleaseTarget, replicas: number | undefined): Promise<void> {
      const stable = await getStable(target);
      const n = replicas ?? stableReplicas(stable);
      if (!Number.isInteger(n) || n < 0) throw ApplicationFailure.nonRetryable(`preview replicas must be a whole number ≥ 0, got ${n}`, ErrorType.InvalidSpec);
      await keepOnStable(target, target.activeService, 'activeService', stable, 'preview'); // before any preview pod exists
      await applyRole(target, stable, 'preview', n);
      await waitRolledOut(target.namespace, roleName(target.workload.name, 'preview'), target.progressDeadlineSeconds);
      if (target.previewService) await pointService(target, target.previewService, 'previewService', roleSelector(stable, 'preview'));
    },

    async switchActive(target: ReleaseTarget, to: 'preview' | 'stable'): Promise<void> {
      if (!target.activeService) throw ApplicationFailure.nonRetryable(`blue/green release of ${target.namespace}/${target.workload.name} has no activeService`, ErrorType.InvalidSpec);
      const stable = await findDeployment(target.namespace, target.workload.name);
      if (to === 'stable') {
        await keepOnStable(target, target.activeService, 'activeService', stable, 'preview');
        return;
      }
      if (!stable) await getStable(target); // throws NotFound with the workload's name
      const previewName = roleName(target.workload.name, 'preview');
      const preview = await findDeployment(target.namespace, previewName);
      if (!preview) throw ApplicationFailure.nonRetryable(`Deployment ${target.namespace}/${previewName} not found: deployPreview must run before switching to it`, ErrorType.NotFound);
      const state = rolloutState(preview);
      if (!state.done) throw new Error(`preview not ready, not switching traffic to it: ${state.message}`); // retried
      const selector = preview.spec?.selector?.matchLabels ?? {};
      await pointService(target, target.activeService, 'activeService', selector);
    },

    async finalizeBlueGreen(target: ReleaseTarget): Promise<void> {
      const stable = await getStable(target);
      const changed = await setStableImage(target, stable, target.image, true);
      if (changed || !rolloutState(stable).done) await waitRolledOut(target.namespace, target.workload.name, target.progressDeadlineSeconds);
      await keepOnStable(target, target.activeService, 'activeService', stable, 'preview');
      await removeRole(target, 'preview');
      await restoreService(target, target.activeService, stableMatchLabels(stable));
      await restoreService(target, target.previewService, stableMatchLabels(stable));
    },

    async abortBlueGreen(target: ReleaseTarget, stableImage: string | undefined): Promise<void> {
      const stable = await findDeployment(target.namespace, target.workload.name);
      await keepOnStable(target, target.activeService, 'activeService', stable, 'preview'); // traffic off the preview first
      await removeRole(target, 'preview');
      await restoreService(target, target.activeService, stableMatchLabels(stable));
      await restoreService(target, target.previewService, stableMatchLabels(stable));
      await restoreStable(target, stable, stableImage);
    },
  };
}

export type { Heartbeat } from './context.ts';
export { rolloutState, waitForRollout } from './rollout.ts';
export { classifyKubeError } from './errors.ts';
export { ALL_ACCESS, requiredAccess } from './access.ts';
export { ANNOTATIONS, FIELD_MANAGER, LABELS, roleName, roleSelector } from './objects.ts';
