/**
 * Schemas for the documents Glidepath reads: its own `Release`, and Argo Rollouts' `Rollout`,
 * `AnalysisTemplate` and `ClusterAnalysisTemplate`, with Argo's field names. Every object is strict:
 * a field we do not support is reported by name, never dropped. Workflow-safe (no I/O).
 */
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { parseCondition } from './condition.ts';
import { MAX_MEASUREMENT_RETENTION, MIN_INTERVAL_MS } from './analysis.ts';
import { templateProblems, wholeUrlArg, type TextKind } from './template.ts';
import { buildContextPath, buildTag, dns1123, dockerfilePath, imageRef, intOrPercentSchema } from './fields.ts';
import { jobPodProblems } from './job-pod.ts';
import { ROLLING_STEP_KINDS, ROLLOUT_WORKLOAD_KINDS, WORKLOAD_KINDS, parseBatch } from './rolling.ts';
import { routeStepProblems, type RouteStep } from './route-steps.ts';
import { routerNeedsServices, trafficRoutingSchema } from './traffic-routing.ts';
import { limitsProblems } from './basic-canary.ts';
import { experimentWeightProblems } from './experiment.ts';
import { experimentStepDoc } from './experiment-schema.ts';
import { judgeProviderSchema } from './judge-provider-schema.ts';
import { notificationsSchema } from './notifications-schema.ts';
import { webhooksDocSchema } from './webhooks.ts';
import { freezeSchema } from './freeze-schema.ts';
import { configRefsSchema } from './config-schema.ts';

// No runtime code generation inside zod: the same schemas run in the workflow sandbox.
z.config({ jitless: true });

export const RELEASE_API_VERSION = 'glidepath.dev/v1alpha1';
export const ARGO_API_VERSION = 'argoproj.io/v1alpha1';


/** The longest duration a spec may give (a pause, a timeout, a deadline): a year. */
export const MAX_DURATION_MS = 366 * 86_400_000;

const durationOf = (min: number) =>
  z.union([z.string(), z.number()]).superRefine((v, ctx) => {
    let ms: number;
    try {
      ms = parseDuration(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return;
    }
    if (ms > MAX_DURATION_MS) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is longer than the maximum of 366d` });
    if (ms < min) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} must be at least ${min / 1000}s` });
  });
export const duration = durationOf(0);

/** Kubernetes IntOrString as Argo uses it for counts and limits, at least `min`. */
const intOrStringMin = (min: number) =>
  z.union([z.number().int(), z.string().regex(/^-?\d+$/, 'must be a whole number')]).refine((v) => Number(v) >= min && Number.isSafeInteger(Number(v)), `must be a whole number of at least ${min}`);
/** A whole number whose range the metric rules check, so each bad value is named once. */
const anyInt = intOrStringMin(Number.MIN_SAFE_INTEGER);

const condition = z.string().superRefine((v, ctx) => {
  try {
    parseCondition(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const metadata = z.strictObject({
  name: dns1123,
  namespace: dns1123.optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

// ---- Argo AnalysisTemplate ----------------------------------------------------------------------

/**
 * Argo's `valueFrom` of an arg: exactly one source. `fieldRef` is resolved against the Rollout when
 * the spec is read (model/field-ref.ts); `podTemplateHashValue` names a ReplicaSet hash Glidepath's
 * Deployments do not share with Argo, and is refused by name.
 */
const argValueFrom = z
  .strictObject({
    secretKeyRef: z.strictObject({ name: dns1123, key: z.string().min(1) }).optional(),
    fieldRef: z.strictObject({ fieldPath: z.string().min(1) }).optional(),
    podTemplateHashValue: z.enum(['Stable', 'Latest']).optional(),
  })
  .superRefine((v, ctx) => {
    const set = (['secretKeyRef', 'fieldRef', 'podTemplateHashValue'] as const).filter((k) => v[k] !== undefined);
    if (set.length !== 1) ctx.addIssue({ code: 'custom', message: set.length === 0 ? 'set one of secretKeyRef, fieldRef' : `set one of secretKeyRef, fieldRef, not ${set.join(' and ')}` });
    if (v.podTemplateHashValue !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['podTemplateHashValue'],
        message: "is not supported by this version of Glidepath (not supported: podTemplateHashValue): the canary and stable are Deployments selected by their own labels, not ReplicaSets of one Rollout; select them in the query by the Deployment's labels (e.g. {{args.app}} with value, or fieldRef metadata.labels['app'])",
      });
    }
  });
export type ArgValueFromDoc = z.infer<typeof argValueFrom>;

const analysisArgDefinition = z.strictObject({
  name: z.string().min(1),
  value: z.string().optional(),
  valueFrom: argValueFrom.optional(),
});

const header = z.strictObject({ key: z.string().min(1), value: z.string() });

/** Reports where a templated field places `{{args.x}}` wrongly (model/template.ts rules). */
function templatePlacement(kind: TextKind, text: string, ctx: z.RefinementCtx, path: PropertyKey[]): void {
  for (const message of templateProblems(kind, text)) ctx.addIssue({ code: 'custom', path, message });
}

function headersPlacement(headers: { value: string }[] | undefined, ctx: z.RefinementCtx): void {
  (headers ?? []).forEach((h, i) => templatePlacement('header', h.value, ctx, ['headers', i, 'value']));
}

const prometheusProvider = z
  .strictObject({
    address: z.string().url('must be a URL such as http://prometheus.monitoring:9090'),
    query: z.string().min(1),
    timeout: z.number().int().positive().optional(),
    insecure: z.boolean().optional(),
    headers: z.array(header).optional(),
    authentication: z
      .strictObject({
        sigv4: z.unknown().optional(),
        oauth2: z.unknown().optional(),
      })
      .superRefine((v, ctx) => {
        if (v.sigv4 !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['sigv4'], message: 'SigV4 (Amazon Managed Prometheus) is not supported by this version of Glidepath: query through a SigV4 signing proxy and use its address' });
        }
        if (v.oauth2 !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['oauth2'], message: 'OAuth2 is not supported by this version of Glidepath: pass a token through headers ("Bearer {{args.token}}" with a secretKeyRef arg) or the worker\'s Prometheus credentials' });
        }
      })
      .optional(),
  })
  .superRefine((v, ctx) => {
    if (/\{\{/.test(v.address)) ctx.addIssue({ code: 'custom', path: ['address'], message: 'args are not substituted in address (worker credentials are scoped by address)' });
    templatePlacement('promql', v.query, ctx, ['query']);
    headersPlacement(v.headers, ctx);
  });

const webProvider = z
  .strictObject({
    url: z.string().superRefine((v, ctx) => {
      // A URL that is one arg (from a Secret, as Argo's examples do) is checked after substitution.
      if (wholeUrlArg(v) !== undefined) return;
      // Placeholders stand for path or query text: check the URL with them blanked.
      let ok = /^https?:\/\//.test(v);
      try {
        new URL(v.replace(/\{\{[^}]*\}\}/g, 'x'));
      } catch {
        ok = false;
      }
      if (!ok) {
        ctx.addIssue({ code: 'custom', message: 'must be an http(s) URL such as http://metrics.example/api/v1/check?service={{args.service}}, or one arg that holds the URL ("{{args.url}}")' });
      }
    }),
    method: z.enum(['GET', 'POST', 'PUT']).optional(),
    headers: z.array(header).optional(),
    body: z.string().optional(),
    jsonBody: z.unknown().optional(),
    jsonPath: z.string().min(1).optional(),
    timeoutSeconds: z.number().int().positive().optional(),
    insecure: z.boolean().optional(),
  })
  .superRefine((v, ctx) => {
    templatePlacement('url', v.url, ctx, ['url']);
    headersPlacement(v.headers, ctx);
    if (v.body !== undefined) templatePlacement('json', v.body, ctx, ['body']);
    if (v.body !== undefined && v.jsonBody !== undefined) ctx.addIssue({ code: 'custom', path: ['jsonBody'], message: 'set body or jsonBody, not both' });
    if ((v.body !== undefined || v.jsonBody !== undefined) && (v.method ?? 'GET') === 'GET') {
      ctx.addIssue({ code: 'custom', path: ['method'], message: 'a body needs method POST or PUT' });
    }
  });

/**
 * Argo's job provider: `metadata` (labels, annotations) and a batch/v1 JobSpec. The JobSpec is passed
 * through to the apiserver; only what every Job needs is checked here (a pod template with containers).
 */
const jobProvider = z.strictObject({
  metadata: z
    .strictObject({
      labels: z.record(z.string(), z.string()).optional(),
      annotations: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  spec: z.looseObject({
    template: z.looseObject({
      metadata: z.looseObject({}).optional(),
      spec: z.looseObject({ containers: z.array(z.looseObject({ name: z.string().min(1), image: z.string().min(1) })).min(1) }),
    }),
  }),
}).superRefine((v, ctx) => {
  for (const p of jobPodProblems(v.spec)) ctx.addIssue({ code: 'custom', path: ['spec', ...p.path], message: p.message });
});

/** Metric providers this build implements; others (datadog, newRelic …) are refused as unknown fields. */
const provider = z
  .strictObject({
    prometheus: prometheusProvider.optional(),
    web: webProvider.optional(),
    job: jobProvider.optional(),
    judge: judgeProviderSchema.optional(),
  })
  .superRefine((v, ctx) => {
    const set = (['prometheus', 'web', 'job', 'judge'] as const).filter((k) => v[k] !== undefined);
    if (set.length !== 1) ctx.addIssue({ code: 'custom', message: set.length === 0 ? 'needs a provider: prometheus, web, job or judge' : `has ${set.join(' and ')}; a metric has exactly one provider` });
  });

const intValue = (v: string | number | undefined): number | undefined => (v === undefined ? undefined : typeof v === 'number' ? v : Number.parseInt(v, 10));

/**
 * Argo's ValidateMetric, stricter where Argo fails open: `count` ≥ 0 (0 means unset), `count` > 1
 * needs an `interval`, an `interval` of at least 1s, limits ≥ -1 (consecutiveErrorLimit ≥ 0), and no
 * failureLimit/inconclusiveLimit that `count` measurements can never exceed.
 */
function metricProblems(m: { interval?: string | number | undefined; count?: string | number | undefined; failureLimit?: string | number | undefined; inconclusiveLimit?: string | number | undefined; consecutiveErrorLimit?: string | number | undefined }, ctx: z.RefinementCtx): void {
  const issue = (path: string, message: string): void => ctx.addIssue({ code: 'custom', path: [path], message });
  const count = intValue(m.count);
  if (count !== undefined && count < 0) issue('count', `must be ≥ 0 (0 or unset: one measurement without interval, unbounded with one); got ${count}`);
  if (count !== undefined && count > 1 && m.interval === undefined) issue('count', `count ${count} needs an interval between measurements`);
  if (m.interval !== undefined) {
    try {
      const ms = parseDuration(m.interval);
      if (ms < MIN_INTERVAL_MS) issue('interval', `must be at least ${MIN_INTERVAL_MS / 1000}s; got ${String(m.interval)}`);
    } catch {
      // reported by the duration schema
    }
  }
  for (const field of ['failureLimit', 'inconclusiveLimit'] as const) {
    const limit = intValue(m[field]);
    if (limit === undefined) continue;
    if (limit < -1) issue(field, `must be ≥ -1 (-1 tolerates any); got ${limit}`);
    else if (count !== undefined && count > 0 && limit >= count) {
      issue(field, `${field} ${limit} can never be exceeded by count ${count} measurements, so it never decides; lower it below count, or use -1 to tolerate any`);
    }
  }
  const errors = intValue(m.consecutiveErrorLimit);
  if (errors !== undefined && errors < 0) issue('consecutiveErrorLimit', `must be ≥ 0; got ${errors}`);
}

const metric = z
  .strictObject({
    name: z.string().min(1),
    interval: duration.optional(),
    initialDelay: duration.optional(),
    count: anyInt.optional(),
    successCondition: condition.optional(),
    failureCondition: condition.optional(),
    failureLimit: anyInt.optional(),
    inconclusiveLimit: anyInt.optional(),
    consecutiveErrorLimit: anyInt.optional(),
    provider,
  })
  .superRefine(metricProblems);

/** Argo's `measurementRetention` entry: keep the latest `limit` measurements of `metricName` (`*`: every metric). */
const measurementRetention = z.strictObject({
  metricName: z.string().min(1),
  limit: z.number().int().min(1).max(MAX_MEASUREMENT_RETENTION, `must be at most ${MAX_MEASUREMENT_RETENTION}: every kept measurement travels in each heartbeat of the analysis`),
});

export const analysisTemplateDoc = z.strictObject({
  apiVersion: z.literal(ARGO_API_VERSION),
  kind: z.enum(['AnalysisTemplate', 'ClusterAnalysisTemplate']),
  metadata,
  spec: z.strictObject({
    args: z.array(analysisArgDefinition).optional(),
    metrics: z.array(metric).min(1),
    dryRun: z.array(z.strictObject({ metricName: z.string().min(1) })).optional(),
    measurementRetention: z.array(measurementRetention).optional(),
  }),
});
export type AnalysisTemplateDoc = z.infer<typeof analysisTemplateDoc>;
export type MetricDoc = z.infer<typeof metric>;

// ---- strategy (Argo field names) ----------------------------------------------------------------

const analysisStepArg = z.strictObject({
  name: z.string().min(1),
  value: z.string().optional(),
  valueFrom: argValueFrom.optional(),
});

const templateRef = z.strictObject({
  templateName: z.string().min(1),
  clusterScope: z.boolean().optional(),
});

export const rolloutAnalysis = z.strictObject({
  templates: z.array(templateRef).min(1),
  args: z.array(analysisStepArg).optional(),
});
export type RolloutAnalysisDoc = z.infer<typeof rolloutAnalysis>;

const backgroundAnalysis = rolloutAnalysis.extend({ startingStep: z.number().int().min(0).optional() });

export const approvalStep = z
  .strictObject({
    approvers: z.array(z.string().min(1)).min(1),
    minApprovals: z.number().int().min(1).optional(),
    timeout: duration.optional(),
    onTimeout: z.enum(['abort', 'rollback']).optional(),
  })
  .superRefine((v, ctx) => {
    const distinct = new Set(v.approvers).size;
    if ((v.minApprovals ?? 1) > distinct) {
      ctx.addIssue({
        code: 'custom',
        path: ['minApprovals'],
        message: `needs ${v.minApprovals} approvals but only ${distinct} distinct approver(s) are listed`,
      });
    }
  });

const STEP_KINDS = ['setWeight', 'pause', 'analysis', 'setCanaryScale', 'approval', 'setHeaderRoute', 'setMirrorRoute', 'experiment'] as const;

/** Argo's StringMatch: exactly one of exact, prefix, regex. */
const stringMatch = z
  .strictObject({ exact: z.string().optional(), prefix: z.string().optional(), regex: z.string().min(1).optional() })
  .superRefine((v, ctx) => {
    const set = (['exact', 'prefix', 'regex'] as const).filter((k) => v[k] !== undefined);
    if (set.length !== 1) ctx.addIssue({ code: 'custom', message: set.length === 0 ? 'set one of exact, prefix, regex' : `set one of exact, prefix, regex, not ${set.join(' and ')}` });
    if (v.regex !== undefined) {
      try {
        new RegExp(v.regex);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['regex'], message: `is not a valid regular expression: ${(err as Error).message}` });
      }
    }
  });

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name');
const routeName = z.string().min(1);

const setHeaderRouteStep = z.strictObject({
  name: routeName,
  match: z.array(z.strictObject({ headerName, headerValue: stringMatch })).optional(),
});

const setMirrorRouteStep = z.strictObject({
  name: routeName,
  percentage: z.number().int().min(0).max(100).optional(),
  match: z
    .array(
      z
        .strictObject({ method: stringMatch.optional(), path: stringMatch.optional(), headers: z.record(headerName, stringMatch).optional() })
        .refine((m) => m.method !== undefined || m.path !== undefined || m.headers !== undefined, 'set at least one of method, path, headers'),
    )
    .optional(),
});

const canaryStep = z
  .strictObject({
    setWeight: z.number().int().min(0).max(100).optional(),
    pause: z.strictObject({ duration: duration.optional() }).optional(),
    analysis: rolloutAnalysis.optional(),
    setCanaryScale: z
      .strictObject({
        replicas: z.number().int().min(0).optional(),
        weight: z.number().int().min(0).max(100).optional(),
        matchTrafficWeight: z.boolean().optional(),
      })
      .superRefine((v, ctx) => {
        const set = [v.replicas !== undefined, v.weight !== undefined, v.matchTrafficWeight !== undefined].filter(Boolean);
        if (set.length !== 1) {
          ctx.addIssue({ code: 'custom', message: 'set exactly one of replicas, weight, matchTrafficWeight' });
        }
      })
      .optional(),
    approval: approvalStep.optional(),
    setHeaderRoute: setHeaderRouteStep.optional(),
    setMirrorRoute: setMirrorRouteStep.optional(),
    experiment: experimentStepDoc(duration, analysisStepArg).optional(),
  })
  .superRefine((v, ctx) => {
    const kinds = STEP_KINDS.filter((k) => v[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          kinds.length === 0
            ? `a step needs one of ${STEP_KINDS.join(', ')}`
            : `a step has exactly one action, this one has ${kinds.join(' and ')}`,
      });
    }
  });
export type CanaryStepDoc = z.infer<typeof canaryStep>;

const canary = z.strictObject({
  steps: z.array(canaryStep).optional(),
  analysis: backgroundAnalysis.optional(),
  stableService: dns1123.optional(),
  canaryService: dns1123.optional(),
  trafficRouting: trafficRoutingSchema.optional(),
  abortScaleDownDelaySeconds: z.number().int().min(0).optional(),
  scaleDownDelaySeconds: z.number().int().min(0).optional(),
  // Argo's surge limits of a canary without trafficRouting (model/basic-canary.ts); with a router they change nothing, as in Argo.
  maxSurge: intOrPercentSchema.optional(),
  maxUnavailable: intOrPercentSchema.optional(),
}).superRefine((v, ctx) => {
  for (const p of limitsProblems(v)) ctx.addIssue({ code: 'custom', path: [p.path], message: p.message });
  if (!v.trafficRouting && (v.maxSurge !== undefined || v.maxUnavailable !== undefined)) {
    (v.steps ?? []).forEach((s, i) => {
      if (s.setCanaryScale !== undefined) ctx.addIssue({ code: 'custom', path: ['steps', i, 'setCanaryScale'], message: 'sizes a canary only with trafficRouting (Argo ignores it without one); with maxSurge/maxUnavailable the weight moves pods: remove setCanaryScale, or set trafficRouting' });
    });
  }
  const needs = v.trafficRouting ? routerNeedsServices(v.trafficRouting) : undefined;
  if (needs && (!v.stableService || !v.canaryService)) {
    ctx.addIssue({ code: 'custom', path: [v.stableService ? 'canaryService' : 'stableService'], message: `${needs} needs stableService and canaryService` });
  }
  const routeSteps = (v.steps ?? []).map(routeStepOfDoc);
  for (const p of routeStepProblems(routeSteps, v.trafficRouting)) {
    const kind = p.step === undefined ? undefined : routeSteps[p.step]?.kind;
    ctx.addIssue({ code: 'custom', path: p.step === undefined || !kind ? ['trafficRouting'] : ['steps', p.step, kind], message: p.message });
  }
  const weightSteps = (v.steps ?? []).map((s) => (s.setWeight !== undefined ? { setWeight: s.setWeight } : s.experiment ? { experimentWeights: s.experiment.templates.map((t) => t.weight) } : undefined));
  for (const p of experimentWeightProblems(weightSteps, v.trafficRouting)) {
    ctx.addIssue({ code: 'custom', path: ['steps', p.step, 'experiment', 'templates', p.template, 'weight'], message: p.message });
  }
});

/** A step document as route-step-checks see it (undefined for other steps). */
function routeStepOfDoc(step: CanaryStepDoc): RouteStep | undefined {
  const kinds = (matches: { headerValue?: { exact?: unknown; prefix?: unknown; regex?: unknown }; headers?: Record<string, { exact?: unknown; prefix?: unknown; regex?: unknown }> }[]): string[] =>
    [...new Set(matches.flatMap((m) => [...(m.headerValue ? [m.headerValue] : []), ...Object.values(m.headers ?? {})]).flatMap((v) => (['exact', 'prefix', 'regex'] as const).filter((k) => v[k] !== undefined)))];
  if (step.setHeaderRoute) {
    const match = step.setHeaderRoute.match ?? [];
    return { kind: 'setHeaderRoute', name: step.setHeaderRoute.name, headerValueKinds: kinds(match), matches: match.length };
  }
  if (step.setMirrorRoute) {
    const match = step.setMirrorRoute.match ?? [];
    return { kind: 'setMirrorRoute', name: step.setMirrorRoute.name, headerValueKinds: kinds(match), matches: match.length };
  }
  return undefined;
}

const blueGreen = z.strictObject({
  activeService: dns1123,
  previewService: dns1123.optional(),
  autoPromotionEnabled: z.boolean().optional(),
  autoPromotionSeconds: z.number().int().min(0).optional(),
  prePromotionAnalysis: rolloutAnalysis.optional(),
  postPromotionAnalysis: rolloutAnalysis.optional(),
  scaleDownDelaySeconds: z.number().int().min(0).optional(),
  previewReplicaCount: z.number().int().min(1).optional(),
  abortScaleDownDelaySeconds: z.number().int().min(0).optional(),
});

/** Glidepath's own rolling strategy (model/rolling.ts): batches with the canary's gates between them. */
const rollingStep = z
  .strictObject({
    batch: z
      .union([z.number(), z.string(), z.record(z.string(), z.unknown())])
      .refine((v) => parseBatch(v) !== undefined, 'must be a whole number of replicas, a percentage such as "25%", or {nodeSelector: {label: value}} (DaemonSets) with valid label keys and values')
      .optional(),
    pause: z.strictObject({ duration: duration.optional() }).optional(),
    analysis: rolloutAnalysis.optional(),
    approval: approvalStep.optional(),
  })
  .superRefine((v, ctx) => {
    const kinds = ROLLING_STEP_KINDS.filter((k) => v[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({ code: 'custom', message: kinds.length === 0 ? `a step needs one of ${ROLLING_STEP_KINDS.join(', ')}` : `a step has exactly one action, this one has ${kinds.join(' and ')}` });
    }
  });
export type RollingStepDoc = z.infer<typeof rollingStep>;

const rolling = z.strictObject({
  steps: z.array(rollingStep).optional(),
  /** Deployments only (a StatefulSet has no surge): refused by name for other kinds. */
  maxSurge: z.union([z.number().int().min(1), z.string().regex(/^([1-9]\d?|100)%$/, 'must be a whole number ≥ 1 or a percentage 1–100% such as "25%"')]).optional(),
});

const strategy = z
  .strictObject({ canary: canary.optional(), blueGreen: blueGreen.optional(), rolling: rolling.optional() })
  .superRefine((v, ctx) => {
    if ([v.canary, v.blueGreen, v.rolling].filter((x) => x !== undefined).length !== 1) {
      ctx.addIssue({ code: 'custom', message: 'set exactly one of canary, blueGreen or rolling' });
    }
  });
export type StrategyDoc = z.infer<typeof strategy>;

// ---- Glidepath Release --------------------------------------------------------------------------

export const releaseDoc = z.strictObject({
  apiVersion: z.literal(RELEASE_API_VERSION),
  kind: z.literal('Release'),
  metadata,
  spec: z.strictObject({
    workloadRef: z.strictObject({
      apiVersion: z.literal('apps/v1').optional(),
      kind: z.enum(WORKLOAD_KINDS, `must be one of ${WORKLOAD_KINDS.join(', ')}`),
      name: dns1123,
    }),
    container: z.string().min(1).optional(),
    image: imageRef.optional(),
    progressDeadline: durationOf(1000).optional(),
    retryWindow: duration.optional(),
    readinessProbePolicy: z.enum(['require', 'warn']).optional(),
    policy: z
      .strictObject({
        promoters: z.array(z.string().min(1)).optional(),
        aborters: z.array(z.string().min(1)).optional(),
      })
      .optional(),
    strategy,
    build: z
      .strictObject({
        context: buildContextPath,
        dockerfile: dockerfilePath.optional(),
        buildArgs: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a build arg name'), z.string()).optional(),
        target: z.string().min(1).optional(),
        platform: z.string().regex(/^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/, 'must be os/arch[/variant]').optional(),
        tags: z.array(buildTag).min(1),
        builder: z.enum(['buildah', 'buildctl', 'buildx'], 'must be one of buildah, buildctl, buildx').optional(),
        registry: z.strictObject({ insecure: z.boolean().optional(), authSecret: dns1123.optional() }).optional(),
      })
      .optional(),
    imagePolicy: z.strictObject({ requireDigest: z.boolean() }).optional(),
    notifications: notificationsSchema.optional(),
    webhooks: webhooksDocSchema.optional(),
    freeze: freezeSchema.optional(),
    config: configRefsSchema.optional(),
  }),
});
export type ReleaseDoc = z.infer<typeof releaseDoc>;

// ---- Argo Rollout -------------------------------------------------------------------------------

const container = z.looseObject({ name: z.string().min(1), image: imageRef });

export const rolloutDoc = z.strictObject({
  apiVersion: z.literal(ARGO_API_VERSION),
  kind: z.literal('Rollout'),
  metadata,
  spec: z
    .strictObject({
      // These describe the workload itself; Glidepath reads the live Deployment and takes the image
      // from the template.
      replicas: z.number().int().min(0).optional(),
      selector: z.unknown().optional(),
      template: z
        .looseObject({
          metadata: z.unknown().optional(),
          spec: z.looseObject({ containers: z.array(container).min(1) }),
        })
        .optional(),
      revisionHistoryLimit: z.number().int().min(0).optional(),
      minReadySeconds: z.number().int().min(0).optional(),
      workloadRef: z
        .strictObject({
          apiVersion: z.literal('apps/v1'),
          kind: z.enum(ROLLOUT_WORKLOAD_KINDS, `must be one of ${ROLLOUT_WORKLOAD_KINDS.join(', ')}`),
          name: dns1123,
          // Argo scales the Deployment down once the Rollout runs its pods; Glidepath releases the
          // Deployment itself, so there is nothing to scale down (docs/migrating-from-argo.md).
          scaleDown: z.enum(['never', 'onsuccess', 'progressively']).optional(),
        })
        .optional(),
      progressDeadlineSeconds: z.number().int().positive().optional(),
      strategy,
    })
    .superRefine((v, ctx) => {
      if (v.template && v.workloadRef) {
        ctx.addIssue({ code: 'custom', message: 'set template or workloadRef, not both' });
      }
    }),
});
export type RolloutDoc = z.infer<typeof rolloutDoc>;
