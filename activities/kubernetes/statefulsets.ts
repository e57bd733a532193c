/**
 * A StatefulSet released in batches by `updateStrategy.rollingUpdate.partition` (docs/kubernetes.md,
 * "StatefulSets"): `begin` raises the partition to the replica count and sets the new image in one
 * write (no pod moves), each batch lowers the partition so the top ordinals update and waits until
 * they run the update revision and are ready, promotion lowers it back to where it was before the
 * release, and abort restores the old image (the controller rolls the updated ordinals back) and
 * then the partition. Nothing else on the StatefulSet is written: not its replicas, volumes or
 * ordinals. Every operation converges to a described state and may run again.
 */
import { PatchStrategy, setHeaderOptions, type V1Deployment, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { batchReplicas, describeBatch, isNodeWave, partitionFor, type BatchStep } from '../../model/rolling.ts';
import type { CleanupReport, PreflightResult, ReleaseTarget, RollingOps } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { activityContext, cancellationSignal, sleep } from './context.ts';
import { describePodCauses, labelSelectorString } from './diagnose.ts';
import { isNotFound, isRetryable } from './errors.ts';
import { ANNOTATIONS, FIELD_MANAGER, targetContainer } from './objects.ts';
import type { Capacity } from './capacity.ts';
import { checkAccess } from './preflight.ts';
import type { WorkloadRoom } from './room.ts';
import { checkBatchContainer } from './rolling-preflight.ts';
import { partitionOf, partitionState, type PartitionState } from './statefulset-pods.ts';

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const STRATEGIC_PATCH = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

/** On a StatefulSet: the partition it had before this release raised it (what promotion and abort return to). */
export const PREVIOUS_PARTITION = 'glidepath.dev/previous-partition';

export function createStatefulSetRolling(room: WorkloadRoom, cap: Capacity): RollingOps {
  const { k } = room;
  const where = (t: ReleaseTarget): string => `StatefulSet ${t.namespace}/${t.workload.name}`;

  const read = (t: ReleaseTarget): Promise<V1StatefulSet> =>
    k.call({ verb: 'get', resource: 'statefulsets.apps', namespace: t.namespace, name: t.workload.name }, () => k.apps.readNamespacedStatefulSet({ name: t.workload.name, namespace: t.namespace }));

  const get = async (t: ReleaseTarget): Promise<V1StatefulSet> => {
    try {
      return await read(t);
    } catch (err) {
      if (isNotFound(err)) throw ApplicationFailure.nonRetryable(`${where(t)} not found (the workload of release ${t.releaseId})`, ErrorType.NotFound);
      throw err;
    }
  };

  // A StatefulSet's pod template has the Deployment's shape: the container lookup is shared.
  const containerOf = (t: ReleaseTarget, s: V1StatefulSet) => targetContainer(s as V1Deployment, t, where(t));

  const pods = async (s: V1StatefulSet): Promise<V1Pod[]> => {
    const namespace = s.metadata?.namespace ?? '';
    const labelSelector = labelSelectorString({ spec: { selector: s.spec?.selector } } as V1Deployment);
    const list = await k.call({ verb: 'list', resource: 'pods', namespace }, () => k.core.listNamespacedPod({ namespace, labelSelector }));
    return list.items;
  };

  /** Writes the partition (merge patch of that one field) and reads it back. */
  const setPartition = async (t: ReleaseTarget, partition: number): Promise<void> => {
    await k.call({ verb: 'patch', resource: 'statefulsets.apps', namespace: t.namespace, name: t.workload.name }, () =>
      k.apps.patchNamespacedStatefulSet(
        { name: t.workload.name, namespace: t.namespace, fieldManager: FIELD_MANAGER, body: { spec: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition } } } } },
        MERGE_PATCH,
      ),
    );
    const got = partitionOf(await get(t));
    if (got !== partition) throw ApplicationFailure.nonRetryable(`${where(t)} reads back partition ${got} after setting ${partition}`, ErrorType.VerificationFailed);
  };

  /**
   * Waits until the pods match the StatefulSet's partition and revision (see partitionState). The
   * progress deadline is "no pod moved for N seconds"; it fails naming the StatefulSet and what its
   * pods say. `unstick` (rollback): pods at a stale revision that are not ready are deleted, which the
   * OrderedReady controller would otherwise wait on forever (the documented forced rollback).
   */
  const waitPartition = async (t: ReleaseTarget, opts: { complete?: boolean; unstick?: boolean } = {}): Promise<{ s: V1StatefulSet; state: PartitionState }> => {
    const signal = cancellationSignal(room.signal);
    // A retried activity continues the stall clock of its predecessor when nothing has moved since.
    const before = activityContext()?.info.heartbeatDetails as { waiting?: unknown; mark?: unknown; progressAt?: unknown } | undefined;
    const resumed = before?.waiting === where(t) && typeof before.mark === 'string' && typeof before.progressAt === 'number';
    let mark = resumed ? (before.mark as string) : '';
    let movedAt = resumed ? (before.progressAt as number) : Date.now();
    let errors = 0;
    const deleted = new Set<string>();
    for (;;) {
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('cancelled');
      try {
        const s = await get(t);
        const state = partitionState(s, await pods(s), opts.complete);
        errors = 0;
        if (state.done) return { s, state };
        if (state.mark !== mark) {
          mark = state.mark;
          movedAt = Date.now();
        }
        if (opts.unstick) {
          for (const p of state.stuckStale) {
            const uid = p.metadata?.uid ?? '';
            if (deleted.has(uid)) continue;
            deleted.add(uid);
            const name = p.metadata?.name ?? '';
            await k.call({ verb: 'delete', resource: 'pods', namespace: t.namespace, name }, () => k.core.deleteNamespacedPod({ name, namespace: t.namespace, body: { preconditions: { uid } } })).catch((err: unknown) => {
              if (!isNotFound(err)) throw err;
            });
            activityContext()?.log.warn(`${where(t)}: deleted pod ${name} (not ready, stale revision) so the controller can roll it back`);
          }
        }
        const stalled = Date.now() - movedAt;
        if (stalled > t.progressDeadlineSeconds * 1000) {
          const why = describePodCauses(await pods(s));
          throw ApplicationFailure.nonRetryable(`${where(t)} exceeded its progress deadline (${t.progressDeadlineSeconds}s): no pod moved for ${Math.round(stalled / 1000)}s; ${state.message}${why ? `; ${why}` : ''}`, ErrorType.ProgressDeadlineExceeded);
        }
        room.heartbeat({ waiting: where(t), state: state.message, mark, progressAt: movedAt });
      } catch (err) {
        if (err instanceof ApplicationFailure || signal?.aborted || !isRetryable(err) || ++errors > 20) throw err;
        room.heartbeat({ waiting: where(t), error: (err as Error).message, mark, progressAt: movedAt });
      }
      await sleep(room.pollIntervalMs, signal);
    }
  };

  const recordedFloor = (s: V1StatefulSet, t: ReleaseTarget): number | undefined => {
    const a = s.metadata?.annotations ?? {};
    if (a[ANNOTATIONS.release] !== t.releaseId) return undefined;
    const n = Number(a[PREVIOUS_PARTITION]);
    return a[PREVIOUS_PARTITION] !== undefined && Number.isInteger(n) && n >= 0 ? n : undefined;
  };

  const floorOf = (s: V1StatefulSet, t: ReleaseTarget): number => {
    const floor = recordedFloor(s, t);
    if (floor === undefined) throw ApplicationFailure.nonRetryable(`${where(t)} carries no ${PREVIOUS_PARTITION} of release ${t.releaseId}: the release has not begun on it (or someone removed the annotation)`, ErrorType.VerificationFailed);
    return floor;
  };

  const preflight = async (t: ReleaseTarget): Promise<PreflightResult> => {
    await checkAccess(k, t);
    const s = await get(t);
    const type = s.spec?.updateStrategy?.type ?? 'RollingUpdate';
    if (type === 'OnDelete') {
      throw ApplicationFailure.nonRetryable(
        `${where(t)} spec.updateStrategy.type is OnDelete: its pods change only when someone deletes them, so batches cannot be driven or verified; set spec.updateStrategy.type: RollingUpdate`,
        ErrorType.PreflightFailed,
      );
    }
    const c = containerOf(t, s);
    const { image, warnings } = checkBatchContainer(room, t, c, where(t));
    if (s.spec?.podManagementPolicy === 'Parallel') {
      warnings.push(`${where(t)} has podManagementPolicy Parallel: pods are created and deleted without waiting for each other, but a partitioned update still replaces one ordinal at a time from the top, so batches keep their order`);
    }
    const st = s.status ?? { replicas: 0 };
    const ours = s.metadata?.annotations?.[ANNOTATIONS.release] === t.releaseId;
    if (!ours && st.updateRevision && st.currentRevision && st.updateRevision !== st.currentRevision) {
      throw ApplicationFailure.nonRetryable(
        `${where(t)} is in the middle of an update (currentRevision ${st.currentRevision}, updateRevision ${st.updateRevision}, partition ${partitionOf(s)}): let it finish or roll it back before releasing`,
        ErrorType.PreflightFailed,
      );
    }
    return { stableImage: image, replicas: s.spec?.replicas ?? 1, warnings };
  };

  const begin = async (t: ReleaseTarget): Promise<{ replicas: number }> => {
    const s = await get(t);
    const c = containerOf(t, s);
    const replicas = s.spec?.replicas ?? 1;
    const floor = recordedFloor(s, t);
    if (c.image === t.image && floor !== undefined) return { replicas }; // begun already (a retried activity)
    // An HPA on the StatefulSet keeps at least today's replicas for the release: a scale-down would remove the top ordinals, the updated ones.
    await cap.holdFloor(t, { spec: { replicas } } as V1Deployment);
    const previous = partitionOf(s);
    const annotations: Record<string, string> = { [ANNOTATIONS.release]: t.releaseId, [PREVIOUS_PARTITION]: String(previous) };
    if (c.image) annotations[ANNOTATIONS.previousImage] = c.image;
    // One write: the partition above every ordinal and the new image, so no pod moves yet.
    await k.call({ verb: 'patch', resource: 'statefulsets.apps', namespace: t.namespace, name: t.workload.name }, () =>
      k.apps.patchNamespacedStatefulSet(
        {
          name: t.workload.name,
          namespace: t.namespace,
          fieldManager: FIELD_MANAGER,
          body: {
            metadata: { annotations },
            spec: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: Math.max(previous, replicas) } }, template: { spec: { containers: [{ name: c.name, image: t.image }] } } },
          },
        },
        STRATEGIC_PATCH,
      ),
    );
    const got = await get(t);
    const image = containerOf(t, got).image;
    if (image !== t.image || partitionOf(got) < replicas) {
      throw ApplicationFailure.nonRetryable(`${where(t)} reads back image ${image} and partition ${partitionOf(got)} after setting ${t.image} and ${replicas}`, ErrorType.VerificationFailed);
    }
    return { replicas };
  };

  /** Lowers the partition to `partition` (never raises it) and waits for the pods. */
  const lowerTo = async (t: ReleaseTarget, s: V1StatefulSet, partition: number, complete: boolean): Promise<{ updated: number; replicas: number }> => {
    if (containerOf(t, s).image !== t.image) {
      throw ApplicationFailure.nonRetryable(`${where(t)} container ${containerOf(t, s).name} runs ${containerOf(t, s).image}, not ${t.image}: someone changed it during the release`, ErrorType.VerificationFailed);
    }
    if (partition < partitionOf(s)) await setPartition(t, partition);
    const { state } = await waitPartition(t, { complete });
    return { updated: state.updatedReady, replicas: s.spec?.replicas ?? 1 };
  };

  const batch = async (t: ReleaseTarget, step: BatchStep): Promise<{ updated: number; replicas: number }> => {
    const s = await get(t);
    const replicas = s.spec?.replicas ?? 1;
    const floor = floorOf(s, t);
    if (isNodeWave(step)) throw ApplicationFailure.nonRetryable(`${where(t)}: a batch of nodes by label (${describeBatch(step)}) is for DaemonSets`, ErrorType.InvalidSpec);
    const want = batchReplicas(step, replicas);
    activityContext()?.log.info(`${where(t)}: batch ${describeBatch(step)} → ${want} of ${replicas} replicas`);
    return lowerTo(t, s, partitionFor(replicas, want, floor), false);
  };

  const complete = async (t: ReleaseTarget): Promise<{ updated: number; replicas: number }> => {
    const s = await get(t);
    const floor = floorOf(s, t);
    const done = await lowerTo(t, s, floor, floor === 0);
    for (const d of await cap.releaseFloor(t)) activityContext()?.log.warn(d); // the HPA's own minReplicas back: it owns the replicas again
    return done;
  };

  const abort = async (t: ReleaseTarget, stableImage: string | undefined): Promise<CleanupReport> => {
    let s: V1StatefulSet;
    try {
      s = await read(t);
    } catch (err) {
      if (isNotFound(err)) return { drift: [] }; // nothing left to put back
      throw err;
    }
    const floor = recordedFloor(s, t);
    if (floor === undefined) return { drift: [] }; // this release never began on it: nothing to put back
    const c = containerOf(t, s);
    const back = s.metadata?.annotations?.[ANNOTATIONS.previousImage] ?? stableImage;
    const drift: string[] = [];
    if (c.image === t.image && back !== undefined && back !== t.image) {
      // The old template back: the update revision becomes the old one, and the controller rolls the updated ordinals back to it.
      await k.call({ verb: 'patch', resource: 'statefulsets.apps', namespace: t.namespace, name: t.workload.name }, () =>
        k.apps.patchNamespacedStatefulSet({ name: t.workload.name, namespace: t.namespace, fieldManager: FIELD_MANAGER, body: { spec: { template: { spec: { containers: [{ name: c.name, image: back }] } } } } }, STRATEGIC_PATCH),
      );
      const now = containerOf(t, await get(t)).image;
      if (now !== back) throw ApplicationFailure.nonRetryable(`${where(t)} container ${c.name} reads back image ${now} after setting ${back}`, ErrorType.VerificationFailed);
    } else if (c.image !== back) {
      drift.push(`${where(t)} container ${c.name} runs ${c.image}, set by someone else during the release (Glidepath had set ${t.image}; it ran ${back} before): left as it is`);
    }
    // The ordinals above the partition first (the ones this release updated), then the partition back where it was.
    await waitPartition(t, { unstick: true });
    const current = partitionOf(await get(t));
    if (current > floor) await setPartition(t, floor);
    await waitPartition(t, { unstick: true, complete: floor === 0 });
    drift.push(...(await cap.releaseFloor(t)));
    return { drift };
  };

  return { preflight, begin, batch, complete, abort };
}
