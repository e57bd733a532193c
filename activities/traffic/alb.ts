/**
 * AWS Load Balancer Controller traffic router (Argo's `trafficRouting.alb`): on each Ingress, the
 * forward action annotation `<prefix>/actions.<rootService or stableService>` holding the weighted
 * target groups (canaryService and stableService on servicePort). The Ingress must already route
 * that action: a path whose backend is `{service: {name: <action>, port: {name: use-annotation}}}`.
 * Header routes are Argo's: `<prefix>/actions.<route>` (forward 100 % to the canary),
 * `<prefix>/conditions.<route>` (http-header conditions) and a `/*` path at the top of the rules that
 * route the action, whose backend is `<route>` / `use-annotation`. Only these annotations and paths
 * change; the user's other annotations, rules and paths stay as they are. Described in docs/traffic.md.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { ReleaseTarget, TrafficRouter } from '../contract.ts';
import {
  annotationPrefix,
  checkWeight,
  ingressPaths,
  ingressRef,
  ingressSpec,
  invalidRouting,
  makeClients,
  managedNames,
  readObject,
  sameJson,
  setAnnotations,
  setManagedNames,
  updateObject,
  type IngressPath,
  type RouterOptions,
  type RoutingObject,
} from './common.ts';

/** Argo's `trafficRouting.alb` block (the fields this router implements). */
export interface AlbRouting {
  ingress?: string;
  ingresses?: string[];
  servicePort: number;
  rootService?: string;
  /** Default `alb.ingress.kubernetes.io`. */
  annotationPrefix?: string;
  stickinessConfig?: { enabled: boolean; durationSeconds: number };
}

export const ALB_ANNOTATION_PREFIX = 'alb.ingress.kubernetes.io';
/** The port name that tells the AWS Load Balancer Controller to take the backend from an actions annotation. */
export const USE_ANNOTATION = 'use-annotation';
/** Path of a header route's Ingress path (Argo's: the ALB wildcard for every path). */
const HEADER_ROUTE_PATH = '/*';

export function albRouting(target: ReleaseTarget): AlbRouting {
  const block = target.trafficRouting?.alb as AlbRouting | undefined;
  if (!block || typeof block !== 'object') throw invalidRouting('trafficRouting.alb is missing');
  if (ingresses(block).length === 0) throw invalidRouting('trafficRouting.alb needs ingress or ingresses');
  if (!Number.isInteger(block.servicePort)) throw invalidRouting('trafficRouting.alb needs servicePort');
  return block;
}

function ingresses(block: AlbRouting): string[] {
  return [...(block.ingress ? [block.ingress] : []), ...(block.ingresses ?? [])];
}

interface TargetGroup {
  serviceName?: string;
  servicePort?: string | number;
  weight?: number;
}

/**
 * The target groups of a forward action annotation, or undefined when it is not one. Keys are read
 * case-insensitively, as the controller's JSON decoder does (Argo writes `Type`/`ForwardConfig`/`TargetGroups`).
 */
export function forwardTargetGroups(raw: string | undefined): TargetGroup[] | undefined {
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const get = (o: unknown, key: string): unknown => {
    if (!o || typeof o !== 'object') return undefined;
    const hit = Object.keys(o).find((k) => k.toLowerCase() === key.toLowerCase());
    return hit === undefined ? undefined : (o as Record<string, unknown>)[hit];
  };
  if (String(get(parsed, 'type')).toLowerCase() !== 'forward') return undefined;
  const groups = get(get(parsed, 'forwardConfig'), 'targetGroups');
  if (!Array.isArray(groups)) return undefined;
  return groups.map((g) => {
    const name = get(g, 'serviceName');
    const port = get(g, 'servicePort');
    const weight = get(g, 'weight');
    return {
      ...(typeof name === 'string' ? { serviceName: name } : {}),
      ...(typeof port === 'string' || typeof port === 'number' ? { servicePort: port } : {}),
      ...(typeof weight === 'number' ? { weight } : {}),
    };
  });
}

/** Whether two action annotation values mean the same (target groups and stickiness, key case ignored). */
function sameAction(a: string | undefined, b: string): boolean {
  if (a === b) return true;
  if (a === undefined) return false;
  const lower = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(lower) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k.toLowerCase(), lower(x)])) : typeof v === 'number' ? String(v) : v;
  try {
    return sameJson(lower(JSON.parse(a)), lower(JSON.parse(b)));
  } catch {
    return false;
  }
}

export function createAlbRouter(kc: KubeConfig, opts: RouterOptions = {}): TrafficRouter {
  const k = makeClients(kc, opts);

  const config = (target: ReleaseTarget) => {
    const block = albRouting(target);
    if (!target.stableService || !target.canaryService) throw invalidRouting('the alb router needs stableService and canaryService');
    const prefix = annotationPrefix(block.annotationPrefix, ALB_ANNOTATION_PREFIX);
    const action = block.rootService ?? target.stableService;
    return {
      block,
      prefix,
      action,
      actionKey: `${prefix}/actions.${action}`,
      stable: target.stableService,
      canary: target.canaryService,
      port: String(block.servicePort),
    };
  };
  type Config = ReturnType<typeof config>;

  const stickiness = (c: Config) =>
    c.block.stickinessConfig?.enabled ? { targetGroupStickinessConfig: { enabled: true, durationSeconds: c.block.stickinessConfig.durationSeconds } } : {};

  /** The weighted forward action (canary first, then stable, as Argo writes them). */
  const forwardAction = (c: Config, weight: number): string =>
    JSON.stringify({
      type: 'forward',
      forwardConfig: {
        targetGroups: [
          { serviceName: c.canary, servicePort: c.port, weight },
          { serviceName: c.stable, servicePort: c.port, weight: 100 - weight },
        ],
        ...stickiness(c),
      },
    });

  const isActionPath = (p: IngressPath, service: string): boolean => p.backend?.service?.name === service && p.backend.service.port?.name === USE_ANNOTATION;

  /** The Ingress must route the action through the annotation; otherwise a named InvalidSpec. */
  const checkIngress = (ing: RoutingObject, c: Config): void => {
    const where = `Ingress ${ing.metadata?.namespace}/${ing.metadata?.name}`;
    const paths = ingressPaths(ingressSpec(ing)).map((x) => x.path);
    const toService = paths.filter((p) => p.backend?.service?.name === c.action);
    if (toService.length === 0) {
      throw invalidRouting(`${where} has no path whose backend is service "${c.action}" (${c.block.rootService ? 'rootService' : 'stableService'}); the alb router weights that action`);
    }
    if (!toService.some((p) => isActionPath(p, c.action))) {
      const port = toService[0]?.backend?.service?.port;
      throw invalidRouting(
        `${where} routes service "${c.action}" to port ${port?.name ?? port?.number ?? '(none)'}, not through the action annotation: ` +
          `the backend must be {service: {name: ${c.action}, port: {name: ${USE_ANNOTATION}}}} for ${c.actionKey} to apply`,
      );
    }
  };

  const weigh = (ing: RoutingObject, c: Config, weight: number): boolean => {
    checkIngress(ing, c);
    const current = ing.metadata?.annotations?.[c.actionKey];
    const want = forwardAction(c, weight);
    if (sameAction(current, want)) return false;
    return setAnnotations(ing, { [c.actionKey]: want });
  };

  /** Removes header route `name` (its two annotations and its paths) from a copy; true when anything was there. */
  const dropHeaderRoute = (ing: RoutingObject, c: Config, name: string): boolean => {
    let changed = setAnnotations(ing, { [`${c.prefix}/actions.${name}`]: undefined, [`${c.prefix}/conditions.${name}`]: undefined });
    for (const rule of ingressSpec(ing).rules ?? []) {
      const paths = rule.http?.paths;
      if (!paths || !rule.http) continue;
      const kept = paths.filter((p) => !isActionPath(p, name));
      if (kept.length !== paths.length) {
        rule.http.paths = kept;
        changed = true;
      }
    }
    return changed;
  };

  return {
    type: 'alb',

    async setWeight(target, weight) {
      checkWeight(weight);
      const c = config(target);
      for (const name of ingresses(c.block)) await updateObject(k, ingressRef(target.namespace, name), (ing) => weigh(ing, c, weight), opts);
    },

    /** Reads the action annotation back (Argo asks the AWS API for the target groups' weights; Glidepath reads the object the controller reads). */
    async verifyWeight(target, weight) {
      const c = config(target);
      for (const name of ingresses(c.block)) {
        const ing = await readObject(k, ingressRef(target.namespace, name));
        checkIngress(ing, c);
        const groups = forwardTargetGroups(ing.metadata?.annotations?.[c.actionKey]);
        if (!groups) return false;
        const canary = groups.find((g) => g.serviceName === c.canary && String(g.servicePort) === c.port);
        const stable = groups.find((g) => g.serviceName === c.stable && String(g.servicePort) === c.port);
        if ((canary?.weight ?? 0) !== weight || (stable?.weight ?? 0) !== 100 - weight) return false;
      }
      return true;
    },

    /** Argo's header route: actions.<name> (canary 100 %), conditions.<name> (http-header, exact values), a `/*` path first; an empty match removes it. */
    async setHeaderRoute(target, spec) {
      const c = config(target);
      const match = spec.match;
      if (match.length > 0 && !/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(spec.name)) {
        throw invalidRouting(`header route "${spec.name}": the alb router names an Ingress backend after the route, which must be a DNS-1035 label (lowercase letters, digits, "-", starting with a letter)`);
      }
      const values = match.map((m) => {
        const v = m.headerValue;
        if (v.exact === undefined) throw invalidRouting(`header route "${spec.name}": an ALB http-header condition matches values exactly, not by ${v.prefix !== undefined ? 'prefix' : 'regex'} (header ${m.headerName})`);
        if (/[*?]/.test(v.exact)) throw invalidRouting(`header route "${spec.name}": "${v.exact}" contains * or ?, which an ALB http-header condition treats as wildcards (header ${m.headerName})`);
        return { field: 'http-header', httpHeaderConfig: { httpHeaderName: m.headerName, values: [v.exact] } };
      });
      const action = JSON.stringify({ type: 'forward', forwardConfig: { targetGroups: [{ serviceName: c.canary, servicePort: c.port, weight: 100 }], ...stickiness(c) } });
      const actionKey = `${c.prefix}/actions.${spec.name}`;
      const conditionKey = `${c.prefix}/conditions.${spec.name}`;
      for (const name of ingresses(c.block)) {
        await updateObject(
          k,
          ingressRef(target.namespace, name),
          (ing) => {
            checkIngress(ing, c);
            const managed = managedNames(ing);
            const where = `Ingress ${ing.metadata?.namespace}/${name}`;
            if (!managed.includes(spec.name)) {
              const a = ing.metadata?.annotations ?? {};
              const usedPath = ingressPaths(ingressSpec(ing)).some(({ path }) => path.backend?.service?.name === spec.name);
              if (actionKey in a || conditionKey in a || usedPath || spec.name === c.action) {
                throw invalidRouting(`${where} already uses "${spec.name}" (an action, condition or backend Glidepath did not add): choose another route name`);
              }
            }
            if (match.length === 0) {
              if (!managed.includes(spec.name)) return false;
              dropHeaderRoute(ing, c, spec.name);
              setManagedNames(ing, managed.filter((n) => n !== spec.name));
              return true;
            }
            let changed = setAnnotations(ing, { [actionKey]: sameAction(ing.metadata?.annotations?.[actionKey], action) ? ing.metadata?.annotations?.[actionKey] : action, [conditionKey]: JSON.stringify(values) });
            // The path goes first in every rule that routes the weighted action (rules for other services are not touched).
            for (const rule of ingressSpec(ing).rules ?? []) {
              const paths = rule.http?.paths ?? [];
              if (!paths.some((p) => isActionPath(p, c.action)) || !rule.http) continue;
              const want: IngressPath = { path: HEADER_ROUTE_PATH, pathType: 'ImplementationSpecific', backend: { service: { name: spec.name, port: { name: USE_ANNOTATION } } } };
              const at = paths.findIndex((p) => isActionPath(p, spec.name));
              if (at === 0 && sameJson(paths[0], want)) continue;
              rule.http.paths = [want, ...paths.filter((p) => !isActionPath(p, spec.name))];
              changed = true;
            }
            if (!managed.includes(spec.name)) {
              setManagedNames(ing, [...managed, spec.name]);
              changed = true;
            }
            return changed;
          },
          opts,
        );
      }
    },

    /** Header routes Glidepath added are removed; the weighted action goes to 100/0 (it stays: the Ingress routes through it). */
    async removeManagedRoutes(target) {
      const c = config(target);
      for (const name of ingresses(c.block)) {
        await updateObject(
          k,
          ingressRef(target.namespace, name),
          (ing) => {
            let changed = false;
            for (const route of managedNames(ing)) changed = dropHeaderRoute(ing, c, route) || changed;
            if (managedNames(ing).length > 0) {
              setManagedNames(ing, []);
              changed = true;
            }
            return weigh(ing, c, 0) || changed;
          },
          opts,
        );
      }
    },
  };
}
