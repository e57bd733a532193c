/**
 * Argo Rollouts' `experiment` canary step, in the plan: workloads started from the stable's or the
 * canary's pod template (one per template), analyses run over them for `duration` (or until the
 * analyses the step waits for complete), then the workloads go. The edge schema (Argo's field names)
 * and the plan schema, the args an analysis may take from the running templates
 * (`{{templates.<name>.podTemplateHash}}`, `{{templates.<name>.replicaset.name}}`, as Argo resolves
 * them), the share of the router's traffic a template may get (`weight`, with the routers that carry
 * it) and the Service that a weighted or `service` template gets, and the step's outcome from its
 * analyses (Argo's Experiment phase rules). Workflow-safe; the step's schemas are in
 * model/experiment-schema.ts (edge and activities only).
 */
import { ARGO_REFUSALS, EXPERIMENT_WEIGHT_ROUTERS } from './argo-refusals.ts';
import { routerKey } from './routing-block.ts';
import type { AnalysisPhase, AnalysisRunSpec, ArgValue } from './types.ts';

export type SpecRef = 'stable' | 'canary';

export interface ExperimentTemplate {
  name: string;
  specRef: SpecRef;
  /** Argo's default: 1. */
  replicas: number;
  /** Added to the pod template's labels (and to the workload's selector, as Argo does). */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Argo's `selector.matchLabels`: the pods carry these labels too. */
  selector?: Record<string, string>;
  /** Argo's `weight`: the share (percent) of the router's traffic the template's Service gets while the step runs. */
  weight?: number;
  /** Argo's `service`: a Service selecting the template's pods (implied by `weight`); `name` defaults to the template's workload name. */
  service?: { name?: string };
}

export interface ExperimentAnalysis {
  name: string;
  run: AnalysisRunSpec;
  requiredForCompletion: boolean;
}

export interface ExperimentStep {
  kind: 'experiment';
  durationMs?: number;
  templates: ExperimentTemplate[];
  analyses: ExperimentAnalysis[];
}

/** What the workload activity reports for one running template: what the analyses' args may name. */
export interface RunningTemplate {
  name: string;
  /** The Deployment that runs it. */
  workload: string;
  podTemplateHash: string;
  replicaSet: string;
  /** The Service selecting its pods, when the template has one (`service` or `weight`). */
  service?: string;
}

/** One extra destination of the router while an experiment step runs: a template's Service and its share. */
export interface WeightDestination {
  service: string;
  weight: number;
}

/** Whether the template gets a Service: it asks for one, or has a weight (Argo creates one for either). */
export function needsService(t: Pick<ExperimentTemplate, 'weight' | 'service'>): boolean {
  return t.weight !== undefined || t.service !== undefined;
}

/** The router's extra destinations for the running templates that have a weight (in the step's order). */
export function weightDestinations(templates: readonly ExperimentTemplate[], running: readonly RunningTemplate[]): WeightDestination[] {
  const byName = new Map(running.map((r) => [r.name, r]));
  return templates.flatMap((t) => {
    const service = byName.get(t.name)?.service;
    return t.weight !== undefined && service !== undefined ? [{ service, weight: t.weight }] : [];
  });
}

/** The most templates and analyses one step may hold (each template is a workload, each analysis an activity). */
export const MAX_EXPERIMENT_TEMPLATES = 10;
export const MAX_EXPERIMENT_ANALYSES = 10;

/** Indexes of names seen before. */
export function duplicates(names: readonly string[]): number[] {
  return names.flatMap((n, i) => (names.indexOf(n) !== i ? [i] : []));
}

/**
 * Rules on a whole step, on the plan: names unique, and args naming templates name the step's own.
 * A step without a duration whose analyses never complete (or that has none) runs until promoted,
 * as Argo's does.
 */
export function experimentProblems(step: ExperimentStep): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  duplicates(step.templates.map((t) => t.name)).forEach((i) => out.push({ path: ['templates', i, 'name'], message: 'is named twice' }));
  duplicates(step.analyses.map((a) => a.name)).forEach((i) => out.push({ path: ['analyses', i, 'name'], message: 'is named twice' }));
  const services = step.templates.map((t) => (t.service?.name !== undefined ? t.service.name : `(template ${t.name})`));
  duplicates(services).forEach((i) => out.push({ path: ['templates', i, 'service', 'name'], message: `Service "${services[i]}" is named by two templates` }));
  const names = new Set(step.templates.map((t) => t.name));
  step.analyses.forEach((a, i) => {
    for (const [arg, v] of Object.entries(a.run.args)) {
      if (!('value' in v)) continue;
      for (const ref of templateRefs(v.value)) {
        if (!names.has(ref.template)) out.push({ path: ['analyses', i, 'run', 'args', arg], message: `names template "${ref.template}", which this experiment does not run (templates: ${[...names].join(', ')})` });
      }
    }
  });
  return out;
}

// ---- weights and the router ------------------------------------------------------------------------

/** A step as the weight rules see it: a setWeight's weight, an experiment's template weights, or another step. */
export type WeightStepView = { setWeight: number } | { experimentWeights: (number | undefined)[] } | undefined;

/**
 * The weight rules of a canary's steps: a template weight needs a router that carries it (Istio,
 * SMI; refused by name otherwise), and the canary's weight at that step (the last setWeight before
 * it) plus the step's template weights is at most 100, since the stable gets the rest (Argo gives
 * it 100 − canary − experiment weights). Problems name the template's weight field.
 */
export function experimentWeightProblems(steps: readonly WeightStepView[], trafficRouting: Record<string, unknown> | undefined): { step: number; template: number; message: string }[] {
  const out: { step: number; template: number; message: string }[] = [];
  const router = trafficRouting ? routerKey(trafficRouting) : undefined;
  const carries = router !== undefined && (EXPERIMENT_WEIGHT_ROUTERS as readonly string[]).includes(router);
  const plugins = router === 'plugins' ? trafficRouting?.plugins : undefined;
  const named = plugins && typeof plugins === 'object' ? (Object.keys(plugins)[0] ?? router) : router; // a plugin by its own name
  let canaryWeight = 0;
  steps.forEach((s, i) => {
    if (s && 'setWeight' in s) canaryWeight = s.setWeight;
    if (!s || !('experimentWeights' in s)) return;
    const weighted = s.experimentWeights.flatMap((w, j) => (w === undefined ? [] : [{ w, j }]));
    if (!carries) {
      for (const { j } of weighted) out.push({ step: i, template: j, message: ARGO_REFUSALS.experimentWeight(named) });
      return;
    }
    const total = canaryWeight + weighted.reduce((sum, x) => sum + x.w, 0);
    const last = weighted[weighted.length - 1];
    if (total > 100 && last) {
      out.push({ step: i, template: last.j, message: `the canary's weight (${canaryWeight}) and the experiment's weights (${weighted.map((x) => x.w).join(' + ')}) add up to ${total}, over 100: the stable gets 100 − canary − experiment weights` });
    }
  });
  return out;
}

// ---- args from the running templates ---------------------------------------------------------------

const TEMPLATE_REF = /\{\{\s*templates\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(podTemplateHash|replicaset\.name)\s*\}\}/g;

/** The `{{templates.<name>.<field>}}` references in an arg value. */
export function templateRefs(value: string): { template: string; field: 'podTemplateHash' | 'replicaset.name' }[] {
  return [...value.matchAll(TEMPLATE_REF)].map((m) => ({ template: m[1] as string, field: m[3] as 'podTemplateHash' | 'replicaset.name' }));
}

/** The run with each literal arg's template references replaced by what the running templates report. */
export function bindTemplateArgs(run: AnalysisRunSpec, running: readonly RunningTemplate[]): AnalysisRunSpec {
  const byName = new Map(running.map((t) => [t.name, t]));
  const args: Record<string, ArgValue> = {};
  for (const [name, v] of Object.entries(run.args)) {
    args[name] = 'value' in v
      ? {
          value: v.value.replace(TEMPLATE_REF, (whole: string, template: string, _inner: string, field: string) => {
            const t = byName.get(template);
            if (!t) return whole;
            return field === 'podTemplateHash' ? t.podTemplateHash : t.replicaSet;
          }),
        }
      : v;
  }
  return { ...run, args };
}

// ---- the step's outcome ----------------------------------------------------------------------------

/** The analyses a step without a duration waits for: those required for completion, else all (Argo). */
export function waitedFor(step: Pick<ExperimentStep, 'analyses'>): ExperimentAnalysis[] {
  const required = step.analyses.filter((a) => a.requiredForCompletion);
  return required.length > 0 ? required : step.analyses;
}

export type ExperimentOutcome = { phase: 'Running' } | { phase: Exclude<AnalysisPhase, 'Running' | 'Pending'>; analysis?: string; message: string };

const COMPLETED = new Set<AnalysisPhase>(['Successful', 'Failed', 'Inconclusive', 'Error']);

/**
 * The step's phase from its analyses' phases (by name) and whether its duration has passed, as Argo's
 * Experiment decides it: an analysis that completes other than Successful ends the step with its phase
 * (Error over Failed over Inconclusive, the worst first); once every required analysis is Successful the
 * step is (with required analyses, the duration passing does not end it); otherwise the step ends
 * Successful when its duration passes (the other analyses are terminated), or, without a duration,
 * when every analysis has completed Successful.
 */
export function experimentOutcome(step: Pick<ExperimentStep, 'analyses' | 'durationMs'>, phases: Readonly<Record<string, AnalysisPhase>>, durationPassed: boolean): ExperimentOutcome {
  for (const worst of ['Error', 'Failed', 'Inconclusive'] as const) {
    const a = step.analyses.find((x) => phases[x.name] === worst);
    if (a) return { phase: worst, analysis: a.name, message: `analysis ${a.name} ${worst}` };
  }
  const required = step.analyses.filter((a) => a.requiredForCompletion);
  if (required.length > 0 && required.every((a) => phases[a.name] === 'Successful')) return { phase: 'Successful', message: 'the required analyses completed' };
  if (durationPassed && required.length === 0) return { phase: 'Successful', message: 'the duration passed' };
  const waited = waitedFor(step);
  if (step.durationMs === undefined && waited.length > 0 && waited.every((a) => COMPLETED.has(phases[a.name] ?? 'Pending'))) return { phase: 'Successful', message: 'the analyses completed' };
  return { phase: 'Running' };
}
