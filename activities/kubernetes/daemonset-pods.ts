/**
 * Where a DaemonSet released node by node stands, read from its status and its pods: which nodes run
 * the release's image, which still run the old one, which have no live pod (one was deleted and the
 * controller has not made its successor yet), and which pods are ready. Pure: no I/O.
 */
import type { V1DaemonSet, V1Pod } from '@kubernetes/client-node';

export interface NodeRollState {
  /** The nodes the DaemonSet should run on (status.desiredNumberScheduled). */
  desired: number;
  /** Nodes whose live pod runs the release's image and is ready. */
  updatedReady: number;
  /** Nodes whose live pod runs the release's image, ready or not, plus nodes waiting for their new pod. */
  claimed: number;
  /** Nodes with no ready pod right now (missing or not ready). */
  unavailable: number;
  /** Pods on the old image, ordered by node name (the order in which nodes are taken). */
  old: V1Pod[];
  /** The nodes with a live pod of the DaemonSet, by name. */
  nodes: string[];
  /** Whether the controller has observed the DaemonSet's last write. */
  observed: boolean;
  /** A progress mark: it changes whenever a pod moves (image, readiness) or the controller observes a new generation. */
  mark: string;
  /** What the pods are doing, in words. */
  message: string;
}

const isReady = (p: V1Pod): boolean => !p.metadata?.deletionTimestamp && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/**
 * The state of `ds` for a release of `image` into `container`. `pods` are the pods its selector
 * matches; only those it owns and that are not being deleted count, one per node.
 */
export function nodeRollState(ds: V1DaemonSet, pods: V1Pod[], container: string, image: string): NodeRollState {
  const where = `DaemonSet ${ds.metadata?.namespace}/${ds.metadata?.name}`;
  const uid = ds.metadata?.uid;
  const byNode = new Map<string, V1Pod>();
  for (const p of pods) {
    if (p.metadata?.deletionTimestamp || !p.metadata?.ownerReferences?.some((o) => o.uid === uid)) continue;
    const node = p.spec?.nodeName ?? p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms?.[0]?.matchFields?.[0]?.values?.[0];
    if (node) byNode.set(node, p);
  }
  const imageOf = (p: V1Pod) => p.spec?.containers.find((c) => c.name === container)?.image;
  const nodes = [...byNode.keys()].sort();
  const desired = ds.status?.desiredNumberScheduled ?? 0;
  const live = [...byNode.values()];
  const updated = live.filter((p) => imageOf(p) === image);
  const old = nodes.map((n) => byNode.get(n) as V1Pod).filter((p) => imageOf(p) !== image);
  const missing = Math.max(0, desired - live.length);
  const ready = live.filter(isReady).length;
  const updatedReady = updated.filter(isReady).length;
  const observed = (ds.status?.observedGeneration ?? 0) >= (ds.metadata?.generation ?? 0);
  const mark = [ds.metadata?.generation, ds.status?.observedGeneration, desired, ...nodes.map((n) => { const p = byNode.get(n) as V1Pod; return `${n}:${imageOf(p) === image ? 'new' : 'old'}:${isReady(p) ? 1 : 0}`; })].join('/');
  return {
    desired,
    updatedReady,
    claimed: updated.length + missing,
    unavailable: missing + (live.length - ready),
    old,
    nodes,
    observed,
    mark,
    message: `${where}: ${updatedReady} of ${desired} nodes on ${image} and ready, ${old.length} on the old image, ${missing} waiting for a pod, ${live.length - ready} not ready`,
  };
}

/** A rolling update's `maxUnavailable` (a count or "N%" of `desired`, rounded down, at least 1), as the DaemonSet controller reads it. */
export function maxUnavailableOf(value: number | string | undefined, desired: number): number {
  if (value === undefined) return 1;
  if (typeof value === 'number') return Math.max(1, value);
  const m = /^(\d+)%$/.exec(value.trim());
  return Math.max(1, m ? Math.floor((desired * Number(m[1])) / 100) : Number(value) || 1);
}
