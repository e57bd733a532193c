/**
 * The objects of an API version, as pure functions: the Deployment and Service `<api>-<version>`
 * derived from another version's Deployment, the HTTPRoute rule and the Ingress that route its path,
 * and the response-header filter of a deprecated version. No I/O.
 */
import type { V1Deployment, V1Ingress, V1Service } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type { ApiVersionPlan } from '../../model/api-version.ts';
import { ErrorType } from '../errors.ts';
import { FIELD_MANAGER, LABELS, MANAGED_BY } from '../kubernetes/objects.ts';

export { FIELD_MANAGER };

export const API_LABELS = {
  api: 'glidepath.dev/api',
  version: 'glidepath.dev/api-version',
} as const;

export const API_ANNOTATIONS = {
  /** On a new version's Deployment: the Deployment whose pod template it was made from. */
  templateFrom: 'glidepath.dev/template-from',
  /** On a retired version's Deployment: its replicas before retirement scaled it to 0. */
  retiredReplicas: 'glidepath.dev/retired-replicas',
  /** On an HTTPRoute: JSON list of the version rules Glidepath added (apart from the canary router's managed routes). */
  versionRoutes: 'glidepath.dev/api-version-routes',
} as const;

/** HTTPRoute rules as JSON. */
export interface Rule {
  name?: string;
  matches?: { path?: { type?: string; value?: string }; [k: string]: unknown }[];
  filters?: Filter[];
  backendRefs?: { group?: string; kind?: string; name?: string; namespace?: string; port?: number; weight?: number; [k: string]: unknown }[];
  [k: string]: unknown;
}

export interface Filter {
  type: string;
  responseHeaderModifier?: { set?: { name: string; value: string }[]; add?: { name: string; value: string }[]; remove?: string[] };
  [k: string]: unknown;
}

/** The rule name of a new version: `<api>-<version>`. */
export const ruleName = (p: ApiVersionPlan): string => `${p.api}-${p.version}`;

export function versionSelector(p: ApiVersionPlan): Record<string, string> {
  return { [API_LABELS.api]: p.api, [API_LABELS.version]: p.version };
}

function ownerLabels(p: ApiVersionPlan): Record<string, string> {
  return { [LABELS.managedBy]: MANAGED_BY, ...versionSelector(p) };
}

export function isManaged(obj: { metadata?: { labels?: Record<string, string> } } | undefined, p: ApiVersionPlan): boolean {
  const l = obj?.metadata?.labels ?? {};
  return l[LABELS.managedBy] === MANAGED_BY && l[API_LABELS.api] === p.api && l[API_LABELS.version] === p.version;
}

/**
 * Deployment `<api>-<version>` from `template` (another version): its pod spec with the chosen
 * container on the new image. The pod labels drop every label the template's selector uses (so the
 * other version's Deployment and Services never select the new pods) and add the api and version
 * labels, which are the new selector.
 */
export function buildVersionDeployment(template: V1Deployment, p: ApiVersionPlan): V1Deployment {
  const spec = template.spec;
  const where = `Deployment ${p.namespace}/${template.metadata?.name}`;
  if (!spec?.template?.spec) throw ApplicationFailure.nonRetryable(`${where} has no pod template`, ErrorType.PreflightFailed);
  const podSpec = structuredClone(spec.template.spec);
  const wanted = p.templateFrom?.container;
  const container = wanted === undefined ? podSpec.containers[0] : podSpec.containers.find((c) => c.name === wanted);
  if (!container) {
    throw ApplicationFailure.nonRetryable(
      `${where} has no container${wanted === undefined ? 's' : ` "${wanted}" (containers: ${podSpec.containers.map((c) => c.name).join(', ')})`}`,
      ErrorType.PreflightFailed,
    );
  }
  container.image = p.image;
  const selectorKeys = new Set([...Object.keys(spec.selector?.matchLabels ?? {}), ...(spec.selector?.matchExpressions ?? []).map((e) => e.key)]);
  const podLabels: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.template.metadata?.labels ?? {})) if (!selectorKeys.has(k)) podLabels[k] = v;
  Object.assign(podLabels, versionSelector(p));
  const annotations = spec.template.metadata?.annotations;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: p.deployment,
      namespace: p.namespace,
      labels: ownerLabels(p),
      annotations: { [API_ANNOTATIONS.templateFrom]: template.metadata?.name ?? '' },
    },
    spec: {
      replicas: p.replicas ?? 1,
      selector: { matchLabels: versionSelector(p) },
      template: { metadata: { labels: podLabels, ...(annotations && Object.keys(annotations).length > 0 ? { annotations: { ...annotations } } : {}) }, spec: podSpec },
      progressDeadlineSeconds: Math.max(1, Math.min(spec.progressDeadlineSeconds ?? 600, p.progressDeadlineSeconds)),
      ...(spec.minReadySeconds !== undefined ? { minReadySeconds: spec.minReadySeconds } : {}),
      ...(spec.strategy ? { strategy: structuredClone(spec.strategy) } : {}),
      revisionHistoryLimit: 2,
    },
  };
}

/** Service `<api>-<version>` selecting the version's pods; target port: the plan's, else the container's first port, else the port. */
export function buildVersionService(deployment: V1Deployment, p: ApiVersionPlan): V1Service {
  const containers = deployment.spec?.template?.spec?.containers ?? [];
  const container = p.templateFrom?.container === undefined ? containers[0] : containers.find((c) => c.name === p.templateFrom?.container);
  const targetPort = p.targetPort ?? container?.ports?.[0]?.containerPort ?? p.port;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: p.service, namespace: p.namespace, labels: ownerLabels(p) },
    spec: { selector: versionSelector(p), ports: [{ name: 'http', port: p.port, targetPort: targetPort as never, protocol: 'TCP' }] },
  };
}

/** The HTTPRoute rule of a new version, written with the apiserver's defaults so a repeat compares equal. */
export function buildVersionRule(p: ApiVersionPlan, routeNamespace: string): Rule {
  return {
    name: ruleName(p),
    matches: [{ path: { type: 'PathPrefix', value: p.route.pathPrefix } }],
    backendRefs: [{ group: '', kind: 'Service', name: p.service, ...(routeNamespace !== p.namespace ? { namespace: p.namespace } : {}), port: p.port, weight: 1 }],
  };
}

/** Whether a rule routes (only) to the version's Service. */
export function routesToService(rule: Rule, p: ApiVersionPlan, routeNamespace: string): boolean {
  const refs = rule.backendRefs ?? [];
  return refs.length > 0 && refs.every((b) => (b.group ?? '') === '' && (b.kind ?? 'Service') === 'Service' && b.name === p.service && (b.namespace ?? routeNamespace) === p.namespace);
}

/** Whether a rule matches the path (any path match type with that value). */
export function matchesPath(rule: Rule, path: string): boolean {
  return (rule.matches ?? []).some((m) => m.path?.value === path);
}

/** Ingress `<api>-<version>`: one host, one Prefix path, the version's Service. */
export function buildVersionIngress(p: ApiVersionPlan, host: string | undefined, className: string | undefined): V1Ingress {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: ruleName(p), namespace: p.namespace, labels: ownerLabels(p) },
    spec: {
      ...(className ? { ingressClassName: className } : {}),
      rules: [
        {
          ...(host ? { host } : {}),
          http: { paths: [{ path: p.route.pathPrefix, pathType: 'Prefix', backend: { service: { name: p.service, port: { number: p.port } } } }] },
        },
      ],
    },
  };
}

/** Sets `headers` in the rule's ResponseHeaderModifier filter (created when absent; other entries and filters kept). Returns whether it changed. */
export function setRuleHeaders(rule: Rule, headers: Record<string, string>): boolean {
  const filters = rule.filters ?? [];
  let f = filters.find((x) => x.type === 'ResponseHeaderModifier');
  let changed = false;
  if (!f) {
    f = { type: 'ResponseHeaderModifier', responseHeaderModifier: {} };
    filters.push(f);
    changed = true;
  }
  const mod = (f.responseHeaderModifier ??= {});
  const set = (mod.set ??= []);
  for (const [name, value] of Object.entries(headers)) {
    const at = set.findIndex((h) => h.name.toLowerCase() === name.toLowerCase());
    if (at >= 0 && set[at]?.value === value && set[at]?.name === name) continue;
    if (at >= 0) set[at] = { name, value };
    else set.push({ name, value });
    changed = true;
  }
  rule.filters = filters;
  return changed;
}

/** Removes exactly the `headers` entries (name and value) from the rule's ResponseHeaderModifier; drops the filter when it is left empty. */
export function clearRuleHeaders(rule: Rule, headers: Record<string, string>): boolean {
  const f = rule.filters?.find((x) => x.type === 'ResponseHeaderModifier');
  const set = f?.responseHeaderModifier?.set;
  if (!f || !set) return false;
  const kept = set.filter((h) => headers[h.name] !== h.value);
  if (kept.length === set.length) return false;
  const mod = f.responseHeaderModifier as NonNullable<Filter['responseHeaderModifier']>;
  if (kept.length > 0) mod.set = kept;
  else delete mod.set;
  if (!mod.set && !(mod.add ?? []).length && !(mod.remove ?? []).length) {
    rule.filters = (rule.filters ?? []).filter((x) => x !== f);
    if (rule.filters.length === 0) delete rule.filters;
  }
  return true;
}
