/**
 * The start check of releases and groups recorded before that check became a local activity, for
 * their replay. Those workflows ran the check inline; on replay they run it again. It cannot use the
 * schemas (model/plan.ts, model/group-plan-schema.ts): the worker shares the model modules frozen
 * (workers/bundle.ts) and zod cannot run on frozen schemas, so zod stays out of workflow code.
 *
 * What must match on replay: a recorded release either passed the check (its history goes on) or
 * failed at once (its history ends there, closed). So this check must return no problem for every
 * plan the schemas accept — it checks only conditions the schemas imply, then runs the same rules
 * after the shape (model/plan-rules.ts, group-plan.ts) — and returns problems for every plan the
 * schemas reject wherever the shape below or those rules see it. It does not repeat the schemas'
 * finer field rules (a metric's limits, a notification's URL, a freeze window's times…) nor the
 * route-step check against the router's capabilities; a release rejected at its start by one of
 * those alone is closed, and only a query on it would replay it (the query then fails).
 * Plain functions, workflow-safe.
 */
import { DNS1123 } from './names.ts';
import { ON_FAILURE, groupRuleProblems, type GroupPlan } from './group-plan.ts';
import { planRuleProblems } from './plan-rules.ts';
import { referenceProblem } from './reference.ts';
import { WORKLOAD_KINDS } from './rolling.ts';
import type { ReleasePlan } from './types.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): boolean => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
const isName = (v: unknown): boolean => typeof v === 'string' && v.length <= 63 && DNS1123.test(v);
const isStrings = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** Collects `path: reason` lines. */
class Shape {
  readonly problems: string[] = [];
  need(ok: boolean, path: string, message: string): boolean {
    if (!ok) this.problems.push(`${path}: ${message}`);
    return ok;
  }
  /** An object with no field outside `known` (the schemas are strict). */
  object(v: unknown, path: string, known: readonly string[]): v is Obj {
    if (!this.need(isObj(v), path, 'must be an object')) return false;
    for (const k of Object.keys(v as Obj)) this.need(known.includes(k), `${path}.${k}`, 'unsupported field');
    return true;
  }
  optional(v: unknown, path: string, ok: (v: unknown) => boolean, message: string): void {
    if (v !== undefined) this.need(ok(v), path, message);
  }
}

const PLAN_FIELDS = [
  'name', 'namespace', 'workload', 'image', 'progressDeadlineSeconds', 'retryWindowSeconds', 'readinessProbePolicy', 'policy', 'strategy',
  'source', 'build', 'imagePolicy', 'notifications', 'webhooks', 'freeze', 'cluster', 'config', 'replicas',
];
const STRATEGY_FIELDS: Record<string, readonly string[]> = {
  rolling: ['type', 'steps', 'maxSurge'],
  canary: ['type', 'steps', 'background', 'stableService', 'canaryService', 'trafficRouting', 'abortScaleDownDelaySeconds', 'scaleDownDelaySeconds', 'replicaLimits'],
  blueGreen: [
    'type', 'activeService', 'previewService', 'autoPromotionEnabled', 'prePromotionAnalysis', 'postPromotionAnalysis', 'scaleDownDelaySeconds',
    'previewReplicaCount', 'abortScaleDownDelaySeconds',
  ],
};
const STEP_FIELDS: Record<string, readonly string[]> = {
  setWeight: ['kind', 'weight'],
  pause: ['kind', 'durationMs'],
  analysis: ['kind', 'analysis'],
  setCanaryScale: ['kind', 'replicas', 'weight', 'matchTrafficWeight'],
  setHeaderRoute: ['kind', 'name', 'match'],
  setMirrorRoute: ['kind', 'name', 'percentage', 'match'],
  approval: ['kind', 'approvers', 'minApprovals', 'timeoutMs', 'onTimeout'],
  experiment: ['kind', 'durationMs', 'templates', 'analyses'],
};
const ROLLING_GATES = ['pause', 'analysis', 'approval'];

function analysisRun(s: Shape, v: unknown, path: string): void {
  if (!s.object(v, path, ['name', 'templates', 'args', 'metrics'])) return;
  s.need(typeof v.name === 'string', `${path}.name`, 'must be a string');
  s.need(isStrings(v.templates), `${path}.templates`, 'must be a list of names');
  s.need(isObj(v.args), `${path}.args`, 'must be an object');
  if (s.need(Array.isArray(v.metrics) && v.metrics.length > 0, `${path}.metrics`, 'must list at least one metric')) {
    (v.metrics as unknown[]).forEach((m, i) => s.need(isObj(m) && typeof m.name === 'string' && isObj(m.provider), `${path}.metrics.${i}`, 'must be a metric with a name and a provider'));
  }
}

function step(s: Shape, v: unknown, path: string, rolling: boolean): void {
  if (!s.need(isObj(v) && typeof v.kind === 'string', path, 'must be a step with a kind')) return;
  const st = v as Obj;
  const kind = st.kind as string;
  if (rolling && kind === 'batch') {
    const keys = Object.keys(st).filter((k) => k !== 'kind');
    s.need(keys.length === 1 && (keys[0] === 'replicas' ? isInt(st.replicas, 0) : keys[0] === 'percent' ? isInt(st.percent, 0, 100) : keys[0] === 'nodeSelector' && isObj(st.nodeSelector)), path, 'must be a batch of replicas, percent or nodeSelector');
    return;
  }
  const known = Object.hasOwn(STEP_FIELDS, kind) ? STEP_FIELDS[kind] : undefined;
  if (!s.need(known !== undefined && (!rolling || ROLLING_GATES.includes(kind)), `${path}.kind`, `unsupported step kind "${kind}"`)) return;
  if (!s.object(st, path, known as readonly string[])) return;
  if (kind === 'setWeight') s.need(isInt(st.weight, 0, 100), `${path}.weight`, 'must be a whole number 0-100');
  if (kind === 'pause' || kind === 'experiment') s.optional(st.durationMs, `${path}.durationMs`, (d) => isInt(d, 0), 'must be a whole number ≥ 0');
  if (kind === 'analysis') analysisRun(s, st.analysis, `${path}.analysis`);
  if (kind === 'setHeaderRoute' || kind === 'setMirrorRoute') {
    s.need(typeof st.name === 'string' && st.name !== '', `${path}.name`, 'must be a name');
    s.need(Array.isArray(st.match), `${path}.match`, 'must be a list');
  }
  if (kind === 'setMirrorRoute') s.need(isInt(st.percentage, 0, 100), `${path}.percentage`, 'must be a whole number 0-100');
  if (kind === 'approval') {
    s.need(isStrings(st.approvers) && (st.approvers as string[]).length > 0 && (st.approvers as string[]).every((a) => a !== ''), `${path}.approvers`, 'must list at least one approver');
    s.need(isInt(st.minApprovals, 1), `${path}.minApprovals`, 'must be a whole number ≥ 1');
    s.optional(st.timeoutMs, `${path}.timeoutMs`, (t) => isInt(t, 0), 'must be a whole number ≥ 0');
    s.need(st.onTimeout === 'abort' || st.onTimeout === 'rollback', `${path}.onTimeout`, 'must be abort or rollback');
  }
  if (kind === 'experiment') {
    s.need(Array.isArray(st.templates) && st.templates.length > 0 && st.templates.every((t) => isObj(t) && typeof t.name === 'string'), `${path}.templates`, 'must list at least one template');
    s.need(Array.isArray(st.analyses) && st.analyses.every((a) => isObj(a) && typeof a.name === 'string' && isObj(a.run)), `${path}.analyses`, 'must be a list of analyses');
  }
}

function strategy(s: Shape, v: unknown): void {
  const type = isObj(v) ? v.type : undefined;
  if (!s.need(typeof type === 'string' && Object.hasOwn(STRATEGY_FIELDS, type), 'strategy.type', 'must be canary, blueGreen or rolling')) return;
  if (!s.object(v, 'strategy', STRATEGY_FIELDS[type as string] as readonly string[])) return;
  if (type === 'blueGreen') {
    s.need(isName(v.activeService), 'strategy.activeService', 'must be a Service name');
    s.optional(v.previewService, 'strategy.previewService', isName, 'must be a Service name');
    s.need(typeof v.autoPromotionEnabled === 'boolean', 'strategy.autoPromotionEnabled', 'must be true or false');
    s.need(isInt(v.scaleDownDelaySeconds, 0), 'strategy.scaleDownDelaySeconds', 'must be a whole number ≥ 0');
    if (v.prePromotionAnalysis !== undefined) analysisRun(s, v.prePromotionAnalysis, 'strategy.prePromotionAnalysis');
    if (v.postPromotionAnalysis !== undefined) analysisRun(s, v.postPromotionAnalysis, 'strategy.postPromotionAnalysis');
    return;
  }
  if (!s.need(Array.isArray(v.steps), 'strategy.steps', 'must be a list')) return;
  (v.steps as unknown[]).forEach((st, i) => step(s, st, `strategy.steps.${i}`, type === 'rolling'));
  if (type !== 'canary') return;
  s.optional(v.stableService, 'strategy.stableService', isName, 'must be a Service name');
  s.optional(v.canaryService, 'strategy.canaryService', isName, 'must be a Service name');
  s.optional(v.trafficRouting, 'strategy.trafficRouting', isObj, 'must be an object');
  s.optional(v.replicaLimits, 'strategy.replicaLimits', (l) => isObj(l) && 'maxSurge' in l && 'maxUnavailable' in l, 'must set maxSurge and maxUnavailable');
  if (v.background !== undefined && s.object(v.background, 'strategy.background', ['analysis', 'startingStep'])) {
    analysisRun(s, v.background.analysis, 'strategy.background.analysis');
    s.need(isInt(v.background.startingStep, 0), 'strategy.background.startingStep', 'must be a whole number ≥ 0');
  }
}

/** The shape of a release plan: conditions its schema (model/plan.ts) implies, none it does not. */
function planShapeProblems(plan: unknown): string[] {
  const s = new Shape();
  if (!s.object(plan, '(plan)', PLAN_FIELDS)) return s.problems;
  const p = plan;
  s.need(isName(p.name), 'name', 'must be a DNS-1123 label');
  s.need(isName(p.namespace), 'namespace', 'must be a DNS-1123 label');
  if (s.object(p.workload, 'workload', ['kind', 'name', 'container'])) {
    s.need((WORKLOAD_KINDS as readonly unknown[]).includes(p.workload.kind), 'workload.kind', `must be one of ${WORKLOAD_KINDS.join(', ')}`);
    s.need(isName(p.workload.name), 'workload.name', 'must be a DNS-1123 label');
    s.optional(p.workload.container, 'workload.container', (c) => typeof c === 'string' && c !== '', 'must be a container name');
  }
  s.need(typeof p.image === 'string' && referenceProblem(p.image) === undefined, 'image', 'must be an image reference');
  s.need(isInt(p.progressDeadlineSeconds, 1), 'progressDeadlineSeconds', 'must be a whole number ≥ 1');
  s.need(isInt(p.retryWindowSeconds, 0), 'retryWindowSeconds', 'must be a whole number ≥ 0');
  s.optional(p.readinessProbePolicy, 'readinessProbePolicy', (r) => r === 'require' || r === 'warn', 'must be require or warn');
  if (s.object(p.policy, 'policy', ['promoters', 'aborters'])) {
    s.optional(p.policy.promoters, 'policy.promoters', isStrings, 'must be a list of names');
    s.optional(p.policy.aborters, 'policy.aborters', isStrings, 'must be a list of names');
  }
  strategy(s, p.strategy);
  s.optional(p.source, 'source', (v) => typeof v === 'string', 'must be a string');
  s.optional(p.build, 'build', isObj, 'must be an object');
  s.optional(p.imagePolicy, 'imagePolicy', (v) => isObj(v) && typeof v.requireDigest === 'boolean', 'must set requireDigest');
  s.optional(p.notifications, 'notifications', (v) => Array.isArray(v) && v.every(isObj), 'must be a list of subscriptions');
  s.optional(p.webhooks, 'webhooks', (v) => Array.isArray(v) && v.every(isObj), 'must be a list of webhooks');
  s.optional(p.freeze, 'freeze', (v) => isObj(v) && Array.isArray(v.windows) && v.windows.length > 0 && v.windows.every((w) => isObj(w) && typeof w.name === 'string'), 'must list at least one window');
  s.optional(p.cluster, 'cluster', isName, 'must be a DNS-1123 label');
  s.optional(p.config, 'config', (v) => Array.isArray(v) && v.every((r) => isObj(r) && typeof r.name === 'string'), 'must be a list of ConfigMaps and Secrets');
  s.optional(p.replicas, 'replicas', (v) => isInt(v, 1, 1000), 'must be a whole number 1-1000');
  return s.problems;
}

/**
 * A release plan's problems without its schema (see above): the shape, then the rules the start
 * check runs after the schema, in the same order and with the same messages, except the route-step
 * check against the router. Empty for every plan model/plan.ts `planProblems` accepts.
 */
export function legacyPlanProblems(plan: unknown): string[] {
  const shape = planShapeProblems(plan);
  if (shape.length > 0) return shape;
  try {
    return planRuleProblems(plan as ReleasePlan, () => []);
  } catch (err) {
    // The rules read only what the shape above guarantees; a plan they cannot read is not one the schema accepts.
    return [`(plan): ${(err as Error).message}`];
  }
}

/** A release group's problems without its schema: the shape its schema implies, then the group's rules with {@link legacyPlanProblems}. */
export function legacyGroupPlanProblems(group: unknown): string[] {
  const s = new Shape();
  if (!s.object(group, '(group)', ['name', 'namespace', 'members', 'waves', 'onFailure', 'clusters', 'notifications', 'source'])) return s.problems;
  const g = group;
  s.need(isName(g.name), 'name', 'must be a DNS-1123 label');
  s.need(isName(g.namespace), 'namespace', 'must be a DNS-1123 label');
  const member = (m: unknown): boolean => isObj(m) && Object.keys(m).every((k) => ['name', 'plan', 'dependsOn'].includes(k)) && isName(m.name) && Array.isArray(m.dependsOn) && m.dependsOn.every(isName);
  s.need(Array.isArray(g.members) && g.members.length >= 1 && g.members.length <= 20 && g.members.every(member), 'members', 'must list 1-20 members, each with a name, a plan and dependsOn');
  const wave = (w: unknown): boolean =>
    isObj(w) && Object.keys(w).every((k) => ['name', 'clusters', 'maxParallel', 'gate'].includes(k)) && isName(w.name) &&
    Array.isArray(w.clusters) && w.clusters.length >= 1 && w.clusters.length <= 20 && w.clusters.every(isName) && isInt(w.maxParallel, 1) && (w.gate === undefined || isObj(w.gate));
  s.need(Array.isArray(g.waves) && g.waves.length >= 1 && g.waves.length <= 10 && g.waves.every(wave), 'waves', 'must list 1-10 waves, each with a name, 1-20 clusters and maxParallel');
  s.need((ON_FAILURE as readonly unknown[]).includes(g.onFailure), 'onFailure', `must be one of ${ON_FAILURE.join(', ')}`);
  const override = (o: unknown): boolean => isObj(o) && Object.keys(o).every((k) => ['imageRegistry', 'analysisAddress', 'replicas'].includes(k)) && (o.replicas === undefined || (isObj(o.replicas) && Object.values(o.replicas).every((r) => isInt(r, 1, 1000))));
  s.need(isObj(g.clusters) && Object.keys(g.clusters).every(isName) && Object.values(g.clusters).every(override), 'clusters', 'must map cluster names to overrides');
  s.optional(g.notifications, 'notifications', (v) => Array.isArray(v) && v.every((n) => isObj(n) && isStrings(n.triggers)), 'must be a list of subscriptions');
  s.optional(g.source, 'source', (v) => typeof v === 'string', 'must be a string');
  if (s.problems.length > 0) return s.problems;
  try {
    return groupRuleProblems(group as unknown as GroupPlan, legacyPlanProblems);
  } catch (err) {
    return [`(group): ${(err as Error).message}`];
  }
}
