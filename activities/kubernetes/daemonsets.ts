/**
 * A DaemonSet released in batches of nodes (docs/kubernetes.md, "DaemonSets"): `begin` records the
 * DaemonSet's update strategy and sets `OnDelete` and the new image in one write, so no pod moves;
 * a batch deletes the old pod on the next nodes (ordered by node name), at most the recorded
 * `maxUnavailable` nodes down at a time, and the controller recreates each from the new template;
 * it returns when that many nodes run the new image and every pod is ready. Promotion and abort put
 * back the recorded strategy (with the new or the old image) and the controller rolls the rest at
 * the user's own pace. Nothing else on the DaemonSet is written. Every operation converges to a
 * described state and may run again.
 */
import { PatchStrategy, setHeaderOptions, type V1DaemonSet, type V1DaemonSetUpdateStrategy, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { batchReplicas, describeBatch, describeNodeSelector, isNodeWave, type BatchStep } from '../../model/rolling.ts';
import type { CleanupReport, PreflightResult, ReleaseTarget, RollingOps } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { activityContext } from './context.ts';
import { maxUnavailableOf, nodeRollState, type NodeRollState } from './daemonset-pods.ts';
import { labelSelectorString } from './diagnose.ts';
import { isNotFound } from './errors.ts';
import { pollProgress } from './progress-poll.ts';
import { ANNOTATIONS, FIELD_MANAGER, recordedByRelease, targetContainer } from './objects.ts';
import { checkAccess } from './preflight.ts';
import type { WorkloadRoom } from './room.ts';
import { checkBatchContainer } from './rolling-preflight.ts';

const STRATEGIC_PATCH = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

/** On a DaemonSet: its update strategy before this release set OnDelete (JSON), put back at the end. */
export const PREVIOUS_UPDATE_STRATEGY = 'glidepath.dev/previous-update-strategy';

export function createDaemonSetRolling(room: WorkloadRoom): RollingOps {
  const { k } = room;
  const where = (t: ReleaseTarget): string => `DaemonSet ${t.namespace}/${t.workload.name}`;
  // A DaemonSet's pod template has the Deployment's shape: the container lookup is shared.
  const containerOf = (t: ReleaseTarget, ds: V1DaemonSet) => targetContainer(ds as V1Deployment, t, where(t));

  const read = (t: ReleaseTarget): Promise<V1DaemonSet> =>
    k.call({ verb: 'get', resource: 'daemonsets.apps', namespace: t.namespace, name: t.workload.name }, () => k.apps.readNamespacedDaemonSet({ name: t.workload.name, namespace: t.namespace }));

  const get = async (t: ReleaseTarget): Promise<V1DaemonSet> => {
    try {
      return await read(t);
    } catch (err) {
      if (isNotFound(err)) throw ApplicationFailure.nonRetryable(`${where(t)} not found (the workload of release ${t.releaseId})`, ErrorType.NotFound);
      throw err;
    }
  };

  const patch = async (t: ReleaseTarget, body: object): Promise<V1DaemonSet> => {
    await k.call({ verb: 'patch', resource: 'daemonsets.apps', namespace: t.namespace, name: t.workload.name }, () =>
      k.apps.patchNamespacedDaemonSet({ name: t.workload.name, namespace: t.namespace, fieldManager: FIELD_MANAGER, body }, STRATEGIC_PATCH),
    );
    return get(t);
  };

  const pods = async (ds: V1DaemonSet): Promise<V1Pod[]> => {
    const namespace = ds.metadata?.namespace ?? '';
    const labelSelector = labelSelectorString({ spec: { selector: ds.spec?.selector } } as V1Deployment);
    return (await k.call({ verb: 'list', resource: 'pods', namespace }, () => k.core.listNamespacedPod({ namespace, labelSelector }))).items;
  };

  const recorded = (ds: V1DaemonSet, t: ReleaseTarget): V1DaemonSetUpdateStrategy | undefined => recordedByRelease<V1DaemonSetUpdateStrategy>(ds.metadata, t.releaseId, PREVIOUS_UPDATE_STRATEGY);

  /**
   * Polls the DaemonSet and its pods until `done` says so (pollProgress: the deadline is "no
   * progress for N seconds"). `act` may delete pods (a batch), once the controller has observed the DaemonSet.
   */
  const poll = (t: ReleaseTarget, image: string, done: (s: NodeRollState, ds: V1DaemonSet) => boolean, act?: (s: NodeRollState, ds: V1DaemonSet) => Promise<void>): Promise<NodeRollState> =>
    pollProgress(room, t, where(t), async () => {
      const ds = await get(t);
      const podList = await pods(ds);
      const state = nodeRollState(ds, podList, containerOf(t, ds).name, image);
      if (state.observed && done(state, ds)) return { done: state, mark: state.mark, state: state.message, pods: async () => podList };
      return { mark: state.mark, state: state.message, pods: async () => podList, ...(state.observed && act ? { next: () => act(state, ds) } : {}) };
    });

  /** Every node on `image` and ready, as the DaemonSet's own status also says. */
  const rolledOutOn = (t: ReleaseTarget, image: string) =>
    poll(t, image, (s, ds) => s.old.length === 0 && s.updatedReady === s.desired && (ds.status?.updatedNumberScheduled ?? 0) === s.desired && (ds.status?.numberUnavailable ?? 0) === 0);

  const preflight = async (t: ReleaseTarget): Promise<PreflightResult> => {
    await checkAccess(k, t);
    const ds = await get(t);
    const ours = recorded(ds, t) !== undefined;
    if (ds.spec?.updateStrategy?.type === 'OnDelete' && !ours) {
      throw ApplicationFailure.nonRetryable(
        `${where(t)} spec.updateStrategy.type is OnDelete: its pods change only when someone deletes them, and Glidepath would put that strategy back after the release, so the rest of the nodes would never update; set spec.updateStrategy.type: RollingUpdate`,
        ErrorType.PreflightFailed,
      );
    }
    const c = containerOf(t, ds);
    const { image, warnings } = checkBatchContainer(room, t, c, where(t));
    const st = ds.status;
    const desired = st?.desiredNumberScheduled ?? 0;
    if (!ours && ((st?.updatedNumberScheduled ?? 0) < desired || (st?.numberUnavailable ?? 0) > 0 || (st?.observedGeneration ?? 0) < (ds.metadata?.generation ?? 0))) {
      throw ApplicationFailure.nonRetryable(
        `${where(t)} is not rolled out (${st?.updatedNumberScheduled ?? 0} of ${desired} nodes updated, ${st?.numberUnavailable ?? 0} unavailable): let its rollout finish before releasing`,
        ErrorType.PreflightFailed,
      );
    }
    return { stableImage: image, replicas: desired, warnings };
  };

  const begin = async (t: ReleaseTarget): Promise<{ replicas: number }> => {
    const ds = await get(t);
    const c = containerOf(t, ds);
    const desired = ds.status?.desiredNumberScheduled ?? 0;
    if (c.image === t.image && recorded(ds, t) !== undefined) return { replicas: desired }; // begun already (a retried activity)
    const annotations: Record<string, string> = { [ANNOTATIONS.release]: t.releaseId, [PREVIOUS_UPDATE_STRATEGY]: JSON.stringify(ds.spec?.updateStrategy ?? { type: 'RollingUpdate' }) };
    if (c.image) annotations[ANNOTATIONS.previousImage] = c.image;
    // One write: OnDelete and the new image, so no pod moves until a batch deletes one.
    const got = await patch(t, { metadata: { annotations }, spec: { updateStrategy: { type: 'OnDelete', rollingUpdate: null }, template: { spec: { containers: [{ name: c.name, image: t.image }] } } } });
    if (containerOf(t, got).image !== t.image || got.spec?.updateStrategy?.type !== 'OnDelete') {
      throw ApplicationFailure.nonRetryable(`${where(t)} reads back image ${containerOf(t, got).image} and update strategy ${got.spec?.updateStrategy?.type} after setting ${t.image} and OnDelete`, ErrorType.VerificationFailed);
    }
    return { replicas: desired };
  };

  /** Deletes the old pods given, in order: never more nodes down at once than the recorded maxUnavailable. */
  const replace = async (t: ReleaseTarget, candidates: V1Pod[], count: number): Promise<void> => {
    for (const p of candidates.slice(0, Math.max(0, count))) {
      const name = p.metadata?.name ?? '';
      const uid = p.metadata?.uid ?? '';
      await k.call({ verb: 'delete', resource: 'pods', namespace: t.namespace, name }, () => k.core.deleteNamespacedPod({ name, namespace: t.namespace, body: { preconditions: { uid } } })).catch((err: unknown) => {
        if (!isNotFound(err)) throw err; // gone already: its successor is on the way
      });
      activityContext()?.log.info(`${where(t)}: replaced pod ${name} on node ${p.spec?.nodeName}`);
    }
  };

  /** The names of the nodes a wave's selector matches (Nodes are cluster-scoped: docs/kubernetes.md, RBAC). */
  const waveNodes = async (t: ReleaseTarget, selector: Record<string, string>): Promise<Set<string>> => {
    const labelSelector = describeNodeSelector(selector);
    const list = await k.call({ verb: 'list', resource: 'nodes' }, () => k.core.listNode({ labelSelector }));
    return new Set(list.items.map((n) => n.metadata?.name ?? ''));
  };

  const batch = async (t: ReleaseTarget, step: BatchStep): Promise<{ updated: number; replicas: number }> => {
    const ds = await get(t);
    const previous = recorded(ds, t);
    if (previous === undefined) throw ApplicationFailure.nonRetryable(`${where(t)} carries no ${PREVIOUS_UPDATE_STRATEGY} of release ${t.releaseId}: the release has not begun on it (or someone removed the annotation)`, ErrorType.VerificationFailed);
    if (containerOf(t, ds).image !== t.image) throw ApplicationFailure.nonRetryable(`${where(t)} runs ${containerOf(t, ds).image}, not ${t.image}: someone changed it during the release`, ErrorType.VerificationFailed);
    const desired = ds.status?.desiredNumberScheduled ?? 0;
    const downAtOnce = maxUnavailableOf(previous.rollingUpdate?.maxUnavailable as number | string | undefined, desired);
    if (isNodeWave(step)) {
      // A wave: every node the selector matches on the new image (earlier waves' nodes stay as they are).
      const wave = await waveNodes(t, step.nodeSelector);
      const onWave = (p: V1Pod) => wave.has(p.spec?.nodeName ?? '');
      const first = nodeRollState(ds, await pods(ds), containerOf(t, ds).name, t.image);
      if (first.nodes.every((n) => !wave.has(n))) {
        throw ApplicationFailure.nonRetryable(`${where(t)}: batch ${describeBatch(step)} matches none of the ${first.nodes.length} nodes the DaemonSet runs on (${first.nodes.slice(0, 5).join(', ')}${first.nodes.length > 5 ? ', …' : ''})`, ErrorType.InvalidSpec);
      }
      activityContext()?.log.info(`${where(t)}: batch ${describeBatch(step)} → ${[...wave].filter((n) => first.nodes.includes(n)).length} of ${desired} nodes, at most ${downAtOnce} down at once`);
      const s = await poll(t, t.image, (s) => !s.old.some(onWave) && s.unavailable === 0, (s) => replace(t, s.old.filter(onWave), downAtOnce - s.unavailable));
      return { updated: s.updatedReady, replicas: s.desired };
    }
    const want = batchReplicas(step, desired);
    activityContext()?.log.info(`${where(t)}: batch ${describeBatch(step)} → ${want} of ${desired} nodes, at most ${downAtOnce} down at once`);
    const s = await poll(t, t.image, (s) => s.updatedReady >= want && s.unavailable === 0, (s) => replace(t, s.old, Math.min(want - s.claimed, downAtOnce - s.unavailable)));
    return { updated: s.updatedReady, replicas: s.desired };
  };

  /** The recorded strategy back (annotation removed), with `image` in the template when given. */
  const restore = (t: ReleaseTarget, previous: V1DaemonSetUpdateStrategy, image?: { container: string; image: string }) =>
    patch(t, {
      metadata: { annotations: { [PREVIOUS_UPDATE_STRATEGY]: null } },
      spec: { updateStrategy: previous, ...(image ? { template: { spec: { containers: [{ name: image.container, image: image.image }] } } } : {}) },
    });

  const complete = async (t: ReleaseTarget): Promise<{ updated: number; replicas: number }> => {
    const ds = await get(t);
    const previous = recorded(ds, t);
    if (previous) await restore(t, previous);
    const s = await rolledOutOn(t, t.image);
    return { updated: s.updatedReady, replicas: s.desired };
  };

  const abort = async (t: ReleaseTarget, stableImage: string | undefined): Promise<CleanupReport> => {
    let ds: V1DaemonSet;
    try {
      ds = await read(t);
    } catch (err) {
      if (isNotFound(err)) return { drift: [] };
      throw err;
    }
    if (ds.metadata?.annotations?.[ANNOTATIONS.release] !== t.releaseId) return { drift: [] }; // this release never began on it
    const c = containerOf(t, ds);
    const back = ds.metadata?.annotations?.[ANNOTATIONS.previousImage] ?? stableImage;
    const previous = recorded(ds, t);
    const drift: string[] = [];
    let image: { container: string; image: string } | undefined;
    if (c.image === t.image && back !== undefined) image = { container: c.name, image: back };
    else if (c.image !== back) drift.push(`${where(t)} container ${c.name} runs ${c.image}, set by someone else during the release (Glidepath had set ${t.image}; it ran ${back} before): left as it is`);
    // One write: the old image and the user's strategy, so the controller rolls the replaced nodes back at the user's pace.
    // Without the recorded strategy an earlier abort has written both already: only its wait is left.
    if (previous) await restore(t, previous, image);
    if (back !== undefined && (previous ? image !== undefined || c.image === back : c.image === back)) await rolledOutOn(t, back);
    activityContext()?.log.info(`${where(t)}: rolled back${image ? ` to ${image.image}` : ''}`);
    return { drift };
  };

  return { preflight, begin, batch, complete, abort };
}
