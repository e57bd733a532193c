/**
 * Argo Rollouts fields this build reads only to refuse them by name, each with what runs instead.
 * Every message carries a `(not supported: …)` tag that docs/migrating-from-argo.md lists. Workflow-safe.
 */
export const ARGO_REFUSALS = {
  experiment:
    'is not supported by this version of Glidepath (not supported: experiment steps): Glidepath runs no Experiment ReplicaSets; compare the canary with the stable in an analysis step instead (docs/migrating-from-argo.md)',
  maxSurge:
    'is not supported by this version of Glidepath (not supported: maxSurge/maxUnavailable): a canary without traffic routing runs as its own Deployment next to a stable that keeps full capacity until promotion; remove the field, or size the canary with setCanaryScale (docs/migrating-from-argo.md)',
  maxUnavailable:
    'is not supported by this version of Glidepath (not supported: maxSurge/maxUnavailable): a canary without traffic routing runs as its own Deployment next to a stable that keeps full capacity until promotion; remove the field, or size the canary with setCanaryScale (docs/migrating-from-argo.md)',
} as const;
