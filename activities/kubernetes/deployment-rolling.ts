/**
 * A Deployment released in batches by its own rolling update, paused between batches
 * (docs/kubernetes.md, "Deployments (strategy.rolling)"): `begin` pauses the Deployment, sets
 * maxSurge (the plan's, default 1) and maxUnavailable 0 and the new image in one write, so nothing
 * moves; a batch resumes it only until the controller has sized the new ReplicaSet for the batch,
 * pauses it again and waits until the batch's new pods are available and every pod is ready;
 * promotion and abort put back the strategy and `paused` the Deployment had (recorded in an
 * annotation) and wait for the rollout. With maxUnavailable 0 the stable never has fewer available
 * pods than replicas; the old pods a batch surges past go in the next batch or at promotion.
 */
import { PatchStrategy, setHeaderOptions, type V1Deployment, type V1ReplicaSet } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { DEFAULT_ROLLING_MAX_SURGE, batchReplicas, describeBatch, isNodeWave, type BatchStep } from '../../model/rolling.ts';
import type { CleanupReport, PreflightResult, ReleaseTarget, RollingOps } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { activityContext } from './context.ts';
import type { Capacity } from './capacity.ts';
import type { Deployments } from './deployments.ts';
import { labelSelectorString } from './diagnose.ts';
import { pollProgress, type ProgressStep } from './progress-poll.ts';
import { ANNOTATIONS, FIELD_MANAGER, recordedByRelease, targetContainer } from './objects.ts';
import { checkAccess } from './preflight.ts';
import type { WorkloadRoom } from './room.ts';
import { checkBatchContainer } from './rolling-preflight.ts';
import { rolloutState } from './rollout.ts';

const STRATEGIC_PATCH = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

/** On a Deployment: its `paused` and rolling-update settings before this release changed them (JSON), put back at the end. */
export const PREVIOUS_ROLLING = 'glidepath.dev/previous-rolling';

/** How often a resumed Deployment is read until its new ReplicaSet is sized for the batch. */
const RESUME_POLL_MS = 25;

interface RollingSettings {
  paused: boolean;
  maxSurge: number | string;
  maxUnavailable: number | string;
}

const settingsOf = (d: V1Deployment): RollingSettings => ({
  paused: d.spec?.paused ?? false,
  maxSurge: (d.spec?.strategy?.rollingUpdate?.maxSurge as number | string | undefined) ?? '25%',
  maxUnavailable: (d.spec?.strategy?.rollingUpdate?.maxUnavailable as number | string | undefined) ?? '25%',
});

export function createDeploymentRolling(room: WorkloadRoom, d: Deployments, cap: Capacity): RollingOps {
  const { k } = room;
  const where = (t: ReleaseTarget): string => `Deployment ${t.namespace}/${t.workload.name}`;

  const patch = async (t: ReleaseTarget, body: object): Promise<V1Deployment> => {
    await k.call({ verb: 'patch', resource: 'deployments.apps', namespace: t.namespace, name: t.workload.name }, () =>
      k.apps.patchNamespacedDeployment({ name: t.workload.name, namespace: t.namespace, fieldManager: FIELD_MANAGER, body }, STRATEGIC_PATCH),
    );
    return d.getStable(t);
  };

  const recorded = (dep: V1Deployment, t: ReleaseTarget): RollingSettings | undefined => recordedByRelease<RollingSettings>(dep.metadata, t.releaseId, PREVIOUS_ROLLING);

  /** The ReplicaSet of the Deployment running the release's image (the new one), if the controller made it. */
  const newReplicaSet = async (t: ReleaseTarget, dep: V1Deployment): Promise<V1ReplicaSet | undefined> => {
    const labelSelector = labelSelectorString(dep);
    const list = await k.call({ verb: 'list', resource: 'replicasets.apps', namespace: t.namespace }, () => k.apps.listNamespacedReplicaSet({ namespace: t.namespace, labelSelector }));
    const container = targetContainer(dep, t).name;
    return list.items.find(
      (rs) => rs.metadata?.ownerReferences?.some((o) => o.kind === 'Deployment' && o.uid === dep.metadata?.uid) && rs.spec?.template?.spec?.containers.find((c) => c.name === container)?.image === t.image,
    );
  };

  /** The workload's pods, to say why a wait missed its deadline. */
  const podsOf = (t: ReleaseTarget, dep: V1Deployment) => async () =>
    (await k.call({ verb: 'list', resource: 'pods', namespace: t.namespace }, () => k.core.listNamespacedPod({ namespace: t.namespace, labelSelector: labelSelectorString(dep) }))).items;

  const poll = <T>(t: ReleaseTarget, step: () => Promise<ProgressStep<T>>, intervalMs?: number): Promise<T> => pollProgress(room, t, where(t), step, intervalMs);

  const preflight = async (t: ReleaseTarget): Promise<PreflightResult> => {
    await checkAccess(k, t);
    const dep = await d.getStable(t);
    if (dep.spec?.strategy?.type === 'Recreate') {
      throw ApplicationFailure.nonRetryable(`${where(t)} spec.strategy.type is Recreate: every pod is replaced at once, so there are no batches to gate; set spec.strategy.type: RollingUpdate (or use strategy.canary)`, ErrorType.PreflightFailed);
    }
    const c = targetContainer(dep, t);
    const { image, warnings } = checkBatchContainer(room, t, c, where(t));
    if (!rolloutState(dep).done && recorded(dep, t) === undefined) {
      throw ApplicationFailure.nonRetryable(`${where(t)} is not rolled out (${rolloutState(dep).message}): let its rollout finish before releasing`, ErrorType.PreflightFailed);
    }
    return { stableImage: image, replicas: dep.spec?.replicas ?? 1, warnings };
  };

  const begin = async (t: ReleaseTarget): Promise<{ replicas: number }> => {
    const dep = await d.getStable(t);
    const c = targetContainer(dep, t);
    const replicas = dep.spec?.replicas ?? 1;
    if (c.image === t.image && recorded(dep, t) !== undefined) return { replicas }; // begun already
    const annotations = { [ANNOTATIONS.release]: t.releaseId, [PREVIOUS_ROLLING]: JSON.stringify(settingsOf(dep)), ...(c.image ? { [ANNOTATIONS.previousImage]: c.image } : {}) };
    await cap.holdFloor(t, dep); // an HPA keeps at least today's replicas for the release
    const maxSurge = t.maxSurge ?? DEFAULT_ROLLING_MAX_SURGE;
    const got = await patch(t, {
      metadata: { annotations },
      spec: { paused: true, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge, maxUnavailable: 0 } }, template: { spec: { containers: [{ name: c.name, image: t.image }] } } },
    });
    if (targetContainer(got, t).image !== t.image || got.spec?.paused !== true) {
      throw ApplicationFailure.nonRetryable(`${where(t)} reads back image ${targetContainer(got, t).image}, paused ${got.spec?.paused} after setting ${t.image}, paused`, ErrorType.VerificationFailed);
    }
    return { replicas };
  };

  const batch = async (t: ReleaseTarget, step: BatchStep): Promise<{ updated: number; replicas: number }> => {
    const dep = await d.getStable(t);
    if (recorded(dep, t) === undefined) throw ApplicationFailure.nonRetryable(`${where(t)} carries no ${PREVIOUS_ROLLING} of release ${t.releaseId}: the release has not begun on it`, ErrorType.VerificationFailed);
    if (targetContainer(dep, t).image !== t.image) throw ApplicationFailure.nonRetryable(`${where(t)} runs ${targetContainer(dep, t).image}, not ${t.image}: someone changed it during the release`, ErrorType.VerificationFailed);
    const replicas = dep.spec?.replicas ?? 1;
    if (isNodeWave(step)) throw ApplicationFailure.nonRetryable(`${where(t)}: a batch of nodes by label (${describeBatch(step)}) is for DaemonSets`, ErrorType.InvalidSpec);
    const want = batchReplicas(step, replicas);
    // Resume only until the controller has sized the new ReplicaSet for the batch, then pause at
    // once: a paused Deployment neither grows the new ReplicaSet nor shrinks the old ones, so the
    // batch's pods start while the old pods all stay (maxUnavailable 0). Waiting for the new pods
    // to be available before pausing let the controller run on: with pods that become ready fast it
    // rolled the whole Deployment before the pause landed. The resume is watched at a short interval.
    await poll(
      t,
      async () => {
        const now = await d.getStable(t);
        const rs = await newReplicaSet(t, now);
        const sized = rs?.spec?.replicas ?? 0;
        if (sized >= want) return { done: true, mark: '', state: '', pods: podsOf(t, now) };
        if (now.spec?.paused) await patch(t, { spec: { paused: false } });
        return { mark: `${sized}/${rs?.status?.readyReplicas ?? 0}/${rs?.status?.availableReplicas ?? 0}`, state: `${where(t)}: new ReplicaSet sized ${sized} of ${want}`, pods: podsOf(t, now) };
      },
      Math.min(room.pollIntervalMs, RESUME_POLL_MS),
    );
    await patch(t, { spec: { paused: true } });
    // Paused: the batch's new pods available and every pod (old and new) ready before the next step.
    return poll(t, async () => {
      const now = await d.getStable(t);
      const rs = await newReplicaSet(t, now);
      const st = now.status ?? {};
      const updated = rs?.status?.availableReplicas ?? 0;
      const settled = updated >= want && (st.observedGeneration ?? 0) >= (now.metadata?.generation ?? 0) && (st.unavailableReplicas ?? 0) === 0 && (st.readyReplicas ?? 0) === (st.replicas ?? 0);
      return { ...(settled ? { done: { updated, replicas } } : {}), mark: `${st.readyReplicas}/${st.replicas}/${updated}`, state: `${where(t)} paused: ${st.readyReplicas ?? 0} of ${st.replicas ?? 0} pods ready`, pods: podsOf(t, now) };
    });
  };

  /** The recorded strategy and `paused` back (and the release's annotation of them removed). */
  const restoreSettings = async (t: ReleaseTarget, prev: RollingSettings, image?: { container: string; image: string }): Promise<void> => {
    await patch(t, {
      metadata: { annotations: { [PREVIOUS_ROLLING]: null } },
      spec: {
        paused: prev.paused,
        strategy: { rollingUpdate: { maxSurge: prev.maxSurge, maxUnavailable: prev.maxUnavailable } },
        ...(image ? { template: { spec: { containers: [{ name: image.container, image: image.image }] } } } : {}),
      },
    });
  };

  const complete = async (t: ReleaseTarget): Promise<{ updated: number; replicas: number }> => {
    const dep = await d.getStable(t);
    const prev = recorded(dep, t);
    if (prev) await restoreSettings(t, { ...prev, paused: false });
    const done = await d.waitRolledOut(t, t.workload.name);
    if (prev?.paused) await patch(t, { spec: { paused: true } }); // the user had it paused: so it stays
    for (const drift of await cap.releaseFloor(t)) activityContext()?.log.warn(drift);
    const replicas = done.spec?.replicas ?? 1;
    return { updated: done.status?.updatedReplicas ?? replicas, replicas };
  };

  const abort = async (t: ReleaseTarget, stableImage: string | undefined): Promise<CleanupReport> => {
    const dep = await d.findStable(t);
    if (!dep) return { drift: [] };
    const prev = recorded(dep, t);
    if (!prev) {
      // Settings already back (a retried abort): only the image may still be ours.
      const drift = await d.restoreStable(t, stableImage);
      return { drift: [...drift, ...(await cap.releaseFloor(t))] };
    }
    const c = targetContainer(dep, t);
    const back = dep.metadata?.annotations?.[ANNOTATIONS.previousImage] ?? stableImage;
    const drift: string[] = [];
    let image: { container: string; image: string } | undefined;
    if (c.image === t.image && back !== undefined) image = { container: c.name, image: back };
    else if (c.image !== back) drift.push(`${where(t)} container ${c.name} runs ${c.image}, set by someone else during the release (Glidepath had set ${t.image}; it ran ${back} before): left as it is`);
    // One write: the old image, the user's strategy, resumed (the user's `paused`): the controller rolls back.
    await restoreSettings(t, { ...prev, paused: false }, image);
    await d.waitRolledOut(t, t.workload.name);
    if (prev.paused) await patch(t, { spec: { paused: true } });
    drift.push(...(await cap.releaseFloor(t)));
    activityContext()?.log.info(`${where(t)}: rolled back${image ? ` to ${image.image}` : ''}`);
    return { drift };
  };

  return { preflight, begin, batch, complete, abort };
}
