/**
 * The rules of a release plan beyond its shape, checked after the plan's schema (model/plan.ts)
 * accepted it: freeze points, workload and strategy, rolling batches, route steps, experiment
 * weights, replica limits, approval gates, a pinned image. Plain functions, no zod: the workflow's
 * start check of releases recorded before that check became a local activity runs them too
 * (model/legacy-start-check.ts).
 */
import { limitsProblems } from './basic-canary.ts';
import { CONFIG_WITH_ROLLING } from './config.ts';
import { experimentWeightProblems } from './experiment.ts';
import { freezePointProblems } from './freeze.ts';
import { rollingStepProblems, workloadStrategyProblems, type RollingStep } from './rolling.ts';
import type { RouteStepProblem } from './route-steps.ts';
import type { CanaryStep, ReleasePlan } from './types.ts';

/**
 * Problems of a plan its schema accepted, as `path: reason` lines (the first kind of problem found);
 * empty when it is valid. `routeSteps` checks its route steps against the router (model/route-steps.ts).
 */
export function planRuleProblems(p: ReleasePlan, routeSteps: (p: ReleasePlan) => RouteStepProblem[]): string[] {
  const frozen = p.freeze ? freezePointProblems(p.freeze, p.strategy).map((f) => `freeze.windows.${f.window}.before: ${f.message}`) : [];
  if (frozen.length > 0) return frozen;
  const kinds = workloadStrategyProblems(p.workload.kind, p.strategy.type, p.strategy.type === 'rolling' ? { maxSurge: p.strategy.maxSurge !== undefined, steps: p.strategy.steps } : {});
  if (kinds.length > 0) return kinds.map((k) => `strategy.${k.path}: ${k.message}`);
  if (p.config?.length && p.strategy.type === 'rolling') return [`config: ${CONFIG_WITH_ROLLING}`];
  if (p.replicas !== undefined && p.strategy.type === 'rolling') {
    return [`replicas: a desired replica count is for canary and blue/green releases of a Deployment; strategy.rolling keeps the ${p.workload.kind}'s own count`];
  }
  if (p.strategy.type === 'rolling') {
    const batches = rollingStepProblems(p.strategy.steps).map((b) => `strategy.steps.${b.step}: ${b.message}`);
    return batches.length > 0 ? batches : approvalProblems(p.strategy.steps, undefined);
  }
  if (p.strategy.type === 'canary' && p.strategy.background && p.strategy.background.startingStep > p.strategy.steps.length) {
    return ['strategy.background.startingStep: beyond the last step'];
  }
  if (p.strategy.type === 'canary') {
    const steps = p.strategy.steps;
    const routeProblems = routeSteps(p);
    if (routeProblems.length > 0) {
      return routeProblems.map((r) => (r.step === undefined ? `strategy.trafficRouting: ${r.message}` : `strategy.steps.${r.step}: ${r.message}`));
    }
    const weights = experimentWeightProblems(steps.map((s) => (s.kind === 'setWeight' ? { setWeight: s.weight } : s.kind === 'experiment' ? { experimentWeights: s.templates.map((t) => t.weight) } : undefined)), p.strategy.trafficRouting);
    if (weights.length > 0) return weights.map((w) => `strategy.steps.${w.step}.templates.${w.template}.weight: ${w.message}`);
  }
  if (p.strategy.type === 'canary' && p.strategy.replicaLimits) {
    const limits = limitsProblems(p.strategy.replicaLimits).map((l) => `strategy.replicaLimits.${l.path}: ${l.message}`);
    if (p.strategy.trafficRouting) limits.push('strategy.replicaLimits: applies only to a canary without trafficRouting');
    if (p.strategy.steps.some((s) => s.kind === 'setCanaryScale')) limits.push('strategy.replicaLimits: setCanaryScale cannot size a canary whose weights move pods');
    if (limits.length > 0) return limits;
  }
  if (p.strategy.type === 'canary') {
    const gates = approvalProblems(p.strategy.steps, undefined);
    if (gates.length > 0) return gates;
  }
  if (p.imagePolicy?.requireDigest && !p.build && !/@sha256:[a-f0-9]{64}$/.test(p.image)) {
    return ['image: imagePolicy.requireDigest: must be pinned as repo@sha256:<64 hex>'];
  }
  return [];
}

/**
 * Approval gates that can never be met: more approvals required than distinct approvers, or (with
 * the initiator known, at start) than approvers other than the initiator (the four-eyes rule).
 */
export function approvalProblems(steps: (CanaryStep | RollingStep)[], initiator: string | undefined): string[] {
  const out: string[] = [];
  steps.forEach((step, i) => {
    if (step.kind !== 'approval') return;
    const distinct = new Set(step.approvers);
    if (step.minApprovals > distinct.size) {
      out.push(`strategy.steps.${i}.minApprovals: needs ${step.minApprovals} approvals but only ${distinct.size} distinct approver(s) are listed`);
      return;
    }
    if (initiator === undefined || !distinct.has(initiator)) return;
    const others = [...distinct].filter((a) => a !== initiator);
    if (step.minApprovals > others.length) {
      out.push(
        `strategy.steps.${i}.minApprovals: needs ${step.minApprovals} approval(s), but ${initiator} starts this release and may not approve it (four-eyes rule); ` +
          `the other approvers are ${others.length ? others.join(', ') : 'none'}`,
      );
    }
  });
  return out;
}
