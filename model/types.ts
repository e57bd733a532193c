/**
 * The normalised release plan: what the edge (CLI, lint) produces from YAML and the workflow runs.
 * Durations are milliseconds or seconds as named; analysis templates are resolved and their args
 * bound; nothing here holds a secret (secret-valued args are references resolved in activities).
 */
import type { BasicCanaryLimits } from './basic-canary.ts';
import type { RollingStrategy, WorkloadKind } from './rolling.ts';

export type { RollingStep, RollingStrategy, WorkloadKind } from './rolling.ts';

import type { NotificationSpec } from './notifications.ts';
import type { WebhookSpec } from './webhooks.ts';
import type { FreezeSpec } from './freeze.ts';
import type { ExperimentStep } from './experiment.ts';
import type { JudgeProviderSpec } from './judge-provider.ts';
import type { ConfigRef } from './config.ts';
export const PHASES = [
  'Progressing',
  'Paused',
  'AwaitingApproval',
  'Analyzing',
  'Promoting',
  'Promoted',
  'Aborting',
  'Aborted',
  'RollingBack',
  'RolledBack',
  'Failed',
] as const;
export type Phase = (typeof PHASES)[number];

/** Phases in which the workflow waits for nothing but a retry (or its retry window to end). */
export const SETTLED_PHASES: readonly Phase[] = ['Promoted', 'Aborted', 'RolledBack', 'Failed'];

export type AnalysisPhase = 'Pending' | 'Running' | 'Successful' | 'Failed' | 'Inconclusive' | 'Error';

/** A metric provider's configuration, passed through to the provider named by its single key. */
export type ProviderSpec = { prometheus: PrometheusProviderSpec } | { web: WebProviderSpec } | { job: JobProviderSpec } | { judge: JudgeProviderSpec };

export interface PrometheusProviderSpec {
  address: string;
  query: string;
  timeout?: number;
  insecure?: boolean;
  headers?: { key: string; value: string }[];
  authentication?: Record<string, unknown>;
}

/** Argo's web provider: an HTTP(S) endpoint whose JSON answer, at `jsonPath`, is the value. */
export interface WebProviderSpec {
  url: string;
  method?: 'GET' | 'POST' | 'PUT';
  headers?: { key: string; value: string }[];
  body?: string;
  jsonBody?: unknown;
  jsonPath?: string;
  timeoutSeconds?: number;
  insecure?: boolean;
}

/**
 * Argo's job provider: a Kubernetes Job created in the release's namespace for each measurement;
 * Complete is the value 1, Failed the value 0. `spec` is a batch/v1 JobSpec, passed through.
 */
export interface JobProviderSpec {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
}

export interface MetricSpec {
  name: string;
  intervalMs?: number;
  count?: number;
  initialDelayMs?: number;
  successCondition?: string;
  failureCondition?: string;
  /** Failed measurements tolerated; -1 tolerates any (Argo's convention). Default 0. */
  failureLimit: number;
  /** Inconclusive measurements tolerated; -1 tolerates any. Default 0. */
  inconclusiveLimit: number;
  /** Consecutive errored measurements tolerated. Default 4. */
  consecutiveErrorLimit: number;
  dryRun: boolean;
  /** How many of the latest measurements are kept (Argo's `measurementRetention`). Default 10; counts stay exact. */
  measurementRetention?: number;
  provider: ProviderSpec;
}

/** An analysis argument: a literal value, or a reference to a Kubernetes Secret key. */
export type ArgValue = { value: string } | { secretKeyRef: { name: string; key: string } };

/** One analysis run, templates merged and args bound. */
export interface AnalysisRunSpec {
  /** Template names joined, for status and audit. */
  name: string;
  templates: string[];
  args: Record<string, ArgValue>;
  metrics: MetricSpec[];
}

export interface Measurement {
  phase: 'Successful' | 'Failed' | 'Inconclusive' | 'Error';
  value?: unknown;
  message?: string;
  startedAt: string;
  finishedAt: string;
}

export interface MetricResult {
  name: string;
  dryRun: boolean;
  phase: AnalysisPhase;
  message?: string | undefined;
  count: number;
  successful: number;
  failed: number;
  inconclusive: number;
  error: number;
  consecutiveError: number;
  measurements: Measurement[];
}

/** Exact counts of a metric's measurements (the measurements themselves are kept only in part). */
export interface Tally {
  count: number;
  successful: number;
  failed: number;
  inconclusive: number;
  error: number;
  consecutiveError: number;
}

/** One metric's part of a run: its latest measurements and, when some were dropped, the exact counts of all. */
export interface MetricRunResult {
  name: string;
  /** The latest measurements, at most the metric's retention, oldest first. */
  measurements: Measurement[];
  /** Counts over every measurement taken; absent in results of older workers (then counted from `measurements`). */
  tally?: Tally;
}

/** What the analysis activity returns: retained measurements and exact counts per metric (the workflow assesses them). */
export interface AnalysisRunResult {
  metrics: MetricRunResult[];
  /** True when the run was stopped before every metric reached its count (background analysis). */
  terminated: boolean;
}

/** Argo's `StringMatch`: exactly one of exact, prefix, regex. */
export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

/** Argo's `setHeaderRoute.match[]` entry: requests whose header matches go to the canary. */
export interface HeaderRoutingMatch {
  headerName: string;
  headerValue: StringMatch;
}

/** Argo's `setMirrorRoute.match[]` entry: all given conditions must hold. */
export interface RouteMatch {
  method?: StringMatch;
  path?: StringMatch;
  headers?: Record<string, StringMatch>;
}

export type CanaryStep =
  | { kind: 'setWeight'; weight: number }
  | ExperimentStep
  | { kind: 'pause'; durationMs?: number }
  | { kind: 'analysis'; analysis: AnalysisRunSpec }
  | { kind: 'setCanaryScale'; replicas?: number; weight?: number; matchTrafficWeight?: boolean }
  | {
      kind: 'approval';
      approvers: string[];
      minApprovals: number;
      timeoutMs?: number;
      onTimeout: 'abort' | 'rollback';
    }
  /** An empty `match` removes the route (Argo's convention). */
  | { kind: 'setHeaderRoute'; name: string; match: HeaderRoutingMatch[] }
  /** `percentage` of the matching requests is copied to the canary; an empty `match` removes the route. */
  | { kind: 'setMirrorRoute'; name: string; percentage: number; match: RouteMatch[] };
export type StepKind = CanaryStep['kind'];

export interface TrafficRoutingSpec {
  /** The router's name (istio, nginx, alb, smi, plugins.gatewayAPI …) and its Argo block, verbatim. */
  [router: string]: unknown;
}

export interface CanaryStrategy {
  type: 'canary';
  steps: CanaryStep[];
  background?: { analysis: AnalysisRunSpec; startingStep: number };
  stableService?: string;
  canaryService?: string;
  trafficRouting?: TrafficRoutingSpec;
  /** Argo's: seconds canary pods stay after an abort sent traffic to stable (default 30 with a traffic router, else 0). */
  abortScaleDownDelaySeconds?: number;
  /** Argo's: seconds the canary stays after promotion sent traffic to stable (default 30 with a traffic router, else 0). */
  scaleDownDelaySeconds?: number;
  /** Argo's maxSurge/maxUnavailable (the unset one at its default, 25 %), when the spec sets either and has no trafficRouting: the weight moves pods from the stable to the canary (model/basic-canary.ts). */
  replicaLimits?: BasicCanaryLimits;
}

export interface BlueGreenStrategy {
  type: 'blueGreen';
  activeService: string;
  previewService?: string;
  autoPromotionEnabled: boolean;
  autoPromotionSeconds?: number;
  prePromotionAnalysis?: AnalysisRunSpec;
  postPromotionAnalysis?: AnalysisRunSpec;
  scaleDownDelaySeconds: number;
  previewReplicaCount?: number;
  /** Argo's: seconds preview pods stay after an abort switched the active service back (default 30). */
  abortScaleDownDelaySeconds?: number;
}

export type Strategy = CanaryStrategy | BlueGreenStrategy | RollingStrategy;

/** Who may do what. An absent list means anyone who can reach the Temporal namespace. */
export interface ReleasePolicy {
  promoters?: string[];
  aborters?: string[];
}

export interface WorkloadRef {
  kind: WorkloadKind;
  name: string;
  /** The container whose image the release changes; the first container when absent. */
  container?: string;
}

/**
 * Build the release's image from a source context before the rollout (issue 7). Paths and names
 * only: registry credentials are resolved by the worker (`registry.authSecret` names a Kubernetes
 * Secret of type dockerconfigjson, or the worker's GLIDEPATH_REGISTRY_AUTH_FILE is used).
 */
export interface BuildSpec {
  /** Source context directory on the worker. */
  context: string;
  /** Relative to the context unless absolute. */
  dockerfile?: string | undefined;
  buildArgs?: Record<string, string> | undefined;
  target?: string | undefined;
  platform?: string | undefined;
  /** Where to push: full references, or bare tags put on the repository of the plan's image. */
  tags: string[];
  /** The worker's builder; `buildah` by default. */
  builder?: string | undefined;
  registry?: { insecure?: boolean | undefined; authSecret?: string | undefined } | undefined;
}

export type ReadinessProbePolicy = 'require' | 'warn';

/** `requireDigest`: only `repo@sha256:` images are released (a build pins its own). */
export interface ImagePolicy {
  requireDigest: boolean;
}

export interface ReleasePlan {
  name: string;
  namespace: string;
  workload: WorkloadRef;
  image: string;
  progressDeadlineSeconds: number;
  /** How long an aborted or rolled-back release waits for `retry` before it ends. */
  retryWindowSeconds: number;
  /**
   * A stable container without a readiness probe: `require` fails preflight, `warn` only warns.
   * Absent: the worker's GLIDEPATH_READINESS_PROBE_POLICY (default `fail`, as `require`).
   */
  readinessProbePolicy?: ReadinessProbePolicy;
  policy: ReleasePolicy;
  strategy: Strategy;
  /** Where the plan came from (file names), for status and audit. */
  source?: string;
  /** Build and push the image first; the release then runs the pinned `repo@sha256:` reference. */
  build?: BuildSpec;
  imagePolicy?: ImagePolicy;
  /** Subscriptions to the release's events (model/notifications.ts). */
  notifications?: NotificationSpec[];
  /** Webhook gates with Flagger's types (model/webhooks.ts). */
  webhooks?: WebhookSpec[];
  /** Freeze windows and who may override them (model/freeze.ts). */
  freeze?: FreezeSpec;
  /** The cluster this release runs in, when a release group started it (model/group.ts): part of its workflow ID. */
  cluster?: string;
  /** ConfigMaps and Secrets released with the image as content-hashed copies (model/config.ts): names only. */
  config?: ConfigRef[];
  /**
   * The Deployment's desired replica count (a release group's per-cluster override): the canary or
   * preview is sized from it and the promoted Deployment ends at it; abort puts back the count it had.
   * Absent: the live Deployment's own count, never written.
   */
  replicas?: number;
}

/** `namespace/name`, the value of the GlidepathService search attribute. */
export function serviceKey(plan: Pick<ReleasePlan, 'namespace' | 'name'>): string {
  return `${plan.namespace}/${plan.name}`;
}

/**
 * One release in flight per workload: the workflow ID is derived from the workload (not the Release
 * name), with `_` as separator, which no namespace or workload name can contain, so two workloads
 * never share an ID: `release_<namespace>_<workload>`, and `…@<cluster>` for a release group's member in a cluster.
 */
export function releaseWorkflowId(plan: Pick<ReleasePlan, 'namespace' | 'workload' | 'cluster'>): string {
  return `release_${plan.namespace}_${plan.workload.name}${plan.cluster === undefined ? '' : `@${plan.cluster}`}`;
}

/** The earlier ID form, `release-<namespace>-<Release name>` (ambiguous); releases started under it keep it. */
export function legacyReleaseWorkflowId(plan: Pick<ReleasePlan, 'namespace' | 'name'>): string {
  return `release-${plan.namespace}-${plan.name}`;
}
