/**
 * A schema for the normalised {@link ReleasePlan}, checked again when the workflow starts: the
 * edge validated the YAML, but a workflow can be started by any Temporal client, so the plan it
 * receives is validated on its own terms before anything is touched. Workflow-safe.
 */
import { z } from 'zod';
import { parseCondition } from './condition.ts';
import { buildContextPath, buildTag, dockerfilePath, imageRef, intOrPercentSchema } from './fields.ts';
import { MAX_MEASUREMENT_RETENTION, MIN_INTERVAL_MS } from './analysis.ts';
import { jobPodProblems } from './job-pod.ts';
import { WORKLOAD_KINDS, parseBatch } from './rolling.ts';
import { notificationsSchema } from './notifications-schema.ts';
import { webhooksPlanSchema } from './webhooks.ts';
import { freezeSchema } from './freeze-schema.ts';
import { routeStepProblems, type RouteStep } from './route-steps.ts';
import { experimentStepPlan } from './experiment-schema.ts';
import { configRefsSchema } from './config-schema.ts';
import { approvalProblems, planRuleProblems } from './plan-rules.ts';
import type { CanaryStep, ReleasePlan, StringMatch } from './types.ts';

z.config({ jitless: true });

/** The largest desired replica count a plan may carry (a bound against typos such as 10000). */
export const MAX_DESIRED_REPLICAS = 1000;

/** A Deployment's desired replica count: the plan's `replicas`, and a release group's per-cluster override of it. */
export const desiredReplicas = z.number().int('must be a whole number').min(1, 'must be at least 1').max(MAX_DESIRED_REPLICAS, `must be at most ${MAX_DESIRED_REPLICAS}`);

const name = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).max(63);
const ms = z.number().int().min(0);
const cond = z.string().refine((s) => {
  try {
    parseCondition(s);
    return true;
  } catch {
    return false;
  }
}, 'is not a valid condition');

const argValue = z.union([
  z.strictObject({ value: z.string() }),
  z.strictObject({ secretKeyRef: z.strictObject({ name, key: z.string().min(1) }) }),
]);

/** The same metric rules as the edge (model/schema.ts), on the plan's field names. */
const metricSpec = z
  .strictObject({
    name: z.string().min(1),
    intervalMs: z.number().int().min(MIN_INTERVAL_MS, `must be at least ${MIN_INTERVAL_MS} ms`).optional(),
    count: z.number().int().min(0).optional(),
    initialDelayMs: ms.optional(),
    successCondition: cond.optional(),
    failureCondition: cond.optional(),
    failureLimit: z.number().int().min(-1),
    inconclusiveLimit: z.number().int().min(-1),
    consecutiveErrorLimit: z.number().int().min(0),
    dryRun: z.boolean(),
    measurementRetention: z.number().int().min(1).max(MAX_MEASUREMENT_RETENTION).optional(),
    provider: z.record(z.string(), z.unknown()).refine((p) => Object.keys(p).length === 1, 'names exactly one provider'),
  })
  .superRefine((m, ctx) => {
    if (m.count !== undefined && m.count > 1 && m.intervalMs === undefined) ctx.addIssue({ code: 'custom', path: ['count'], message: `count ${m.count} needs intervalMs` });
    for (const field of ['failureLimit', 'inconclusiveLimit'] as const) {
      if (m.count !== undefined && m.count > 0 && m[field] >= m.count) ctx.addIssue({ code: 'custom', path: [field], message: `${field} ${m[field]} can never be exceeded by count ${m.count}` });
    }
    // A job metric's pod is held to the restricted shape (model/job-pod.ts) whichever client started the workflow.
    const job = m.provider['job'];
    if (typeof job === 'object' && job !== null && 'spec' in job) {
      for (const p of jobPodProblems(job.spec)) ctx.addIssue({ code: 'custom', path: ['provider', 'job', 'spec', ...p.path], message: p.message });
    }
  });

const analysisRun = z.strictObject({
  name: z.string(),
  templates: z.array(z.string()),
  args: z.record(z.string(), argValue),
  metrics: z.array(metricSpec).min(1),
});

const stringMatch = z
  .strictObject({ exact: z.string().optional(), prefix: z.string().optional(), regex: z.string().optional() })
  .refine((m) => [m.exact, m.prefix, m.regex].filter((v) => v !== undefined).length === 1, 'sets exactly one of exact, prefix, regex');

const step = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('setWeight'), weight: z.number().int().min(0).max(100) }),
  z.strictObject({ kind: z.literal('pause'), durationMs: ms.optional() }),
  z.strictObject({ kind: z.literal('analysis'), analysis: analysisRun }),
  z.strictObject({
    kind: z.literal('setCanaryScale'),
    replicas: z.number().int().min(0).optional(),
    weight: z.number().int().min(0).max(100).optional(),
    matchTrafficWeight: z.boolean().optional(),
  }),
  z.strictObject({ kind: z.literal('setHeaderRoute'), name: z.string().min(1), match: z.array(z.strictObject({ headerName: z.string().min(1), headerValue: stringMatch })) }),
  z.strictObject({
    kind: z.literal('setMirrorRoute'),
    name: z.string().min(1),
    percentage: z.number().int().min(0).max(100),
    match: z.array(z.strictObject({ method: stringMatch.optional(), path: stringMatch.optional(), headers: z.record(z.string().min(1), stringMatch).optional() })),
  }),
  z.strictObject({
    kind: z.literal('approval'),
    approvers: z.array(z.string().min(1)).min(1),
    minApprovals: z.number().int().min(1),
    timeoutMs: ms.optional(),
    onTimeout: z.enum(['abort', 'rollback']),
  }),
  experimentStepPlan(analysisRun),
]);

/** A rolling step: a batch, or one of the canary's gates (pause, analysis, approval). */
const rollingStep = z.union([
  z.strictObject({ kind: z.literal('batch'), replicas: z.number().int().min(0) }),
  z.strictObject({ kind: z.literal('batch'), percent: z.number().int().min(0).max(100) }),
  z.strictObject({ kind: z.literal('batch'), nodeSelector: z.record(z.string(), z.string()).refine((sel) => parseBatch({ nodeSelector: sel }) !== undefined, 'a non-empty map of valid label keys to valid label values') }),
  step.refine((s) => s.kind === 'pause' || s.kind === 'analysis' || s.kind === 'approval', 'a rolling step is a batch, pause, analysis or approval'),
]);

const strategy = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('rolling'), steps: z.array(rollingStep), maxSurge: z.union([z.number().int().min(1), z.string().regex(/^([1-9]\d?|100)%$/)]).optional() }),
  z.strictObject({
    type: z.literal('canary'),
    steps: z.array(step),
    background: z.strictObject({ analysis: analysisRun, startingStep: z.number().int().min(0) }).optional(),
    stableService: name.optional(),
    canaryService: name.optional(),
    trafficRouting: z.record(z.string(), z.unknown()).optional(),
    abortScaleDownDelaySeconds: z.number().int().min(0).optional(),
    scaleDownDelaySeconds: z.number().int().min(0).optional(),
    replicaLimits: z.strictObject({ maxSurge: intOrPercentSchema, maxUnavailable: intOrPercentSchema }).optional(),
  }),
  z.strictObject({
    type: z.literal('blueGreen'),
    activeService: name,
    previewService: name.optional(),
    autoPromotionEnabled: z.boolean(),
    autoPromotionSeconds: z.number().int().min(0).optional(),
    prePromotionAnalysis: analysisRun.optional(),
    postPromotionAnalysis: analysisRun.optional(),
    scaleDownDelaySeconds: z.number().int().min(0),
    previewReplicaCount: z.number().int().min(1).optional(),
    abortScaleDownDelaySeconds: z.number().int().min(0).optional(),
  }),
]);

export const releasePlanSchema = z.strictObject({
  name,
  namespace: name,
  workload: z.strictObject({ kind: z.enum(WORKLOAD_KINDS), name, container: z.string().min(1).optional() }),
  image: imageRef,
  progressDeadlineSeconds: z.number().int().positive(),
  retryWindowSeconds: z.number().int().min(0),
  readinessProbePolicy: z.enum(['require', 'warn']).optional(),
  policy: z.strictObject({ promoters: z.array(z.string()).optional(), aborters: z.array(z.string()).optional() }),
  strategy,
  source: z.string().optional(),
  build: z
    .strictObject({
      context: buildContextPath,
      dockerfile: dockerfilePath.optional(),
      buildArgs: z.record(z.string(), z.string()).optional(),
      target: z.string().min(1).optional(),
      platform: z.string().min(1).optional(),
      tags: z.array(buildTag).min(1),
      builder: z.string().min(1).optional(),
      registry: z.strictObject({ insecure: z.boolean().optional(), authSecret: name.optional() }).optional(),
    })
    .optional(),
  imagePolicy: z.strictObject({ requireDigest: z.boolean() }).optional(),
  notifications: notificationsSchema.optional(),
  webhooks: webhooksPlanSchema.optional(),
  freeze: freezeSchema.optional(),
  cluster: name.optional(),
  config: configRefsSchema.optional(),
  replicas: desiredReplicas.optional(),
});

/** Problems with a plan as `path: reason` lines; empty when the plan is valid. */
export function planProblems(plan: unknown): string[] {
  const parsed = releasePlanSchema.safeParse(plan);
  if (parsed.success) return planRuleProblems(parsed.data as ReleasePlan, (p) => (p.strategy.type === 'canary' ? routeStepProblems(p.strategy.steps.map(routeStepOf), p.strategy.trafficRouting) : []));
  return parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(plan)'}: ${i.message}`);
}

/**
 * Problems with starting `plan` as `initiator`: the plan's own, then approval gates the initiator
 * would leave unreachable. The CLI calls it before starting; the workflow at its start.
 */
export function startProblems(plan: unknown, initiator: string): string[] {
  const problems = planProblems(plan);
  if (problems.length > 0) return problems;
  const p = plan as ReleasePlan;
  return p.strategy.type === 'blueGreen' ? [] : approvalProblems(p.strategy.steps, initiator);
}

/** A plan step as the route-step checks see it (undefined for other steps). */
export function routeStepOf(step: CanaryStep): RouteStep | undefined {
  const kinds = (values: StringMatch[]): string[] => [...new Set(values.flatMap((v) => (['exact', 'prefix', 'regex'] as const).filter((k) => v[k] !== undefined)))];
  if (step.kind === 'setHeaderRoute') return { kind: step.kind, name: step.name, headerValueKinds: kinds(step.match.map((m) => m.headerValue)), matches: step.match.length };
  if (step.kind === 'setMirrorRoute') return { kind: step.kind, name: step.name, headerValueKinds: kinds(step.match.flatMap((m) => Object.values(m.headers ?? {}))), matches: step.match.length };
  return undefined;
}
