/**
 * From parsed YAML documents to a {@link ReleasePlan}: classify each document, validate it, resolve
 * analysis templates and bind their args, convert Argo Rollouts, apply defaults. Pure: file reading
 * lives in the CLI. Every problem names its source, field path and reason; no plan is produced
 * while any problem remains.
 */
import type { z } from 'zod';
import { DEFAULT_MAX_SURGE, DEFAULT_MAX_UNAVAILABLE } from './basic-canary.ts';
import { parseDuration } from './duration.ts';
import {
  ARGO_API_VERSION,
  RELEASE_API_VERSION,
  analysisTemplateDoc,
  releaseDoc,
  rolloutDoc,
  type AnalysisTemplateDoc,
  type ArgValueFromDoc,
  type CanaryStepDoc,
  type MetricDoc,
  type RolloutAnalysisDoc,
  type RollingStepDoc,
  type StrategyDoc,
} from './schema.ts';
import { parseBatch, rollingStepProblems, rolloutOnWorkload, workloadStrategyProblems, type RollingStep } from './rolling.ts';
import { DEFAULT_CONSECUTIVE_ERROR_LIMIT } from './analysis.ts';
import { argNames } from './template.ts';
import { referenceProblem } from './reference.ts';
import { firstContainer, otherDocument, referencedDeployment, type OtherDocument } from './documents.ts';
import { resolveFieldRef } from './field-ref.ts';
import type { NotificationSpec } from './notifications.ts';
import { webhooksOfDoc } from './webhooks.ts';
import { freezePointProblems, type FreezeSpec } from './freeze.ts';
import { CONFIG_WITH_ROLLING } from './config.ts';
import { experimentProblems, type ExperimentStep } from './experiment.ts';
import { JUDGE_FAILURE_CONDITION, JUDGE_SUCCESS_CONDITION, type JudgeProviderSpec } from './judge-provider.ts';
import type { AnalysisRunSpec, ArgValue, CanaryStep, JobProviderSpec, MetricSpec, ProviderSpec, ReleasePlan, Strategy, StringMatch, WebProviderSpec } from './types.ts';

/** Argo's defaults, in one place. */
export const DEFAULTS = {
  namespace: 'default',
  progressDeadlineSeconds: 600,
  retryWindowSeconds: 3_600,
  scaleDownDelaySeconds: 30,
  autoPromotionEnabled: true,
  minApprovals: 1,
  onTimeout: 'abort',
  /** Argo mirrors every matching request when setMirrorRoute gives no percentage. */
  mirrorPercentage: 100,
} as const;

export interface SpecProblem {
  source: string;
  path: string;
  message: string;
  /** The problem is with the invocation (a file that cannot be read), not the spec. */
  usage?: boolean;
}

export function formatProblem(p: SpecProblem): string {
  return `${p.source}: ${p.path || '(document)'}: ${p.message}`;
}

export class SpecError extends Error {
  override name = 'SpecError';
  readonly problems: SpecProblem[];
  constructor(problems: SpecProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.problems = problems;
  }
}

/** A YAML document and where it came from ("release.yaml" or "release.yaml#2"). */
export interface SourceDoc {
  source: string;
  doc: unknown;
}

export interface NormalizeOptions {
  /** Overrides the spec's image (CLI `--image`). */
  image?: string;
}

export function pathOf(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

function zodProblems(source: string, error: z.ZodError, prefix: readonly PropertyKey[] = []): SpecProblem[] {
  const problems: SpecProblem[] = [];
  for (const issue of error.issues) {
    const base = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        problems.push({ source, path: pathOf([...base, key]), message: 'unsupported field (Glidepath does not implement it; remove it or see docs/spec.md)' });
      }
    } else {
      problems.push({ source, path: pathOf(base), message: issue.message });
    }
  }
  return problems;
}

function kindOf(doc: unknown): string {
  if (doc === null || typeof doc !== 'object') return '';
  const d = doc as { apiVersion?: unknown; kind?: unknown };
  return `${String(d.apiVersion)}/${String(d.kind)}`;
}

interface Templates {
  namespaced: Map<string, { source: string; doc: AnalysisTemplateDoc }>;
  cluster: Map<string, { source: string; doc: AnalysisTemplateDoc }>;
  /** Names of templates that failed validation: their problems are reported once, not per reference. */
  invalid: Set<string>;
  /** The Rollout or Release document that `valueFrom.fieldRef` args resolve against, and its namespace. */
  fieldRefSubject?: { doc: unknown; namespace: string };
}

/** Validates the documents and builds the plan, or throws {@link SpecError} with every problem. */
export function normalize(docs: readonly SourceDoc[], options: NormalizeOptions = {}): ReleasePlan {
  return normalizeFiles(docs, options).plan;
}

/** A plan and the files' other Kubernetes objects: the Deployment it took the image from, and the rest. */
export interface NormalizedFiles {
  plan: ReleasePlan;
  /** The Deployment a Rollout's workloadRef names, when its image came from the files. Never applied. */
  workloadDocument?: OtherDocument;
  /** Every other Kubernetes object: ignored, or applied before the release when asked. */
  others: OtherDocument[];
}

/** {@link normalize}, also returning the Kubernetes objects that are not Glidepath's documents. */
export function normalizeFiles(docs: readonly SourceDoc[], options: NormalizeOptions = {}): NormalizedFiles {
  const problems: SpecProblem[] = [];
  const templates: Templates = { namespaced: new Map(), cluster: new Map(), invalid: new Set() };
  const mains: { source: string; kind: 'Release' | 'Rollout'; doc: unknown }[] = [];
  const others: OtherDocument[] = [];

  for (const { source, doc } of docs) {
    if (doc === null || doc === undefined) continue; // empty YAML document
    const kind = kindOf(doc);
    if (kind === `${RELEASE_API_VERSION}/Release`) mains.push({ source, kind: 'Release', doc });
    else if (kind === `${ARGO_API_VERSION}/Rollout`) mains.push({ source, kind: 'Rollout', doc });
    else if (kind === `${ARGO_API_VERSION}/AnalysisTemplate` || kind === `${ARGO_API_VERSION}/ClusterAnalysisTemplate`) {
      const parsed = analysisTemplateDoc.safeParse(doc);
      if (!parsed.success) {
        problems.push(...zodProblems(source, parsed.error));
        const name = (doc as { metadata?: { name?: unknown } }).metadata?.name;
        if (typeof name === 'string') templates.invalid.add(name);
        continue;
      }
      const map = parsed.data.kind === 'ClusterAnalysisTemplate' ? templates.cluster : templates.namespaced;
      const existing = map.get(parsed.data.metadata.name);
      if (existing) {
        problems.push({ source, path: 'metadata.name', message: `${parsed.data.kind} "${parsed.data.metadata.name}" is also defined in ${existing.source}` });
      }
      map.set(parsed.data.metadata.name, { source, doc: parsed.data });
      problems.push(...checkTemplate(source, parsed.data));
    } else {
      const other = otherDocument(source, doc, [RELEASE_API_VERSION.split('/')[0] as string, ARGO_API_VERSION.split('/')[0] as string]);
      if ('message' in other) problems.push(other);
      else others.push(other);
    }
  }

  if (mains.length !== 1) {
    problems.push({
      source: mains.map((m) => m.source).join(', ') || docs.map((d) => d.source).join(', ') || '(no input)',
      path: '',
      message: mains.length === 0 ? 'no Release or Rollout document found' : `${mains.length} Release/Rollout documents found; a release takes exactly one`,
    });
    throw new SpecError(problems);
  }
  const main = mains[0] as (typeof mains)[number];
  const imageProblem = options.image === undefined ? undefined : referenceProblem(options.image);
  if (imageProblem) {
    problems.push({ source: '--image', path: '--image', message: `"${JSON.stringify(options.image).slice(1, -1).slice(0, 200)}" ${imageProblem}`, usage: true });
    throw new SpecError(problems);
  }
  const used: { workload?: OtherDocument } = {};
  const mainNamespace = (main.doc as { metadata?: { namespace?: unknown } }).metadata?.namespace;
  templates.fieldRefSubject = { doc: main.doc, namespace: typeof mainNamespace === 'string' ? mainNamespace : DEFAULTS.namespace };
  const plan = main.kind === 'Release' ? fromRelease(main.source, main.doc, templates, options, problems) : fromRollout(main.source, main.doc, templates, options, problems, others, used);
  // A template referenced from several places reports its own problems once.
  if (problems.length > 0 || plan === undefined) throw new SpecError([...new Map(problems.map((p) => [formatProblem(p), p])).values()]);
  return { plan, ...(used.workload ? { workloadDocument: used.workload } : {}), others: others.filter((o) => o !== used.workload) };
}

function checkTemplate(source: string, t: AnalysisTemplateDoc): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const declared = new Set((t.spec.args ?? []).map((a) => a.name));
  t.spec.metrics.forEach((m, i) => {
    for (const [field, text] of templatedFields(m.provider)) {
      for (const name of argNames(text)) {
        if (!declared.has(name)) {
          problems.push({ source, path: `spec.metrics[${i}].provider.${field}`, message: `uses {{args.${name}}} but the template declares no arg "${name}"` });
        }
      }
    }
  });
  (t.spec.dryRun ?? []).forEach((d, i) => {
    if (d.metricName !== '*' && !t.spec.metrics.some((m) => m.name === d.metricName)) {
      problems.push({ source, path: `spec.dryRun[${i}].metricName`, message: `no metric named "${d.metricName}"` });
    }
  });
  (t.spec.measurementRetention ?? []).forEach((r, i) => {
    if (r.metricName !== '*' && !t.spec.metrics.some((m) => m.name === r.metricName)) {
      problems.push({ source, path: `spec.measurementRetention[${i}].metricName`, message: `no metric named "${r.metricName}"` });
    }
  });
  return problems;
}

/** The provider fields where `{{args.x}}` is substituted, as [path, text]. */
function templatedFields(p: MetricDoc['provider']): [string, string][] {
  const out: [string, string][] = [];
  const headers = (prefix: string, hs: { value: string }[] | undefined): void => hs?.forEach((h, i) => out.push([`${prefix}.headers[${i}].value`, h.value]));
  if (p.prometheus) {
    out.push(['prometheus.query', p.prometheus.query]);
    headers('prometheus', p.prometheus.headers);
  }
  if (p.web) {
    out.push(['web.url', p.web.url]);
    headers('web', p.web.headers);
    if (p.web.body !== undefined) out.push(['web.body', p.web.body]);
    if (p.web.jsonBody !== undefined) out.push(['web.jsonBody', JSON.stringify(p.web.jsonBody)]);
  }
  if (p.job) out.push(['job', JSON.stringify(p.job)]);
  p.judge?.metrics.forEach((m, i) => out.push([`judge.metrics[${i}].baseline`, m.baseline], [`judge.metrics[${i}].canary`, m.canary]));
  return out;
}

function fromRelease(source: string, raw: unknown, templates: Templates, options: NormalizeOptions, problems: SpecProblem[]): ReleasePlan | undefined {
  const parsed = releaseDoc.safeParse(raw);
  if (!parsed.success) {
    problems.push(...zodProblems(source, parsed.error));
    return undefined;
  }
  const { metadata, spec } = parsed.data;
  const image = options.image ?? spec.image;
  if (image === undefined) {
    problems.push({ source, path: 'spec.image', message: 'required (or pass --image)' });
    return undefined;
  }
  if (spec.imagePolicy?.requireDigest && !spec.build && !/@sha256:[a-f0-9]{64}$/.test(image)) {
    problems.push({ source, path: 'spec.image', message: 'imagePolicy.requireDigest: must be pinned as repo@sha256:<64 hex> (mutable tags are refused)' });
    return undefined;
  }
  const kindProblems = workloadStrategyProblems(spec.workloadRef.kind, strategyType(spec.strategy), { maxSurge: spec.strategy.rolling?.maxSurge !== undefined, steps: (spec.strategy.rolling?.steps ?? []).map((s) => (s.batch !== undefined ? (parseBatch(s.batch) ?? { kind: 'batch' }) : { kind: 'gate' })) });
  problems.push(...kindProblems.map((p) => ({ source, path: `spec.strategy.${p.path}`, message: `${p.message} (spec.workloadRef.kind ${spec.workloadRef.kind})` })));
  const strategy = buildStrategy(source, spec.strategy, templates, problems);
  if (!strategy || kindProblems.length > 0) return undefined;
  const freezeProblems = spec.freeze ? freezePointProblems(spec.freeze, strategy) : [];
  problems.push(...freezeProblems.map((f) => ({ source, path: `spec.freeze.windows[${f.window}].before`, message: f.message })));
  if (freezeProblems.length > 0) return undefined;
  if (spec.config?.length && strategy.type === 'rolling') {
    problems.push({ source, path: 'spec.config', message: CONFIG_WITH_ROLLING });
    return undefined;
  }
  return {
    ...(spec.config?.length ? { config: spec.config.map((c) => ({ kind: c.kind, name: c.name })) } : {}),
    ...(spec.freeze ? { freeze: stripUndefined(spec.freeze) as FreezeSpec } : {}),
    ...(spec.build ? { build: stripUndefined(spec.build) } : {}),
    ...(spec.imagePolicy ? { imagePolicy: spec.imagePolicy } : {}),
    ...(spec.readinessProbePolicy ? { readinessProbePolicy: spec.readinessProbePolicy } : {}),
    ...(spec.notifications?.length ? { notifications: spec.notifications.map((n) => stripUndefined(n) as NotificationSpec) } : {}),
    ...(spec.webhooks?.length ? { webhooks: webhooksOfDoc(spec.webhooks) } : {}),
    name: metadata.name,
    namespace: metadata.namespace ?? DEFAULTS.namespace,
    workload: { kind: spec.workloadRef.kind, name: spec.workloadRef.name, ...(spec.container ? { container: spec.container } : {}) },
    image,
    progressDeadlineSeconds: spec.progressDeadline === undefined ? DEFAULTS.progressDeadlineSeconds : Math.ceil(parseDuration(spec.progressDeadline) / 1000),
    retryWindowSeconds: spec.retryWindow === undefined ? DEFAULTS.retryWindowSeconds : Math.ceil(parseDuration(spec.retryWindow) / 1000),
    policy: { ...(spec.policy?.promoters ? { promoters: spec.policy.promoters } : {}), ...(spec.policy?.aborters ? { aborters: spec.policy.aborters } : {}) },
    strategy,
    source,
  };
}

function fromRollout(source: string, raw: unknown, templates: Templates, options: NormalizeOptions, problems: SpecProblem[], others: readonly OtherDocument[], used: { workload?: OtherDocument }): ReleasePlan | undefined {
  const parsed = rolloutDoc.safeParse(raw);
  if (!parsed.success) {
    problems.push(...zodProblems(source, parsed.error));
    return undefined;
  }
  const { metadata, spec } = parsed.data;
  const namespace = metadata.namespace ?? DEFAULTS.namespace;
  let first: { name: string; image: string } | undefined = spec.template?.spec.containers[0];
  if (spec.workloadRef) {
    // Argo's workloadRef: the pod template (and so the image) is the referenced Deployment's.
    const deployment = referencedDeployment(others, spec.workloadRef.name, namespace);
    const container = deployment ? firstContainer(deployment) : undefined;
    if (deployment && container) {
      const bad = referenceProblem(container.image);
      if (bad) {
        problems.push({ source: deployment.source, path: 'spec.template.spec.containers[0].image', message: `must be an image reference (${bad})` });
        return undefined;
      }
      first = container;
      used.workload = deployment;
    } else if (deployment && options.image === undefined) {
      problems.push({ source: deployment.source, path: 'spec.template.spec.containers', message: `Deployment "${deployment.name}" (named by the Rollout's workloadRef) has no container with a name and an image` });
      return undefined;
    }
  }
  const image = options.image ?? first?.image;
  if (image === undefined) {
    problems.push({ source, path: 'spec.workloadRef', message: `the Rollout takes its image from Deployment "${spec.workloadRef?.name ?? metadata.name}", which is not in the given files: add the Deployment to the files (-f), or pass --image` });
    return undefined;
  }
  if (spec.strategy.rolling) {
    problems.push({ source, path: 'spec.strategy.rolling', message: 'strategy.rolling is Glidepath\'s own: write it in a glidepath.dev/v1alpha1 Release, not an Argo Rollout' });
    return undefined;
  }
  const built = buildStrategy(source, spec.strategy, templates, problems);
  if (!built) return undefined;
  const kind = spec.workloadRef?.kind ?? 'Deployment';
  let strategy: Strategy = built;
  if (kind !== 'Deployment' && built.type !== 'rolling') {
    // A workloadRef to a StatefulSet or DaemonSet runs where the strategy maps (model/rolling.ts); the rest is named.
    const mapped = rolloutOnWorkload(kind, built);
    if (built.type === 'canary' && built.replicaLimits) {
      const field = spec.strategy.canary?.maxSurge !== undefined ? 'maxSurge' : 'maxUnavailable';
      mapped.problems.push({ path: `canary.${field}`, message: `cannot map to a ${kind}: its pods are updated in place, there is no stable to shrink (remove maxSurge/maxUnavailable)` });
    }
    problems.push(...mapped.problems.map((p) => ({ source, path: p.path ? `spec.strategy.${p.path}` : 'spec.workloadRef.kind', message: `${p.message} (workloadRef.kind ${kind})` })));
    if (!mapped.strategy) return undefined;
    strategy = mapped.strategy;
  }
  return {
    name: metadata.name,
    namespace,
    workload: { kind, name: spec.workloadRef?.name ?? metadata.name, ...(first ? { container: first.name } : {}) },
    image,
    progressDeadlineSeconds: spec.progressDeadlineSeconds ?? DEFAULTS.progressDeadlineSeconds,
    retryWindowSeconds: DEFAULTS.retryWindowSeconds,
    policy: {},
    strategy,
    source,
  };
}

const strategyType = (doc: StrategyDoc): 'canary' | 'blueGreen' | 'rolling' => (doc.canary ? 'canary' : doc.blueGreen ? 'blueGreen' : 'rolling');

function buildStrategy(source: string, doc: StrategyDoc, templates: Templates, problems: SpecProblem[]): Strategy | undefined {
  const before = problems.length;
  if (doc.rolling) {
    const steps = (doc.rolling.steps ?? []).map((s, i) => toRollingStep(source, `spec.strategy.rolling.steps[${i}]`, s, templates, problems));
    for (const p of rollingStepProblems(steps)) problems.push({ source, path: `spec.strategy.rolling.steps[${p.step}].batch`, message: p.message });
    const { maxSurge } = doc.rolling;
    return problems.length === before ? { type: 'rolling', steps, ...(maxSurge !== undefined ? { maxSurge } : {}) } : undefined;
  }
  if (doc.canary) {
    const c = doc.canary;
    const steps: CanaryStep[] = (c.steps ?? []).map((s, i) => toStep(source, `spec.strategy.canary.steps[${i}]`, s, templates, problems));
    const strategy: Strategy = {
      type: 'canary',
      steps,
      ...(c.stableService ? { stableService: c.stableService } : {}),
      ...(c.canaryService ? { canaryService: c.canaryService } : {}),
      ...(c.trafficRouting ? { trafficRouting: c.trafficRouting } : {}),
      ...(c.abortScaleDownDelaySeconds !== undefined ? { abortScaleDownDelaySeconds: c.abortScaleDownDelaySeconds } : {}),
      ...(c.scaleDownDelaySeconds !== undefined ? { scaleDownDelaySeconds: c.scaleDownDelaySeconds } : {}),
      ...(!c.trafficRouting && (c.maxSurge !== undefined || c.maxUnavailable !== undefined)
        ? { replicaLimits: { maxSurge: c.maxSurge ?? DEFAULT_MAX_SURGE, maxUnavailable: c.maxUnavailable ?? DEFAULT_MAX_UNAVAILABLE } }
        : {}),
    };
    if ((c.stableService === undefined) !== (c.canaryService === undefined)) {
      problems.push({ source, path: 'spec.strategy.canary', message: 'set both stableService and canaryService, or neither' });
    }
    if (c.analysis) {
      const analysis = resolveAnalysis(source, 'spec.strategy.canary.analysis', c.analysis, templates, problems);
      const startingStep = c.analysis.startingStep ?? 0;
      if (startingStep > steps.length) {
        problems.push({ source, path: 'spec.strategy.canary.analysis.startingStep', message: `is ${startingStep} but there are only ${steps.length} steps` });
      }
      if (analysis) strategy.background = { analysis, startingStep };
    }
    return problems.length === before ? strategy : undefined;
  }
  const b = doc.blueGreen;
  if (!b) return undefined;
  if (b.previewService !== undefined && b.previewService === b.activeService) {
    problems.push({ source, path: 'spec.strategy.blueGreen.previewService', message: 'must differ from activeService' });
  }
  const pre = b.prePromotionAnalysis ? resolveAnalysis(source, 'spec.strategy.blueGreen.prePromotionAnalysis', b.prePromotionAnalysis, templates, problems) : undefined;
  const post = b.postPromotionAnalysis ? resolveAnalysis(source, 'spec.strategy.blueGreen.postPromotionAnalysis', b.postPromotionAnalysis, templates, problems) : undefined;
  if (problems.length !== before) return undefined;
  return {
    type: 'blueGreen',
    activeService: b.activeService,
    ...(b.previewService ? { previewService: b.previewService } : {}),
    autoPromotionEnabled: b.autoPromotionEnabled ?? DEFAULTS.autoPromotionEnabled,
    ...(b.autoPromotionSeconds !== undefined ? { autoPromotionSeconds: b.autoPromotionSeconds } : {}),
    ...(pre ? { prePromotionAnalysis: pre } : {}),
    ...(post ? { postPromotionAnalysis: post } : {}),
    scaleDownDelaySeconds: b.scaleDownDelaySeconds ?? DEFAULTS.scaleDownDelaySeconds,
    ...(b.previewReplicaCount !== undefined ? { previewReplicaCount: b.previewReplicaCount } : {}),
    ...(b.abortScaleDownDelaySeconds !== undefined ? { abortScaleDownDelaySeconds: b.abortScaleDownDelaySeconds } : {}),
  };
}

/** The one kind a StringMatch sets, without undefined keys. */
function stringMatch(m: { exact?: string | undefined; prefix?: string | undefined; regex?: string | undefined }): StringMatch {
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  return { regex: m.regex ?? '' };
}

/** A rolling step: a batch, or a gate read as the canary's step of the same name. */
function toRollingStep(source: string, path: string, s: RollingStepDoc, templates: Templates, problems: SpecProblem[]): RollingStep {
  if (s.batch !== undefined) return parseBatch(s.batch) ?? { kind: 'batch', replicas: 0 }; // the schema checked it
  return toStep(source, path, s, templates, problems) as RollingStep;
}

function toStep(source: string, path: string, s: CanaryStepDoc, templates: Templates, problems: SpecProblem[]): CanaryStep {
  if (s.setWeight !== undefined) return { kind: 'setWeight', weight: s.setWeight };
  if (s.pause !== undefined) {
    return s.pause.duration === undefined ? { kind: 'pause' } : { kind: 'pause', durationMs: parseDuration(s.pause.duration) };
  }
  if (s.setCanaryScale !== undefined) {
    const { replicas, weight, matchTrafficWeight } = s.setCanaryScale;
    return { kind: 'setCanaryScale', ...(replicas !== undefined ? { replicas } : {}), ...(weight !== undefined ? { weight } : {}), ...(matchTrafficWeight !== undefined ? { matchTrafficWeight } : {}) };
  }
  if (s.approval !== undefined) {
    const a = s.approval;
    return {
      kind: 'approval',
      approvers: [...new Set(a.approvers)],
      minApprovals: a.minApprovals ?? DEFAULTS.minApprovals,
      ...(a.timeout !== undefined ? { timeoutMs: parseDuration(a.timeout) } : {}),
      onTimeout: a.onTimeout ?? DEFAULTS.onTimeout,
    };
  }
  if (s.setHeaderRoute !== undefined) {
    const h = s.setHeaderRoute;
    return { kind: 'setHeaderRoute', name: h.name, match: (h.match ?? []).map((m) => ({ headerName: m.headerName, headerValue: stringMatch(m.headerValue) })) };
  }
  if (s.setMirrorRoute !== undefined) {
    const m = s.setMirrorRoute;
    return {
      kind: 'setMirrorRoute',
      name: m.name,
      percentage: m.percentage ?? DEFAULTS.mirrorPercentage,
      match: (m.match ?? []).map((r) => ({
        ...(r.method ? { method: stringMatch(r.method) } : {}),
        ...(r.path ? { path: stringMatch(r.path) } : {}),
        ...(r.headers ? { headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, stringMatch(v)])) } : {}),
      })),
    };
  }
  if (s.experiment !== undefined) return toExperiment(source, `${path}.experiment`, s.experiment, templates, problems);
  const analysis = resolveAnalysis(source, `${path}.analysis`, s.analysis as RolloutAnalysisDoc, templates, problems);
  return { kind: 'analysis', analysis: analysis ?? { name: '', templates: [], args: {}, metrics: [] } };
}

/** A plan path of an experiment problem as the field the user wrote. */
function experimentDocPath(path: readonly (string | number)[], e: NonNullable<CanaryStepDoc['experiment']>): string {
  const [head, i, field, , arg] = path;
  if (head !== 'analyses' || typeof i !== 'number') return pathOf(path);
  if (field === 'run' && arg !== undefined) {
    const j = (e.analyses?.[i]?.args ?? []).findIndex((a) => a.name === arg);
    return `analyses[${i}].args[${j}].value`;
  }
  return field === 'run' ? `analyses[${i}].templateName` : pathOf(path);
}

/** Argo's experiment step: templates with Argo's defaults (1 replica), each analysis resolved as an analysis step of one template. */
function toExperiment(source: string, path: string, e: NonNullable<CanaryStepDoc['experiment']>, templates: Templates, problems: SpecProblem[]): ExperimentStep {
  const step: ExperimentStep = {
    kind: 'experiment',
    ...(e.duration !== undefined ? { durationMs: parseDuration(e.duration) } : {}),
    templates: e.templates.map((t) => ({
      name: t.name,
      specRef: t.specRef,
      replicas: t.replicas ?? 1,
      ...(t.metadata?.labels ? { labels: { ...t.metadata.labels } } : {}),
      ...(t.metadata?.annotations ? { annotations: { ...t.metadata.annotations } } : {}),
      ...(t.selector ? { selector: { ...t.selector.matchLabels } } : {}),
      ...(t.weight !== undefined ? { weight: t.weight } : {}),
      ...(t.service !== undefined ? { service: t.service.name !== undefined ? { name: t.service.name } : {} } : {}),
    })),
    analyses: [],
  };
  (e.analyses ?? []).forEach((a, i) => {
    const ref = { templates: [{ templateName: a.templateName, ...(a.clusterScope !== undefined ? { clusterScope: a.clusterScope } : {}) }], ...(a.args ? { args: a.args } : {}) };
    const before = problems.length;
    const run = resolveAnalysis(source, `${path}.analyses[${i}]`, ref, templates, problems);
    // The user wrote the template's name at analyses[i].templateName, not in a templates list.
    for (const p of problems.slice(before)) p.path = p.path.replace(`${path}.analyses[${i}].templates[0].templateName`, `${path}.analyses[${i}].templateName`);
    if (run) step.analyses.push({ name: a.name, run: { ...run, name: a.name }, requiredForCompletion: a.requiredForCompletion ?? false });
  });
  if (step.analyses.length === (e.analyses ?? []).length) {
    for (const p of experimentProblems(step)) problems.push({ source, path: `${path}.${experimentDocPath(p.path, e)}`, message: p.message });
  }
  return step;
}

function resolveAnalysis(source: string, path: string, ref: RolloutAnalysisDoc, templates: Templates, problems: SpecProblem[]): AnalysisRunSpec | undefined {
  const metrics: MetricSpec[] = [];
  const args: Record<string, ArgValue> = {};
  const declared = new Map<string, { template: string; value?: ArgValue }>();
  const before = problems.length;
  let unresolved = false;

  ref.templates.forEach((t, i) => {
    const map = t.clusterScope ? templates.cluster : templates.namespaced;
    const found = map.get(t.templateName);
    if (!found && templates.invalid.has(t.templateName)) {
      problems.push({ source, path: `${path}.templates[${i}].templateName`, message: `template "${t.templateName}" is invalid (see its problems)` });
      unresolved = true;
      return;
    }
    if (!found) {
      unresolved = true;
      problems.push({ source, path: `${path}.templates[${i}].templateName`, message: `no ${t.clusterScope ? 'ClusterAnalysisTemplate' : 'AnalysisTemplate'} named "${t.templateName}" in the given files` });
      return;
    }
    const spec = found.doc.spec;
    const dry = new Set((spec.dryRun ?? []).map((d) => d.metricName));
    const retention = new Map((spec.measurementRetention ?? []).map((r) => [r.metricName, r.limit]));
    (spec.args ?? []).forEach((a, j) => {
      const value: ArgValue | undefined = a.valueFrom ? argValueFrom(found.source, `spec.args[${j}].valueFrom`, a.valueFrom, templates, problems) : a.value !== undefined ? { value: a.value } : undefined;
      declared.set(a.name, { template: t.templateName, ...(value ? { value } : {}) });
    });
    for (const m of spec.metrics) {
      if (metrics.some((x) => x.name === m.name)) {
        problems.push({ source, path: `${path}.templates[${i}]`, message: `metric "${m.name}" is defined by more than one template` });
        continue;
      }
      metrics.push(toMetric(m, dry.has('*') || dry.has(m.name), retention.get(m.name) ?? retention.get('*')));
    }
  });

  if (unresolved) return undefined; // args cannot be checked against templates we do not have
  const given = new Set<string>();
  (ref.args ?? []).forEach((a, i) => {
    if (!declared.has(a.name)) {
      problems.push({ source, path: `${path}.args[${i}].name`, message: `no template declares an arg "${a.name}"` });
      return;
    }
    if (a.valueFrom) {
      given.add(a.name); // a valueFrom that cannot be resolved is reported there, not as "no value"
      const value = argValueFrom(source, `${path}.args[${i}].valueFrom`, a.valueFrom, templates, problems);
      if (value) args[a.name] = value;
    } else if (a.value !== undefined) args[a.name] = { value: a.value };
    else problems.push({ source, path: `${path}.args[${i}]`, message: 'needs value, valueFrom.secretKeyRef or valueFrom.fieldRef' });
  });
  for (const [name, d] of declared) {
    if (Object.hasOwn(args, name) || given.has(name)) continue;
    if (d.value) args[name] = d.value;
    else problems.push({ source, path: `${path}.args`, message: `arg "${name}" of template "${d.template}" has no value` });
  }
  if (problems.length !== before) return undefined;
  return { name: ref.templates.map((t) => t.templateName).join('+'), templates: ref.templates.map((t) => t.templateName), args, metrics };
}

/** An arg's `valueFrom`: a Secret reference (read by the worker), or a fieldRef resolved now. */
function argValueFrom(source: string, path: string, v: ArgValueFromDoc, templates: Templates, problems: SpecProblem[]): ArgValue | undefined {
  if (v.secretKeyRef) return { secretKeyRef: v.secretKeyRef };
  if (!v.fieldRef || !templates.fieldRefSubject) return undefined; // podTemplateHashValue: refused by the schema
  const resolved = resolveFieldRef(templates.fieldRefSubject.doc, templates.fieldRefSubject.namespace, v.fieldRef.fieldPath);
  if ('problem' in resolved) {
    problems.push({ source, path: `${path}.fieldRef.fieldPath`, message: resolved.problem });
    return undefined;
  }
  return { value: resolved.value };
}

function toInt(v: string | number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  return typeof v === 'number' ? v : Number.parseInt(v, 10);
}

/** A metric's provider block, copied. */
function toProvider(p: MetricDoc['provider']): ProviderSpec {
  if (p.prometheus) return { prometheus: { ...p.prometheus } };
  if (p.job) return { job: structuredClone(p.job) as JobProviderSpec };
  if (p.judge) return { judge: structuredClone(p.judge) as JudgeProviderSpec };
  return { web: { ...(p.web as WebProviderSpec) } };
}

/**
 * Argo judges a job metric by the Job alone (complete → Successful, failed → Failed). The job
 * provider's value is 1 or 0, so a job metric with no condition gets `result == 1`: a failed Job is
 * a Failed measurement, not a Successful one.
 */
const JOB_SUCCESS_CONDITION = 'result == 1';

/** A metric of the plan; `count: 0` is Argo's "unset" and is left out. */
function toMetric(m: MetricDoc, dryRun: boolean, retention: number | undefined): MetricSpec {
  const jobDefault = m.provider.job !== undefined && m.successCondition === undefined && m.failureCondition === undefined;
  // A judgement without conditions: Pass is Successful, Fail Failed, Marginal Inconclusive (model/judge-provider.ts).
  const judgeDefault = m.provider.judge !== undefined && m.successCondition === undefined && m.failureCondition === undefined;
  const count = toInt(m.count, 0);
  return {
    name: m.name,
    ...(m.interval !== undefined ? { intervalMs: parseDuration(m.interval) } : {}),
    ...(count > 0 ? { count } : {}),
    ...(m.initialDelay !== undefined ? { initialDelayMs: parseDuration(m.initialDelay) } : {}),
    ...(m.successCondition !== undefined ? { successCondition: m.successCondition } : {}),
    ...(jobDefault ? { successCondition: JOB_SUCCESS_CONDITION } : {}),
    ...(judgeDefault ? { successCondition: JUDGE_SUCCESS_CONDITION, failureCondition: JUDGE_FAILURE_CONDITION } : {}),
    ...(m.failureCondition !== undefined ? { failureCondition: m.failureCondition } : {}),
    failureLimit: toInt(m.failureLimit, 0),
    inconclusiveLimit: toInt(m.inconclusiveLimit, 0),
    consecutiveErrorLimit: toInt(m.consecutiveErrorLimit, DEFAULT_CONSECUTIVE_ERROR_LIMIT),
    dryRun,
    ...(retention !== undefined ? { measurementRetention: retention } : {}),
    provider: toProvider(m.provider),
  };
}

/** The build section without absent keys (a plan is compared and stored as JSON). */
function stripUndefined<T extends object>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}
