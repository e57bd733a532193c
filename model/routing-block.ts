/** Reading a canary's `trafficRouting` block without its schemas (model/traffic-routing.ts): workflow-safe, no zod. */

/** The router key of a routing block (`managedRoutes` is not a router). */
export function routerKey(routing: Record<string, unknown>): string | undefined {
  return Object.keys(routing).find((k) => k !== 'managedRoutes');
}

/** `managedRoutes` names, in order. */
export function managedRouteNames(routing: Record<string, unknown> | undefined): string[] {
  const list = routing?.managedRoutes;
  return Array.isArray(list) ? list.map((r) => (r as { name?: unknown }).name).filter((n): n is string => typeof n === 'string') : [];
}
