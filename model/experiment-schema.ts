/**
 * The schemas of Argo's `experiment` canary step: the edge schema (Argo's field names) and the plan
 * schema (model/experiment.ts holds the rules they share with the workflow). Edge and activities
 * only: zod never runs in workflow code.
 */
import { z } from 'zod';
import { MAX_EXPERIMENT_ANALYSES, MAX_EXPERIMENT_TEMPLATES, duplicates, experimentProblems, type ExperimentStep } from './experiment.ts';

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
const labelMap = z.record(
  z.string().regex(LABEL_KEY, 'is not a valid label key'),
  z.string().regex(LABEL_VALUE, 'is not a valid label value (at most 63 characters: letters, digits, - _ .)'),
);
/** A Service name (DNS-1035 label). */
const serviceName = z.string().regex(/^[a-z]([-a-z0-9]*[a-z0-9])?$/, 'must be a Service name (DNS-1035 label: lower-case letters, digits, -, starting with a letter)').max(63);
/** A template name becomes part of a Deployment name and a label value. */
const templateName = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS label (lower-case letters, digits, -)').max(30);

/** The edge schema of Argo's RolloutExperimentStep; `duration` and the analysis arg schema come from model/schema.ts. */
export function experimentStepDoc<D extends z.ZodType, A extends z.ZodType>(duration: D, arg: A) {
  const template = z
    .strictObject({
      name: templateName,
      specRef: z.enum(['stable', 'canary']),
      replicas: z.number().int().min(0).max(100).optional(),
      metadata: z.strictObject({ labels: labelMap.optional(), annotations: z.record(z.string(), z.string()).optional() }).optional(),
      selector: z.strictObject({ matchLabels: labelMap }).optional(),
      // Whether the router carries it is checked with the strategy (experimentWeightProblems).
      weight: z.number().int().min(0).max(100).optional(),
      service: z.strictObject({ name: serviceName.optional() }).optional(),
    });
  const analysis = z.strictObject({
    name: templateName,
    templateName: z.string().min(1),
    clusterScope: z.boolean().optional(),
    args: z.array(arg).optional(),
    requiredForCompletion: z.boolean().optional(),
  });
  return z
    .strictObject({
      duration: duration.optional(),
      templates: z.array(template).min(1).max(MAX_EXPERIMENT_TEMPLATES),
      analyses: z.array(analysis).max(MAX_EXPERIMENT_ANALYSES).optional(),
    })
    .superRefine((e, ctx) => {
      duplicates(e.templates.map((t) => t.name)).forEach((i) => ctx.addIssue({ code: 'custom', path: ['templates', i, 'name'], message: `template "${e.templates[i]?.name}" is named twice` }));
      duplicates((e.analyses ?? []).map((a) => a.name)).forEach((i) => ctx.addIssue({ code: 'custom', path: ['analyses', i, 'name'], message: `analysis "${e.analyses?.[i]?.name}" is named twice` }));
    });
}


/** The plan schema of the step (the same rules, on the plan's names); `analysisRun` from model/plan.ts. */
export function experimentStepPlan<A extends z.ZodType>(analysisRun: A) {
  const labels = z.record(z.string().regex(LABEL_KEY), z.string().regex(LABEL_VALUE));
  return z
    .strictObject({
      kind: z.literal('experiment'),
      durationMs: z.number().int().min(0).optional(),
      templates: z
        .array(
          z.strictObject({
            name: templateName,
            specRef: z.enum(['stable', 'canary']),
            replicas: z.number().int().min(0).max(100),
            labels: labels.optional(),
            annotations: z.record(z.string(), z.string()).optional(),
            selector: labels.optional(),
            weight: z.number().int().min(0).max(100).optional(),
            service: z.strictObject({ name: serviceName.optional() }).optional(),
          }),
        )
        .min(1)
        .max(MAX_EXPERIMENT_TEMPLATES),
      analyses: z.array(z.strictObject({ name: templateName, run: analysisRun, requiredForCompletion: z.boolean() })).max(MAX_EXPERIMENT_ANALYSES),
    })
    .superRefine((e, ctx) => {
      for (const p of experimentProblems(e as ExperimentStep)) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
    });
}
