/**
 * `strategy.canary.trafficRouting` (Argo's field names): one schema and one capability entry per
 * traffic router this build implements, keyed as Argo keys them (`istio`, `plugins`, …), plus Argo's
 * `managedRoutes` (the header and mirror routes the steps may set). Routers not listed here are
 * refused by name. The capabilities decide, before anything is touched, whether a router can serve
 * a spec's `setHeaderRoute` / `setMirrorRoute` steps. Workflow-safe (no I/O): the workflow re-checks
 * its plan with {@link trafficRoutingProblems}.
 */
import { z } from 'zod';
import { dns1123, forwardIssues } from './fields.ts';
import { managedRouteNames, routerKey } from './routing-block.ts';

export { managedRouteNames, routerKey };

z.config({ jitless: true });

/** What a router can do with the block it is given. */
export interface RouterCapabilities {
  /** Name for messages, e.g. `istio`, `the argoproj-labs/gatewayAPI router`. */
  label: string;
  /** Why `setHeaderRoute` cannot be served, or undefined when it can. */
  headerRoutes(block: unknown): string | undefined;
  /** Which `headerValue` match kinds the router can express. */
  headerValueKinds: readonly ('exact' | 'prefix' | 'regex')[];
  /** Why `setMirrorRoute` cannot be served, or undefined when it can. */
  mirrorRoutes(block: unknown): string | undefined;
  /** Why this block needs stableService and canaryService (undefined: it does not). */
  needsServices(block: unknown): string | undefined;
  /** Most header matches one `setHeaderRoute` may have (undefined: no limit). */
  maxHeaderMatches?: number;
  /** Most header routes that may be set at the same time (undefined: no limit). */
  maxHeaderRoutes?: number;
}

interface RouterEntry {
  schema: z.ZodType;
  capabilities: RouterCapabilities;
}

// ---- istio ------------------------------------------------------------------------------------

const istioVirtualService = z.strictObject({
  name: dns1123,
  /** HTTP route names; may be omitted when the VirtualService has a single HTTP route. */
  routes: z.array(z.string().min(1)).min(1).optional(),
});

const istioRouting = z
  .strictObject({
    virtualService: istioVirtualService.optional(),
    virtualServices: z.array(istioVirtualService).min(1).optional(),
    destinationRule: z
      .strictObject({ name: dns1123, canarySubsetName: z.string().min(1), stableSubsetName: z.string().min(1) })
      .superRefine((v, ctx) => {
        if (v.canarySubsetName === v.stableSubsetName) ctx.addIssue({ code: 'custom', path: ['canarySubsetName'], message: 'must differ from stableSubsetName' });
      })
      .optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.virtualService === undefined) === (v.virtualServices === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'set exactly one of virtualService or virtualServices' });
    }
  });

const istio: RouterEntry = {
  schema: istioRouting,
  capabilities: {
    label: 'istio',
    headerRoutes: () => undefined,
    headerValueKinds: ['exact', 'prefix', 'regex'],
    mirrorRoutes: () => undefined,
    needsServices: (block) => ((block as { destinationRule?: unknown } | undefined)?.destinationRule === undefined ? 'host-based Istio routing (no destinationRule)' : undefined),
  },
};

// ---- plugins: argoproj-labs/gatewayAPI (Argo's plugin form) --------------------------------------------------------

export const GATEWAY_API_PLUGIN = 'argoproj-labs/gatewayAPI';
export const SUPPORTED_TRAFFIC_ROUTER_PLUGINS: readonly string[] = [GATEWAY_API_PLUGIN];

/** Routes of one kind named in a list, each with Argo's `useHeaderRoutes` (whether header routes go onto it). */
const namedRoutes = z.array(z.strictObject({ name: dns1123, useHeaderRoutes: z.boolean().optional() })).min(1);

/**
 * The block of the Gateway API router: Argo's plugin configuration, also accepted natively as
 * `trafficRouting.gatewayAPI`. HTTPRoutes and GRPCRoutes, either or both (as Argo's plugin: every
 * route named is weighted).
 */
const gatewayApiBlock = z
  .strictObject({
    httpRoute: dns1123.optional(),
    httpRoutes: namedRoutes.optional(),
    grpcRoute: dns1123.optional(),
    grpcRoutes: namedRoutes.optional(),
    namespace: dns1123.optional(),
  })
  .superRefine((v, ctx) => {
    if (v.httpRoute === undefined && v.httpRoutes === undefined && v.grpcRoute === undefined && v.grpcRoutes === undefined) {
      ctx.addIssue({ code: 'custom', message: 'needs httpRoute, httpRoutes, grpcRoute or grpcRoutes (tcpRoute/tlsRoute are not supported by this version of Glidepath)' });
    }
  });

const routerPlugins = z.record(z.string(), z.unknown()).superRefine((v, ctx) => {
  const names = Object.keys(v);
  if (names.length !== 1) ctx.addIssue({ code: 'custom', message: `set exactly one plugin (supported: ${SUPPORTED_TRAFFIC_ROUTER_PLUGINS.join(', ')})` });
  for (const name of names) {
    if (!SUPPORTED_TRAFFIC_ROUTER_PLUGINS.includes(name)) {
      ctx.addIssue({ code: 'custom', path: [name], message: `traffic router plugin "${name}" is not supported by this version of Glidepath (supported: ${SUPPORTED_TRAFFIC_ROUTER_PLUGINS.join(', ')})` });
      continue;
    }
    forwardIssues(gatewayApiBlock.safeParse(v[name]), ctx, [name]);
  }
});

type NamedRoutes = { useHeaderRoutes?: boolean }[];
type GatewayApiBlock = { httpRoute?: string; httpRoutes?: NamedRoutes; grpcRoute?: string; grpcRoutes?: NamedRoutes } | undefined;

/** The block names a GRPCRoute. */
const hasGrpcRoutes = (gw: GatewayApiBlock): boolean => gw?.grpcRoute !== undefined || gw?.grpcRoutes !== undefined;

/** The Gateway API router's capabilities, for its block as `blockOf` finds it (native key or plugin form). */
const gatewayApiCapabilities = (label: string, blockOf: (block: unknown) => GatewayApiBlock): RouterCapabilities => ({
  label,
  headerRoutes: (block) => {
    const gw = blockOf(block);
    // `httpRoute` / `grpcRoute` always take header routes (Argo: useHeaderRoutes true); listed routes only with useHeaderRoutes.
    const listed = [...(gw?.httpRoutes ?? []), ...(gw?.grpcRoutes ?? [])];
    if (gw?.httpRoute === undefined && gw?.grpcRoute === undefined && !listed.some((r) => r.useHeaderRoutes)) {
      return `none of its ${hasGrpcRoutes(gw) ? 'httpRoutes or grpcRoutes' : 'httpRoutes'} has useHeaderRoutes: true`;
    }
    return undefined;
  },
  headerValueKinds: ['exact', 'regex'],
  // HTTPRoute RequestMirror with `percent` (Standard channel since Gateway API v1.3); not on GRPCRoutes.
  mirrorRoutes: (block) =>
    hasGrpcRoutes(blockOf(block))
      ? 'its grpcRoute/grpcRoutes: mirror routes are not supported on GRPCRoutes (Argo\'s Gateway API plugin does not mirror either; docs/traffic.md)'
      : undefined,
  needsServices: () => label,
});

const gatewayApiPluginEntry: RouterEntry = {
  schema: routerPlugins,
  capabilities: gatewayApiCapabilities(`the ${GATEWAY_API_PLUGIN} router`, (block) => (block as Record<string, GatewayApiBlock> | undefined)?.[GATEWAY_API_PLUGIN]),
};

// ---- gatewayAPI: the same router, configured natively -----------------------------------------

const gatewayApiNative: RouterEntry = {
  schema: gatewayApiBlock,
  capabilities: gatewayApiCapabilities('the gatewayAPI router', (block) => block as GatewayApiBlock),
};

// ---- nginx ------------------------------------------------------------------------------------

/** A Kubernetes object name that may contain dots (Ingress, TrafficSplit): a DNS-1123 subdomain. */
const dns1123Subdomain = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a DNS-1123 subdomain (lowercase letters, digits, "-", ".")');

/** An annotation prefix (`nginx.ingress.kubernetes.io`): a DNS subdomain. */
const annotationPrefixField = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/?$/, 'must be a DNS subdomain such as nginx.ingress.kubernetes.io');

const annotationMap = z.record(z.string().min(1).max(316), z.string());

const nginxRouting = z
  .strictObject({
    stableIngress: dns1123Subdomain.optional(),
    stableIngresses: z.array(dns1123Subdomain).min(1).optional(),
    annotationPrefix: annotationPrefixField.optional(),
    additionalIngressAnnotations: annotationMap.optional(),
    canaryIngressAnnotations: annotationMap.optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.stableIngress === undefined) === (v.stableIngresses === undefined)) ctx.addIssue({ code: 'custom', message: 'set exactly one of stableIngress or stableIngresses' });
  });

const NGINX_HEADER_ANNOTATIONS = ['canary-by-header', 'canary-by-header-value', 'canary-by-header-pattern'];

const nginx: RouterEntry = {
  schema: nginxRouting,
  capabilities: {
    label: 'the nginx router',
    headerRoutes: (block) => {
      const b = block as { annotationPrefix?: string; additionalIngressAnnotations?: Record<string, string>; canaryIngressAnnotations?: Record<string, string> } | undefined;
      const prefix = (b?.annotationPrefix ?? 'nginx.ingress.kubernetes.io').replace(/\/+$/, '');
      const keys = [...Object.keys(b?.additionalIngressAnnotations ?? {}).map((k) => (k.startsWith(prefix) ? k : `${prefix}/${k}`)), ...Object.keys(b?.canaryIngressAnnotations ?? {})];
      const taken = NGINX_HEADER_ANNOTATIONS.map((a) => `${prefix}/${a}`).filter((a) => keys.includes(a));
      return taken.length > 0 ? `its ingress annotations already set ${taken.join(', ')}` : undefined;
    },
    headerValueKinds: ['exact', 'regex'],
    maxHeaderMatches: 1,
    maxHeaderRoutes: 1,
    mirrorRoutes: () => 'an NGINX canary Ingress honours only canary-* annotations, so mirroring would have to be configured on the stable Ingress, which Glidepath never modifies',
    needsServices: () => 'the nginx router',
  },
};

// ---- alb --------------------------------------------------------------------------------------

const albRouting = z
  .strictObject({
    ingress: dns1123Subdomain.optional(),
    ingresses: z.array(dns1123Subdomain).min(1).optional(),
    servicePort: z.number().int().min(1).max(65535),
    rootService: dns1123.optional(),
    annotationPrefix: annotationPrefixField.optional(),
    stickinessConfig: z.strictObject({ enabled: z.boolean(), durationSeconds: z.number().int().min(1).max(604800) }).optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.ingress === undefined) === (v.ingresses === undefined)) ctx.addIssue({ code: 'custom', message: 'set exactly one of ingress or ingresses' });
  });

const alb: RouterEntry = {
  schema: albRouting,
  capabilities: {
    label: 'the alb router',
    headerRoutes: () => undefined,
    headerValueKinds: ['exact'],
    mirrorRoutes: () => 'an AWS Application Load Balancer has no traffic-mirroring action',
    needsServices: () => 'the alb router',
  },
};

// ---- smi --------------------------------------------------------------------------------------

const smiRouting = z.strictObject({
  rootService: dns1123.optional(),
  trafficSplitName: dns1123Subdomain.optional(),
});

const smi: RouterEntry = {
  schema: smiRouting,
  capabilities: {
    label: 'the smi router',
    headerRoutes: () => 'an SMI TrafficSplit splits by weight only (header matches need HTTPRouteGroups, which this router does not write)',
    headerValueKinds: [],
    mirrorRoutes: () => 'an SMI TrafficSplit has no mirroring',
    needsServices: () => 'the smi router',
  },
};

// ---- traefik ----------------------------------------------------------------------------------

const traefikRouting = z.strictObject({ weightedTraefikServiceName: dns1123Subdomain });

const traefik: RouterEntry = {
  schema: traefikRouting,
  capabilities: {
    label: 'the traefik router',
    headerRoutes: () => 'a weighted TraefikService splits by weight only (Argo\'s traefik router has no header routes either)',
    headerValueKinds: [],
    mirrorRoutes: () => 'a weighted TraefikService has no mirroring (a mirroring TraefikService is another object; Argo\'s traefik router has no mirror routes either)',
    needsServices: () => 'the traefik router',
  },
};

// ---- the table ---------------------------------------------------------------------------------

const ROUTERS: Record<string, RouterEntry> = { istio, gatewayAPI: gatewayApiNative, plugins: gatewayApiPluginEntry, nginx, alb, smi, traefik };

/** The router named `key`; undefined for unknown names, `constructor` and other prototype keys included. */
function routerEntry(key: string): RouterEntry | undefined {
  return Object.hasOwn(ROUTERS, key) ? ROUTERS[key] : undefined;
}

/** Argo routers this build refuses, with the supported router that covers the case. */
export const REFUSED_ROUTER_MIGRATIONS: Readonly<Record<string, string>> = {
  ambassador: `use the Gateway API router (plugins: ${GATEWAY_API_PLUGIN}) where Emissary-ingress serves Gateway API HTTPRoutes, or nginx/alb for the ingress in front of it`,
  apisix: `use the Gateway API router (plugins: ${GATEWAY_API_PLUGIN}) with the APISIX Ingress Controller's Gateway API support, or nginx/alb for the ingress in front of it`,
  appMesh: `use alb for traffic that enters through an AWS load balancer, or the Gateway API router (plugins: ${GATEWAY_API_PLUGIN}) with a Gateway API controller for service-to-service traffic (App Mesh is being retired by AWS)`,
};

/** Traffic routers this build implements, as keys of `trafficRouting` (Argo's names). */
export const SUPPORTED_TRAFFIC_ROUTERS: readonly string[] = Object.keys(ROUTERS);

const managedRoutes = z
  .array(z.strictObject({ name: z.string().min(1).max(63).regex(/^[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$/, 'must be letters, digits, "-", "_" or "."') }))
  .min(1)
  .superRefine((v, ctx) => {
    const seen = new Set<string>();
    v.forEach((r, i) => {
      if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${r.name}" is listed twice` });
      seen.add(r.name);
    });
  });

export const trafficRoutingSchema = z.record(z.string(), z.unknown()).superRefine((v, ctx) => {
  const keys = Object.keys(v);
  for (const key of keys) {
    if (key === 'managedRoutes') {
      forwardIssues(managedRoutes.safeParse(v[key]), ctx, [key]);
      continue;
    }
    const entry = routerEntry(key);
    if (!entry) {
      const instead = Object.hasOwn(REFUSED_ROUTER_MIGRATIONS, key) ? `; ${REFUSED_ROUTER_MIGRATIONS[key]} (docs/migrating-from-argo.md)` : '';
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: `traffic router "${key}" is not supported by this version of Glidepath (supported: ${SUPPORTED_TRAFFIC_ROUTERS.join(', ')})${instead}`,
      });
      continue;
    }
    forwardIssues(entry.schema.safeParse(v[key]), ctx, [key]);
  }
  const routers = keys.filter((k) => k !== 'managedRoutes');
  if (routers.length > 1) ctx.addIssue({ code: 'custom', message: `set one traffic router, this has ${routers.join(' and ')}` });
  if (routers.length === 0) ctx.addIssue({ code: 'custom', message: `set a traffic router (${SUPPORTED_TRAFFIC_ROUTERS.join(', ')}) or omit trafficRouting for a replica-ratio canary` });
});


export function routerCapabilities(routing: Record<string, unknown>): { key: string; block: unknown; capabilities: RouterCapabilities } | undefined {
  const key = routerKey(routing);
  const entry = key === undefined ? undefined : routerEntry(key);
  return key === undefined || !entry ? undefined : { key, block: routing[key], capabilities: entry.capabilities };
}

/** Which router needs stableService and canaryService, for the message; undefined when none does. */
export function routerNeedsServices(routing: Record<string, unknown>): string | undefined {
  const r = routerCapabilities(routing);
  return r?.capabilities.needsServices(r.block);
}
