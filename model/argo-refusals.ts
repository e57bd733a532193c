/**
 * Argo Rollouts fields this build reads only to refuse them by name, each with what runs instead.
 * Every message carries a `(not supported: …)` tag that docs/migrating-from-argo.md lists. Workflow-safe.
 */
export const ARGO_REFUSALS = {
  experimentWeight:
    'is not supported by this version of Glidepath (not supported: experiment weights): an experiment\'s pods get no share of the router\'s traffic (of Argo\'s built-in routers only Istio, SMI and ALB carry the weight; it is ignored by NGINX, Traefik, Ambassador, APISIX and App Mesh); they are measured with the traffic the workload\'s own Service sends them, or a load of your own: remove weight (docs/migrating-from-argo.md)',
  experimentService:
    'is not supported by this version of Glidepath (not supported: experiment services): Glidepath creates no Service for an experiment template; select its pods by their labels (metadata.labels) in a Service of your own (docs/migrating-from-argo.md)',
} as const;
