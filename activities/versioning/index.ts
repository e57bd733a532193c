/**
 * Activities of the API-versions workflow (workflows/api-version.ts) on a real cluster: a new
 * version's own Deployment and Service (server-side apply), its path route (a named HTTPRoute rule,
 * or an Ingress object of its own) with existing routes left byte-identical, Deprecation/Sunset
 * response headers on the version's HTTPRoute rule, removing the route and scaling the Deployment
 * to 0. Each converges to a described state and writes nothing when it is already there, so a
 * Temporal retry is harmless. Errors are classified as everywhere else (activities/kubernetes/errors.ts).
 */
import { PatchStrategy, setHeaderOptions, type KubeConfig, type V1Deployment, type V1Ingress, type V1Service } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type { ApiVersionPlan } from '../../model/api-version.ts';
import { ErrorType } from '../errors.ts';
import { createKubeClients, type KubeClients } from '../kubernetes/client.ts';
import { activityHeartbeat, cancellationSignal, type Heartbeat } from '../kubernetes/context.ts';
import { isNotFound } from '../kubernetes/errors.ts';
import { waitForRollout } from '../kubernetes/rollout.ts';
import { invalidRouting, managedNames, readObject, sameJson, setManagedNames, updateObject, type ObjectRef, type RoutingObject } from '../traffic/common.ts';
import {
  API_ANNOTATIONS,
  FIELD_MANAGER,
  buildVersionDeployment,
  buildVersionIngress,
  buildVersionRule,
  buildVersionService,
  clearRuleHeaders,
  isManaged,
  matchesPath,
  routesToService,
  ruleName,
  setRuleHeaders,
  type Rule,
} from './objects.ts';

export interface VersioningOptions {
  /** gateway.networking.k8s.io version. Default v1. */
  gatewayApiVersion?: string;
  requestTimeoutMs?: number;
  pollIntervalMs?: number;
  heartbeat?: Heartbeat;
  signal?: AbortSignal;
}

export const INGRESS_HEADERS_NOTE =
  'Ingress has no portable way to set response headers (ingress-nginx configuration snippets are disabled by default): Deprecation and Sunset are not sent; the sunset timer and the approval gate still apply';

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** This API's version rules on an HTTPRoute, apart from a canary's managed routes on the same route. */
const managedRules = (obj: RoutingObject): string[] => managedNames(obj, API_ANNOTATIONS.versionRoutes);
const setManagedRules = (obj: RoutingObject, names: string[]): void => setManagedNames(obj, names, API_ANNOTATIONS.versionRoutes);

export function createVersioningActivities(kc: KubeConfig, opts: VersioningOptions = {}) {
  const k: KubeClients = createKubeClients(kc, { requestTimeoutMs: opts.requestTimeoutMs ?? 15_000, signal: opts.signal });
  const gatewayVersion = `gateway.networking.k8s.io/${(opts.gatewayApiVersion ?? 'v1').replace(/^gateway\.networking\.k8s\.io\//, '')}`;
  const heartbeat = opts.heartbeat ?? activityHeartbeat;

  const httpRouteRef = (p: ApiVersionPlan): ObjectRef & { namespace: string } => {
    if (p.route.kind !== 'httpRoute') throw invalidRouting('not an HTTPRoute version');
    return { apiVersion: gatewayVersion, kind: 'HTTPRoute', resource: 'httproutes.gateway.networking.k8s.io', namespace: p.route.namespace, name: p.route.name };
  };
  const ingressRef = (namespace: string, name: string): ObjectRef => ({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', resource: 'ingresses.networking.k8s.io', namespace, name });

  const find = async <T>(ref: ObjectRef): Promise<T | undefined> => {
    try {
      return (await readObject(k, ref)) as T;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  const deploymentRef = (namespace: string, name: string): ObjectRef => ({ apiVersion: 'apps/v1', kind: 'Deployment', resource: 'deployments.apps', namespace, name });
  const serviceRef = (namespace: string, name: string): ObjectRef => ({ apiVersion: 'v1', kind: 'Service', resource: 'services', namespace, name });

  const apply = async (obj: V1Deployment | V1Service | V1Ingress, resource: string): Promise<void> => {
    await k.call({ verb: 'apply', resource, namespace: obj.metadata?.namespace, name: obj.metadata?.name }, () =>
      k.objects.patch(obj as never, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply),
    );
  };

  /** Refuses to take over an object of that name that Glidepath did not create for this version. */
  const ensureOwnable = (obj: { metadata?: { labels?: Record<string, string> } } | undefined, what: string, p: ApiVersionPlan): void => {
    if (obj && !isManaged(obj, p)) throw invalidRouting(`${what} already exists and was not created by Glidepath for ${p.api} ${p.version}; choose another version name or remove it`);
  };

  /** The rules of the HTTPRoute that serve this version: its named rule (new) or the rules routing its path to its Service (existing). */
  const versionRules = (route: RoutingObject, p: ApiVersionPlan, routeNs: string): Rule[] => {
    const rules = (route.spec?.rules as Rule[] | undefined) ?? [];
    if (p.source === 'new') return rules.filter((r) => r.name === ruleName(p) && managedRules(route).includes(ruleName(p)));
    return rules.filter((r) => matchesPath(r, p.route.pathPrefix) && routesToService(r, p, routeNs));
  };

  // ---- the route of each router ---------------------------------------------------------------------

  const addHttpRouteRule = async (p: ApiVersionPlan): Promise<boolean> => {
    const ref = httpRouteRef(p);
    let wrote = false;
    await updateObject(
      k,
      ref,
      (route) => {
        const rules = [...((route.spec?.rules as Rule[] | undefined) ?? [])];
        const managed = managedRules(route);
        const name = ruleName(p);
        const at = rules.findIndex((r) => r.name === name);
        if (at >= 0 && !managed.includes(name)) throw invalidRouting(`HTTPRoute ${ref.namespace}/${ref.name} already has a rule "${name}" that Glidepath did not add`);
        const clash = rules.find((r, i) => i !== at && matchesPath(r, p.route.pathPrefix));
        if (clash) throw invalidRouting(`HTTPRoute ${ref.namespace}/${ref.name} already routes ${p.route.pathPrefix} (rule ${clash.name ?? `#${rules.indexOf(clash)}`}); a version's path must be its own`);
        const wanted = buildVersionRule(p, ref.namespace);
        const current = rules[at];
        if (current) {
          // Keep filters (deprecation headers) the rule carries; compare the rest.
          if (current.filters) wanted.filters = current.filters;
          if (sameJson(current, wanted)) return false;
          rules[at] = wanted;
        } else {
          rules.push(wanted);
        }
        if (!managed.includes(name)) setManagedRules(route, [...managed, name]);
        route.spec = { ...(route.spec ?? {}), rules };
        wrote = true;
        return true;
      },
      {},
    );
    const back = await readObject(k, ref);
    if (versionRules(back, p, ref.namespace).length !== 1) {
      throw ApplicationFailure.nonRetryable(`HTTPRoute ${ref.namespace}/${ref.name} reads back without rule ${ruleName(p)}`, ErrorType.VerificationFailed);
    }
    return wrote;
  };

  /** The host and class of a new version's Ingress: the plan's, else the API's named Ingress's. */
  const ingressShape = async (p: ApiVersionPlan): Promise<{ host: string | undefined; className: string | undefined }> => {
    if (p.route.kind !== 'ingress') throw invalidRouting('not an Ingress version');
    if (p.route.host !== undefined && p.route.className !== undefined) return { host: p.route.host, className: p.route.className };
    const base = await find<V1Ingress>(ingressRef(p.namespace, p.route.name));
    if (!base && p.route.host === undefined) throw ApplicationFailure.nonRetryable(`Ingress ${p.namespace}/${p.route.name} not found and no route.ingress.host given`, ErrorType.NotFound);
    return { host: p.route.host ?? base?.spec?.rules?.[0]?.host, className: p.route.className ?? base?.spec?.ingressClassName };
  };

  const addIngress = async (p: ApiVersionPlan): Promise<boolean> => {
    const ref = ingressRef(p.namespace, ruleName(p));
    const existing = await find<V1Ingress>(ref);
    ensureOwnable(existing, `Ingress ${p.namespace}/${ruleName(p)}`, p);
    const { host, className } = await ingressShape(p);
    const base = await find<V1Ingress>(ingressRef(p.namespace, p.route.name));
    const clash = base?.spec?.rules?.some((r) => (r.host ?? '') === (host ?? '') && (r.http?.paths ?? []).some((x) => x.path === p.route.pathPrefix));
    if (clash) throw invalidRouting(`Ingress ${p.namespace}/${p.route.name} already routes ${host ?? '*'}${p.route.pathPrefix}; a version's path must be its own`);
    const wanted = buildVersionIngress(p, host, className);
    if (existing && isManaged(existing, p) && sameJson(existing.spec, wanted.spec)) return false;
    await apply(wanted, 'ingresses.networking.k8s.io');
    const back = await readObject(k, ref);
    if (!sameJson(back.spec, wanted.spec)) throw ApplicationFailure.nonRetryable(`Ingress ${p.namespace}/${ruleName(p)} reads back differently after apply`, ErrorType.VerificationFailed);
    return true;
  };

  // ---- activities -------------------------------------------------------------------------------------

  return {
    /** Deployment and Service `<api>-<version>` from the template version's pod template; waits until rolled out. */
    async deployVersion(p: ApiVersionPlan): Promise<{ replicas: number }> {
      if (p.source !== 'new' || !p.templateFrom || !p.image) throw invalidRouting(`${p.api} ${p.version} is not a new version (deployVersion needs image and templateFrom)`);
      const template = await find<V1Deployment>(deploymentRef(p.namespace, p.templateFrom.deployment));
      if (!template) throw ApplicationFailure.nonRetryable(`Deployment ${p.namespace}/${p.templateFrom.deployment} (templateFrom) not found`, ErrorType.NotFound);
      const existing = await find<V1Deployment>(deploymentRef(p.namespace, p.deployment));
      ensureOwnable(existing, `Deployment ${p.namespace}/${p.deployment}`, p);
      const svc = await find<V1Service>(serviceRef(p.namespace, p.service));
      ensureOwnable(svc, `Service ${p.namespace}/${p.service}`, p);

      const desired = buildVersionDeployment(template, p);
      await apply(desired, 'deployments.apps');
      await apply(buildVersionService(desired, p), 'services');
      const got = await waitForRollout(
        () => k.call({ verb: 'get', resource: 'deployments.apps', namespace: p.namespace, name: p.deployment }, () => k.apps.readNamespacedDeployment({ name: p.deployment, namespace: p.namespace })),
        `Deployment ${p.namespace}/${p.deployment}`,
        { pollIntervalMs: opts.pollIntervalMs ?? 500, timeoutMs: (p.progressDeadlineSeconds + 60) * 1000, heartbeat, signal: cancellationSignal(opts.signal) },
      );
      const image = got.spec?.template?.spec?.containers?.find((c) => c.name === (p.templateFrom?.container ?? desired.spec?.template.spec?.containers[0]?.name))?.image;
      if (image !== p.image || got.spec?.replicas !== p.replicas) {
        throw ApplicationFailure.nonRetryable(`Deployment ${p.namespace}/${p.deployment} reads back image ${image}, replicas ${got.spec?.replicas}; expected ${p.image}, ${p.replicas}`, ErrorType.VerificationFailed);
      }
      return { replicas: got.spec?.replicas ?? 0 };
    },

    /** A version that already runs: its Deployment, Service and route must exist as the plan says. Writes nothing. */
    async registerVersion(p: ApiVersionPlan): Promise<{ replicas: number }> {
      const dep = await find<V1Deployment>(deploymentRef(p.namespace, p.deployment));
      if (!dep) throw ApplicationFailure.nonRetryable(`Deployment ${p.namespace}/${p.deployment} (version ${p.version}) not found`, ErrorType.NotFound);
      if (!(await find<V1Service>(serviceRef(p.namespace, p.service)))) throw ApplicationFailure.nonRetryable(`Service ${p.namespace}/${p.service} (version ${p.version}) not found`, ErrorType.NotFound);
      if (p.route.kind === 'httpRoute') {
        const ref = httpRouteRef(p);
        const route = await readObject(k, ref);
        if (versionRules(route, p, ref.namespace).length === 0) throw invalidRouting(`HTTPRoute ${ref.namespace}/${ref.name} has no rule routing ${p.route.pathPrefix} to Service ${p.service}`);
      } else {
        const ing = await readObject(k, ingressRef(p.namespace, p.route.name));
        const found = ((ing.spec as V1Ingress['spec'])?.rules ?? []).some((r) => (r.http?.paths ?? []).some((x) => x.path === p.route.pathPrefix && x.backend.service?.name === p.service));
        if (!found) throw invalidRouting(`Ingress ${p.namespace}/${p.route.name} has no path ${p.route.pathPrefix} to Service ${p.service}`);
      }
      return { replicas: dep.spec?.replicas ?? 1 };
    },

    /** The new version's path route: a named HTTPRoute rule, or Ingress `<api>-<version>`. Other rules and objects untouched. */
    async addVersionRoute(p: ApiVersionPlan): Promise<{ changed: boolean }> {
      if (p.source !== 'new') throw invalidRouting(`${p.api} ${p.version} is registered as it runs; its route is not Glidepath's to add`);
      return { changed: p.route.kind === 'httpRoute' ? await addHttpRouteRule(p) : await addIngress(p) };
    },

    /** Deprecation, Sunset and Link response headers on the version's rule(s); Ingress: unsupported, nothing written. */
    async setDeprecationHeaders(p: ApiVersionPlan, headers: Record<string, string>): Promise<{ supported: boolean; note?: string; changed: boolean }> {
      if (p.route.kind === 'ingress') return { supported: false, note: INGRESS_HEADERS_NOTE, changed: false };
      const ref = httpRouteRef(p);
      let changed = false;
      await updateObject(
        k,
        ref,
        (route) => {
          const rules = versionRules(route, p, ref.namespace);
          if (rules.length === 0) throw invalidRouting(`HTTPRoute ${ref.namespace}/${ref.name} has no rule for ${p.api} ${p.version} (${p.route.pathPrefix} → ${p.service})`);
          for (const r of rules) changed = setRuleHeaders(r, headers) || changed;
          return changed;
        },
        {},
      );
      return { supported: true, changed };
    },

    /** Removes exactly the header entries set by setDeprecationHeaders (an aborted retirement). */
    async clearDeprecationHeaders(p: ApiVersionPlan, headers: Record<string, string>): Promise<{ changed: boolean }> {
      if (p.route.kind === 'ingress') return { changed: false };
      const ref = httpRouteRef(p);
      let changed = false;
      await updateObject(
        k,
        ref,
        (route) => {
          for (const r of versionRules(route, p, ref.namespace)) changed = clearRuleHeaders(r, headers) || changed;
          return changed;
        },
        {},
      );
      return { changed };
    },

    /** The version's route goes: its rule (or, registered versions, its path match), or its Ingress (or its path in the API's Ingress). */
    async removeVersionRoute(p: ApiVersionPlan): Promise<{ changed: boolean }> {
      let changed = false;
      if (p.route.kind === 'httpRoute') {
        const ref = httpRouteRef(p);
        const existing = await find<RoutingObject>(ref);
        if (!existing) return { changed: false };
        await updateObject(
          k,
          ref,
          (route) => {
            const rules = (route.spec?.rules as Rule[] | undefined) ?? [];
            const mine = new Set(versionRules(route, p, ref.namespace));
            if (mine.size === 0 && !managedRules(route).includes(ruleName(p))) return false;
            const kept: Rule[] = [];
            for (const r of rules) {
              if (!mine.has(r)) kept.push(r);
              else if (p.source === 'existing' && (r.matches ?? []).length > 1) {
                // A registered rule that also matches other paths keeps them.
                kept.push({ ...r, matches: (r.matches ?? []).filter((m) => m.path?.value !== p.route.pathPrefix) });
              }
            }
            route.spec = { ...(route.spec ?? {}), rules: kept };
            if (p.source === 'new') setManagedRules(route, managedRules(route).filter((n) => n !== ruleName(p)));
            changed = true;
            return true;
          },
          {},
        );
        const back = await readObject(k, ref);
        if (versionRules(back, p, ref.namespace).length > 0) throw ApplicationFailure.nonRetryable(`HTTPRoute ${ref.namespace}/${ref.name} still routes ${p.route.pathPrefix} to ${p.service}`, ErrorType.VerificationFailed);
        return { changed };
      }
      if (p.source === 'new') {
        const ref = ingressRef(p.namespace, ruleName(p));
        const existing = await find<V1Ingress>(ref);
        if (!existing) return { changed: false };
        ensureOwnable(existing, `Ingress ${p.namespace}/${ruleName(p)}`, p);
        try {
          await k.call({ verb: 'delete', resource: 'ingresses.networking.k8s.io', namespace: p.namespace, name: ruleName(p) }, () => k.objects.delete(existing as never));
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        return { changed: true };
      }
      // A registered version in the API's own Ingress: its path goes; rules left without paths go; an Ingress left empty is deleted.
      const ref = ingressRef(p.namespace, p.route.name);
      const existing = await find<V1Ingress>(ref);
      if (!existing) return { changed: false };
      const isMine = (x: { path?: string; backend: { service?: { name: string } } }): boolean => x.path === p.route.pathPrefix && x.backend.service?.name === p.service;
      const without = (ing: V1Ingress): NonNullable<V1Ingress['spec']>['rules'] =>
        (ing.spec?.rules ?? []).map((r) => (r.http ? { ...r, http: { ...r.http, paths: r.http.paths.filter((x) => !isMine(x)) } } : r)).filter((r) => !r.http || r.http.paths.length > 0);
      if (!(existing.spec?.rules ?? []).some((r) => (r.http?.paths ?? []).some(isMine))) return { changed: false };
      if ((without(existing) ?? []).length === 0 && !existing.spec?.defaultBackend) {
        await k.call({ verb: 'delete', resource: 'ingresses.networking.k8s.io', namespace: p.namespace, name: p.route.name }, () => k.objects.delete(existing as never));
        return { changed: true };
      }
      await updateObject(
        k,
        ref,
        (obj) => {
          const ing = obj as V1Ingress;
          if (!(ing.spec?.rules ?? []).some((r) => (r.http?.paths ?? []).some(isMine))) return false;
          ing.spec = { ...(ing.spec ?? {}), rules: without(ing) ?? [] };
          return true;
        },
        {},
      );
      return { changed: true };
    },

    /** The version's Deployment to 0 replicas (kept, with its Service); its replicas before are recorded in an annotation. */
    async scaleDownVersion(p: ApiVersionPlan): Promise<{ previousReplicas: number }> {
      const dep = await find<V1Deployment>(deploymentRef(p.namespace, p.deployment));
      if (!dep) return { previousReplicas: 0 };
      const recorded = Number(dep.metadata?.annotations?.[API_ANNOTATIONS.retiredReplicas]);
      const replicas = dep.spec?.replicas ?? 1;
      if (replicas === 0) return { previousReplicas: Number.isFinite(recorded) ? recorded : 0 };
      await k.call({ verb: 'patch', resource: 'deployments.apps', namespace: p.namespace, name: p.deployment }, () =>
        k.apps.patchNamespacedDeployment(
          { name: p.deployment, namespace: p.namespace, fieldManager: FIELD_MANAGER, body: { metadata: { annotations: { [API_ANNOTATIONS.retiredReplicas]: String(replicas) } }, spec: { replicas: 0 } } },
          MERGE_PATCH,
        ),
      );
      const back = await k.call({ verb: 'get', resource: 'deployments.apps', namespace: p.namespace, name: p.deployment }, () => k.apps.readNamespacedDeployment({ name: p.deployment, namespace: p.namespace }));
      if (back.spec?.replicas !== 0) throw ApplicationFailure.nonRetryable(`Deployment ${p.namespace}/${p.deployment} reads back ${back.spec?.replicas} replicas after scaling to 0`, ErrorType.VerificationFailed);
      return { previousReplicas: replicas };
    },
  };
}

export type VersioningActivities = ReturnType<typeof createVersioningActivities>;
