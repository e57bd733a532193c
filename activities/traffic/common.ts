/**
 * What the traffic routers share: read-modify-write of one routing object (a VirtualService, a
 * DestinationRule, an HTTPRoute) with optimistic concurrency, the annotation that records which
 * routes Glidepath added, and Argo's header match shape. Every write is skipped when the object
 * already has the wanted content, so each router call is idempotent and a retry writes nothing.
 */
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../errors.ts';
import { createKubeClients, type KubeClients } from '../kubernetes/client.ts';
import { RetryableType, isNotFound } from '../kubernetes/errors.ts';
import { FIELD_MANAGER, LABELS, MANAGED_BY, workloadLabelValue } from '../kubernetes/objects.ts';

export interface RouterOptions {
  /** Per-request timeout for every apiserver call. Default 30 s. */
  requestTimeoutMs?: number;
  /** Cancels requests, in addition to the running activity's cancellation. */
  signal?: AbortSignal;
  /** Conflicting writes (409) re-read and retried this many times before the activity retries. Default 5. */
  conflictRetries?: number;
}

/** On a routing object: JSON array of the route (rule) names Glidepath added and will remove. */
export const MANAGED_ROUTES_ANNOTATION = 'glidepath.dev/managed-routes';

/** On a routing object: JSON array of the experiment Services Glidepath added as destinations (backends), removed when the experiment ends. */
export const EXPERIMENT_DESTINATIONS_ANNOTATION = 'glidepath.dev/experiment-destinations';

/** Checks an experiment's destinations: whole weights, and the canary's weight plus theirs at most 100. Returns the stable's weight. */
export function stableWeightWith(weight: number, destinations: readonly { service: string; weight: number }[]): number {
  checkWeight(weight);
  for (const d of destinations) checkWeight(d.weight);
  const stable = 100 - weight - destinations.reduce((sum, d) => sum + d.weight, 0);
  if (stable < 0) throw invalidRouting(`the canary's weight ${weight} and the experiment's weights (${destinations.map((d) => `${d.service} ${d.weight}`).join(', ')}) add up to more than 100`);
  return stable;
}

/** A routing object as JSON. */
export type RoutingObject = KubernetesObject & { spec?: Record<string, unknown> };

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  /** `virtualservices.networking.istio.io`, for messages. */
  resource: string;
  namespace: string;
  name: string;
}

export function makeClients(kc: KubeConfig, opts: RouterOptions): KubeClients {
  return createKubeClients(kc, { requestTimeoutMs: opts.requestTimeoutMs ?? 30_000, signal: opts.signal });
}

export async function readObject(k: KubeClients, ref: ObjectRef): Promise<RoutingObject> {
  try {
    return (await k.call({ verb: 'get', resource: ref.resource, namespace: ref.namespace, name: ref.name }, () =>
      k.objects.read({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } }),
    )) as RoutingObject;
  } catch (err) {
    if (isNotFound(err)) {
      throw ApplicationFailure.nonRetryable(`${ref.kind} ${ref.namespace}/${ref.name} not found (${ref.apiVersion})`, ErrorType.NotFound);
    }
    throw err;
  }
}

/**
 * Reads the object, lets `mutate` change a copy, and replaces it (with the read resourceVersion, so
 * a concurrent writer makes it re-read instead of being overwritten). `mutate` returns false when
 * the object already is as wanted: nothing is written.
 */
export async function updateObject(k: KubeClients, ref: ObjectRef, mutate: (obj: RoutingObject) => boolean, opts: RouterOptions): Promise<RoutingObject> {
  const retries = opts.conflictRetries ?? 5;
  for (let attempt = 0; ; attempt++) {
    const current = await readObject(k, ref);
    const next = structuredClone(current);
    if (!mutate(next)) return current;
    try {
      return (await k.call({ verb: 'update', resource: ref.resource, namespace: ref.namespace, name: ref.name }, () =>
        k.objects.replace(next, undefined, undefined, FIELD_MANAGER),
      )) as RoutingObject;
    } catch (err) {
      if (attempt < retries && err instanceof ApplicationFailure && err.type === RetryableType.Conflict) continue;
      throw err;
    }
  }
}

/** The names recorded in `annotation` (default: the routers' managed routes). */
export function managedNames(obj: RoutingObject, annotation = MANAGED_ROUTES_ANNOTATION): string[] {
  const raw = obj.metadata?.annotations?.[annotation];
  if (!raw) return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    return Array.isArray(parsed) ? parsed.filter((n): n is string => typeof n === 'string') : [];
  } catch {
    return [];
  }
}

export function setManagedNames(obj: RoutingObject, names: string[], annotation = MANAGED_ROUTES_ANNOTATION): void {
  obj.metadata ??= {};
  const annotations = { ...(obj.metadata.annotations ?? {}) };
  if (names.length === 0) delete annotations[annotation];
  else annotations[annotation] = JSON.stringify(names);
  obj.metadata.annotations = annotations;
}

/** Whether two JSON values are equal (key order ignored). */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** Argo's match shapes, as the plan carries them. */
export type { HeaderRoutingMatch, RouteMatch, StringMatch } from '../../model/types.ts';

export function invalidRouting(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, ErrorType.InvalidSpec);
}

export function checkWeight(weight: number): void {
  if (!Number.isInteger(weight) || weight < 0 || weight > 100) throw invalidRouting(`weight must be a whole number from 0 to 100, got ${weight}`);
}

/** Labels on the routing objects Glidepath creates and owns (the NGINX canary Ingress, the SMI TrafficSplit). */
export const OWNED_LABELS = { managedBy: LABELS.managedBy, workload: LABELS.workload } as const;

/** The labels an object Glidepath creates for `workload` carries. */
export function ownedLabels(workload: string): Record<string, string> {
  return { [OWNED_LABELS.managedBy]: MANAGED_BY, [OWNED_LABELS.workload]: workloadLabelValue(workload) };
}

/** Whether `obj` was created by Glidepath for `workload` (so Glidepath may rewrite it). */
export function isOwned(obj: RoutingObject, workload: string): boolean {
  const labels = obj.metadata?.labels ?? {};
  return labels[OWNED_LABELS.managedBy] === MANAGED_BY && labels[OWNED_LABELS.workload] === workloadLabelValue(workload);
}

/**
 * {@link updateObject} for an object Glidepath owns and creates when it is missing: `create()` is
 * posted when the read finds nothing (a concurrent create re-reads and updates instead); an
 * existing object goes through `mutate` as in updateObject.
 */
export async function ensureObject(
  k: KubeClients,
  ref: ObjectRef,
  create: () => RoutingObject,
  mutate: (obj: RoutingObject) => boolean,
  opts: RouterOptions,
): Promise<RoutingObject> {
  const retries = opts.conflictRetries ?? 5;
  for (let attempt = 0; ; attempt++) {
    if ((await readOptional(k, ref)) !== undefined) return updateObject(k, ref, mutate, opts);
    const body = create();
    try {
      return (await k.call({ verb: 'create', resource: ref.resource, namespace: ref.namespace, name: ref.name }, () =>
        k.objects.create(body, undefined, undefined, FIELD_MANAGER),
      )) as RoutingObject;
    } catch (err) {
      // 409 AlreadyExists: someone created it in between; read it and update instead.
      if (attempt < retries && err instanceof ApplicationFailure && err.type === RetryableType.Conflict) continue;
      throw err;
    }
  }
}

/** The object, or undefined when it does not exist. */
export async function readOptional(k: KubeClients, ref: ObjectRef): Promise<RoutingObject | undefined> {
  try {
    return await readObject(k, ref);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Sets (or with `undefined`, removes) annotations on a copy's metadata; true when anything changed. */
export function setAnnotations(obj: RoutingObject, values: Record<string, string | undefined>): boolean {
  obj.metadata ??= {};
  const annotations = { ...(obj.metadata.annotations ?? {}) };
  let changed = false;
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) {
      if (key in annotations) {
        delete annotations[key];
        changed = true;
      }
    } else if (annotations[key] !== value) {
      annotations[key] = value;
      changed = true;
    }
  }
  if (changed) obj.metadata.annotations = annotations;
  return changed;
}

// ---- Ingress (networking.k8s.io/v1), shared by the NGINX and ALB routers -------------------------

export const INGRESS_API_VERSION = 'networking.k8s.io/v1';

export function ingressRef(namespace: string, name: string): ObjectRef {
  return { apiVersion: INGRESS_API_VERSION, kind: 'Ingress', resource: 'ingresses.networking.k8s.io', namespace, name };
}

export interface IngressBackend {
  service?: { name?: string; port?: { name?: string; number?: number } };
  resource?: unknown;
}

export interface IngressPath {
  path?: string;
  pathType?: string;
  backend?: IngressBackend;
}

export interface IngressRule {
  host?: string;
  http?: { paths?: IngressPath[] };
}

export interface IngressSpec {
  ingressClassName?: string;
  defaultBackend?: IngressBackend;
  tls?: unknown[];
  rules?: IngressRule[];
}

export function ingressSpec(obj: RoutingObject): IngressSpec {
  return (obj.spec ?? {}) as IngressSpec;
}

/** Every path of every rule of an Ingress, with the rule it is in. */
export function ingressPaths(spec: IngressSpec): { rule: IngressRule; path: IngressPath }[] {
  return (spec.rules ?? []).flatMap((rule) => (rule.http?.paths ?? []).map((path) => ({ rule, path })));
}

/**
 * An annotation prefix as Argo takes it (`nginx.ingress.kubernetes.io`, `alb.ingress.kubernetes.io`):
 * a DNS subdomain; a trailing `/` is dropped.
 */
export function annotationPrefix(prefix: string | undefined, fallback: string): string {
  return (prefix ?? fallback).replace(/\/+$/, '');
}
