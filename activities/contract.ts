/**
 * Activity contracts: the small interfaces each real part implements (Kubernetes workloads, traffic
 * routers, metric providers, image builders) and the target every activity receives. Activities
 * are idempotent: each converges the cluster to a described state and can run any number of times.
 */
import type { BasicCanaryLimits } from '../model/basic-canary.ts';
import type { BuildRequest } from './build/process.ts';
import type { AnalysisRunResult, AnalysisRunSpec, Measurement, MetricSpec, ArgValue, HeaderRoutingMatch, ReadinessProbePolicy, RouteMatch, TrafficRoutingSpec, WorkloadKind, WorkloadRef } from '../model/types.ts';
import type { BatchStep } from '../model/rolling.ts';
import type { ExperimentOps } from './kubernetes/experiment.ts';
import type { WeightDestination } from '../model/experiment.ts';
import type { ConfigOps } from './kubernetes/config.ts';
import type { ConfigCopy } from '../model/config.ts';

/** What every workload activity needs to know about the release; small, and free of secrets. */
export interface ReleaseTarget {
  releaseId: string;
  /**
   * The release workflow's run. A later release of the same workload has the same `releaseId`, so
   * what a promotion records on the stable (the image it ran before) is marked with the run too, and
   * only that run puts it back. Absent: any run of the release counts (objects written before runs were recorded).
   */
  runId?: string | undefined;
  namespace: string;
  workload: WorkloadRef;
  /** The image being released. */
  image: string;
  strategy: 'canary' | 'blueGreen' | 'rolling';
  /** strategy.rolling on a Deployment: the surge while a batch runs. */
  maxSurge?: number | string | undefined;
  stableService?: string | undefined;
  canaryService?: string | undefined;
  activeService?: string | undefined;
  previewService?: string | undefined;
  trafficRouting?: TrafficRoutingSpec | undefined;
  /** A canary without trafficRouting: Argo's maxSurge/maxUnavailable, when the release sets either (the weight then moves pods from the stable). */
  replicaLimits?: BasicCanaryLimits | undefined;
  progressDeadlineSeconds: number;
  /** The release spec's readiness-probe policy; absent: the worker's (GLIDEPATH_READINESS_PROBE_POLICY). */
  readinessProbePolicy?: ReadinessProbePolicy | undefined;
  /** spec.config: this attempt's content-hashed copies (names only) the canary/preview and, on promotion, the stable point at. */
  config?: ConfigCopy[] | undefined;
  /**
   * The Deployment's desired replica count (canary and blue/green): the canary/preview is sized from
   * it, promotion sets it on the stable with the image, abort puts back the count it had. Absent: the
   * live count, never written. Refused at preflight when an HPA scales the Deployment (it owns the count).
   */
  replicas?: number | undefined;
}

export interface PreflightResult {
  /** The image the stable workload runs now (what a rollback returns to). */
  stableImage: string;
  replicas: number;
  warnings: string[];
}

export interface PromoteOptions {
  /** Runs before the stable takes the new image (the router's stable side stops pinning the stable's current ReplicaSet, whose pods are about to go). */
  beforeStableRolls?: () => Promise<void>;
  /** Runs once the stable is ready, before the canary goes (the router sends everything to stable). */
  beforeCanaryRemoved?: () => Promise<void>;
  /** Stop after the stable is ready and traffic is on stable; the canary is removed later by removeCanary. */
  keepCanary?: boolean;
  /**
   * Once the stable is rolled out, its Service is pinned to the new stable's pods (when its own selector
   * reaches canary pods) before traffic comes back to it, so that the canary's pods, removed later, carry
   * none of it. For a promotion that sent all traffic to the canary while the stable rolled.
   */
  pinStable?: boolean;
}

/** What a cleanup reports: objects someone else changed during the release, left as they are (for the audit). */
export interface CleanupReport {
  drift: string[];
}

export type CanaryScale = { replicas: number } | { weight: number } | { matchTrafficWeight: true };

/** Kubernetes operations on the workload. Implemented with @kubernetes/client-node. */
export interface WorkloadOps {
  preflight(target: ReleaseTarget): Promise<PreflightResult>;
  /** Creates or updates the canary workload from the stable's template with the new image, at 0 replicas. */
  ensureCanary(target: ReleaseTarget): Promise<void>;
  /**
   * Scales the canary for a traffic weight (replica ratio when no router) and waits until ready;
   * sized from the stable's live desired count. `upOnly`: never fewer replicas than it has now (a
   * weight being lowered moves traffic before pods go).
   */
  scaleCanaryForWeight(target: ReleaseTarget, weight: number, opts?: { upOnly?: boolean }): Promise<{ canaryReplicas: number }>;
  setCanaryScale(target: ReleaseTarget, scale: CanaryScale, currentWeight: number): Promise<{ canaryReplicas: number }>;
  /**
   * Stable takes the new image and becomes ready; then `beforeCanaryRemoved` runs (the traffic router
   * sends everything to stable); then the canary goes, so no request is routed to pods that are gone.
   * With `keepCanary` it stops once the stable is ready and traffic is on stable: the canary stays
   * (its Services still point at it) until {@link WorkloadOps.removeCanary}, e.g. after a durable delay.
   */
  promoteCanary(target: ReleaseTarget, opts?: PromoteOptions): Promise<void>;
  /**
   * The canary scaled to 0 and removed, the canary and stable Services given back their own
   * selectors; nothing else is touched (not the stable Deployment, not the router). Idempotent:
   * with no canary left it changes nothing.
   */
  removeCanary(target: ReleaseTarget): Promise<void>;
  /**
   * All traffic to a ready stable (`routeToStable`), then the canary to zero and removed; the stable
   * put back only where this release wrote it (an image someone else set is left, reported as
   * drift); stable replicas never reduced. A stable a promotion left half-updated is put back and
   * ready before traffic leaves a serving canary. Every part runs; failures come out as one
   * retryable error naming each part.
   */
  abortCanary(target: ReleaseTarget, stableImage: string | undefined, hooks?: { routeToStable?: { part: string; run: () => Promise<void> }[]; keepCanary?: boolean }): Promise<CleanupReport>;
  deployPreview(target: ReleaseTarget, replicas: number | undefined): Promise<void>;
  switchActive(target: ReleaseTarget, to: 'preview' | 'stable'): Promise<void>;
  /** After the scale-down delay: the old side goes, the new side is the stable workload. */
  finalizeBlueGreen(target: ReleaseTarget): Promise<void>;
  /** As abortCanary, for the preview: traffic leaves a serving preview only for a ready stable. */
  abortBlueGreen(target: ReleaseTarget, stableImage: string | undefined): Promise<CleanupReport>;
}

/** The operations of a rolling release (strategy.rolling, model/rolling.ts) on one workload kind (StatefulSets: activities/kubernetes/statefulsets.ts). */
export interface RollingOps {
  preflight(target: ReleaseTarget): Promise<PreflightResult>;
  /** The new template in place, no pod moved: the partition raised to the replica count. Returns the replica count. */
  begin(target: ReleaseTarget): Promise<{ replicas: number }>;
  /** A cumulative batch: that many replicas (live count) on the new revision and ready, every other pod ready too. */
  batch(target: ReleaseTarget, step: BatchStep): Promise<{ updated: number; replicas: number }>;
  /** Every replica the release may update on the new revision and ready; the partition back where it was. */
  complete(target: ReleaseTarget): Promise<{ updated: number; replicas: number }>;
  /** The old image back where this release set the new one, its pods ready, the partition back where it was. */
  abort(target: ReleaseTarget, stableImage: string | undefined): Promise<CleanupReport>;
}

/** A traffic router (Argo's TrafficRoutingReconciler, in small). */
export interface TrafficRouter {
  readonly type: string;
  /** Whether setWeight carries an experiment's extra destinations (Argo's additionalDestinations: Istio, SMI). */
  readonly experimentWeights?: boolean;
  /**
   * The canary at `weight`; with `destinations` (an experiment step's weighted templates, routers with
   * `experimentWeights`), each of their Services at its weight and the stable at 100 − weight − theirs.
   * Destinations an earlier call added and this one does not name are removed.
   */
  setWeight(target: ReleaseTarget, weight: number, destinations?: WeightDestination[]): Promise<void>;
  /** The weight (and experiment destinations) the routing object carries now, or `undefined` when the router cannot tell. */
  verifyWeight(target: ReleaseTarget, weight: number, destinations?: WeightDestination[]): Promise<boolean | undefined>;
  /** Argo's setHeaderRoute: matching requests go to the canary only; an empty match removes the route. */
  setHeaderRoute?(target: ReleaseTarget, route: { name: string; match: HeaderRoutingMatch[] }): Promise<void>;
  /** Argo's setMirrorRoute: `percentage` of matching requests is copied to the canary; an empty match removes it. */
  setMirrorRoute?(target: ReleaseTarget, route: { name: string; percentage: number; match: RouteMatch[] }): Promise<void>;
  removeManagedRoutes(target: ReleaseTarget): Promise<void>;
  /**
   * Before a promotion rolls the stable forward: a stable destination pinned to the stable's current
   * ReplicaSet (Istio's stable subset) selects the whole workload instead, so it keeps endpoints while
   * the old ReplicaSet's pods go. Routers that route to Services need nothing.
   */
  unpinStable?(target: ReleaseTarget): Promise<void>;
}

/** Context a provider gets for one measurement. */
export interface MeasureContext {
  /** Args with secrets resolved; never logged or returned. */
  args: Record<string, string>;
  signal: AbortSignal;
  /** The release's namespace and ID (the job provider creates its Job there and labels it). */
  namespace?: string;
  releaseId?: string;
  /** 1-based number of this measurement of the metric (a provider may use it in names). */
  measurement?: number;
  /**
   * Called with a handle to what the measurement created (the job provider: the Job's name) before it
   * waits; the analysis keeps it in heartbeat details until the measurement ends.
   */
  onStarted?(handle: string): void;
}

/** A metric provider returns the raw value; the verdict is decided in model/analysis.ts. */
export interface MetricProvider {
  readonly type: string;
  measure(metric: MetricSpec, ctx: MeasureContext): Promise<unknown>;
  /** Deletes what a measurement left behind (`handle` from onStarted): a retried attempt calls it for its predecessor's. */
  abandon?(namespace: string, handle: string): Promise<void>;
}

/** Resolves secret-valued analysis args inside the activity. */
export type SecretResolver = (namespace: string, ref: { name: string; key: string }) => Promise<string>;

/** Builds a context and pushes it to every tag; returns the pushed manifest digest (buildah, buildctl, buildx: activities/build/). */
export interface ImageBuilder {
  readonly type: string;
  build(input: BuildRequest): Promise<{ digest: string }>;
}

export interface ActivityDeps {
  workload: WorkloadOps;
  /** strategy.rolling, per workload kind (absent: refused by name at preflight). */
  rolling?: Partial<Record<WorkloadKind, RollingOps>>;
  routers?: Record<string, TrafficRouter>;
  /** The workloads of experiment steps (absent: an experiment step fails, named). */
  experiments?: ExperimentOps;
  /** spec.config's copies (absent: a release with spec.config fails, named). */
  config?: ConfigOps;
  metrics?: Record<string, MetricProvider>;
  secrets?: SecretResolver;
  builders?: Record<string, ImageBuilder>;
  /** Clock and sleep, injectable for tests of the analysis loop. */
  now?: () => Date;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export type { AnalysisRunResult, AnalysisRunSpec, Measurement, ArgValue, WeightDestination };
