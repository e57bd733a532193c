/**
 * The `ReleaseGroup` document (`glidepath.dev/v1alpha1`): member releases (each a Release or Rollout
 * with its templates, by file or inline) with `dependsOn` edges, waves of clusters with gates, the
 * failure policy and per-cluster overrides. As strict as `Release`: every unknown field is a named
 * problem. Pure: the CLI reads member files and hands their documents in. Workflow-safe (no I/O).
 *
 * ```yaml
 * apiVersion: glidepath.dev/v1alpha1
 * kind: ReleaseGroup
 * metadata: { name: checkout, namespace: shop }
 * spec:
 *   members:
 *     - { name: ledger, file: ledger.yaml }
 *     - { name: payments, file: [payments.yaml, templates.yaml], dependsOn: [ledger] }
 *   waves:
 *     - { name: staging, clusters: [staging], gate: { soak: 10m } }
 *     - { name: prod, clusters: [prod-eu, prod-us], maxParallel: 1 }
 *   onFailure: rollback-group
 *   clusters:
 *     prod-eu: { imageRegistry: registry.eu.example, analysisAddress: http://prometheus.eu:9090 }
 *     prod-us: { replicas: { ledger: 6, payments: 10 } }
 * ```
 */
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { dns1123 } from './fields.ts';
import { RELEASE_API_VERSION, approvalStep, duration, rolloutAnalysis } from './schema.ts';
import { DEFAULTS, SpecError, normalize, pathOf, type SourceDoc, type SpecProblem } from './normalize.ts';
import { desiredReplicas, planProblems } from './plan.ts';
import { groupTriggerProblems, type NotificationSpec } from './notifications.ts';
import { notificationsSchema } from './notifications-schema.ts';
import {
  GROUP_KIND,
  MAX_CLUSTERS,
  MAX_MEMBERS,
  MAX_WAVES,
  ON_FAILURE,
  dependencyOrder,
  memberPlan,
  overrideProblems,
  type GroupGate,
  type GroupMember,
  type GroupPlan,
} from './group-plan.ts';
import type { AnalysisRunSpec } from './types.ts';

z.config({ jitless: true });

const files = z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(20)]);

const member = z
  .strictObject({
    name: dns1123,
    /** A Release or Rollout file, with its AnalysisTemplates in the same or further files (relative to the group file). */
    file: files.optional(),
    /** The same documents, inline. */
    inline: z.array(z.unknown()).min(1).max(50).optional(),
    /** Overrides the member's image (as `release start --image`). */
    image: z.string().min(1).optional(),
    dependsOn: z.array(dns1123).max(MAX_MEMBERS).optional(),
  })
  .superRefine((m, ctx) => {
    if ((m.file === undefined) === (m.inline === undefined)) ctx.addIssue({ code: 'custom', message: 'set file or inline (exactly one)' });
  });

const gate = z
  .strictObject({
    soak: duration.optional(),
    analysis: rolloutAnalysis.optional(),
    approval: approvalStep.optional(),
  })
  .refine((g) => g.soak !== undefined || g.analysis !== undefined || g.approval !== undefined, 'set soak, analysis and/or approval');

const wave = z.strictObject({
  name: dns1123,
  clusters: z.array(dns1123).min(1).max(MAX_CLUSTERS),
  maxParallel: z.number().int().min(1).optional(),
  gate: gate.optional(),
});

const override = z.strictObject({
  imageRegistry: z
    .string()
    .regex(/^[a-zA-Z0-9.-]+(:\d+)?$/, 'must be a registry host such as registry.eu.example or localhost:5000')
    .optional(),
  analysisAddress: z.string().url('must be a URL such as http://prometheus.eu:9090').optional(),
  /** Per member: its Deployment's desired replica count in this cluster. */
  replicas: z.record(dns1123, desiredReplicas).optional(),
});

export const releaseGroupDoc = z.strictObject({
  apiVersion: z.literal(RELEASE_API_VERSION),
  kind: z.literal(GROUP_KIND),
  metadata: z.strictObject({
    name: dns1123,
    namespace: dns1123.optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: z.strictObject({
    members: z.array(member).min(1).max(MAX_MEMBERS),
    waves: z.array(wave).min(1).max(MAX_WAVES),
    onFailure: z.enum(ON_FAILURE).optional(),
    clusters: z.record(dns1123, override).optional(),
    /** AnalysisTemplates (inline documents) the gates' analyses name. */
    analysisTemplates: z.array(z.unknown()).max(50).optional(),
    /** Subscriptions to the group's own events (its members' releases notify by their own spec). */
    notifications: notificationsSchema.optional(),
  }),
});
export type ReleaseGroupDoc = z.infer<typeof releaseGroupDoc>;

export function isGroupDoc(doc: unknown): boolean {
  return typeof doc === 'object' && doc !== null && (doc as { kind?: unknown }).kind === GROUP_KIND;
}

/** Parses the group document, or throws {@link SpecError} naming every problem. */
export function parseGroup(source: string, raw: unknown): ReleaseGroupDoc {
  const parsed = releaseGroupDoc.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems: SpecProblem[] = [];
  for (const issue of parsed.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push({ source, path: pathOf([...issue.path, key]), message: 'unsupported field (Glidepath does not implement it; remove it or see docs/fleet.md)' });
    } else problems.push({ source, path: pathOf(issue.path), message: issue.message });
  }
  throw new SpecError(problems);
}

/** The member files to read, relative to the group file, per member. */
export function memberFiles(doc: ReleaseGroupDoc): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of doc.spec.members) if (m.file !== undefined) out.set(m.name, typeof m.file === 'string' ? [m.file] : m.file);
  return out;
}

/** A gate's analysis, resolved against the group's templates by the same rules as a release's analysis step. */
function gateAnalysis(source: string, path: string, ref: unknown, templates: readonly unknown[], problems: SpecProblem[]): AnalysisRunSpec | undefined {
  const carrier = {
    apiVersion: RELEASE_API_VERSION,
    kind: 'Release',
    metadata: { name: 'gate' },
    spec: { workloadRef: { kind: 'Deployment', name: 'gate' }, image: 'gate:0', strategy: { canary: { steps: [{ analysis: ref }] } } },
  };
  const docs: SourceDoc[] = [{ source: '(inline)', doc: carrier }, ...templates.map((doc, i) => ({ source: `(inline) spec.analysisTemplates[${i}]`, doc }))];
  try {
    const plan = normalize(docs);
    const step = plan.strategy.type === 'canary' ? plan.strategy.steps[0] : undefined;
    return step?.kind === 'analysis' ? step.analysis : undefined;
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    const carried = 'spec.strategy.canary.steps[0].analysis';
    for (const p of err.problems) {
      const t = /^\(inline\) (spec\.analysisTemplates\[\d+\])$/.exec(p.source);
      if (t) problems.push({ source, path: `${t[1]}${p.path ? `.${p.path}` : ''}`, message: p.message });
      else problems.push({ source, path: p.path.startsWith(carried) ? `${path}${p.path.slice(carried.length)}` : path, message: p.message });
    }
    return undefined;
  }
}

function toGate(source: string, path: string, g: z.infer<typeof gate>, templates: readonly unknown[], problems: SpecProblem[]): GroupGate {
  const analysis = g.analysis ? gateAnalysis(source, `${path}.analysis`, g.analysis, templates, problems) : undefined;
  const a = g.approval;
  return {
    ...(g.soak !== undefined ? { soakMs: parseDuration(g.soak) } : {}),
    ...(analysis ? { analysis } : {}),
    ...(a
      ? {
          approval: {
            approvers: [...new Set(a.approvers)],
            minApprovals: a.minApprovals ?? DEFAULTS.minApprovals,
            ...(a.timeout !== undefined ? { timeoutMs: parseDuration(a.timeout) } : {}),
            onTimeout: a.onTimeout ?? DEFAULTS.onTimeout,
          },
        }
      : {}),
  };
}

function structureProblems(source: string, doc: ReleaseGroupDoc): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const { members, waves, clusters } = doc.spec;
  const index = new Map<string, number>();
  members.forEach((m, i) => {
    if (index.has(m.name)) problems.push({ source, path: `spec.members[${i}].name`, message: `duplicate member "${m.name}" (also spec.members[${index.get(m.name)}])` });
    else index.set(m.name, i);
    (m.dependsOn ?? []).forEach((d, j) => {
      if (!members.some((x) => x.name === d)) problems.push({ source, path: `spec.members[${i}].dependsOn[${j}]`, message: `no member named "${d}"` });
      if (d === m.name) problems.push({ source, path: `spec.members[${i}].dependsOn[${j}]`, message: 'a member cannot depend on itself' });
    });
  });
  if (problems.length === 0) {
    const order = dependencyOrder(members.map((m) => ({ name: m.name, dependsOn: m.dependsOn ?? [] })));
    if ('problem' in order) problems.push({ source, path: `spec.members[${index.get(order.member)}].dependsOn`, message: order.problem });
  }
  const waveOf = new Map<string, string>();
  const waveNames = new Set<string>();
  waves.forEach((w, i) => {
    if (waveNames.has(w.name)) problems.push({ source, path: `spec.waves[${i}].name`, message: `duplicate wave "${w.name}"` });
    waveNames.add(w.name);
    w.clusters.forEach((c, j) => {
      const other = waveOf.get(c);
      if (other !== undefined) problems.push({ source, path: `spec.waves[${i}].clusters[${j}]`, message: `cluster "${c}" is already in wave "${other}"` });
      else waveOf.set(c, w.name);
    });
  });
  if (waveOf.size > MAX_CLUSTERS) problems.push({ source, path: 'spec.waves', message: `${waveOf.size} clusters; a group spans at most ${MAX_CLUSTERS}` });
  for (const p of overrideProblems(clusters ?? {}, new Set(waveOf.keys()), members.map((m) => m.name))) {
    problems.push({ source, path: pathOf(['spec', 'clusters', p.cluster, ...p.path]), message: p.message });
  }
  return problems;
}

/**
 * Builds the group plan from the parsed document and each member's documents (file members' as read
 * by the caller; inline members' are taken from the document). Throws {@link SpecError} with every
 * problem: the group's own, each member's (as `release lint` reports them), and each member's plan
 * in each cluster (the workflow's start-time check).
 */
export function buildGroup(source: string, doc: ReleaseGroupDoc, read: ReadonlyMap<string, readonly SourceDoc[]> = new Map()): GroupPlan {
  const problems = structureProblems(source, doc);
  for (const t of groupTriggerProblems(doc.spec.notifications ?? [])) problems.push({ source, path: `spec.notifications[${t.sub}].triggers[${t.trigger}]`, message: t.message });
  const members: GroupMember[] = [];
  doc.spec.members.forEach((m, i) => {
    const path = `spec.members[${i}]`;
    const docs: SourceDoc[] = m.inline ? m.inline.map((d, j) => ({ source: `(inline)${j}`, doc: d })) : [...(read.get(m.name) ?? [])];
    try {
      const plan = normalize(docs, m.image ? { image: m.image } : {});
      members.push({ name: m.name, plan: { ...plan, source: m.inline ? `${source}#${m.name}` : (memberFilesOf(m) ?? plan.source ?? source) }, dependsOn: [...new Set(m.dependsOn ?? [])] });
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      problems.push(...(m.inline ? err.problems.map((p) => inlineProblem(source, `${path}.inline`, p)) : err.problems));
    }
  });
  const waves = doc.spec.waves.map((w, i) => ({
    name: w.name,
    clusters: [...w.clusters],
    maxParallel: w.maxParallel ?? w.clusters.length,
    ...(w.gate ? { gate: toGate(source, `spec.waves[${i}].gate`, w.gate, doc.spec.analysisTemplates ?? [], problems) } : {}),
  }));
  const workloads = new Map<string, string>();
  for (const m of members) {
    const key = `${m.plan.namespace}/${m.plan.workload.name}`;
    const other = workloads.get(key);
    if (other) problems.push({ source, path: `spec.members[${doc.spec.members.findIndex((x) => x.name === m.name)}]`, message: `releases workload ${key}, as member "${other}" does` });
    workloads.set(key, m.name);
  }
  if (problems.length > 0) throw new SpecError(problems);
  const byName = new Map(members.map((m) => [m.name, m]));
  const order = dependencyOrder(members);
  const group: GroupPlan = {
    name: doc.metadata.name,
    namespace: doc.metadata.namespace ?? DEFAULTS.namespace,
    members: 'order' in order ? order.order.map((n) => byName.get(n) as GroupMember) : members,
    waves,
    onFailure: doc.spec.onFailure ?? 'rollback-group',
    clusters: structuredClone(doc.spec.clusters ?? {}),
    ...(doc.spec.notifications?.length ? { notifications: doc.spec.notifications.map((n) => JSON.parse(JSON.stringify(n)) as NotificationSpec) } : {}),
    source,
  };
  // Exactly the check the parent workflow makes per member and cluster: lint's "valid" means it starts.
  for (const m of group.members) {
    for (const c of waves.flatMap((w) => w.clusters)) {
      for (const line of planProblems(memberPlan(group, m, c))) {
        const path = line.startsWith('replicas:') ? pathOf(['spec', 'clusters', c, 'replicas', m.name]) : `spec.members[${doc.spec.members.findIndex((x) => x.name === m.name)}] in cluster ${c}`;
        problems.push({ source, path, message: `${line} (refused by the workflow's start-time check)` });
      }
    }
  }
  if (problems.length > 0) throw new SpecError(problems);
  return group;
}

/** A problem in an inline document (source `(inline)N`): the group's source, the path down to the document. */
function inlineProblem(source: string, path: string, p: SpecProblem): SpecProblem {
  const m = /^\(inline\)(\d+)$/.exec(p.source);
  return { source, path: m ? `${path}[${m[1]}]${p.path ? `.${p.path}` : ''}` : `${path}${p.path ? `.${p.path}` : ''}`, message: p.message };
}

function memberFilesOf(m: z.infer<typeof member>): string | undefined {
  return m.file === undefined ? undefined : typeof m.file === 'string' ? m.file : m.file.join(',');
}
