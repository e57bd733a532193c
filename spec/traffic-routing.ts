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

// ---- plugins: argoproj-labs/gatewayAPI --------------------------------------------------------

export const GATEWAY_API_PLUGIN = 'argoproj-labs/gatewayAPI';
export const SUPPORTED_TRAFFIC_ROUTER_PLUGINS: readonly string[] = [GATEWAY_API_PLUGIN];

const gatewayApiPlugin = z
  .strictObject({
    httpRoute: dns1123.optional(),
    httpRoutes: z.array(z.strictObject({ name: dns1123, useHeaderRoutes: z.boolean().optional() })).min(1).optional(),
    namespace: dns1123.optional(),
  })
  .superRefine((v, ctx) => {
    if (v.httpRoute === undefined && v.httpRoutes === undefined) ctx.addIssue({ code: 'custom', message: 'needs httpRoute or httpRoutes (grpcRoute/tcpRoute are not supported by this version of Glidepath)' });
  });

const routerPlugins = z.record(z.string(), z.unknown()).superRefine((v, ctx) => {
  const names = Object.keys(v);
  if (names.length !== 1) ctx.addIssue({ code: 'custom', message: `set exactly one plugin (supported: ${SUPPORTED_TRAFFIC_ROUTER_PLUGINS.join(', ')})` });
  for (const name of names) {
    if (!SUPPORTED_TRAFFIC_ROUTER_PLUGINS.includes(name)) {
      ctx.addIssue({ code: 'custom', path: [name], message: `traffic router plugin "${name}" is not supported by this version of Glidepath (supported: ${SUPPORTED_TRAFFIC_ROUTER_PLUGINS.join(', ')})` });
      continue;
    }
    forwardIssues(gatewayApiPlugin.safeParse(v[name]), ctx, [name]);
  }
});

const gatewayApi: RouterEntry = {
  schema: routerPlugins,
  capabilities: {
    label: `the ${GATEWAY_API_PLUGIN} router`,
    headerRoutes: (block) => {
      const gw = (block as Record<string, { httpRoute?: string; httpRoutes?: { useHeaderRoutes?: boolean }[] }> | undefined)?.[GATEWAY_API_PLUGIN];
      if (gw?.httpRoute === undefined && !(gw?.httpRoutes ?? []).some((r) => r.useHeaderRoutes)) {
        return 'none of its httpRoutes has useHeaderRoutes: true';
      }
      return undefined;
    },
    headerValueKinds: ['exact', 'regex'],
    mirrorRoutes: () => 'this version of Glidepath does not mirror through HTTPRoute',
    needsServices: () => `the ${GATEWAY_API_PLUGIN} router`,
  },
};

// ---- the table ---------------------------------------------------------------------------------

const ROUTERS: Record<string, RouterEntry> = { istio, plugins: gatewayApi };

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
    const entry = ROUTERS[key];
    if (!entry) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: `traffic router "${key}" is not supported by this version of Glidepath (supported: ${SUPPORTED_TRAFFIC_ROUTERS.join(', ')})`,
      });
      continue;
    }
    forwardIssues(entry.schema.safeParse(v[key]), ctx, [key]);
  }
  const routers = keys.filter((k) => k !== 'managedRoutes');
  if (routers.length > 1) ctx.addIssue({ code: 'custom', message: `set one traffic router, this has ${routers.join(' and ')}` });
  if (routers.length === 0) ctx.addIssue({ code: 'custom', message: `set a traffic router (${SUPPORTED_TRAFFIC_ROUTERS.join(', ')}) or omit trafficRouting for a replica-ratio canary` });
});

/** The router key of a routing block (`managedRoutes` is not a router). */
export function routerKey(routing: Record<string, unknown>): string | undefined {
  return Object.keys(routing).find((k) => k !== 'managedRoutes');
}

export function routerCapabilities(routing: Record<string, unknown>): { key: string; block: unknown; capabilities: RouterCapabilities } | undefined {
  const key = routerKey(routing);
  const entry = key === undefined ? undefined : ROUTERS[key];
  return key === undefined || !entry ? undefined : { key, block: routing[key], capabilities: entry.capabilities };
}

/** Which router needs stableService and canaryService, for the message; undefined when none does. */
export function routerNeedsServices(routing: Record<string, unknown>): string | undefined {
  const r = routerCapabilities(routing);
  return r?.capabilities.needsServices(r.block);
}

/** `managedRoutes` names, in order. */
export function managedRouteNames(routing: Record<string, unknown> | undefined): string[] {
  const list = routing?.managedRoutes;
  return Array.isArray(list) ? list.map((r) => (r as { name?: unknown }).name).filter((n): n is string => typeof n === 'string') : [];
}
