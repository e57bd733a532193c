/**
 * Gateway API traffic router, configured either natively (`trafficRouting.gatewayAPI`) or as Argo's
 * plugin (`trafficRouting.plugins["argoproj-labs/gatewayAPI"]`), with the same block: canary weights
 * on the backendRefs of HTTPRoute and GRPCRoute rules that send to both stableService and
 * canaryService. Header routes are rules Glidepath adds (named, recorded in an annotation) that send
 * matching requests to the canary only (on both kinds); mirror routes are rules Glidepath adds that
 * serve matching requests as the weighted rule does and copy `percent` of them to the canary (a
 * `RequestMirror` filter, Standard channel since Gateway API v1.3; HTTPRoutes only, refused when the
 * block names GRPCRoutes). removeManagedRoutes removes both kinds and sets 100/0. Rules that do not
 * reference both Services, and rules a user added by hand, are never changed. Described in
 * docs/traffic.md.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type { ReleaseTarget, TrafficRouter } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import {
  checkWeight,
  invalidRouting,
  makeClients,
  managedNames,
  readObject,
  sameJson,
  setManagedNames,
  updateObject,
  type ObjectRef,
  type RouterOptions,
  type RoutingObject,
  type RouteMatch,
  type StringMatch,
} from './common.ts';

export const GATEWAY_API_PLUGIN = 'argoproj-labs/gatewayAPI';

/** The plugin's configuration block (the fields this router implements). */
export interface GatewayApiRouting {
  httpRoute?: string;
  httpRoutes?: { name: string; useHeaderRoutes?: boolean }[];
  grpcRoute?: string;
  grpcRoutes?: { name: string; useHeaderRoutes?: boolean }[];
  /** Namespace of the routes (HTTPRoutes and GRPCRoutes); the release's namespace when absent. */
  namespace?: string;
}

export interface GatewayApiRouterOptions extends RouterOptions {
  /** gateway.networking.k8s.io version. Default v1. */
  apiVersion?: string;
  /** The trafficRouting key it is registered under (its `type`, in messages). Default `plugins`. */
  key?: GatewayApiKey;
}

interface BackendRef {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  port?: number;
  weight?: number;
  [k: string]: unknown;
}

interface Rule {
  name?: string;
  matches?: unknown[];
  filters?: { type?: string; requestMirror?: unknown; [k: string]: unknown }[];
  backendRefs?: BackendRef[];
  [k: string]: unknown;
}

/** Whether a rule carries a RequestMirror filter (a managed mirror rule: reweighted with the weighted rules). */
const mirrors = (rule: Rule): boolean => (rule.filters ?? []).some((f) => f.type === 'RequestMirror');

type GatewayStringMatch = { type: string; value: string };

/** Argo's string match as a Gateway API path match (the default type, PathPrefix, written out). */
function pathMatch(m: StringMatch, route: string): GatewayStringMatch {
  if (m.exact !== undefined) return { type: 'Exact', value: m.exact };
  if (m.prefix !== undefined) return { type: 'PathPrefix', value: m.prefix };
  if (m.regex !== undefined) return { type: 'RegularExpression', value: m.regex };
  throw invalidRouting(`mirror route "${route}": a path match needs exact, prefix or regex`);
}

/** Argo's route match as an HTTPRouteMatch, every field the apiserver would default written out (so a repeated call compares equal). */
function httpRouteMatch(m: RouteMatch, route: string): Record<string, unknown> {
  const out: Record<string, unknown> = { path: m.path ? pathMatch(m.path, route) : { type: 'PathPrefix', value: '/' } };
  if (m.method) {
    if (m.method.exact === undefined) throw invalidRouting(`mirror route "${route}": the Gateway API matches a method exactly, not by prefix or regex`);
    out.method = m.method.exact;
  }
  if (m.headers) {
    out.headers = Object.entries(m.headers).map(([name, v]) => {
      if (v.exact !== undefined) return { type: 'Exact', name, value: v.exact };
      if (v.regex !== undefined) return { type: 'RegularExpression', name, value: v.regex };
      throw invalidRouting(`mirror route "${route}": the Gateway API matches headers exactly or by regex, not by prefix (header ${name})`);
    });
  }
  return out;
}

/** The trafficRouting keys this router serves: Glidepath's native one and Argo's plugin form. */
export type GatewayApiKey = 'gatewayAPI' | 'plugins';

/** Whether a block names at least one route (HTTPRoute or GRPCRoute). */
const namesRoutes = (b: GatewayApiRouting): boolean => Boolean(b.httpRoute || (b.httpRoutes ?? []).length || b.grpcRoute || (b.grpcRoutes ?? []).length);

export function gatewayApiRouting(target: ReleaseTarget): GatewayApiRouting {
  const native = target.trafficRouting?.gatewayAPI as GatewayApiRouting | undefined;
  if (native !== undefined) {
    if (!native || typeof native !== 'object' || !namesRoutes(native)) throw invalidRouting('trafficRouting.gatewayAPI needs httpRoute, httpRoutes, grpcRoute or grpcRoutes');
    return native;
  }
  const plugins = target.trafficRouting?.plugins as Record<string, unknown> | undefined;
  if (!plugins || typeof plugins !== 'object') throw invalidRouting('trafficRouting.plugins is missing');
  const names = Object.keys(plugins);
  const unknown = names.filter((n) => n !== GATEWAY_API_PLUGIN);
  if (unknown.length > 0) {
    throw ApplicationFailure.nonRetryable(`traffic router plugin(s) ${unknown.join(', ')} not available on this worker (available: ${GATEWAY_API_PLUGIN})`, ErrorType.UnsupportedRouter);
  }
  const block = plugins[GATEWAY_API_PLUGIN] as GatewayApiRouting | undefined;
  if (!block || typeof block !== 'object' || !namesRoutes(block)) throw invalidRouting(`plugins["${GATEWAY_API_PLUGIN}"] needs httpRoute, httpRoutes, grpcRoute or grpcRoutes`);
  return block;
}

type RouteKind = 'HTTPRoute' | 'GRPCRoute';

/** A route the block names: its kind, and whether header routes go onto it. */
interface NamedRoute {
  kind: RouteKind;
  name: string;
  useHeaderRoutes: boolean;
}

/** The routes of a block, HTTPRoutes first, as Argo's plugin orders them (`httpRoute`/`grpcRoute` take header routes, listed routes when they say so). */
function routeNames(block: GatewayApiRouting): NamedRoute[] {
  const of = (kind: RouteKind, one: string | undefined, list: { name: string; useHeaderRoutes?: boolean }[] | undefined): NamedRoute[] => [
    ...(one ? [{ kind, name: one, useHeaderRoutes: true }] : []),
    ...(list ?? []).map((r) => ({ kind, name: r.name, useHeaderRoutes: r.useHeaderRoutes ?? false })),
  ];
  return [...of('HTTPRoute', block.httpRoute, block.httpRoutes), ...of('GRPCRoute', block.grpcRoute, block.grpcRoutes)];
}

export function createGatewayApiRouter(kc: KubeConfig, opts: GatewayApiRouterOptions = {}): TrafficRouter {
  const k = makeClients(kc, opts);
  const group = 'gateway.networking.k8s.io';
  const apiVersion = `${group}/${(opts.apiVersion ?? 'v1').replace(/^gateway\.networking\.k8s\.io\//, '')}`;
  const ref = (target: ReleaseTarget, block: GatewayApiRouting, r: NamedRoute): ObjectRef => ({
    apiVersion,
    kind: r.kind,
    resource: `${r.kind.toLowerCase()}s.${group}`,
    namespace: block.namespace ?? target.namespace,
    name: r.name,
  });

  const services = (target: ReleaseTarget): { stable: string; canary: string } => {
    if (!target.stableService || !target.canaryService) throw invalidRouting(`the ${GATEWAY_API_PLUGIN} router needs stableService and canaryService`);
    return { stable: target.stableService, canary: target.canaryService };
  };

  const isService = (b: BackendRef, name: string, namespace: string, routeNamespace: string): boolean =>
    (b.group ?? '') === '' && (b.kind ?? 'Service') === 'Service' && b.name === name && (b.namespace ?? routeNamespace) === namespace;

  /** The rules of `route` to weight: unmanaged rules with backendRefs to both Services, and the managed mirror rules (they serve as the weighted ones do). */
  const weightedRules = (route: RoutingObject, target: ReleaseTarget): { rule: Rule; stable: BackendRef; canary: BackendRef }[] => {
    const svc = services(target);
    const managed = new Set(managedNames(route));
    const routeNs = route.metadata?.namespace ?? target.namespace;
    const out: { rule: Rule; stable: BackendRef; canary: BackendRef }[] = [];
    for (const rule of (route.spec?.rules as Rule[] | undefined) ?? []) {
      if (rule.name && managed.has(rule.name) && !mirrors(rule)) continue;
      const refs = rule.backendRefs ?? [];
      const stable = refs.find((b) => isService(b, svc.stable, target.namespace, routeNs));
      const canary = refs.find((b) => isService(b, svc.canary, target.namespace, routeNs));
      if (stable && canary) out.push({ rule, stable, canary });
    }
    if (!out.some((r) => !(r.rule.name && managed.has(r.rule.name)))) {
      throw invalidRouting(`${route.kind ?? 'HTTPRoute'} ${routeNs}/${route.metadata?.name} has no rule with backendRefs to both Services ${svc.stable} and ${svc.canary}`);
    }
    return out;
  };

  const weigh = (route: RoutingObject, target: ReleaseTarget, weight: number): boolean => {
    let changed = false;
    for (const { stable, canary } of weightedRules(route, target)) {
      if (stable.weight !== 100 - weight) {
        stable.weight = 100 - weight;
        changed = true;
      }
      if (canary.weight !== weight) {
        canary.weight = weight;
        changed = true;
      }
    }
    return changed;
  };

  /**
   * Adds, replaces or (`rule` undefined) removes the managed rule `name`, first in rules[], on each
   * route `on` selects; a rule of that name Glidepath did not add is refused.
   */
  const upsertManaged = async (target: ReleaseTarget, name: string, on: (r: NamedRoute) => boolean, build: (route: RoutingObject, r: NamedRoute) => Rule | undefined): Promise<void> => {
    const block = gatewayApiRouting(target);
    for (const r of routeNames(block)) {
      if (!on(r)) continue;
      await updateObject(
        k,
        ref(target, block, r),
        (route) => {
          const rules = [...((route.spec?.rules as Rule[] | undefined) ?? [])];
          const managed = managedNames(route);
          const at = rules.findIndex((x) => x.name === name);
          if (at >= 0 && !managed.includes(name)) {
            throw invalidRouting(`${r.kind} ${route.metadata?.namespace}/${r.name} already has a rule "${name}" that Glidepath did not add: choose another name`);
          }
          const rule = build(route, r);
          if (rule === undefined) {
            if (at < 0 && !managed.includes(name)) return false;
            if (at >= 0) rules.splice(at, 1);
            setManagedNames(route, managed.filter((n) => n !== name));
          } else {
            if (at >= 0 && sameJson(rules[at], rule)) return false;
            if (at >= 0) rules[at] = rule;
            else rules.unshift(rule);
            if (!managed.includes(name)) setManagedNames(route, [...managed, name]);
          }
          route.spec = { ...(route.spec ?? {}), rules };
          return true;
        },
        opts,
      );
    }
  };

  return {
    type: opts.key ?? 'plugins',

    async setWeight(target, weight) {
      checkWeight(weight);
      const block = gatewayApiRouting(target);
      for (const r of routeNames(block)) await updateObject(k, ref(target, block, r), (route) => weigh(route, target, weight), opts);
    },

    async verifyWeight(target, weight) {
      const block = gatewayApiRouting(target);
      for (const r of routeNames(block)) {
        const route = await readObject(k, ref(target, block, r));
        for (const { stable, canary } of weightedRules(route, target)) {
          // Gateway API's default weight is 1 for a backendRef without one.
          if ((canary.weight ?? 1) !== weight || (stable.weight ?? 1) !== 100 - weight) return false;
        }
      }
      return true;
    },

    /**
     * A managed rule, first in rules[], sending requests whose headers match to the canary only (empty
     * match removes it). On an HTTPRoute it matches every path; on a GRPCRoute every method (no method match).
     */
    async setHeaderRoute(target, spec) {
      await upsertManaged(target, spec.name, (r) => r.useHeaderRoutes, (route, r) => {
        if (spec.match.length === 0) return undefined;
        const [first] = weightedRules(route, target);
        const canaryRef: BackendRef = { ...structuredClone(first?.canary ?? {}), weight: 1 };
        const headers = spec.match.map((m) => {
          const v = m.headerValue;
          if (v.regex !== undefined) return { type: 'RegularExpression', name: m.headerName, value: v.regex };
          if (v.exact !== undefined) return { type: 'Exact', name: m.headerName, value: v.exact };
          throw invalidRouting(`header route "${spec.name}": the Gateway API matches headers exactly or by regex, not by prefix (header ${m.headerName})`);
        });
        if (r.kind === 'GRPCRoute') return { name: spec.name, matches: [{ headers }], backendRefs: [canaryRef] };
        // The path match the apiserver would default (PathPrefix /) is written out, so an identical call compares equal and writes nothing.
        return { name: spec.name, matches: [{ path: { type: 'PathPrefix', value: '/' }, headers }], backendRefs: [canaryRef] };
      });
    },

    /**
     * A managed rule, first in rules[], for requests matching `match`: served by the weighted rule's
     * backends at its weights (kept in step by setWeight), `percentage` of them copied to the canary
     * by a RequestMirror filter with `percent` (empty match removes it). On every HTTPRoute; refused,
     * before anything is written, when the block names GRPCRoutes.
     */
    async setMirrorRoute(target, spec) {
      if (!Number.isInteger(spec.percentage) || spec.percentage < 0 || spec.percentage > 100) {
        throw invalidRouting(`mirror route "${spec.name}": percentage must be a whole number from 0 to 100, got ${spec.percentage}`);
      }
      const grpc = routeNames(gatewayApiRouting(target)).filter((r) => r.kind === 'GRPCRoute');
      if (grpc.length > 0) {
        throw invalidRouting(`mirror route "${spec.name}": mirror routes are not supported on GRPCRoutes (grpcRoute/grpcRoutes: ${grpc.map((r) => r.name).join(', ')})`);
      }
      await upsertManaged(target, spec.name, () => true, (route) => {
        if (spec.match.length === 0) return undefined;
        const [first] = weightedRules(route, target).filter((w) => !mirrors(w.rule));
        if (!first) return undefined; // weightedRules refused the route already
        const { group, kind, name, namespace, port } = first.canary;
        const mirrorRef = { group: group ?? '', kind: kind ?? 'Service', name, ...(namespace !== undefined ? { namespace } : {}), ...(port !== undefined ? { port } : {}) };
        return {
          name: spec.name,
          matches: spec.match.map((m) => httpRouteMatch(m, spec.name)),
          filters: [{ type: 'RequestMirror', requestMirror: { backendRef: mirrorRef, percent: spec.percentage } }],
          backendRefs: [structuredClone(first.stable), structuredClone(first.canary)],
        };
      });
    },

    async removeManagedRoutes(target) {
      const block = gatewayApiRouting(target);
      for (const r of routeNames(block)) {
        await updateObject(
          k,
          ref(target, block, r),
          (route) => {
            const managed = new Set(managedNames(route));
            const rules = (route.spec?.rules as Rule[] | undefined) ?? [];
            const kept = rules.filter((x) => !(x.name && managed.has(x.name)));
            let changed = kept.length !== rules.length || managed.size > 0;
            route.spec = { ...(route.spec ?? {}), rules: kept };
            if (managed.size > 0) setManagedNames(route, []);
            changed = weigh(route, target, 0) || changed;
            return changed;
          },
          opts,
        );
      }
    },
  };
}
