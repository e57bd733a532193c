/**
 * Argo Rollouts' replica arithmetic for a canary without traffic routing ("basic canary"), ported
 * from argo-rollouts utils/replicaset/canary.go (`CalculateReplicaCountsForBasicCanary`,
 * `approximateWeightedCanaryStableReplicaCounts`) and replicaset.go (`resolveFenceposts`): the
 * weight is a share of pods, the stable shrinks as the canary grows, and each move keeps at most
 * spec + maxSurge pods and at least spec − maxUnavailable available ones. Glidepath applies it when
 * the release sets `maxSurge` or `maxUnavailable` (the other defaults to 25 %, as in Argo).
 * Workflow-safe (pure).
 */
export type IntOrPercent = number | string;

/** The limits as written in the spec (each a count or "N%"); at least one of them set. */
export interface BasicCanaryLimits {
  maxSurge: IntOrPercent;
  maxUnavailable: IntOrPercent;
}

/** Argo's defaults for an unset limit. */
export const DEFAULT_MAX_SURGE = '25%';
export const DEFAULT_MAX_UNAVAILABLE = '25%';

/** Problems of a pair of limits (both zero cannot move a pod). */
export function limitsProblems(l: Partial<BasicCanaryLimits>): { path: 'maxSurge' | 'maxUnavailable'; message: string }[] {
  const zero = (v: IntOrPercent) => v === 0 || v === '0%';
  if (zero(l.maxSurge ?? DEFAULT_MAX_SURGE) && zero(l.maxUnavailable ?? DEFAULT_MAX_UNAVAILABLE)) {
    return [{ path: l.maxSurge !== undefined ? 'maxSurge' : 'maxUnavailable', message: 'maxSurge and maxUnavailable cannot both be zero (no pod could move)' }];
  }
  return [];
}

/** A count or a percentage of `total`, rounded up or down (Kubernetes' GetValueFromIntOrPercent). */
export function scaledValue(v: IntOrPercent, total: number, roundUp: boolean): number {
  if (typeof v === 'number') return v;
  const pct = Number(v.replace(/%$/, ''));
  const exact = (pct * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/** maxSurge rounded up, maxUnavailable down (both zero: one unavailable), maxUnavailable at most the replicas (Argo's MaxSurge/MaxUnavailable). */
export function resolveLimits(l: BasicCanaryLimits, replicas: number): { surge: number; unavailable: number } {
  const surge = scaledValue(l.maxSurge, replicas, true);
  let unavailable = scaledValue(l.maxUnavailable, replicas, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  if (replicas === 0) unavailable = 0;
  return { surge, unavailable: Math.min(unavailable, replicas) };
}

const tied = (weight: number, total: number): boolean => {
  const x = total * (weight / 100);
  return x - Math.trunc(x) === 0.5;
};
const delta = (weight: number, canary: number, total: number): number => Math.abs((canary * 100) / total - weight);

/** The canary and stable counts that best approximate `weight` (of 100) with `replicas`, one surge pod allowed when maxSurge > 0. */
export function weightedCounts(replicas: number, weight: number, surge: number): { canary: number; stable: number } {
  if (replicas === 0) return { canary: 0, stable: 0 };
  const ceil = Math.ceil((replicas * weight) / 100);
  const floor = Math.floor((replicas * weight) / 100);
  const zeroAllowed = weight === 100 || weight === 0 || (replicas === 1 && surge === 0);
  const options: { canary: number; total: number }[] = [];
  if (ceil < replicas || zeroAllowed) options.push({ canary: ceil, total: replicas });
  if (!tied(weight, replicas) && (floor !== 0 || zeroAllowed)) options.push({ canary: floor, total: replicas });
  if (surge > 0) {
    options.push({ canary: ceil, total: replicas + 1 });
    if (!tied(weight, replicas + 1) && (floor !== 0 || zeroAllowed)) options.push({ canary: floor, total: replicas + 1 });
  }
  let best = options[0];
  if (!best) return { canary: 0, stable: replicas };
  for (const o of options.slice(1)) if (delta(weight, o.canary, o.total) < delta(weight, best.canary, best.total)) best = o;
  return { canary: best.canary, stable: best.total - best.canary };
}

/** One side's Deployment as the arithmetic reads it. */
export interface SideCount {
  replicas: number;
  available: number;
}

/** Replicas a side can lose while keeping its availability honest (Argo's GetReplicasForScaleDown). */
const forScaleDown = (s: SideCount, ignoreAvailability: boolean): number => (s.replicas < s.available || ignoreAvailability ? s.replicas : s.available);

/** Argo's adjustReplicaWithinLimits: `adjust` kept within the surge, `drain` reduced by what is still over it. */
function withinLimits(drain: SideCount, adjust: SideCount, drainCount: number, adjustCount: number, maxTotal: number, minAvailable: number): [number, number] {
  let over = Math.max(0, adjustCount + drainCount - maxTotal);
  let available = Math.min(drain.available, drainCount);
  adjustCount -= over;
  available += Math.min(adjust.available, adjustCount);
  const extra = Math.max(0, adjust.available - adjustCount);
  adjustCount += Math.min(extra, Math.max(0, minAvailable - available));
  over = Math.max(0, adjustCount + drainCount - maxTotal);
  return [drainCount - over, adjustCount];
}

/**
 * The next canary and stable counts towards `weight` from where the two Deployments are now (Argo's
 * CalculateReplicaCountsForBasicCanary with a stable and no older ReplicaSets): grow within the
 * surge first, then shrink as far as the available pods allow. Applied repeatedly (each time the
 * pods are ready) it reaches `target(spec, weight, limits)`.
 */
export function nextCounts(spec: number, weight: number, limits: BasicCanaryLimits, canary: SideCount, stable: SideCount): { canary: number; stable: number } {
  const { surge, unavailable } = resolveLimits(limits, spec);
  const desired = weightedCounts(spec, weight, surge);
  const maxTotal = spec + surge;
  let canaryCount = canary.replicas;
  let stableCount = stable.replicas;
  let scaleUp = maxTotal - (canary.replicas + stable.replicas);
  if (stable.replicas < desired.stable && scaleUp > 0) {
    if (stable.replicas + scaleUp < desired.stable) {
      stableCount = stable.replicas + scaleUp;
      scaleUp = 0;
    } else {
      stableCount = desired.stable;
      scaleUp -= desired.stable - stable.replicas;
    }
  }
  if (canary.replicas < desired.canary && scaleUp > 0) canaryCount = Math.min(canary.replicas + scaleUp, desired.canary);

  const minAvailable = spec - unavailable;
  const increasing = desired.canary >= canary.replicas;
  const scalable = forScaleDown(canary, !increasing) + forScaleDown(stable, increasing);
  if (scalable <= minAvailable) return { canary: canaryCount, stable: stableCount };
  const scaleDown = scalable - minAvailable;
  if (!increasing) {
    if (canary.replicas > desired.canary) canaryCount = Math.max(desired.canary, canary.replicas - scaleDown);
    [canaryCount, stableCount] = withinLimits(canary, stable, canaryCount, stableCount, maxTotal, minAvailable);
  } else {
    if (stable.replicas > desired.stable) stableCount = Math.max(desired.stable, stable.replicas - scaleDown);
    [stableCount, canaryCount] = withinLimits(stable, canary, stableCount, canaryCount, maxTotal, minAvailable);
  }
  return { canary: canaryCount, stable: stableCount };
}

/** Where the moves towards `weight` end: the approximated split. */
export function targetCounts(spec: number, weight: number, limits: BasicCanaryLimits): { canary: number; stable: number } {
  return weightedCounts(spec, weight, resolveLimits(limits, spec).surge);
}
