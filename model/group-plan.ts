/**
 * The normalised release group: its members (each a {@link ReleasePlan}) in dependency order, its
 * waves of clusters with their gates, and the failure policy; and the pure functions the parent
 * workflow and the CLI share: a member's plan in one cluster (with that cluster's overrides), the
 * task queue of a cluster and workflow IDs. Workflow-safe (no I/O, no zod); the start-time check
 * with its schema is in model/group-plan-schema.ts.
 */
import { groupTriggerProblems, type NotificationSpec } from './notifications.ts';
import type { AnalysisRunSpec, ReleasePlan } from './types.ts';

export const GROUP_KIND = 'ReleaseGroup';
export const ON_FAILURE = ['rollback-group', 'rollback-failed', 'pause'] as const;
export type OnFailure = (typeof ON_FAILURE)[number];

/** Bounds: a group is a handful of services over a handful of clusters. */
export const MAX_MEMBERS = 20;
export const MAX_CLUSTERS = 20;
export const MAX_WAVES = 10;

export interface GroupApproval {
  approvers: string[];
  minApprovals: number;
  timeoutMs?: number;
  onTimeout: 'abort' | 'rollback';
}

/** What must hold after a wave before the next one starts; each part is optional, run in this order. */
export interface GroupGate {
  soakMs?: number;
  /** Run once in every cluster of the wave, by that cluster's worker (its metrics credentials). */
  analysis?: AnalysisRunSpec;
  approval?: GroupApproval;
}

export interface GroupWave {
  name: string;
  clusters: string[];
  /** How many clusters of the wave release at once. */
  maxParallel: number;
  gate?: GroupGate;
}

export interface GroupMember {
  name: string;
  plan: ReleasePlan;
  dependsOn: string[];
}

/** What a real fleet varies per cluster. */
export interface ClusterOverride {
  /** Replaces the registry host of every member's image (`registry.eu.example:5000`). */
  imageRegistry?: string;
  /** Replaces the address of every Prometheus metric (members' analyses and gates) in that cluster. */
  analysisAddress?: string;
  /** Per member: its Deployment's desired replica count in that cluster (the plan's `replicas`). */
  replicas?: Record<string, number>;
}

/** An override that cannot apply: the path below the cluster's entry (`[]` for the entry itself) and why. */
export interface OverrideProblem {
  cluster: string;
  path: string[];
  message: string;
}

/**
 * Overrides that name what the group does not have: a cluster no wave names, a replica count for a
 * member the group does not release. The edge (model/group.ts) and the parent's start-time check
 * both use it; counts themselves are checked by `desiredReplicas` (model/plan.ts) and, per member and
 * cluster, by the plan's own check.
 */
export function overrideProblems(clusters: Readonly<Record<string, ClusterOverride>>, waveClusters: ReadonlySet<string>, members: readonly string[]): OverrideProblem[] {
  const out: OverrideProblem[] = [];
  for (const [cluster, o] of Object.entries(clusters)) {
    if (!waveClusters.has(cluster)) out.push({ cluster, path: [], message: `no wave names cluster "${cluster}"` });
    for (const member of Object.keys(o.replicas ?? {})) {
      if (!members.includes(member)) out.push({ cluster, path: ['replicas', member], message: `no member named "${member}" (members: ${members.join(', ')})` });
    }
  }
  return out;
}

export interface GroupPlan {
  name: string;
  namespace: string;
  /** In dependency order: every member after the members it depends on. */
  members: GroupMember[];
  waves: GroupWave[];
  onFailure: OnFailure;
  clusters: Record<string, ClusterOverride>;
  /** Subscriptions to the group's events (model/notifications.ts GROUP_TRIGGERS). */
  notifications?: NotificationSpec[];
  source?: string;
}

/** A deep copy of JSON data (the workflow sandbox has no structuredClone). */
function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** A worker long-polls for about a minute: one not seen for longer than this is gone. */
export const POLLER_SEEN_WITHIN_MS = 90_000;

/** The task queue a cluster's worker polls. */
export function clusterTaskQueue(cluster: string): string {
  return `glidepath@${cluster}`;
}

/** One group in flight per name and namespace. */
export function groupWorkflowId(group: Pick<GroupPlan, 'namespace' | 'name'>): string {
  return `group_${group.namespace}_${group.name}`;
}

/** The registry host of an image reference, if it names one (a first component with `.`, `:` or `localhost`). */
function splitRegistry(image: string): { registry?: string; rest: string } {
  const slash = image.indexOf('/');
  if (slash < 0) return { rest: image };
  const first = image.slice(0, slash);
  if (first.includes('.') || first.includes(':') || first === 'localhost') return { registry: first, rest: image.slice(slash + 1) };
  return { rest: image };
}

export function withRegistry(image: string, registry: string): string {
  return `${registry}/${splitRegistry(image).rest}`;
}

function withAnalysisAddress(run: AnalysisRunSpec, address: string): AnalysisRunSpec {
  return {
    ...run,
    metrics: run.metrics.map((m) => ('prometheus' in m.provider ? { ...m, provider: { prometheus: { ...m.provider.prometheus, address } } } : m)),
  };
}

/** A gate's analysis in one cluster (that cluster's analysis address). */
export function gateAnalysis(group: GroupPlan, run: AnalysisRunSpec, cluster: string): AnalysisRunSpec {
  const address = group.clusters[cluster]?.analysisAddress;
  return address ? withAnalysisAddress(run, address) : run;
}

/** A member's plan in one cluster: the cluster's overrides applied, the cluster recorded (its workflow ID). */
export function memberPlan(group: GroupPlan, member: GroupMember, cluster: string): ReleasePlan {
  const o = group.clusters[cluster] ?? {};
  const plan: ReleasePlan = clone(member.plan);
  plan.cluster = cluster;
  if (o.imageRegistry) plan.image = withRegistry(plan.image, o.imageRegistry);
  const replicas = o.replicas?.[member.name];
  if (replicas !== undefined) plan.replicas = replicas;
  const address = o.analysisAddress;
  if (address) {
    const s = plan.strategy;
    if (s.type === 'canary') {
      s.steps = s.steps.map((step) => (step.kind === 'analysis' ? { ...step, analysis: withAnalysisAddress(step.analysis, address) } : step));
      if (s.background) s.background = { ...s.background, analysis: withAnalysisAddress(s.background.analysis, address) };
    } else if (s.type === 'rolling') {
      s.steps = s.steps.map((step) => (step.kind === 'analysis' ? { ...step, analysis: withAnalysisAddress(step.analysis, address) } : step));
    } else {
      if (s.prePromotionAnalysis) s.prePromotionAnalysis = withAnalysisAddress(s.prePromotionAnalysis, address);
      if (s.postPromotionAnalysis) s.postPromotionAnalysis = withAnalysisAddress(s.postPromotionAnalysis, address);
    }
  }
  return plan;
}

/**
 * The plan that puts a member back on `image` (the digest it ran before the group) and, when the
 * member's release set a replica count, on the count the Deployment had before (`replicas`): the
 * same workload, services and routing, no steps and no analyses, so the release promotes at once
 * through the same verified rollout as any promotion.
 */
export function rollbackPlan(plan: ReleasePlan, image: string, replicas?: number): ReleasePlan {
  const rest = clone(plan);
  delete rest.replicas; // the count to return to is the one the cluster ran before, when the release set one
  if (replicas !== undefined) rest.replicas = replicas;
  delete rest.build; // the image to return to is already built and pinned
  delete rest.imagePolicy;
  const s = rest.strategy;
  const strategy: ReleasePlan['strategy'] =
    s.type === 'canary'
      ? { type: 'canary', steps: [], ...(s.stableService ? { stableService: s.stableService, canaryService: s.canaryService as string } : {}), ...(s.trafficRouting ? { trafficRouting: s.trafficRouting } : {}) }
      : s.type === 'rolling'
        ? { type: 'rolling', steps: [], ...(s.maxSurge !== undefined ? { maxSurge: s.maxSurge } : {}) }
        : { type: 'blueGreen', activeService: s.activeService, ...(s.previewService ? { previewService: s.previewService } : {}), autoPromotionEnabled: true, scaleDownDelaySeconds: s.scaleDownDelaySeconds };
  return { ...rest, image, strategy, retryWindowSeconds: 0, source: `rollback of ${plan.source ?? plan.name}` };
}

/** Cluster names in wave order. */
export function groupClusters(group: Pick<GroupPlan, 'waves'>): string[] {
  return group.waves.flatMap((w) => w.clusters);
}

/**
 * The members in dependency order, or the problem: a dependency on a missing member, or a cycle
 * (named by its members, `a → b → a`).
 */
export function dependencyOrder(members: readonly { name: string; dependsOn: readonly string[] }[]): { order: string[] } | { problem: string; member: string } {
  const byName = new Map(members.map((m) => [m.name, m]));
  for (const m of members) {
    for (const d of m.dependsOn) if (!byName.has(d)) return { problem: `depends on "${d}", which is not a member`, member: m.name };
  }
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  let cycle: string[] | undefined;
  const visit = (name: string): void => {
    if (cycle || state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      cycle = [...stack.slice(stack.indexOf(name)), name];
      return;
    }
    state.set(name, 'visiting');
    stack.push(name);
    for (const d of byName.get(name)?.dependsOn ?? []) visit(d);
    stack.pop();
    state.set(name, 'done');
    order.push(name);
  };
  for (const m of members) visit(m.name);
  if (cycle) return { problem: `dependency cycle ${cycle.join(' → ')}`, member: cycle[0] as string };
  return { order };
}

/**
 * The rules of a group its schema accepted (model/group-plan-schema.ts), as `path: reason` lines:
 * group triggers, unique members, dependencies, one wave per cluster, overrides, one member per
 * workload, and each member's plan (`planCheck`) on its own and in each cluster.
 */
export function groupRuleProblems(g: GroupPlan, planCheck: (plan: unknown) => string[]): string[] {
  const out: string[] = groupTriggerProblems(g.notifications ?? []).map((t) => `notifications.${t.sub}.triggers.${t.trigger}: ${t.message}`);
  const names = new Set<string>();
  g.members.forEach((m, i) => {
    if (names.has(m.name)) out.push(`members.${i}.name: duplicate member "${m.name}"`);
    names.add(m.name);
  });
  const order = dependencyOrder(g.members);
  if ('problem' in order) out.push(`members.${order.member}.dependsOn: ${order.problem}`);
  const seen = new Set<string>();
  for (const [wi, w] of g.waves.entries()) {
    for (const c of w.clusters) {
      if (seen.has(c)) out.push(`waves.${wi}.clusters: cluster "${c}" is in more than one wave`);
      seen.add(c);
    }
  }
  for (const p of overrideProblems(g.clusters, seen, g.members.map((m) => m.name))) out.push(`${['clusters', p.cluster, ...p.path].join('.')}: ${p.message}`);
  const workloads = new Set<string>();
  for (const m of g.members) {
    const key = `${(m.plan as ReleasePlan).namespace}/${(m.plan as ReleasePlan).workload?.name}`;
    if (workloads.has(key)) out.push(`members.${m.name}: workload ${key} is released by another member`);
    workloads.add(key);
    const own = planCheck(m.plan);
    if (own.length > 0) {
      out.push(...own.map((p) => `members.${m.name}.plan: ${p}`));
      continue;
    }
    for (const c of seen) for (const p of planCheck(memberPlan(g, m, c))) out.push(`members.${m.name} in ${c}: ${p}`);
  }
  return out;
}
