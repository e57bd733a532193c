/**
 * Why a Deployment is not rolling out, in Kubernetes' own words: its pods that are not ready,
 * grouped by cause (Pending/Unschedulable with the scheduler's message, image pull errors, crash
 * loops, running but failing readiness). Added to progress-deadline failures.
 */
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import type { KubeClients } from './client.ts';

const MAX_CAUSES = 4;
const MAX_MESSAGE = 200;

/** A `kubectl -l` label selector for a Deployment's selector (matchLabels and matchExpressions). */
export function labelSelectorString(d: V1Deployment): string {
  const sel = d.spec?.selector ?? {};
  const parts = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

const short = (s: string | undefined): string => {
  const t = (s ?? '').replace(/\s+/g, ' ').trim();
  return t.length > MAX_MESSAGE ? `${t.slice(0, MAX_MESSAGE)}…` : t;
};

/** The cause one pod gives for not being ready, or undefined when it is ready. */
export function podCause(pod: V1Pod): string | undefined {
  if (pod.metadata?.deletionTimestamp) return undefined;
  const conditions = pod.status?.conditions ?? [];
  if (conditions.some((c) => c.type === 'Ready' && c.status === 'True')) return undefined;
  const phase = pod.status?.phase ?? 'Unknown';
  const scheduled = conditions.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False') return `${phase} (${scheduled.reason ?? 'not scheduled'}${scheduled.message ? `: ${short(scheduled.message)}` : ''})`;
  for (const cs of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = cs.state?.waiting;
    if (waiting?.reason && waiting.reason !== 'ContainerCreating' && waiting.reason !== 'PodInitializing') {
      return `${waiting.reason} (container ${cs.name}${waiting.message ? `: ${short(waiting.message)}` : ''})`;
    }
    const terminated = cs.state?.terminated;
    if (terminated && terminated.exitCode !== 0) return `${terminated.reason ?? 'Terminated'} (container ${cs.name}, exit code ${terminated.exitCode})`;
  }
  if (phase === 'Running') {
    const ready = conditions.find((c) => c.type === 'Ready');
    return `Running but not ready${ready?.message ? ` (${short(ready.message)})` : ' (readiness probe not passing)'}`;
  }
  return phase;
}

/** "pods: 2 Pending (Unschedulable: …); 1 ImagePullBackOff (…)", or undefined when every pod is ready (or there are none). */
export function describePodCauses(pods: V1Pod[]): string | undefined {
  const counts = new Map<string, number>();
  for (const p of pods) {
    const cause = podCause(p);
    if (cause) counts.set(cause, (counts.get(cause) ?? 0) + 1);
  }
  if (counts.size === 0) return undefined;
  const sorted = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  const shown = sorted.slice(0, MAX_CAUSES).map(([cause, n]) => `${n} ${cause}`);
  if (sorted.length > MAX_CAUSES) shown.push(`${sorted.length - MAX_CAUSES} more causes`);
  return `pods: ${shown.join('; ')}`;
}

/** Lists the Deployment's pods and describes why those not ready are not. */
export async function diagnoseDeployment(k: KubeClients, d: V1Deployment): Promise<string | undefined> {
  const namespace = d.metadata?.namespace ?? '';
  const labelSelector = labelSelectorString(d);
  if (!labelSelector) return undefined;
  const pods = await k.call({ verb: 'list', resource: 'pods', namespace }, () => k.core.listNamespacedPod({ namespace, labelSelector }));
  return describePodCauses(pods.items) ?? (pods.items.length === 0 ? 'no pods exist for it (see its ReplicaSet events: quota, admission)' : undefined);
}
