/**
 * Preflight: everything checked before a release touches anything — the workload kind, the
 * worker's permissions (every missing verb named at once), the stable Deployment and its target
 * container, the Services, PodDisruptionBudget coverage, and a canary/preview left by another release.
 * Read-only.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { PreflightResult, ReleaseTarget } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { describeAccess, requiredAccess } from './access.ts';
import type { Capacity } from './capacity.ts';
import { sleep } from './context.ts';
import { stableReplicas, type Deployments } from './deployments.ts';
import { isRetryable } from './errors.ts';
import { ANNOTATIONS, LABELS, roleName, targetContainer, versionedLabels, type Role } from './objects.ts';
import type { WorkloadRoom } from './room.ts';
import { rolloutState } from './rollout.ts';
import type { Services } from './services.ts';

/**
 * A review writes nothing, so a transient failure of one is retried here (a few times, briefly)
 * rather than failing the whole preflight, which sends one review per verb (about twenty).
 */
async function retryTransient<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !isRetryable(err)) throw err;
      await sleep(50 * 2 ** i);
    }
  }
}

/** Permissions first, so a Forbidden names every missing verb at once. */
export async function checkAccess(k: WorkloadRoom['k'], target: ReleaseTarget): Promise<void> {
  const needed = requiredAccess(target);
  const reviews = await Promise.all(
    needed.map((a) =>
      retryTransient(() =>
        k.call({ verb: 'create', resource: 'selfsubjectaccessreviews.authorization.k8s.io' }, () =>
          k.authz.createSelfSubjectAccessReview({
            body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { namespace: target.namespace, group: a.group, resource: a.resource, verb: a.verb } } },
          }),
        ),
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
}

export function createPreflight(room: WorkloadRoom, d: Deployments, svc: Services, cap: Capacity) {
  return async function preflight(target: ReleaseTarget): Promise<PreflightResult> {
    const where = `${target.namespace}/${target.workload.name}`;
    if (target.workload.kind !== 'Deployment') {
      throw ApplicationFailure.nonRetryable(`workload ${where} is a ${String(target.workload.kind)}; only Deployments are supported`, ErrorType.InvalidSpec);
    }
    if (target.strategy === 'blueGreen' && !target.activeService) {
      throw ApplicationFailure.nonRetryable(`blue/green release of ${where} needs an activeService`, ErrorType.InvalidSpec);
    }
    await checkAccess(room.k, target);

    const stable = await d.getStable(target);
    const container = targetContainer(stable, target);
    const warnings: string[] = [];
    if (!container.readinessProbe) {
      const msg = `container ${container.name} of Deployment ${where} has no readinessProbe: pods count as ready as soon as they start, so a canary cannot be judged by readiness`;
      const policy = target.readinessProbePolicy === undefined ? room.readinessPolicy : target.readinessProbePolicy === 'warn' ? 'warn' : 'fail';
      if (policy === 'fail') throw ApplicationFailure.nonRetryable(msg, ErrorType.PreflightFailed);
      warnings.push(msg);
    }
    const versioned = versionedLabels({ ...stable.metadata?.labels, ...stable.spec?.template?.metadata?.labels });
    if (versioned.length > 0) warnings.push(`Deployment ${where} carries version labels (${versioned.join(', ')}): they stay as they are when a release promotes a new image (docs/naming.md)`);
    if (!container.image) throw ApplicationFailure.nonRetryable(`container ${container.name} of Deployment ${where} has no image`, ErrorType.PreflightFailed);

    for (const [role, name] of [
      ['stableService', target.stableService],
      ['canaryService', target.canaryService],
      ['activeService', target.activeService],
      ['previewService', target.previewService],
    ] as const) {
      if (name) await svc.requireService(target, name, role);
    }

    if (target.replicas !== undefined) {
      const hpas = await cap.stableHpas(target);
      if (hpas.length > 0) {
        throw ApplicationFailure.nonRetryable(
          `HorizontalPodAutoscaler ${hpas.map((h) => `${target.namespace}/${h.metadata?.name}`).join(', ')} scales Deployment ${where} and owns its replica count: ` +
            `a release with a desired count (replicas: ${target.replicas}) would fight it; remove the count (a release group's spec.clusters.<cluster>.replicas) or let the HPA's minReplicas/maxReplicas size it`,
          ErrorType.PreflightFailed,
        );
      }
    }
    if (!(await cap.userPdb(target, stable))) {
      warnings.push(`no PodDisruptionBudget in ${target.namespace} selects the pods of ${where}: a node drain during the release may take them all at once`);
    }

    const role: Role = target.strategy === 'blueGreen' ? 'preview' : 'canary';
    const leftover = await d.findRole(target, role);
    const owner = leftover?.metadata?.annotations?.[ANNOTATIONS.release];
    if (leftover && leftover.metadata?.labels?.[LABELS.managedBy] !== 'glidepath') {
      throw ApplicationFailure.nonRetryable(`Deployment ${target.namespace}/${roleName(target.workload.name, role)} exists and is not managed by glidepath`, ErrorType.PreflightFailed);
    }
    if (leftover && owner !== target.releaseId) warnings.push(`${role} Deployment ${roleName(target.workload.name, role)} left by release ${owner ?? 'unknown'} will be taken over`);
    if (!rolloutState(stable).done) warnings.push(`Deployment ${where} is not fully rolled out: ${rolloutState(stable).message}`);

    return { stableImage: container.image, replicas: stableReplicas(stable), warnings };
  };
}
