/** Gateway API objects for the tests that read and write HTTPRoutes and GRPCRoutes (router, API versions, end to end, data plane). */
import type { CustomObjectsApi } from '@kubernetes/client-node';

/** The HTTPRoute resource, for the CustomObjectsApi calls. */
export const HTTPROUTES = { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes' };

/** Creates HTTPRoute `name` in `namespace` with `spec` (parentRefs, rules, …) as given. */
export async function createHttpRoute(custom: CustomObjectsApi, namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await custom.createNamespacedCustomObject({ ...HTTPROUTES, namespace, body: { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name }, spec } });
}

/** The GRPCRoute resource, for the CustomObjectsApi calls. */
export const GRPCROUTES = { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'grpcroutes' };

/** Creates GRPCRoute `name` in `namespace` with `spec` (parentRefs, hostnames, rules, …) as given. */
export async function createGrpcRoute(custom: CustomObjectsApi, namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await custom.createNamespacedCustomObject({ ...GRPCROUTES, namespace, body: { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', metadata: { name }, spec } });
}
