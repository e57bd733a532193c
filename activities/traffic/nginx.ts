/**
 * NGINX Ingress traffic router (Argo's `trafficRouting.nginx`): for each stable Ingress, a canary
 * Ingress `<workload>-<stableIngress>-canary` that Glidepath creates and owns, copied from the stable
 * Ingress's rules that route to stableService with those backends switched to canaryService, and
 * the ingress-nginx canary annotations `<prefix>/canary: "true"` and `<prefix>/canary-weight`. A
 * header route is the canary Ingress's `canary-by-header` (+ `-value` or `-pattern`): NGINX honours
 * one header per canary Ingress, so one header route with one match. The stable Ingress is only
 * read, never written. removeManagedRoutes (abort, promotion) leaves the canary Ingress in place at
 * weight 0 without header annotations, as Argo does. Described in docs/traffic.md.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { ReleaseTarget, TrafficRouter } from '../contract.ts';
import {
  annotationPrefix,
  checkWeight,
  ensureObject,
  ingressPaths,
  ingressRef,
  ingressSpec,
  invalidRouting,
  isOwned,
  makeClients,
  managedNames,
  MANAGED_ROUTES_ANNOTATION,
  ownedLabels,
  readObject,
  readOptional,
  sameJson,
  setManagedNames,
  updateObject,
  INGRESS_API_VERSION,
  OWNED_LABELS,
  type IngressSpec,
  type RouterOptions,
  type RoutingObject,
} from './common.ts';

/** Argo's `trafficRouting.nginx` block (the fields this router implements: all of Argo's). */
export interface NginxRouting {
  stableIngress?: string;
  stableIngresses?: string[];
  /** Default `nginx.ingress.kubernetes.io`; must match the controller's `--annotations-prefix`. */
  annotationPrefix?: string;
  /** Added to the canary Ingress under the prefix (`canary-by-cookie: x` → `<prefix>/canary-by-cookie`). */
  additionalIngressAnnotations?: Record<string, string>;
  /** Added to the canary Ingress with their keys as written (any group). */
  canaryIngressAnnotations?: Record<string, string>;
}

export const NGINX_ANNOTATION_PREFIX = 'nginx.ingress.kubernetes.io';
const CANARY_SUFFIX = '-canary';
/** The ingress class annotation Argo copies from the stable Ingress (the canary must be served by the same controller). */
const INGRESS_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';

export function nginxRouting(target: ReleaseTarget): NginxRouting {
  const block = target.trafficRouting?.nginx as NginxRouting | undefined;
  if (!block || typeof block !== 'object') throw invalidRouting('trafficRouting.nginx is missing');
  if (stableIngresses(block).length === 0) throw invalidRouting('trafficRouting.nginx needs stableIngress or stableIngresses');
  return block;
}

function stableIngresses(block: NginxRouting): string[] {
  return [...(block.stableIngress ? [block.stableIngress] : []), ...(block.stableIngresses ?? [])];
}

/** Argo's canary Ingress name with the workload in place of the Rollout: `<workload>-<stableIngress>-canary`, at most 253 characters. */
export function canaryIngressName(workload: string, stableIngress: string): string {
  return `${`${workload}-${stableIngress}`.slice(0, 253 - CANARY_SUFFIX.length)}${CANARY_SUFFIX}`;
}

/** The annotation keys the router writes for one prefix. */
export function nginxKeys(prefix: string) {
  return {
    canary: `${prefix}/canary`,
    weight: `${prefix}/canary-weight`,
    byHeader: `${prefix}/canary-by-header`,
    byHeaderValue: `${prefix}/canary-by-header-value`,
    byHeaderPattern: `${prefix}/canary-by-header-pattern`,
  };
}

/** The annotations the user asked for on every canary Ingress (additionalIngressAnnotations prefixed as Argo does, canaryIngressAnnotations as written). */
function userAnnotations(block: NginxRouting, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(block.additionalIngressAnnotations ?? {})) out[k.startsWith(prefix) ? k : `${prefix}/${k}`] = v;
  for (const [k, v] of Object.entries(block.canaryIngressAnnotations ?? {})) out[k] = v;
  return out;
}

export function createNginxRouter(kc: KubeConfig, opts: RouterOptions = {}): TrafficRouter {
  const k = makeClients(kc, opts);

  const services = (target: ReleaseTarget): { stable: string; canary: string } => {
    if (!target.stableService || !target.canaryService) throw invalidRouting('the nginx router needs stableService and canaryService');
    return { stable: target.stableService, canary: target.canaryService };
  };

  /** The canary Ingress's annotations, labels and spec for `weight`, built from the stable Ingress (header annotations passed in). */
  const desired = (target: ReleaseTarget, block: NginxRouting, stable: RoutingObject, weight: number, header: Record<string, string>) => {
    const svc = services(target);
    const prefix = annotationPrefix(block.annotationPrefix, NGINX_ANNOTATION_PREFIX);
    const keys = nginxKeys(prefix);
    const from = ingressSpec(stable);
    const rules = structuredClone(from.rules ?? []).filter((rule) => {
      let routesStable = false;
      for (const path of rule.http?.paths ?? []) {
        if (path.backend?.service?.name === svc.stable) {
          path.backend.service.name = svc.canary;
          routesStable = true;
        }
      }
      return routesStable;
    });
    const stableName = `${stable.metadata?.namespace}/${stable.metadata?.name}`;
    if (rules.length === 0) throw invalidRouting(`Ingress ${stableName} has no rule with a path whose backend is service ${svc.stable} (stableService)`);
    const spec: IngressSpec = {
      ...(from.ingressClassName !== undefined ? { ingressClassName: from.ingressClassName } : {}),
      ...(from.tls !== undefined ? { tls: structuredClone(from.tls) } : {}),
      rules,
    };
    const cls = stable.metadata?.annotations?.[INGRESS_CLASS_ANNOTATION];
    const annotations: Record<string, string> = {
      ...(cls !== undefined ? { [INGRESS_CLASS_ANNOTATION]: cls } : {}),
      ...userAnnotations(block, prefix),
      [keys.canary]: 'true',
      [keys.weight]: String(weight),
      ...header,
    };
    return { labels: ownedLabels(target.workload.name), annotations, spec };
  };

  const canaryRef = (target: ReleaseTarget, stableIngress: string) => ingressRef(target.namespace, canaryIngressName(target.workload.name, stableIngress));

  const checkOwned = (obj: RoutingObject, target: ReleaseTarget): void => {
    if (!isOwned(obj, target.workload.name)) {
      throw invalidRouting(
        `Ingress ${obj.metadata?.namespace}/${obj.metadata?.name} exists but Glidepath did not create it for ${target.workload.name} ` +
          `(labels ${OWNED_LABELS.managedBy}=glidepath, ${OWNED_LABELS.workload}=${target.workload.name} missing): rename or remove it`,
      );
    }
  };

  /** The header annotations (and managed-routes record) a canary Ingress carries now. */
  const currentHeader = (obj: RoutingObject, keys: ReturnType<typeof nginxKeys>): Record<string, string> => {
    const a = obj.metadata?.annotations ?? {};
    const names = managedNames(obj);
    if (names.length === 0) return {};
    const out: Record<string, string> = { [MANAGED_ROUTES_ANNOTATION]: JSON.stringify(names) };
    for (const key of [keys.byHeader, keys.byHeaderValue, keys.byHeaderPattern]) if (a[key] !== undefined) out[key] = a[key];
    return out;
  };

  /** Replaces a canary Ingress copy's labels (ours added), annotations and spec; false when already so. */
  const apply = (obj: RoutingObject, want: ReturnType<typeof desired>): boolean => {
    const labels = { ...(obj.metadata?.labels ?? {}), ...want.labels };
    if (sameJson(obj.metadata?.annotations ?? {}, want.annotations) && sameJson(obj.metadata?.labels ?? {}, labels) && sameJson(obj.spec ?? {}, want.spec)) return false;
    obj.metadata = { ...(obj.metadata ?? {}), labels, annotations: want.annotations };
    obj.spec = want.spec as Record<string, unknown>;
    return true;
  };

  /** Converges one canary Ingress: rebuilt from the stable Ingress at `weight`, header annotations from `header(current)`. */
  const converge = async (target: ReleaseTarget, block: NginxRouting, stableIngress: string, weight: (current: RoutingObject | undefined) => number, header: (current: RoutingObject | undefined) => Record<string, string>) => {
    const stable = await readObject(k, ingressRef(target.namespace, stableIngress));
    const ref = canaryRef(target, stableIngress);
    await ensureObject(
      k,
      ref,
      () => {
        const want = desired(target, block, stable, weight(undefined), header(undefined));
        return { apiVersion: INGRESS_API_VERSION, kind: 'Ingress', metadata: { name: ref.name, namespace: ref.namespace, labels: want.labels, annotations: want.annotations }, spec: want.spec as Record<string, unknown> };
      },
      (obj) => {
        checkOwned(obj, target);
        return apply(obj, desired(target, block, stable, weight(obj), header(obj)));
      },
      opts,
    );
  };

  const keysOf = (block: NginxRouting) => nginxKeys(annotationPrefix(block.annotationPrefix, NGINX_ANNOTATION_PREFIX));

  return {
    type: 'nginx',

    async setWeight(target, weight) {
      checkWeight(weight);
      const block = nginxRouting(target);
      const keys = keysOf(block);
      for (const name of stableIngresses(block)) {
        await converge(target, block, name, () => weight, (current) => (current ? currentHeader(current, keys) : {}));
      }
    },

    async verifyWeight(target, weight) {
      const block = nginxRouting(target);
      const keys = keysOf(block);
      for (const name of stableIngresses(block)) {
        const canary = await readOptional(k, canaryRef(target, name));
        // No canary Ingress: the stable Ingress takes everything, which is weight 0.
        if (!canary) {
          if (weight !== 0) return false;
          continue;
        }
        const a = canary.metadata?.annotations ?? {};
        if (a[keys.canary] !== 'true' || a[keys.weight] !== String(weight)) return false;
        const svc = services(target);
        if (!ingressPaths(ingressSpec(canary)).some(({ path }) => path.backend?.service?.name === svc.canary)) return false;
      }
      return true;
    },

    /** `canary-by-header` on the canary Ingress (one header, exact value or regex pattern); an empty match removes it. */
    async setHeaderRoute(target, spec) {
      const block = nginxRouting(target);
      const keys = keysOf(block);
      const match = spec.match;
      const user = userAnnotations(block, annotationPrefix(block.annotationPrefix, NGINX_ANNOTATION_PREFIX));
      if (match.length > 0) {
        const taken = [keys.byHeader, keys.byHeaderValue, keys.byHeaderPattern].filter((key) => key in user);
        if (taken.length > 0) throw invalidRouting(`header route "${spec.name}": trafficRouting.nginx annotations already set ${taken.join(', ')} on the canary Ingress`);
        if (match.length > 1) {
          throw invalidRouting(`header route "${spec.name}": an NGINX canary Ingress matches one header (canary-by-header), this route has ${match.length} matches`);
        }
      }
      const [m] = match;
      let header: Record<string, string> = {};
      if (m) {
        const v = m.headerValue;
        if (v.exact !== undefined) header = { [keys.byHeader]: m.headerName, [keys.byHeaderValue]: v.exact };
        else if (v.regex !== undefined) header = { [keys.byHeader]: m.headerName, [keys.byHeaderPattern]: v.regex };
        else throw invalidRouting(`header route "${spec.name}": NGINX matches a header value exactly (canary-by-header-value) or by regex (canary-by-header-pattern), not by prefix (header ${m.headerName})`);
        header[MANAGED_ROUTES_ANNOTATION] = JSON.stringify([spec.name]);
      }
      for (const name of stableIngresses(block)) {
        const existing = await readOptional(k, canaryRef(target, name));
        if (existing) {
          checkOwned(existing, target);
          const other = managedNames(existing).filter((n) => n !== spec.name);
          if (other.length > 0 && m) {
            throw invalidRouting(`header route "${spec.name}": the canary Ingress ${existing.metadata?.namespace}/${existing.metadata?.name} already carries header route "${other.join('", "')}" and NGINX allows one; remove it first`);
          }
          if (!m && !managedNames(existing).includes(spec.name)) continue; // removing a route that is not there
        } else if (!m) {
          continue;
        }
        const keep = (current: RoutingObject | undefined): Record<string, string> => {
          if (m) return header;
          // Removing this route: whatever other route the Ingress carries stays.
          const names = current ? managedNames(current).filter((n) => n !== spec.name) : [];
          return names.length > 0 && current ? currentHeader(current, keys) : {};
        };
        await converge(target, block, name, (current) => Number(current?.metadata?.annotations?.[keys.weight] ?? 0) || 0, keep);
      }
    },

    /** Weight 0 and no header annotations on every canary Ingress that exists (none is created). */
    async removeManagedRoutes(target) {
      const block = nginxRouting(target);
      const keys = keysOf(block);
      for (const name of stableIngresses(block)) {
        const ref = canaryRef(target, name);
        if (!(await readOptional(k, ref))) continue;
        await updateObject(
          k,
          ref,
          (obj) => {
            checkOwned(obj, target);
            const before = structuredClone(obj.metadata?.annotations ?? {});
            const a = { ...before };
            for (const key of [keys.byHeader, keys.byHeaderValue, keys.byHeaderPattern]) if (managedNames(obj).length > 0) delete a[key];
            a[keys.weight] = '0';
            obj.metadata = { ...(obj.metadata ?? {}), annotations: a };
            setManagedNames(obj, []);
            return !sameJson(before, obj.metadata.annotations);
          },
          opts,
        );
      }
    },
  };
}
