/**
 * Argo Rollouts fields this build reads only to refuse them by name, each with what runs instead.
 * Every message carries a `(not supported: …)` tag that docs/migrating-from-argo.md lists. Workflow-safe.
 */

/** The routers that carry an experiment template's weight (Argo's built-in ones that do: Istio, SMI, ALB). */
export const EXPERIMENT_WEIGHT_ROUTERS = ['istio', 'smi'] as const;

export const ARGO_REFUSALS = {
  /** `experiment.templates[].weight` with a router (its key in trafficRouting, or none) that does not carry it. */
  experimentWeight: (router: string | undefined): string =>
    router === undefined
      ? 'is not supported by this version of Glidepath without a traffic router (not supported: experiment weights without trafficRouting): set strategy.canary.trafficRouting to istio or smi, or remove weight (Argo refuses it without trafficRouting too; docs/migrating-from-argo.md)'
      : `is not supported by this version of Glidepath with the ${router} router (not supported: experiment weights with ${router}): of the routers Glidepath implements only ${EXPERIMENT_WEIGHT_ROUTERS.join(' and ')} give an experiment template a share of the traffic (Argo: Istio, SMI and ALB; NGINX, Traefik, Gateway API, Ambassador, APISIX and App Mesh ignore or refuse it); remove weight and measure the template's pods with the traffic its Service gets (templates[].service) or a load of your own (docs/migrating-from-argo.md)`,
} as const;
