/**
 * The Deployments: reading the stable, applying and removing the canary/preview, the stable's
 * image (set on promotion, put back on abort, only where Glidepath itself wrote it) and the wait
 * for a rollout, with its progress deadline and the pods' own account of why it is stuck.
 */
import { PatchStrategy, setHeaderOptions, type V1Deployment } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type { ConfigCopy } from '../../model/config.ts';
import { configBack, pointsAt, rewriteConfigRefs } from '../../model/config-template.ts';
import type { ReleaseTarget } from '../contract.ts';
import { configPatch } from './config.ts';
import { ErrorType } from '../errors.ts';
import { activityContext, cancellationSignal } from './context.ts';
import { diagnoseDeployment } from './diagnose.ts';
import { isNotFound } from './errors.ts';
import { ANNOTATIONS, FIELD_MANAGER, LABELS, buildRoleDeployment, roleName, sameSelector, targetContainer, type Role } from './objects.ts';
import type { WorkloadRoom } from './room.ts';
import { rolloutState, waitForRollout } from './rollout.ts';

export const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const STRATEGIC_PATCH = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

export type Deployments = ReturnType<typeof createDeployments>;

export function createDeployments(room: WorkloadRoom) {
  const { k } = room;

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

  const findStable = (target: ReleaseTarget): Promise<V1Deployment | undefined> => findDeployment(target.namespace, target.workload.name);
  const findRole = (target: ReleaseTarget, role: Role): Promise<V1Deployment | undefined> => findDeployment(target.namespace, roleName(target.workload.name, role));

  const getStable = async (target: ReleaseTarget): Promise<V1Deployment> => {
    const stable = await findStable(target);
    if (!stable) throw ApplicationFailure.nonRetryable(`Deployment ${target.namespace}/${target.workload.name} not found (the workload of release ${target.releaseId})`, ErrorType.NotFound);
    return stable;
  };

  /**
   * Waits until `name` is rolled out. The release's progress deadline is "no progress for N
   * seconds" (progress resets the clock, and the clock survives a retry through the heartbeat);
   * when it passes, the failure names the Deployment and what its pods say.
   */
  const waitRolledOut = (target: ReleaseTarget, name: string): Promise<V1Deployment> =>
    waitForRollout(() => getDeployment(target.namespace, name), `Deployment ${target.namespace}/${name}`, {
      pollIntervalMs: room.pollIntervalMs,
      progressDeadlineSeconds: target.progressDeadlineSeconds,
      heartbeat: room.heartbeat,
      signal: cancellationSignal(room.signal),
      resumeFrom: activityContext()?.info.heartbeatDetails,
      diagnose: (d) => diagnoseDeployment(k, d),
    });

  /**
   * Server-side apply of the canary/preview Deployment, then a read-back of what matters. One that
   * exists with another selector (made by an earlier Glidepath, whose role pods had other labels)
   * keeps its selector and pod labels: a selector cannot change.
   */
  const applyRole = async (target: ReleaseTarget, stable: V1Deployment, role: Role, replicas: number): Promise<V1Deployment> => {
    const desired = buildRoleDeployment(stable, target, role, replicas);
    const name = roleName(target.workload.name, role);
    const existing = await findDeployment(target.namespace, name);
    const kept = existing?.spec?.selector?.matchLabels;
    if (existing && kept && desired.spec?.template.metadata && !sameSelector(kept, desired.spec.selector.matchLabels)) {
      desired.spec.selector = { matchLabels: { ...kept } };
      desired.spec.template.metadata.labels = { ...(existing.spec?.template?.metadata?.labels ?? kept) };
    }
    await k.call({ verb: 'apply', resource: 'deployments.apps', namespace: target.namespace, name }, () =>
      k.objects.patch(desired, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply),
    );
    const got = await getDeployment(target.namespace, name);
    const container = targetContainer(stable, target).name;
    const problems: string[] = [];
    if (got.spec?.replicas !== replicas) problems.push(`replicas ${got.spec?.replicas}, expected ${replicas}`);
    const image = got.spec?.template?.spec?.containers?.find((c) => c.name === container)?.image;
    if (image !== target.image) problems.push(`container ${container} image ${image}, expected ${target.image}`);
    if (target.config?.length && !pointsAt(got.spec?.template?.spec ?? { containers: [] }, target.config)) problems.push(`pod template does not point at ${target.config.map((c) => c.copy).join(', ')}`);
    if (!sameSelector(got.spec?.selector?.matchLabels, desired.spec?.selector?.matchLabels)) {
      problems.push(`selector ${JSON.stringify(got.spec?.selector?.matchLabels)}, expected ${JSON.stringify(desired.spec?.selector?.matchLabels)} (a selector cannot change: delete ${name} to recreate it)`);
    }
    if (problems.length > 0) {
      throw ApplicationFailure.nonRetryable(`Deployment ${target.namespace}/${name} reads back differently after apply: ${problems.join('; ')}`, ErrorType.VerificationFailed);
    }
    return got;
  };

  /** Scales the role Deployment to zero (so its pods go at once), then deletes it; absent is fine. */
  const deleteRole = async (target: ReleaseTarget, role: Role): Promise<void> => {
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

  /**
   * Sets the stable's target container to `image`, its replicas to `replicas` and (with `config`) its
   * template to those copies, each when given, in one patch so that no ReplicaSet runs one without the
   * other, then reads them back. With `recordPrevious` the image and the count it had are recorded
   * (the count only when it changes now; an older record of the count is dropped). False when
   * nothing needed writing.
   */
  const setStable = async (
    target: ReleaseTarget,
    stable: V1Deployment,
    want: { image?: string | undefined; replicas?: number | undefined; config?: readonly ConfigCopy[] | undefined },
    recordPrevious: boolean,
  ): Promise<boolean> => {
    const container = targetContainer(stable, target);
    const podSpec = stable.spec?.template?.spec ?? { containers: [] };
    const configBody = want.config?.length ? configPatch(podSpec, rewriteConfigRefs(podSpec, want.config)) : undefined;
    const imageChanges = want.image !== undefined && container.image !== want.image;
    const replicasChange = want.replicas !== undefined && stableReplicas(stable) !== want.replicas;
    if (!imageChanges && !replicasChange && !configBody) return false;
    const namespace = target.namespace;
    const name = target.workload.name;
    const annotations: Record<string, string | null> = { [ANNOTATIONS.release]: target.releaseId };
    if (recordPrevious && imageChanges && container.image) annotations[ANNOTATIONS.previousImage] = container.image;
    if (recordPrevious && target.runId) annotations[ANNOTATIONS.releaseRun] = target.runId;
    if (recordPrevious && target.replicas !== undefined) annotations[ANNOTATIONS.previousReplicas] = replicasChange ? String(stableReplicas(stable)) : null;
    const others = (configBody?.containers ?? []).filter((c) => c.name !== container.name);
    const own = configBody?.containers?.find((c) => c.name === container.name);
    const image = imageChanges ? want.image : container.image;
    const template = imageChanges || configBody ? { template: { spec: { ...(configBody ?? {}), containers: [{ ...(own ?? {}), name: container.name, image }, ...others] } } } : {};
    const spec = { ...(replicasChange ? { replicas: want.replicas } : {}), ...template };
    await k.call({ verb: 'patch', resource: 'deployments.apps', namespace, name }, () =>
      k.apps.patchNamespacedDeployment({ name, namespace, fieldManager: FIELD_MANAGER, body: { metadata: { annotations }, spec } }, STRATEGIC_PATCH),
    );
    const got = await getDeployment(namespace, name);
    const now = got.spec?.template?.spec?.containers?.find((c) => c.name === container.name)?.image;
    if (imageChanges && now !== want.image) {
      throw ApplicationFailure.nonRetryable(`Deployment ${namespace}/${name} container ${container.name} reads back image ${now} after setting ${want.image}`, ErrorType.VerificationFailed);
    }
    if (replicasChange && got.spec?.replicas !== want.replicas) {
      throw ApplicationFailure.nonRetryable(`Deployment ${namespace}/${name} reads back ${got.spec?.replicas} replicas after setting ${want.replicas}`, ErrorType.VerificationFailed);
    }
    if (want.config?.length && !pointsAt(got.spec?.template?.spec ?? { containers: [] }, want.config)) {
      throw ApplicationFailure.nonRetryable(`Deployment ${namespace}/${name} does not read back pointing at ${want.config.map((c) => c.copy).join(', ')}`, ErrorType.VerificationFailed);
    }
    return true;
  };

  /** Promotion's first half: the stable takes the new image (and the release's replica count; what it had is recorded) and becomes ready. */
  const rollStableForward = async (target: ReleaseTarget): Promise<V1Deployment> => {
    const stable = await getStable(target);
    const changed = await setStable(target, stable, { image: target.image, replicas: target.replicas, config: target.config }, true);
    if (changed || !rolloutState(stable).done) return waitRolledOut(target, target.workload.name);
    return stable;
  };

  /**
   * The count to put back when this release set one: the recorded count, while the stable still has
   * the count this release set; a count someone else set meanwhile is drift.
   */
  const replicasBack = (target: ReleaseTarget, stable: V1Deployment, ours: boolean): { replicas?: number; drift?: string } => {
    const recorded = ours && target.replicas !== undefined ? Number(stable.metadata?.annotations?.[ANNOTATIONS.previousReplicas]) : NaN;
    if (!Number.isInteger(recorded) || recorded < 0) return {};
    const now = stableReplicas(stable);
    if (now === recorded) return {};
    if (now === target.replicas) return { replicas: recorded };
    return { drift: `Deployment ${target.namespace}/${target.workload.name} has ${now} replicas, set by someone else during the release (Glidepath had set ${target.replicas}; it had ${recorded} before): left as it is` };
  };

  /**
   * Puts back what this release wrote on the stable Deployment, and nothing else: its image goes
   * back to the one recorded when this release changed it (or `stableImage`) only while it still
   * runs the image this release set, and its replica count (when the release set one) to the
   * recorded count only while it still has the count this release set. An image or count someone
   * else set during the release (a hotfix, a manual scale) is left as it is and reported as drift.
   * Waits for the stable when it was changed now, or when a previous attempt of this release changed
   * it (a retry must still see it ready).
   */
  const restoreStable = async (target: ReleaseTarget, stableImage: string | undefined): Promise<string[]> => {
    const stable = await findStable(target); // read now: the image is compared with what is there at this moment
    if (!stable) return []; // nothing left to put back
    const where = `Deployment ${target.namespace}/${target.workload.name}`;
    const annotations = stable.metadata?.annotations ?? {};
    // This run's record: an earlier release of the same workload (same release ID) left its own.
    const run = annotations[ANNOTATIONS.releaseRun];
    const ours = annotations[ANNOTATIONS.release] === target.releaseId && (target.runId === undefined || run === undefined || run === target.runId);
    const container = targetContainer(stable, target);
    const now = container.image;
    const back = (ours ? annotations[ANNOTATIONS.previousImage] : undefined) ?? stableImage;
    const drift: string[] = [];
    let image: string | undefined;
    let imageDrift = false;
    if (back !== undefined && now !== back) {
      if (ours && now === target.image) image = back;
      else {
        imageDrift = true;
        drift.push(`${where} container ${container.name} runs ${now}, set by someone else during the release (${ours ? `Glidepath had set ${target.image}` : 'Glidepath never changed it'}; it ran ${back} before): left as it is`);
      }
    }
    // With spec.config: the copies the stable used when the attempt started, if a promotion moved it to this attempt's (not under someone else's image).
    const config = ours && !imageDrift ? configBack(stable.spec?.template?.spec ?? { containers: [] }, target.config) : undefined;
    const count = replicasBack(target, stable, ours);
    if (count.drift) drift.push(count.drift);
    const wrote = await setStable(target, stable, { image, replicas: count.replicas, config }, false);
    // Not waited for: a stable running an image someone else set (its rollout is theirs).
    if (image !== undefined || (ours && !imageDrift && (wrote || !rolloutState(stable).done))) await waitRolledOut(target, target.workload.name);
    return drift;
  };

  return { getDeployment, findDeployment, findStable, findRole, getStable, waitRolledOut, applyRole, deleteRole, setStable, rollStableForward, restoreStable };
}

export const stableReplicas = (stable: V1Deployment): number => stable.spec?.replicas ?? 1;

/** The count the canary/preview is sized from: the release's desired count, else the stable's live one (`live`, default its replicas). */
export const desiredReplicas = (target: ReleaseTarget, stable: V1Deployment, live = stableReplicas(stable)): number => target.replicas ?? live;
