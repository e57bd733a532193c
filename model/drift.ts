/**
 * Drift: what the last promoted release of a workload left in the cluster (the reference) against
 * what is live now. The watch's input, its workflow ID, the checks on its input (shared by the CLI at
 * the edge and the workflow at its start) and the comparison itself. Pure and workflow-safe.
 */
import type { ReleaseTarget } from '../activities/contract.ts';
import { parseDuration } from './duration.ts';

export const DRIFT_WORKFLOW = 'driftWatch';
export const DRIFT_POLICIES = ['report', 'revert'] as const;
/** `report`: status, metric, audit. `revert`: the same, then put back through the normal activities and verified. */
export type DriftPolicy = (typeof DRIFT_POLICIES)[number];
export const DEFAULT_DRIFT_INTERVAL = '1m';
export const MIN_DRIFT_INTERVAL_MS = 10_000;
/** The failure type of a drift read whose stable Deployment does not exist (deleted): the watch of it ends. */
export const WORKLOAD_GONE = 'WorkloadGone';

/** What the last promoted release set: its target (workload, Services, router) and the image it promoted. */
export interface DriftBaseline {
  /** The release (workflow ID) whose promotion is the reference. */
  releaseId: string;
  target: ReleaseTarget;
  image: string;
}

/**
 * The reference state, read once from the cluster when a baseline is taken (at the watch's start and
 * at each new baseline): the image comes from the release; replicas (only where no
 * HorizontalPodAutoscaler owns them) and the Services' own selectors from the live objects at rest.
 */
export interface DriftDesired {
  container: string;
  image: string;
  /** Absent: an HPA scales the workload, its replicas are not compared. */
  replicas?: number;
  /** The canary (canary strategy) or preview (blue/green) Deployment must be absent at rest. */
  role?: 'canary' | 'preview';
  /** The Services the release steers, with the selector each has at rest. */
  services: { name: string; selector: Record<string, string> }[];
  /** The router carries weight 0 to the canary at rest (its type), when the release has one. */
  router?: string;
  /** The workload is an API version Glidepath introduced: its path route as the version left it. */
  apiRoute?: DriftApiRoute;
}

/** An API version's path route: its HTTPRoute rule `<api>-<version>` or its Ingress `<api>-<version>`, with the rule (or Ingress spec) as JSON. */
export interface DriftApiRoute {
  api: string;
  version: string;
  kind: 'HTTPRoute' | 'Ingress';
  namespace: string;
  name: string;
  /** HTTPRoute: the rule's name. */
  rule?: string;
  path: string;
  spec: string;
}

/** The live state, as the read-only check activity saw it. */
export interface DriftLive {
  /** Absent when the stable Deployment or its container is gone. */
  image?: string;
  replicas?: number;
  /** An HPA scales the workload now. */
  hpa: boolean;
  roleExists: boolean;
  /** `null`: the Service is gone. */
  services: { name: string; selector: Record<string, string> | null }[];
  /** Whether the router carries weight 0 at rest; undefined when it cannot tell or there is none. */
  routerAtRest?: boolean;
}

/** One drifted field: `image`, `replicas`, `canary`, `preview`, `router`, `service/<name>`, `route` (an API version's path route). */
export interface DriftFinding {
  field: string;
  desired: string;
  live: string;
}

/** The fields a check compares (each gets a metric sample, 1 when drifted, else 0). */
export function comparedFields(d: DriftDesired, live: Pick<DriftLive, 'hpa' | 'routerAtRest'>): string[] {
  return [
    'image',
    ...(d.replicas !== undefined && !live.hpa ? ['replicas'] : []),
    ...(d.role ? [d.role] : []),
    ...(d.router !== undefined && live.routerAtRest !== undefined ? ['router'] : []),
    ...d.services.map((s) => `service/${s.name}`),
    ...(d.apiRoute ? ['route'] : []),
  ];
}

const selectorText = (s: Record<string, string> | null): string =>
  s === null
    ? '(Service gone)'
    : Object.entries(s)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}=${v}`)
        .join(',') || '(none)';

export function sameLabels(a: Record<string, string> | null, b: Record<string, string> | null): boolean {
  if (a === null || b === null) return a === b;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

/** Every field where the live state differs from the reference. */
export function compareDrift(d: DriftDesired, live: DriftLive): DriftFinding[] {
  const out: DriftFinding[] = [];
  if (live.image !== d.image) out.push({ field: 'image', desired: d.image, live: live.image ?? '(Deployment or container gone)' });
  if (d.replicas !== undefined && !live.hpa && live.replicas !== d.replicas) out.push({ field: 'replicas', desired: String(d.replicas), live: String(live.replicas ?? '(Deployment gone)') });
  if (d.role && live.roleExists) out.push({ field: d.role, desired: 'absent', live: 'present' });
  if (d.router !== undefined && live.routerAtRest === false) out.push({ field: 'router', desired: `${d.router}: weight 0 to the canary`, live: 'weight to the canary' });
  for (const s of d.services) {
    const now = live.services.find((x) => x.name === s.name)?.selector ?? null;
    if (!sameLabels(now, s.selector)) out.push({ field: `service/${s.name}`, desired: selectorText(s.selector), live: selectorText(now) });
  }
  return out;
}

/** `drift_<namespace>_<workload>` (`_` appears in neither name): one watch per workload. */
export function driftWorkflowId(w: { namespace: string; workload: string }): string {
  return `drift_${w.namespace}_${w.workload}`;
}

export interface DriftSettings {
  policy: DriftPolicy;
  /** How often to compare, e.g. "1m"; at least {@link MIN_DRIFT_INTERVAL_MS}. */
  interval: string;
}

/** Every problem of a watch's settings and baseline, each naming its field. */
export function driftProblems(s: DriftSettings & { baseline: DriftBaseline }): string[] {
  const problems: string[] = [];
  if (!(DRIFT_POLICIES as readonly string[]).includes(s.policy)) problems.push(`policy: must be ${DRIFT_POLICIES.map((p) => `"${p}"`).join(' or ')}, got ${JSON.stringify(String(s.policy).slice(0, 50))}`);
  try {
    const ms = parseDuration(s.interval);
    if (ms < MIN_DRIFT_INTERVAL_MS) problems.push(`interval: at least ${MIN_DRIFT_INTERVAL_MS / 1000}s, got ${s.interval}`);
  } catch (err) {
    problems.push(`interval: ${(err as Error).message}`);
  }
  const t = s.baseline?.target;
  if (!t) return [...problems, 'baseline.target: required'];
  if (t.workload?.kind !== 'Deployment') problems.push(`baseline.target.workload.kind: drift is watched on Deployments, got ${JSON.stringify(t.workload?.kind)}`);
  if (!s.baseline.image) problems.push('baseline.image: required');
  if (!s.baseline.releaseId) problems.push('baseline.releaseId: required');
  return problems;
}
