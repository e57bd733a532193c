/**
 * Drift of an API version's path route (docs/api-versioning.md): when the watched Deployment is a
 * version Glidepath introduced (`glidepath.dev/api`, `glidepath.dev/api-version`, managed by
 * Glidepath) and the API's workflow has it serving, the reference holds its route as the version
 * left it: the HTTPRoute rule `<api>-<version>` (in the HTTPRoute the version's plan names) or its
 * Ingress `<api>-<version>`. The check compares the live rule or Ingress spec with
 * it (field `route`); the revert puts it back by a read-modify-write guarded by resourceVersion
 * (only that rule, or that Ingress's spec, is written) and reads it back.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { apiWorkflowId, type VersionRoute } from '../model/api-version.ts';
import { apiStatusQuery, type ApiStatus } from '../workflows/api-version-messages.ts';
import type { DriftApiRoute, DriftFinding } from '../model/drift.ts';
import { ErrorType } from './errors.ts';
import type { KubeClients } from './kubernetes/client.ts';
import { LABELS, MANAGED_BY } from './kubernetes/objects.ts';
import { managedNames, readObject, sameJson, updateObject, type ObjectRef, type RoutingObject } from './traffic/common.ts';
import { API_ANNOTATIONS, API_LABELS, type Rule } from './versioning/objects.ts';

const HTTP_ROUTE = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', resource: 'httproutes.gateway.networking.k8s.io' };
const INGRESS = { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', resource: 'ingresses.networking.k8s.io' };

const refOf = (r: DriftApiRoute): ObjectRef => ({ ...(r.kind === 'HTTPRoute' ? HTTP_ROUTE : INGRESS), namespace: r.namespace, name: r.name });
const rulesOf = (o: RoutingObject): Rule[] => ((o.spec?.rules as Rule[] | undefined) ?? []);
const pathOf = (rule: Rule | undefined): string => rule?.matches?.map((m) => m.path?.value).find((v) => v !== undefined) ?? '(no path)';
/** A rule without its filters: deprecation headers are the retirement flow's (set and removed by it), not drift. */
const withoutFilters = (rule: unknown): unknown => {
  if (!rule || typeof rule !== 'object') return rule;
  const rest: Rule = { ...(rule as Rule) };
  delete rest.filters;
  return rest;
};
const comparable = (r: DriftApiRoute, v: unknown): unknown => (r.kind === 'HTTPRoute' ? withoutFilters(v) : v);
const describe = (r: DriftApiRoute): string => `${r.kind} ${r.namespace}/${r.name}${r.kind === 'HTTPRoute' ? ` rule ${r.rule}` : ''} (${r.path})`;

/** Where the API's workflow says a serving version's route is (undefined: no such API or version, or it is not serving). */
export type VersionRouteLookup = (namespace: string, api: string, version: string) => Promise<VersionRoute | undefined>;

/** The phases in which a version's route is what the API workflow left (a retiring or retired version's route is meant to go). */
const ROUTED_PHASES: readonly string[] = ['Serving', 'Deprecated', 'AwaitingRetirementApproval'];

/** The lookup through the API's workflow (`api-<namespace>-<api>`, its status query). */
export function versionRouteFromWorkflow(client: Client): VersionRouteLookup {
  return async (namespace, api, version) => {
    let status: ApiStatus;
    try {
      status = await client.workflow.getHandle(apiWorkflowId({ namespace, api })).query(apiStatusQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
    const v = status.versions.find((x) => x.version === version);
    return v && ROUTED_PHASES.includes(v.phase) && v.plan.source === 'new' ? v.plan.route : undefined;
  };
}

export function createApiRouteDrift(k: KubeClients) {
  const find = async (ref: ObjectRef): Promise<RoutingObject | undefined> => {
    try {
      return await readObject(k, ref);
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === ErrorType.NotFound) return undefined;
      throw err;
    }
  };

  /** What the live object holds in place of the reference (undefined: gone). */
  const live = async (r: DriftApiRoute): Promise<unknown> => {
    const obj = await find(refOf(r));
    if (!obj) return undefined;
    return r.kind === 'HTTPRoute' ? rulesOf(obj).find((x) => x.name === r.rule) : obj.spec;
  };

  return {
    /** The route of the version whose Deployment this is, as it is now (the reference); undefined when it is no version Glidepath introduced or has no route. */
    async reference(dep: V1Deployment, routeOf: VersionRouteLookup | undefined): Promise<DriftApiRoute | undefined> {
      const labels = dep.metadata?.labels ?? {};
      const api = labels[API_LABELS.api];
      const version = labels[API_LABELS.version];
      const namespace = dep.metadata?.namespace;
      if (!api || !version || !namespace || labels[LABELS.managedBy] !== MANAGED_BY || !routeOf) return undefined;
      const route = await routeOf(namespace, api, version);
      if (!route) return undefined;
      const name = `${api}-${version}`;
      if (route.kind === 'httpRoute') {
        const ns = route.namespace ?? namespace;
        const obj = await find({ ...HTTP_ROUTE, namespace: ns, name: route.name });
        const rule = obj && managedNames(obj, API_ANNOTATIONS.versionRoutes).includes(name) ? rulesOf(obj).find((x) => x.name === name) : undefined;
        if (!rule) throw ApplicationFailure.nonRetryable(`HTTPRoute ${ns}/${route.name} has no rule ${name} for ${api} ${version}: the version's route is not as it left it when the reference is taken`, ErrorType.NotFound);
        return { api, version, kind: 'HTTPRoute', namespace: ns, name: route.name, rule: name, path: pathOf(rule), spec: JSON.stringify(rule) };
      }
      const ing = await find({ ...INGRESS, namespace, name });
      if (!ing) throw ApplicationFailure.nonRetryable(`Ingress ${namespace}/${name} of ${api} ${version} not found when the reference is taken`, ErrorType.NotFound);
      return { api, version, kind: 'Ingress', namespace, name, path: route.pathPrefix, spec: JSON.stringify(ing.spec) };
    },

    /** The finding for the route when it differs from the reference (read-only). */
    async check(r: DriftApiRoute): Promise<DriftFinding | undefined> {
      const now = await live(r);
      if (now !== undefined && sameJson(comparable(r, now), comparable(r, JSON.parse(r.spec)))) return undefined;
      const what = now === undefined ? (r.kind === 'HTTPRoute' ? 'rule gone' : 'Ingress gone') : r.kind === 'HTTPRoute' ? `changed (now ${pathOf(now as Rule)}, ${JSON.stringify(now).slice(0, 300)})` : `changed (${JSON.stringify(now).slice(0, 300)})`;
      return { field: 'route', desired: `${describe(r)} as the version left it`, live: what };
    },

    /** Puts the rule (or the Ingress's spec) back as the reference holds it, guarded by resourceVersion; read back. */
    async revert(r: DriftApiRoute): Promise<void> {
      const ref = refOf(r);
      const wanted = JSON.parse(r.spec) as unknown;
      if (!(await find(ref))) throw ApplicationFailure.nonRetryable(`${r.kind} ${r.namespace}/${r.name} is gone; a drift revert does not recreate it`, ErrorType.NotFound);
      await updateObject(
        k,
        ref,
        (obj) => {
          if (r.kind === 'Ingress') {
            if (sameJson(obj.spec, wanted)) return false;
            obj.spec = wanted as RoutingObject['spec'];
            return true;
          }
          const rules = [...rulesOf(obj)];
          const at = rules.findIndex((x) => x.name === r.rule);
          const current = rules[at];
          if (current && sameJson(withoutFilters(current), withoutFilters(wanted))) return false;
          // The rule's filters as they are now (the retirement flow's headers), the rest as the reference holds it.
          const put = { ...(withoutFilters(wanted) as Rule), ...(current?.filters ? { filters: current.filters } : {}) };
          if (current) rules[at] = put;
          else rules.push(put);
          obj.spec = { ...(obj.spec ?? {}), rules };
          const managed = managedNames(obj, API_ANNOTATIONS.versionRoutes);
          if (r.rule && !managed.includes(r.rule)) obj.metadata = { ...obj.metadata, annotations: { ...(obj.metadata?.annotations ?? {}), [API_ANNOTATIONS.versionRoutes]: JSON.stringify([...managed, r.rule]) } };
          return true;
        },
        {},
      );
      if (!sameJson(comparable(r, await live(r)), comparable(r, wanted))) throw ApplicationFailure.nonRetryable(`${describe(r)} reads back differently after the revert`, ErrorType.VerificationFailed);
    },
  };
}
