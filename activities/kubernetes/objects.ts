/**
 * The object model: names, labels, annotations and the canary/preview Deployment derived from the
 * stable one. Pure functions, no I/O.
 *
 * A canary (or preview) Deployment `<workload>-canary` (`-preview`) runs the stable's pod template
 * with the new image. Its pods are kept out of the stable Deployment's selector: every label the
 * stable selector matches on gets the suffix `-canary` (`app: web` → `app: web-canary`), so the two
 * Deployments' selectors are disjoint and a Service selecting the stable's labels never reaches
 * canary pods.
 */
import type { V1Container, V1Deployment, V1LabelSelector } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../errors.ts';
import type { ReleaseTarget } from '../contract.ts';

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

/** A valid label value derived from `value` for `role` (`web` → `web-canary`), at most 63 characters. */
export function roleLabelValue(value: string, role: Role): string {
  const suffix = `-${role}`;
  const base = value.slice(0, LABEL_VALUE_MAX - suffix.length).replace(/[^A-Za-z0-9]+$/, '');
  return base ? `${base}${suffix}` : role;
}

/** The workload name as a label value (names longer than 63 characters are cut). */
export function workloadLabelValue(name: string): string {
  return name.slice(0, LABEL_VALUE_MAX).replace(/[^A-Za-z0-9]+$/, '');
}

/** The container the release changes: the named one, or the first. Throws PreflightFailed when absent. */
export function targetContainer(dep: V1Deployment, target: ReleaseTarget): V1Container {
  const containers = dep.spec?.template?.spec?.containers ?? [];
  const wanted = target.workload.container;
  const found = wanted === undefined ? containers[0] : containers.find((c) => c.name === wanted);
  if (!found) {
    const where = `Deployment ${target.namespace}/${target.workload.name}`;
    throw ApplicationFailure.nonRetryable(
      wanted === undefined
        ? `${where} has no containers`
        : `${where} has no container "${wanted}" (containers: ${containers.map((c) => c.name).join(', ') || 'none'})`,
      ErrorType.PreflightFailed,
    );
  }
  return found;
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

/**
 * The pod labels of the `role` workload: the stable's template labels, with every label of the
 * stable's `matchLabels` given the role suffix (or, for a selector with expressions only, its first
 * expression violated), plus the role and workload labels.
 */
export function rolePodLabels(stable: V1Deployment, role: Role): Record<string, string> {
  const name = stable.metadata?.name ?? '';
  const labels: Record<string, string> = { ...(stable.spec?.template?.metadata?.labels ?? {}) };
  const selector = stable.spec?.selector ?? {};
  const matchLabels = Object.entries(selector.matchLabels ?? {});
  if (matchLabels.length > 0) {
    for (const [k, v] of matchLabels) labels[k] = roleLabelValue(v, role);
  } else {
    const e = selector.matchExpressions?.[0];
    if (e) {
      switch (e.operator) {
        case 'In':
          labels[e.key] = roleLabelValue(labels[e.key] ?? '', role);
          break;
        case 'NotIn':
          labels[e.key] = e.values?.[0] ?? role;
          break;
        case 'Exists':
          delete labels[e.key];
          break;
        case 'DoesNotExist':
          labels[e.key] = role;
          break;
      }
    }
  }
  labels[LABELS.role] = role;
  labels[LABELS.workload] = workloadLabelValue(name);
  return labels;
}

/** The selector of the `role` Deployment: the rewritten stable matchLabels plus role and workload. */
export function roleSelector(stable: V1Deployment, role: Role): Record<string, string> {
  const labels = rolePodLabels(stable, role);
  const selector: Record<string, string> = {};
  for (const k of Object.keys(stable.spec?.selector?.matchLabels ?? {})) selector[k] = labels[k] as string;
  selector[LABELS.role] = role;
  selector[LABELS.workload] = labels[LABELS.workload] as string;
  return selector;
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
  const podSpec = structuredClone(spec.template.spec);
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
