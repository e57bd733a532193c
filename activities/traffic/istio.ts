/**
 * Istio traffic router (Argo's `trafficRouting.istio`): canary weights on the named HTTP routes of
 * one or more VirtualServices, host-based (destinations whose host is stableService/canaryService)
 * or subset-based (destinations whose subset is the DestinationRule's stableSubsetName /
 * canarySubsetName; the router keeps those subsets' labels pointing at the stable and the canary
 * pods during the release, remembers the labels it found in an annotation, and gives them back when
 * removeManagedRoutes ends the release). An experiment step's weighted templates are extra destinations
 * (host: the template's Service, as Argo's additionalDestinations) in the weighted routes, the stable
 * at 100 − canary − their weights; their hosts are recorded in an annotation so that the next setWeight
 * without them (the step's end, an abort, removeManagedRoutes) removes them. Header and mirror routes are routes Glidepath adds at the top of `http[]`, recorded in an
 * annotation and removed by removeManagedRoutes. Nothing else in the objects changes: other routes,
 * other destinations' fields and every route a user added by hand stay as they are.
 * Described in docs/traffic.md.
 */
import type { KubeConfig, V1Deployment } from '@kubernetes/client-node';
import type { ReleaseTarget, TrafficRouter, WeightDestination } from '../contract.ts';
import { isNotFound } from '../kubernetes/errors.ts';
import { roleName, roleSelector } from '../kubernetes/objects.ts';
import { stablePodSelector } from '../kubernetes/stable-pods.ts';
import {
  EXPERIMENT_DESTINATIONS_ANNOTATION,
  checkWeight,
  invalidRouting,
  makeClients,
  managedNames,
  readObject,
  sameJson,
  setAnnotations,
  setManagedNames,
  stableWeightWith,
  updateObject,
  type ObjectRef,
  type RouterOptions,
  type RoutingObject,
  type StringMatch,
} from './common.ts';

/** On a DestinationRule: the labels of the subsets Glidepath re-pointed, as it found them (JSON: subset name → labels or null), given back at the end. */
export const ORIGINAL_SUBSETS_ANNOTATION = 'glidepath.dev/original-subsets';

type Subset = { name?: string; labels?: Record<string, string> };

/** Argo's `trafficRouting.istio` block. */
export interface IstioRouting {
  virtualService?: IstioVirtualServiceRef;
  virtualServices?: IstioVirtualServiceRef[];
  destinationRule?: { name: string; canarySubsetName: string; stableSubsetName: string };
}

export interface IstioVirtualServiceRef {
  name: string;
  /** HTTP route names; may be omitted when the VirtualService has a single HTTP route. */
  routes?: string[];
}

export interface IstioRouterOptions extends RouterOptions {
  /** networking.istio.io version to read and write. Default v1 (served since Istio 1.22). */
  apiVersion?: string;
}

interface Destination {
  host?: string;
  subset?: string;
  port?: unknown;
}

interface RouteDestination {
  destination?: Destination;
  weight?: number;
  [k: string]: unknown;
}

interface HttpRoute {
  name?: string;
  match?: unknown[];
  route?: RouteDestination[];
  mirror?: Destination;
  mirrorPercentage?: { value: number };
  [k: string]: unknown;
}

export function istioRouting(target: ReleaseTarget): IstioRouting {
  const block = target.trafficRouting?.istio as IstioRouting | undefined;
  if (!block || typeof block !== 'object') throw invalidRouting('trafficRouting.istio is missing');
  const vss = [...(block.virtualService ? [block.virtualService] : []), ...(block.virtualServices ?? [])];
  if (vss.length === 0) throw invalidRouting('trafficRouting.istio needs virtualService or virtualServices');
  return block;
}

function virtualServices(block: IstioRouting): IstioVirtualServiceRef[] {
  return [...(block.virtualService ? [block.virtualService] : []), ...(block.virtualServices ?? [])];
}

/** Whether an Istio destination host names `service` (short name or a FQDN in the namespace). */
function hostIs(host: string | undefined, service: string, namespace: string): boolean {
  if (!host) return false;
  return host === service || host === `${service}.${namespace}` || host === `${service}.${namespace}.svc` || host.startsWith(`${service}.${namespace}.svc.`);
}

export function createIstioRouter(kc: KubeConfig, opts: IstioRouterOptions = {}): TrafficRouter {
  const k = makeClients(kc, opts);
  const group = 'networking.istio.io';
  const apiVersion = `${group}/${(opts.apiVersion ?? 'v1').replace(/^networking\.istio\.io\//, '')}`;
  const vsRef = (target: ReleaseTarget, name: string): ObjectRef => ({
    apiVersion,
    kind: 'VirtualService',
    resource: `virtualservices.${group}`,
    namespace: target.namespace,
    name,
  });
  const drRef = (target: ReleaseTarget, name: string): ObjectRef => ({
    apiVersion,
    kind: 'DestinationRule',
    resource: `destinationrules.${group}`,
    namespace: target.namespace,
    name,
  });

  /** Which destination of a route is the stable one and which the canary. */
  const classify = (target: ReleaseTarget, block: IstioRouting) => {
    const dr = block.destinationRule;
    if (dr) {
      return {
        stable: (d: Destination | undefined) => d?.subset === dr.stableSubsetName,
        canary: (d: Destination | undefined) => d?.subset === dr.canarySubsetName,
        describe: `subsets "${dr.stableSubsetName}" and "${dr.canarySubsetName}"`,
      };
    }
    const stable = target.stableService;
    const canary = target.canaryService;
    if (!stable || !canary) throw invalidRouting('trafficRouting.istio without destinationRule needs stableService and canaryService (host-based routing)');
    return {
      stable: (d: Destination | undefined) => hostIs(d?.host, stable, target.namespace) && d?.subset === undefined,
      canary: (d: Destination | undefined) => hostIs(d?.host, canary, target.namespace) && d?.subset === undefined,
      describe: `hosts "${stable}" and "${canary}"`,
    };
  };

  /** The HTTP routes of `vs` the release weights: the named ones, or the only unmanaged one. */
  const weightedRoutes = (vs: RoutingObject, ref: IstioVirtualServiceRef): HttpRoute[] => {
    const http = ((vs.spec?.http as HttpRoute[] | undefined) ?? []);
    const managed = new Set(managedNames(vs));
    const where = `VirtualService ${vs.metadata?.namespace}/${ref.name}`;
    if (!ref.routes || ref.routes.length === 0) {
      const own = http.filter((r) => !(r.name && managed.has(r.name)));
      if (own.length !== 1) throw invalidRouting(`${where} has ${own.length} HTTP routes: name the ones to weight in virtualService.routes`);
      return own;
    }
    return ref.routes.map((name) => {
      const route = http.find((r) => r.name === name);
      if (!route) throw invalidRouting(`${where} has no HTTP route named "${name}" (routes: ${http.map((r) => r.name ?? '(unnamed)').join(', ') || 'none'})`);
      return route;
    });
  };

  /**
   * Sets the stable/canary weights of `route` and its experiment destinations (`extras`; hosts in
   * `added` that `extras` does not name are removed); returns whether anything changed.
   */
  const weighRoute = (target: ReleaseTarget, route: HttpRoute, weight: number, c: ReturnType<typeof classify>, where: string, extras: readonly WeightDestination[] = [], added: readonly string[] = []): boolean => {
    const dests = route.route ?? [];
    const extraOf = (d: Destination | undefined): string | undefined =>
      d?.subset === undefined ? [...extras.map((e) => e.service), ...added].find((h) => hostIs(d?.host, h, target.namespace)) : undefined;
    const stable = dests.filter((d) => c.stable(d.destination));
    const canary = dests.filter((d) => c.canary(d.destination));
    const other = dests.filter((d) => !c.stable(d.destination) && !c.canary(d.destination) && extraOf(d.destination) === undefined);
    if (stable.length !== 1 || canary.length !== 1 || other.length > 0) {
      throw invalidRouting(
        `${where} route "${route.name ?? '(unnamed)'}" must have exactly two destinations, ${c.describe}${added.length > 0 || extras.length > 0 ? ', besides the experiment\'s' : ''} (found ${dests.map((d) => `${d.destination?.host ?? '?'}${d.destination?.subset ? `/${d.destination.subset}` : ''}`).join(', ') || 'none'})`,
      );
    }
    const stableWeight = stableWeightWith(weight, extras);
    let changed = false;
    const s = stable[0] as RouteDestination;
    const n = canary[0] as RouteDestination;
    if (s.weight !== stableWeight) {
      s.weight = stableWeight;
      changed = true;
    }
    if ((n.weight ?? 0) !== weight || n.weight === undefined) {
      n.weight = weight;
      changed = true;
    }
    const kept: RouteDestination[] = [];
    const present = new Set<string>();
    for (const d of dests) {
      const host = c.stable(d.destination) || c.canary(d.destination) ? undefined : extraOf(d.destination);
      if (host === undefined) {
        kept.push(d);
        continue;
      }
      const want = extras.find((e) => e.service === host);
      if (!want || present.has(host)) {
        changed = true; // an experiment destination this call does not name goes
        continue;
      }
      present.add(host);
      if (d.weight !== want.weight) {
        d.weight = want.weight;
        changed = true;
      }
      kept.push(d);
    }
    for (const e of extras) {
      if (present.has(e.service)) continue;
      kept.push({ destination: { host: e.service }, weight: e.weight });
      changed = true;
    }
    if (changed) route.route = kept;
    return changed;
  };

  /** Whether `route` carries the canary at `weight`, each experiment destination at its weight and nothing else, the stable the rest. */
  const carries = (target: ReleaseTarget, route: HttpRoute, weight: number, extras: readonly WeightDestination[], c: ReturnType<typeof classify>): boolean => {
    const dests = route.route ?? [];
    const s = dests.find((d) => c.stable(d.destination));
    const n = dests.find((d) => c.canary(d.destination));
    if (!s || !n || dests.length !== 2 + extras.length) return false;
    if ((n.weight ?? 0) !== weight || (s.weight ?? 0) !== 100 - weight - extras.reduce((sum, e) => sum + e.weight, 0)) return false;
    return extras.every((e) => dests.some((d) => d.destination?.subset === undefined && hostIs(d.destination?.host, e.service, target.namespace) && d.weight === e.weight));
  };

  const readDeployment = (target: ReleaseTarget, name: string): Promise<V1Deployment> =>
    k.call({ verb: 'get', resource: 'deployments.apps', namespace: target.namespace, name }, () => k.apps.readNamespacedDeployment({ name, namespace: target.namespace }));

  /**
   * Keeps the DestinationRule's stable/canary subsets selecting the stable and the canary pods. The
   * canary's pods carry the stable's template labels, so the stable subset is pinned to the stable's
   * current ReplicaSet (`pod-template-hash`, as Argo adds `rollouts-pod-template-hash`); `pinned:
   * false` (a promotion rolling the stable forward) selects the whole workload instead.
   */
  const syncSubsets = async (target: ReleaseTarget, block: IstioRouting, pinned = true): Promise<void> => {
    const dr = block.destinationRule;
    if (!dr) return;
    const stable = await readDeployment(target, target.workload.name);
    const matchLabels = stable.spec?.selector?.matchLabels ?? {};
    if (Object.keys(matchLabels).length === 0) {
      throw invalidRouting(`Deployment ${target.namespace}/${target.workload.name} selects pods by matchExpressions only; subset routing needs matchLabels`);
    }
    const stableLabels = pinned ? ((await stablePodSelector(k, stable)) ?? matchLabels) : { ...matchLabels };
    const canaryLabels = await canarySelector(target, stable);
    await updateObject(
      k,
      drRef(target, dr.name),
      (obj) => {
        const subsets = ((obj.spec?.subsets as Subset[] | undefined) ?? []);
        const remembered = obj.metadata?.annotations?.[ORIGINAL_SUBSETS_ANNOTATION];
        const found: Record<string, Record<string, string> | null> = {};
        let changed = false;
        for (const [name, labels] of [
          [dr.stableSubsetName, stableLabels],
          [dr.canarySubsetName, canaryLabels],
        ] as const) {
          const subset = subsets.find((s) => s.name === name);
          if (!subset) throw invalidRouting(`DestinationRule ${target.namespace}/${dr.name} has no subset "${name}" (subsets: ${subsets.map((s) => s.name).join(', ') || 'none'})`);
          found[name] = subset.labels ? { ...subset.labels } : null;
          if (!sameJson(subset.labels ?? {}, labels)) {
            subset.labels = { ...labels };
            changed = true;
          }
        }
        // The user's labels are remembered once, before the first change, so they can be given back.
        if (changed && remembered === undefined) setAnnotations(obj, { [ORIGINAL_SUBSETS_ANNOTATION]: JSON.stringify(found) });
        return changed;
      },
      opts,
    );
  };

  /** The canary Deployment's selector (one made by an earlier Glidepath keeps its own), else the one it will have. */
  const canarySelector = async (target: ReleaseTarget, stable: V1Deployment): Promise<Record<string, string>> => {
    try {
      const canary = await readDeployment(target, roleName(target.workload.name, 'canary'));
      const ml = canary.spec?.selector?.matchLabels;
      if (ml && Object.keys(ml).length > 0) return { ...ml };
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    return roleSelector(stable, 'canary');
  };

  /** Gives the DestinationRule's subsets back the labels they had before the release (as remembered), and drops the annotation. */
  const restoreSubsets = async (target: ReleaseTarget, block: IstioRouting): Promise<void> => {
    const dr = block.destinationRule;
    if (!dr) return;
    await updateObject(
      k,
      drRef(target, dr.name),
      (obj) => {
        const remembered = obj.metadata?.annotations?.[ORIGINAL_SUBSETS_ANNOTATION];
        if (remembered === undefined) return false;
        let original: Record<string, Record<string, string> | null> = {};
        try {
          original = JSON.parse(remembered) as typeof original;
        } catch {
          // unreadable: nothing to give back; the annotation still goes
        }
        for (const subset of (obj.spec?.subsets as Subset[] | undefined) ?? []) {
          if (!subset.name || !Object.hasOwn(original, subset.name)) continue;
          const labels = original[subset.name];
          if (labels === null || labels === undefined) delete subset.labels;
          else subset.labels = { ...labels };
        }
        setAnnotations(obj, { [ORIGINAL_SUBSETS_ANNOTATION]: undefined });
        return true;
      },
      opts,
    );
  };

  const setWeight = async (target: ReleaseTarget, weight: number, extras: WeightDestination[] = []): Promise<void> => {
    checkWeight(weight);
    stableWeightWith(weight, extras);
    const block = istioRouting(target);
    const c = classify(target, block);
    await syncSubsets(target, block);
    for (const ref of virtualServices(block)) {
      await updateObject(
        k,
        vsRef(target, ref.name),
        (vs) => {
          const where = `VirtualService ${target.namespace}/${ref.name}`;
          const added = managedNames(vs, EXPERIMENT_DESTINATIONS_ANNOTATION);
          let changed = false;
          for (const route of weightedRoutes(vs, ref)) changed = weighRoute(target, route, weight, c, where, extras, added) || changed;
          // Managed mirror routes carry the same split as the routes they mirror.
          const managed = new Set(managedNames(vs));
          for (const route of (vs.spec?.http as HttpRoute[] | undefined) ?? []) {
            if (route.name && managed.has(route.name) && route.mirror) changed = weighRoute(target, route, weight, c, where, extras, added) || changed;
          }
          const hosts = extras.map((e) => e.service);
          if (!sameJson(added, hosts)) {
            setManagedNames(vs, hosts, EXPERIMENT_DESTINATIONS_ANNOTATION);
            changed = true;
          }
          return changed;
        },
        opts,
      );
    }
  };

  const verifyWeight = async (target: ReleaseTarget, weight: number, extras: WeightDestination[] = []): Promise<boolean> => {
    const block = istioRouting(target);
    const c = classify(target, block);
    for (const ref of virtualServices(block)) {
      const vs = await readObject(k, vsRef(target, ref.name));
      for (const route of weightedRoutes(vs, ref)) if (!carries(target, route, weight, extras, c)) return false;
    }
    return true;
  };

  /** The canary destination as the weighted routes have it (host or subset, port kept). */
  const canaryDestination = (vs: RoutingObject, ref: IstioVirtualServiceRef, c: ReturnType<typeof classify>): Destination => {
    for (const route of weightedRoutes(vs, ref)) {
      const d = (route.route ?? []).find((x) => c.canary(x.destination));
      if (d?.destination) return structuredClone(d.destination);
    }
    throw invalidRouting(`VirtualService ${vs.metadata?.namespace}/${ref.name} has no canary destination (${c.describe})`);
  };

  /** Puts `route` (named `name`) at the top of http[] (in place when it is there), or removes it when `route` is undefined. */
  const upsertManaged = async (target: ReleaseTarget, build: (vs: RoutingObject, ref: IstioVirtualServiceRef) => HttpRoute | undefined, name: string): Promise<void> => {
    const block = istioRouting(target);
    for (const ref of virtualServices(block)) {
      await updateObject(
        k,
        vsRef(target, ref.name),
        (vs) => {
          const http = [...((vs.spec?.http as HttpRoute[] | undefined) ?? [])];
          const managed = managedNames(vs);
          const at = http.findIndex((r) => r.name === name);
          if (at >= 0 && !managed.includes(name)) {
            throw invalidRouting(`VirtualService ${target.namespace}/${ref.name} already has a route "${name}" that Glidepath did not add: choose another name`);
          }
          const route = build(vs, ref);
          if (route === undefined) {
            if (at < 0 && !managed.includes(name)) return false;
            if (at >= 0) http.splice(at, 1);
            setManagedNames(vs, managed.filter((n) => n !== name));
          } else {
            if (at >= 0 && sameJson(http[at], route)) return false;
            if (at >= 0) http[at] = route;
            else http.unshift(route);
            if (!managed.includes(name)) setManagedNames(vs, [...managed, name]);
          }
          vs.spec = { ...(vs.spec ?? {}), http };
          return true;
        },
        opts,
      );
    }
  };

  const toIstioMatch = (m: StringMatch): StringMatch => ({ ...(m.exact !== undefined ? { exact: m.exact } : {}), ...(m.prefix !== undefined ? { prefix: m.prefix } : {}), ...(m.regex !== undefined ? { regex: m.regex } : {}) });

  return {
    type: 'istio',
    experimentWeights: true,
    setWeight,
    verifyWeight,

    async setHeaderRoute(target, route) {
      const match = route.match;
      const c = classify(target, istioRouting(target));
      await upsertManaged(
        target,
        (vs, ref) =>
          match.length === 0
            ? undefined
            : {
                name: route.name,
                match: [{ headers: Object.fromEntries(match.map((m) => [m.headerName, toIstioMatch(m.headerValue)])) }],
                route: [{ destination: canaryDestination(vs, ref, c), weight: 100 }],
              },
        route.name,
      );
    },

    async setMirrorRoute(target, route) {
      const match = route.match;
      const c = classify(target, istioRouting(target));
      await upsertManaged(
        target,
        (vs, ref) => {
          if (match.length === 0) return undefined;
          const [first] = weightedRoutes(vs, ref);
          return {
            name: route.name,
            match: match.map((m) => ({
              ...(m.method ? { method: toIstioMatch(m.method) } : {}),
              ...(m.path ? { uri: toIstioMatch(m.path) } : {}),
              ...(m.headers ? { headers: Object.fromEntries(Object.entries(m.headers).map(([h, v]) => [h, toIstioMatch(v)])) } : {}),
            })),
            route: structuredClone(first?.route ?? []),
            mirror: canaryDestination(vs, ref, c),
            mirrorPercentage: { value: route.percentage },
          };
        },
        route.name,
      );
    },

    /** Managed header/mirror routes go; the weighted routes go back to all-stable (100/0); then the DestinationRule's subsets get their own labels back. */
    async removeManagedRoutes(target) {
      const block = istioRouting(target);
      const c = classify(target, block);
      await removeRoutes(target, block, c);
      await restoreSubsets(target, block);
    },

    async unpinStable(target) {
      const block = istioRouting(target);
      const dr = block.destinationRule;
      if (!dr) return;
      const current = await readObject(k, drRef(target, dr.name));
      if (current.metadata?.annotations?.[ORIGINAL_SUBSETS_ANNOTATION] === undefined) return; // subsets not Glidepath's (yet)
      await syncSubsets(target, block, false);
    },
  };

  /** Managed header/mirror routes removed, weighted routes back to 100/0. */
  async function removeRoutes(target: ReleaseTarget, block: IstioRouting, c: ReturnType<typeof classify>): Promise<void> {
    for (const ref of virtualServices(block)) {
      await updateObject(
        k,
        vsRef(target, ref.name),
        (vs) => {
          const managed = new Set(managedNames(vs));
          const added = managedNames(vs, EXPERIMENT_DESTINATIONS_ANNOTATION);
          const http = (vs.spec?.http as HttpRoute[] | undefined) ?? [];
          const kept = http.filter((r) => !(r.name && managed.has(r.name)));
          let changed = kept.length !== http.length || managed.size > 0 || added.length > 0;
          vs.spec = { ...(vs.spec ?? {}), http: kept };
          if (managed.size > 0) setManagedNames(vs, []);
          if (added.length > 0) setManagedNames(vs, [], EXPERIMENT_DESTINATIONS_ANNOTATION);
          for (const route of weightedRoutes(vs, ref)) changed = weighRoute(target, route, 0, c, `VirtualService ${target.namespace}/${ref.name}`, [], added) || changed;
          return changed;
        },
        opts,
      );
    }
  }
}
