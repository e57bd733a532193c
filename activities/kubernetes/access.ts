/**
 * Every API permission the workload activities use, checked by preflight with
 * SelfSubjectAccessReviews. deploy/rbac.yaml grants exactly these (a test keeps the two in step).
 */
import type { ReleaseTarget } from '../contract.ts';

export interface Access {
  group: string;
  resource: string;
  verb: string;
}

/** Deployments: read, server-side apply (which needs `create` when the object is new), image patch, delete. */
export const DEPLOYMENT_ACCESS: Access[] = ['get', 'create', 'patch', 'delete'].map((verb) => ({ group: 'apps', resource: 'deployments', verb }));
/** ReplicaSets: the stable's current one (its pod-template-hash pins a Service or subset to the stable's own pods); with strategy.rolling, the new one's available pods in a batch. */
export const REPLICASET_ACCESS: Access[] = [{ group: 'apps', resource: 'replicasets', verb: 'list' }];
/** Services: selector switches (read, merge patch, read back). */
export const SERVICE_ACCESS: Access[] = ['get', 'patch'].map((verb) => ({ group: '', resource: 'services', verb }));
/** PodDisruptionBudgets: the user's one covering the stable is found by list; the canary/preview's own is applied, read and deleted. */
export const PDB_ACCESS: Access[] = ['list', 'get', 'create', 'patch', 'delete'].map((verb) => ({ group: 'policy', resource: 'poddisruptionbudgets', verb }));
/** HorizontalPodAutoscalers: the stable's are found by list; their minReplicas is held (patch) during a release. */
export const HPA_ACCESS: Access[] = ['list', 'patch'].map((verb) => ({ group: 'autoscaling', resource: 'horizontalpodautoscalers', verb }));
/** Pods: listed when a rollout misses its progress deadline, to say why (Pending/Unschedulable, image pulls, readiness). */
export const POD_ACCESS: Access[] = [{ group: '', resource: 'pods', verb: 'list' }];

/** StatefulSets (strategy.rolling): read, and patch of the target image and the partition. */
export const STATEFULSET_ACCESS: Access[] = ['get', 'patch'].map((verb) => ({ group: 'apps', resource: 'statefulsets', verb }));
/** DaemonSets (strategy.rolling): read, and patch of the target image and the update strategy. */
export const DAEMONSET_ACCESS: Access[] = ['get', 'patch'].map((verb) => ({ group: 'apps', resource: 'daemonsets', verb }));
/** Pods of a StatefulSet or DaemonSet: listed to verify each batch; deleted when a StatefulSet rollback finds one stuck not ready on the new revision, and by a DaemonSet batch on the nodes it takes. */
export const STATEFULSET_POD_ACCESS: Access[] = ['list', 'delete'].map((verb) => ({ group: '', resource: 'pods', verb }));

/** spec.config (config.ts): read the source ConfigMap/Secret (Secret `get` is in WORKER_EXTRA_ACCESS), server-side apply of its copy (`create` when new), delete of unused copies. */
export const CONFIG_ACCESS: Access[] = [
  ...['get', 'create', 'patch', 'delete'].map((verb) => ({ group: '', resource: 'configmaps', verb })),
  ...['create', 'patch', 'delete'].map((verb) => ({ group: '', resource: 'secrets', verb })),
];

const readUpdate = (group: string, resource: string): Access[] => ['get', 'update'].map((verb) => ({ group, resource, verb }));

/** Read-modify-write of an object the router may also create (the NGINX canary Ingress, the SMI TrafficSplit). */
const readCreateUpdate = (group: string, resource: string): Access[] => ['get', 'create', 'update'].map((verb) => ({ group, resource, verb }));

/** Traffic routers (activities/traffic/), keyed as `trafficRouting`: read-modify-write (update) of their routing objects. */
export const ROUTER_ACCESS: Record<string, Access[]> = {
  istio: [...readUpdate('networking.istio.io', 'virtualservices'), ...readUpdate('networking.istio.io', 'destinationrules')],
  gatewayAPI: readUpdate('gateway.networking.k8s.io', 'httproutes'),
  plugins: readUpdate('gateway.networking.k8s.io', 'httproutes'),
  // The stable Ingress is only read; the canary Ingress is created, then updated.
  nginx: readCreateUpdate('networking.k8s.io', 'ingresses'),
  alb: readUpdate('networking.k8s.io', 'ingresses'),
  smi: readCreateUpdate('split.smi-spec.io', 'trafficsplits'),
  traefik: readUpdate('traefik.io', 'traefikservices'),
};

/** GRPCRoutes of the Gateway API router: needed only by a block that names grpcRoute/grpcRoutes. */
export const GRPCROUTE_ACCESS: Access[] = readUpdate('gateway.networking.k8s.io', 'grpcroutes');

/** Whether the Gateway API block of `routing` (native or plugin form) names GRPCRoutes. */
function namesGrpcRoutes(routing: Record<string, unknown>): boolean {
  const plugins = routing.plugins as Record<string, unknown> | undefined;
  const blocks = [routing.gatewayAPI, ...(plugins && typeof plugins === 'object' ? Object.values(plugins) : [])] as ({ grpcRoute?: unknown; grpcRoutes?: unknown } | undefined)[];
  return blocks.some((b) => b && typeof b === 'object' && (b.grpcRoute !== undefined || b.grpcRoutes !== undefined));
}

/** What a release of `target` needs in its namespace (Service verbs only when it names Services, router verbs for its router). */
export function requiredAccess(target: ReleaseTarget): Access[] {
  if (target.workload.kind === 'StatefulSet') return [...STATEFULSET_ACCESS, ...STATEFULSET_POD_ACCESS, ...HPA_ACCESS];
  if (target.workload.kind === 'DaemonSet') return [...DAEMONSET_ACCESS, ...STATEFULSET_POD_ACCESS];
  if (target.strategy === 'rolling') return [...DEPLOYMENT_ACCESS, ...REPLICASET_ACCESS, ...POD_ACCESS, ...HPA_ACCESS];
  const services = [target.stableService, target.canaryService, target.activeService, target.previewService].some((s) => s);
  const routers = [...Object.keys(target.trafficRouting ?? {}).flatMap((r) => ROUTER_ACCESS[r] ?? []), ...(namesGrpcRoutes(target.trafficRouting ?? {}) ? GRPCROUTE_ACCESS : [])];
  return [...DEPLOYMENT_ACCESS, ...REPLICASET_ACCESS, ...(services ? SERVICE_ACCESS : []), ...PDB_ACCESS, ...HPA_ACCESS, ...POD_ACCESS, ...routers];
}

/**
 * API versions (activities/versioning/): server-side apply of a version's Deployment, Service and own
 * Ingress (`create` when new, else `patch`), scale-down by patch, deleting a version's Ingress, and
 * read-modify-write of the API's HTTPRoute.
 */
export const VERSIONING_ACCESS: Access[] = [
  ...['get', 'create', 'patch'].map((verb) => ({ group: 'apps', resource: 'deployments', verb })),
  ...['get', 'create', 'patch'].map((verb) => ({ group: '', resource: 'services', verb })),
  ...['get', 'create', 'patch', 'delete'].map((verb) => ({ group: 'networking.k8s.io', resource: 'ingresses', verb })),
  ...readUpdate('gateway.networking.k8s.io', 'httproutes'),
];

/**
 * Experiment steps (activities/kubernetes/experiment.ts): list a workload's experiment Deployments (to
 * remove them), and server-side apply, list and delete a weighted or `service` template's Service.
 */
export const EXPERIMENT_ACCESS: Access[] = [
  { group: 'apps', resource: 'deployments', verb: 'list' },
  ...['get', 'create', 'patch', 'list', 'delete'].map((verb) => ({ group: '', resource: 'services', verb })),
];

/** All permissions the release and API-version activities may need. */
export const ALL_ACCESS: Access[] = unique([...DEPLOYMENT_ACCESS, ...SERVICE_ACCESS, ...PDB_ACCESS, ...HPA_ACCESS, ...POD_ACCESS, ...STATEFULSET_ACCESS, ...STATEFULSET_POD_ACCESS, ...DAEMONSET_ACCESS, ...REPLICASET_ACCESS, ...Object.values(ROUTER_ACCESS).flat(), ...GRPCROUTE_ACCESS, ...VERSIONING_ACCESS, ...CONFIG_ACCESS, ...EXPERIMENT_ACCESS]);

/** Each permission once (routers may share a resource: nginx and alb both use Ingresses). */
function unique(list: Access[]): Access[] {
  const seen = new Set<string>();
  return list.filter((a) => {
    const key = describeAccess(a);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Beyond the workload activities, the worker needs: preflight's own reviews, Secret-valued analysis args (workers/deps.ts) and the job provider's Jobs. */
export const WORKER_EXTRA_ACCESS: Access[] = [
  { group: 'authorization.k8s.io', resource: 'selfsubjectaccessreviews', verb: 'create' },
  { group: '', resource: 'secrets', verb: 'get' },
  // The job metric provider (activities/metrics/job.ts): create the Job, poll its status, delete it.
  { group: 'batch', resource: 'jobs', verb: 'create' },
  { group: 'batch', resource: 'jobs', verb: 'delete' },
  { group: 'batch', resource: 'jobs/status', verb: 'get' },
];

export function describeAccess(a: Access): string {
  return `${a.verb} ${a.group ? `${a.resource}.${a.group}` : a.resource}`;
}
