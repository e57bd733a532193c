/**
 * The stable's own pods. Canary and preview pods carry the stable's template labels, so the stable's
 * matchLabels reach them too; what only the stable's pods carry is the `pod-template-hash` the
 * Deployment controller puts on the pods of each of its ReplicaSets. A selector that must reach the
 * stable alone (a stableService, an Istio stable subset, the active Service before a blue/green
 * switch) is the stable's matchLabels plus the hash of its current ReplicaSet, as Argo adds
 * `rollouts-pod-template-hash` to its stable Service and subsets.
 */
import type { V1Deployment, V1ReplicaSet } from '@kubernetes/client-node';
import type { KubeClients } from './client.ts';

/** The label the Deployment controller sets on a ReplicaSet, its selector and its pods. */
export const POD_TEMPLATE_HASH = 'pod-template-hash';
const REVISION = 'deployment.kubernetes.io/revision';

/** A label selector string (`a=b,c=d`) for list calls. */
export const selectorString = (labels: Record<string, string>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** The Deployment's current ReplicaSet: of the ReplicaSets it controls, the one with the highest revision. */
export function currentReplicaSet(deployment: V1Deployment, replicaSets: V1ReplicaSet[]): V1ReplicaSet | undefined {
  const uid = deployment.metadata?.uid;
  const revision = (rs: V1ReplicaSet): number => Number(rs.metadata?.annotations?.[REVISION] ?? 0) || 0;
  return replicaSets
    .filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.controller === true && o.uid === uid))
    .sort((a, b) => revision(b) - revision(a))[0];
}

/**
 * The selector of the stable's own pods: its matchLabels plus `pod-template-hash` of its current
 * ReplicaSet. Undefined when the stable selects by matchExpressions only. Throws (retryable) while
 * the Deployment controller has not made a ReplicaSet for the stable yet.
 */
export async function stablePodSelector(k: KubeClients, stable: V1Deployment): Promise<Record<string, string> | undefined> {
  const matchLabels = stable.spec?.selector?.matchLabels;
  if (!matchLabels || Object.keys(matchLabels).length === 0) return undefined;
  const namespace = stable.metadata?.namespace ?? '';
  const list = await k.call({ verb: 'list', resource: 'replicasets.apps', namespace }, () =>
    k.apps.listNamespacedReplicaSet({ namespace, labelSelector: selectorString(matchLabels) }),
  );
  const hash = currentReplicaSet(stable, list.items)?.metadata?.labels?.[POD_TEMPLATE_HASH];
  if (!hash) throw new Error(`Deployment ${namespace}/${stable.metadata?.name} has no ReplicaSet with a ${POD_TEMPLATE_HASH} label yet`); // retried
  return { ...matchLabels, [POD_TEMPLATE_HASH]: hash };
}
