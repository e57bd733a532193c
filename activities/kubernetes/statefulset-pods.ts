/**
 * Where a partitioned StatefulSet update stands, read from the StatefulSet's status and its pods'
 * `controller-revision-hash` labels: which ordinals must run the update revision, which do, and
 * which are ready. Pure: no I/O.
 */
import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';

/** The label the StatefulSet controller puts on each pod: the ControllerRevision it was made from. */
export const REVISION_LABEL = 'controller-revision-hash';

export interface PartitionState {
  done: boolean;
  /** What is awaited, in words (for heartbeats and deadline failures). */
  message: string;
  /** Pods running the update revision and ready. */
  updatedReady: number;
  /** A progress mark: it changes whenever a pod moves (revision, readiness) or the controller observes a new generation. */
  mark: string;
  /** Pods at ordinals ≥ partition on another revision and not ready: the controller waits for them forever (OrderedReady), so a rollback deletes them. */
  stuckStale: V1Pod[];
}

const isReady = (p: V1Pod): boolean => !p.metadata?.deletionTimestamp && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/** The ordinal of a StatefulSet pod (`web-3` → 3), or undefined for a pod that is not one of its ordinals. */
export function ordinalOf(sts: string, pod: V1Pod): number | undefined {
  const name = pod.metadata?.name ?? '';
  if (!name.startsWith(`${sts}-`)) return undefined;
  const n = Number(name.slice(sts.length + 1));
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

export const partitionOf = (s: V1StatefulSet): number => s.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;

/**
 * Whether every ordinal at or above the StatefulSet's partition runs its update revision and is
 * ready, and every pod below it is ready too (a batch is verified, not assumed). `complete` also
 * requires the controller to have made the update revision current (partition 0: all updated).
 */
export function partitionState(s: V1StatefulSet, pods: V1Pod[], complete = false): PartitionState {
  const name = s.metadata?.name ?? '';
  const where = `StatefulSet ${s.metadata?.namespace}/${name}`;
  const replicas = s.spec?.replicas ?? 1;
  const partition = Math.min(partitionOf(s), replicas);
  const st = s.status ?? { replicas: 0 };
  const revision = st.updateRevision ?? '';
  const byOrdinal = new Map<number, V1Pod>();
  for (const p of pods) {
    const o = ordinalOf(name, p);
    if (o !== undefined && o < replicas && !p.metadata?.deletionTimestamp) byOrdinal.set(o, p);
  }
  const mark = [s.metadata?.generation, st.observedGeneration, revision, ...[...byOrdinal.entries()].sort((a, b) => a[0] - b[0]).map(([o, p]) => `${o}:${p.metadata?.labels?.[REVISION_LABEL] ?? ''}:${isReady(p) ? 1 : 0}`)].join('/');
  let updatedReady = 0;
  const waiting: string[] = [];
  const stuckStale: V1Pod[] = [];
  for (let o = 0; o < replicas; o++) {
    const p = byOrdinal.get(o);
    const podName = `${name}-${o}`;
    if (!p) {
      waiting.push(`${podName} missing`);
      continue;
    }
    const updated = p.metadata?.labels?.[REVISION_LABEL] === revision;
    if (o >= partition && !updated) {
      waiting.push(`${podName} not yet on revision ${revision}`);
      if (!isReady(p)) stuckStale.push(p);
      continue;
    }
    if (!isReady(p)) waiting.push(`${podName} not ready`);
    else if (updated) updatedReady++;
  }
  const generation = s.metadata?.generation ?? 0;
  if ((st.observedGeneration ?? 0) < generation || !revision) {
    return { done: false, message: `${where}: waiting for the controller to observe generation ${generation}`, updatedReady, mark, stuckStale };
  }
  if (waiting.length === 0 && complete && st.currentRevision !== revision) waiting.push(`the controller has not made revision ${revision} current yet`);
  const want = replicas - partition;
  return {
    done: waiting.length === 0,
    message: waiting.length === 0 ? `${where}: ${want} of ${replicas} replicas on revision ${revision}, all ready (partition ${partition})` : `${where} (partition ${partition}, ${updatedReady} of ${want} updated and ready): ${waiting.slice(0, 5).join(', ')}${waiting.length > 5 ? ` and ${waiting.length - 5} more` : ''}`,
    updatedReady,
    mark,
    stuckStale,
  };
}
