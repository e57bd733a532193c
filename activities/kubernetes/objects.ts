/**
 * The object model: names, labels, annotations and the canary/preview Deployment derived from the
 * stable one. Pure functions, no I/O.
 *
 * A canary (or preview) Deployment `<workload>-canary` (`-preview`) runs the stable's pod template
 * with the new image. Its pods keep every label of the stable's template (so a Service of the user's
 * that selects the workload, `app: web`, has them as endpoints, as Argo's canary pods are) and carry
 * two more: `rollouts.glidepath.dev/role: canary` and `rollouts.glidepath.dev/workload: <workload>`.
 * The canary Deployment selects the stable's matchLabels plus those two, so it never selects a stable
 * pod. The stable's own selector (immutable, the user's) does match canary pods; Kubernetes'
 * controller references keep the two apart (a controller adopts only pods and ReplicaSets that no
 * controller owns). Where only the stable's pods may be reached (a stableService, an Istio stable
 * subset, the active Service before a blue/green switch) the selector adds `pod-template-hash` of the
 * stable's current ReplicaSet (stable-pods.ts), as Argo adds `rollouts-pod-template-hash`.
 */
import type { V1Container, V1Deployment, V1LabelSelector } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../errors.ts';
import type { ReleaseTarget } from '../contract.ts';
import { rewriteConfigRefs } from '../../model/config-template.ts';

export const FIELD_MANAGER = 'glidepath';

export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  role: 'rollouts.glidepath.dev/role',
  workload: 'rollouts.glidepath.dev/workload',
} as const;

export const ANNOTATIONS = {
  /** The release (workflow ID) that last wrote the object. */
  release: 'glidepath.dev/release',
  /** On canary/preview: the image they run. */
  image: 'glidepath.dev/image',
  /** On canary/preview: the stable Deployment they were derived from. */
  stable: 'glidepath.dev/stable',
  /** On the stable Deployment: the image it ran before a promotion changed it. */
  previousImage: 'glidepath.dev/previous-image',
  /** On the stable Deployment: the run of the release that recorded previous-image (see ReleaseTarget.runId). */
  releaseRun: 'glidepath.dev/release-run',
  /** On the stable Deployment: the replica count it had before a promotion set the release's count. */
  previousReplicas: 'glidepath.dev/previous-replicas',
  /** On a Service whose selector Glidepath changed: its selector before (JSON), restored afterwards. */
  originalSelector: 'glidepath.dev/original-selector',
  /** On the stable's HorizontalPodAutoscaler: the minReplicas Glidepath holds during a release (JSON: release, original, held). */
  heldMinReplicas: 'glidepath.dev/held-min-replicas',
  /** On a canary/preview PodDisruptionBudget: the user's PDB it was made from. */
  fromPdb: 'glidepath.dev/from-pdb',
} as const;

export const MANAGED_BY = 'glidepath';

export type Role = 'canary' | 'preview';

export function roleName(workload: string, role: Role): string {
  return `${workload}-${role}`;
}

const LABEL_VALUE_MAX = 63;

/** The workload name as a label value (names longer than 63 characters are cut). */
export function workloadLabelValue(name: string): string {
  return name.slice(0, LABEL_VALUE_MAX).replace(/[^A-Za-z0-9]+$/, '');
}

/** The container the release changes: the named one, or the first. Throws PreflightFailed when absent. */
export function targetContainer(dep: V1Deployment, target: ReleaseTarget, where = `Deployment ${target.namespace}/${target.workload.name}`): V1Container {
  const containers = dep.spec?.template?.spec?.containers ?? [];
  const wanted = target.workload.container;
  const found = wanted === undefined ? containers[0] : containers.find((c) => c.name === wanted);
  if (!found) {
    throw ApplicationFailure.nonRetryable(
      wanted === undefined
        ? `${where} has no containers`
        : `${where} has no container "${wanted}" (containers: ${containers.map((c) => c.name).join(', ') || 'none'})`,
      ErrorType.PreflightFailed,
    );
  }
  return found;
}

/** The JSON a release recorded in annotation `key` of an object it wrote; undefined when another release wrote it, or it is absent or unreadable. */
export function recordedByRelease<T>(meta: { annotations?: Record<string, string> | undefined } | undefined, releaseId: string, key: string): T | undefined {
  const a = meta?.annotations ?? {};
  if (a[ANNOTATIONS.release] !== releaseId || !a[key]) return undefined;
  try {
    return JSON.parse(a[key]) as T;
  } catch {
    return undefined;
  }
}

/** Whether a LabelSelector matches `labels` (an empty selector matches everything, as for a PDB). */
export function labelSelectorMatches(selector: V1LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    switch (e.operator) {
      case 'In':
        if (!has || !(e.values ?? []).includes(value as string)) return false;
        break;
      case 'NotIn':
        if (has && (e.values ?? []).includes(value as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** Whether a Service selector (a plain map) matches `labels`. An empty selector selects no pods. */
export function serviceSelectorMatches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

export function sameSelector(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const ea = Object.entries(a ?? {});
  const eb = b ?? {};
  return ea.length === Object.keys(eb).length && ea.every(([k, v]) => eb[k] === v);
}

/** The pod labels of the `role` workload: the stable's template labels plus the role and workload labels. */
export function rolePodLabels(stable: V1Deployment, role: Role): Record<string, string> {
  return {
    ...(stable.spec?.template?.metadata?.labels ?? {}),
    [LABELS.role]: role,
    [LABELS.workload]: workloadLabelValue(stable.metadata?.name ?? ''),
  };
}

/** The selector of the `role` Deployment: the stable's matchLabels plus the role and workload labels (no stable pod carries the role label). */
export function roleSelector(stable: V1Deployment, role: Role): Record<string, string> {
  return {
    ...(stable.spec?.selector?.matchLabels ?? {}),
    [LABELS.role]: role,
    [LABELS.workload]: workloadLabelValue(stable.metadata?.name ?? ''),
  };
}

/**
 * The `role` Deployment for server-side apply: the stable's pod template (labels made disjoint, the
 * target container on the new image), `replicas` replicas, the stable's rollout settings with the
 * progress deadline capped by the release's.
 */
export function buildRoleDeployment(stable: V1Deployment, target: ReleaseTarget, role: Role, replicas: number): V1Deployment {
  const spec = stable.spec;
  if (!spec?.template?.spec) throw ApplicationFailure.nonRetryable(`Deployment ${target.namespace}/${target.workload.name} has no pod template`, ErrorType.PreflightFailed);
  const container = targetContainer(stable, target);
  // With spec.config, the template points at this attempt's content-hashed copies (model/config-template.ts).
  const podSpec = target.config?.length ? rewriteConfigRefs(spec.template.spec, target.config) : structuredClone(spec.template.spec);
  for (const c of podSpec.containers) if (c.name === container.name) c.image = target.image;
  const templateAnnotations = { ...(spec.template.metadata?.annotations ?? {}) };
  const stableDeadline = spec.progressDeadlineSeconds ?? 600;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: roleName(target.workload.name, role),
      namespace: target.namespace,
      labels: {
        [LABELS.managedBy]: MANAGED_BY,
        [LABELS.role]: role,
        [LABELS.workload]: workloadLabelValue(target.workload.name),
      },
      annotations: {
        [ANNOTATIONS.release]: target.releaseId,
        [ANNOTATIONS.image]: target.image,
        [ANNOTATIONS.stable]: target.workload.name,
      },
    },
    spec: {
      replicas,
      selector: { matchLabels: roleSelector(stable, role) },
      template: {
        metadata: {
          labels: rolePodLabels(stable, role),
          ...(Object.keys(templateAnnotations).length > 0 ? { annotations: templateAnnotations } : {}),
        },
        spec: podSpec,
      },
      progressDeadlineSeconds: Math.max(1, Math.min(stableDeadline, target.progressDeadlineSeconds)),
      ...(spec.minReadySeconds !== undefined ? { minReadySeconds: spec.minReadySeconds } : {}),
      ...(spec.strategy ? { strategy: structuredClone(spec.strategy) } : {}),
      revisionHistoryLimit: 2,
    },
  };
}

/** Canary replicas for a weight under the replica-ratio model: ceil(stable × weight / 100). */
export function replicasForWeight(stableReplicas: number, weight: number): number {
  return Math.ceil((stableReplicas * weight) / 100);
}

/** Labels that name a version (`version`, `app.kubernetes.io/version`, or a value like `v1`, `web-v2`), as `key=value`. */
export function versionedLabels(labels: Record<string, string>): string[] {
  return Object.entries(labels)
    .filter(([k, v]) => k === 'version' || k === 'app.kubernetes.io/version' || /(^|[-_.])v\d+(\.\d+)*$/.test(v))
    .map(([k, v]) => `${k}=${v}`);
}
