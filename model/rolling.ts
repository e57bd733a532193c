/**
 * Glidepath's own `strategy.rolling`: the workload's native rolling update driven in batches, with
 * the canary's gates (pause, analysis, approval) between them. A batch is cumulative, like a canary
 * weight: `batch: 1` means one replica on the new revision, `batch: 60%` means 60% of the replicas
 * (rounded up); whatever is left is updated at promotion. A StatefulSet is driven by its
 * `updateStrategy.rollingUpdate.partition` (ordinals from the top); a Deployment by its own rolling
 * update, paused between batches (`spec.paused`, maxSurge as given, maxUnavailable 0); a DaemonSet
 * node by node (`OnDelete` while the release runs; a batch counts nodes). Workflow-safe: no I/O.
 */
import type { CanaryStep, CanaryStrategy } from './types.ts';

/** The workload kinds a release can target. */
export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

/** A batch by count: how many replicas run the new revision once it is ready (a count, or a percentage rounded up). */
export type CountBatch = { kind: 'batch'; replicas: number } | { kind: 'batch'; percent: number };
/** A DaemonSet wave: every node matching the labels runs the new revision once it is ready (one zone at a time, say). */
export type NodeWave = { kind: 'batch'; nodeSelector: Record<string, string> };
export type BatchStep = CountBatch | NodeWave;

export type RollingStep = BatchStep | Extract<CanaryStep, { kind: 'pause' | 'analysis' | 'approval' }>;

export const ROLLING_STEP_KINDS = ['batch', 'pause', 'analysis', 'approval'] as const;

export interface RollingStrategy {
  type: 'rolling';
  steps: RollingStep[];
  /** Deployments: how many new pods the controller may start beyond the replica count while a batch runs (a count or "N%"; default 1). */
  maxSurge?: number | string;
}

/** A Deployment's surge during a rolling release when the plan sets none: one pod at a time, so a batch overshoots by at most one. */
export const DEFAULT_ROLLING_MAX_SURGE = 1;

/** Kubernetes' label key (optional DNS prefix, then a name of up to 63) and value grammar. */
const LABEL_KEY = /^(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/**
 * `3`, `"60%"` or `{nodeSelector: {zone: a}}` as a batch; undefined when it is none of a whole
 * number ≥ 0, a percentage 0–100, or a non-empty map of valid label keys to valid label values.
 */
export function parseBatch(v: unknown): BatchStep | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? { kind: 'batch', replicas: v } : undefined;
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const keys = Object.keys(v);
    const sel = (v as { nodeSelector?: unknown }).nodeSelector;
    if (keys.length !== 1 || keys[0] !== 'nodeSelector' || typeof sel !== 'object' || sel === null || Array.isArray(sel)) return undefined;
    const entries = Object.entries(sel);
    if (entries.length === 0 || !entries.every(([k, x]) => LABEL_KEY.test(k) && k.length <= 253 && typeof x === 'string' && LABEL_VALUE.test(x))) return undefined;
    return { kind: 'batch', nodeSelector: Object.fromEntries(entries) as Record<string, string> };
  }
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{1,3})%$/.exec(v.trim());
  const percent = m ? Number(m[1]) : NaN;
  return percent >= 0 && percent <= 100 ? { kind: 'batch', percent } : undefined;
}

export const isNodeWave = (step: BatchStep): step is NodeWave => 'nodeSelector' in step;

/** A node selector as Kubernetes writes it: `zone=a,tier=edge`. */
export const describeNodeSelector = (sel: Record<string, string>): string => Object.entries(sel).map(([k, v]) => `${k}=${v}`).join(',');

export function describeBatch(step: BatchStep): string {
  return isNodeWave(step) ? `nodes ${describeNodeSelector(step.nodeSelector)}` : 'percent' in step ? `${step.percent}%` : `${step.replicas}`;
}

/** The replicas a batch puts on the new revision, out of `replicas` (a percentage rounds up, as Argo's weights do). */
export function batchReplicas(step: CountBatch, replicas: number): number {
  const want = 'percent' in step ? Math.ceil((replicas * step.percent) / 100) : step.replicas;
  return Math.max(0, Math.min(replicas, want));
}

/**
 * The StatefulSet partition for `updated` replicas on the new revision: ordinals at or above it are
 * updated, from the top. Never below `floor` (the partition the StatefulSet had before the release).
 */
export function partitionFor(replicas: number, updated: number, floor: number): number {
  return Math.max(floor, replicas - Math.max(0, Math.min(replicas, updated)));
}

/** A rolling plan's problems as [path, message] (path relative to the strategy): batches that go down. */
export function rollingStepProblems(steps: RollingStep[]): { step: number; message: string }[] {
  const out: { step: number; message: string }[] = [];
  const last: { replicas?: number; percent?: number } = {};
  steps.forEach((s, i) => {
    if (s.kind !== 'batch' || isNodeWave(s)) return; // waves are cumulative by construction: a node once updated stays
    const [unit, value] = 'percent' in s ? (['percent', s.percent] as const) : (['replicas', s.replicas] as const);
    const before = last[unit];
    if (before !== undefined && value < before) out.push({ step: i, message: `batch ${describeBatch(s)} is smaller than an earlier batch (${unit === 'percent' ? `${before}%` : before}): batches count the replicas updated so far and never go down` });
    last[unit] = value;
  });
  return out;
}

/** Why a StatefulSet cannot run blue/green (docs/spec.md says the same). */
export const STATEFULSET_BLUE_GREEN =
  'blue/green is refused for a StatefulSet: a second (preview) StatefulSet would bring up a second set of ordinals with their own PersistentVolumeClaims, so the preview could never serve from the stable pods\' volumes and a switch would lose or fork state; use strategy.rolling, which updates the pods in place by partition';

/** Why a DaemonSet takes only strategy.rolling (docs/spec.md says the same). */
export const DAEMONSET_ROLLING_ONLY =
  'a DaemonSet is released with strategy.rolling (batches of nodes): it runs one pod per node, so there is no separate canary or preview set of pods to weigh traffic between';

/**
 * Strategies and fields a workload kind cannot take, named: [path under spec.strategy, message].
 * The edge (lint) and the workflow's start-time validation use it alike.
 */
export function workloadStrategyProblems(kind: WorkloadKind, strategy: 'canary' | 'blueGreen' | 'rolling', fields: { maxSurge?: boolean; steps?: readonly { kind: string }[] } = {}): { path: string; message: string }[] {
  if (kind !== 'DaemonSet') {
    const wave = (fields.steps ?? []).findIndex((s) => s.kind === 'batch' && isNodeWave(s as BatchStep));
    if (wave >= 0) return [{ path: `rolling.steps[${wave}].batch.nodeSelector`, message: `a batch of nodes by label is for DaemonSets (one pod per node); a ${kind} batch is a number of replicas or a percentage` }];
  }
  if (kind === 'StatefulSet') {
    if (strategy === 'blueGreen') return [{ path: 'blueGreen', message: STATEFULSET_BLUE_GREEN }];
    if (strategy === 'canary') return [{ path: 'canary', message: 'a StatefulSet is released with strategy.rolling (batches by partition); strategy.canary is for Deployments' }];
    if (fields.maxSurge) return [{ path: 'rolling.maxSurge', message: 'a StatefulSet has no surge (each ordinal exists once): remove maxSurge; batches are set by partition' }];
    return [];
  }
  if (kind === 'DaemonSet') {
    if (strategy !== 'rolling') return [{ path: strategy, message: DAEMONSET_ROLLING_ONLY }];
    if (fields.maxSurge) return [{ path: 'rolling.maxSurge', message: 'a DaemonSet batch replaces the one pod on each chosen node (the DaemonSet\'s own maxUnavailable sets how many nodes are down at once): remove maxSurge' }];
    return [];
  }
  return [];
}

/** The workload kinds an Argo Rollout's `workloadRef` may name. */
export const ROLLOUT_WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'] as const;

/**
 * An Argo canary on a StatefulSet or DaemonSet (`workloadRef.kind`) as Glidepath's rolling strategy
 * where it maps: each `setWeight: N` becomes `batch: N%` (that share of the pods updated in place:
 * a StatefulSet's from the top ordinal, a DaemonSet's node by node), pauses, analyses and approvals
 * stay. What cannot map (a traffic router, Services, background analysis, scale and route steps,
 * blue/green) is named: [path under spec.strategy, message].
 */
export function rolloutOnWorkload(kind: (typeof ROLLOUT_WORKLOAD_KINDS)[number], strategy: CanaryStrategy | { type: 'blueGreen' }): { strategy?: RollingStrategy; problems: { path: string; message: string }[] } {
  if (strategy.type === 'blueGreen') return { problems: [{ path: 'blueGreen', message: kind === 'DaemonSet' ? DAEMONSET_ROLLING_ONLY : STATEFULSET_BLUE_GREEN }] };
  const why = kind === 'DaemonSet' ? 'a DaemonSet\'s pods are replaced in place, node by node (no separate canary workload)' : 'a StatefulSet\'s pods are updated in place by partition (no separate canary workload)';
  const problems: { path: string; message: string }[] = [];
  for (const field of ['trafficRouting', 'stableService', 'canaryService', 'abortScaleDownDelaySeconds', 'scaleDownDelaySeconds'] as const) {
    if (strategy[field] !== undefined) problems.push({ path: `canary.${field}`, message: `cannot map to a ${kind}: ${why}, so there is nothing to route or scale down separately` });
  }
  if (strategy.background) problems.push({ path: 'canary.analysis', message: `background analysis cannot map to a ${kind} release yet: use analysis steps between the weights (${why})` });
  const steps: RollingStep[] = [];
  strategy.steps.forEach((step, i) => {
    if (step.kind === 'setWeight') steps.push({ kind: 'batch', percent: step.weight });
    else if (step.kind === 'pause' || step.kind === 'analysis' || step.kind === 'approval') steps.push(step);
    else problems.push({ path: `canary.steps[${i}].${step.kind}`, message: `cannot map to a ${kind}: ${why}; setWeight, pause, analysis and approval steps map` });
  });
  for (const p of rollingStepProblems(steps)) problems.push({ path: `canary.steps[${p.step}].setWeight`, message: p.message.replace(/^batch (\d+)%/, 'weight $1').replace('smaller than an earlier batch', 'smaller than an earlier weight') });
  return problems.length > 0 ? { problems } : { strategy: { type: 'rolling', steps }, problems };
}
