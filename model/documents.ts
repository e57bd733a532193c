/**
 * The other documents of a release file: Argo Rollouts users keep a Rollout with its Services,
 * Ingress, VirtualService, Secret or referenced Deployment in one file. Glidepath reads its own
 * documents (Release, Rollout, AnalysisTemplate, ClusterAnalysisTemplate); every other Kubernetes
 * object is listed, used where the release needs it (the Deployment a `workloadRef` names gives the
 * image) and otherwise ignored, or applied before the release when the user asks for it. Workflow-safe
 * (no I/O).
 */
import { DNS1123 } from './fields.ts';
import type { SpecProblem } from './normalize.ts';

/** A Kubernetes object in a release file that is not one of Glidepath's documents. */
export interface OtherDocument {
  source: string;
  apiVersion: string;
  kind: string;
  name: string;
  /** As written; absent means the release's namespace. */
  namespace?: string;
  doc: Record<string, unknown>;
}

/** Argo Rollouts kinds Glidepath does not read as documents, with the reason and what to use instead. */
const REFUSED_ARGO_KINDS: Record<string, string> = {
  Experiment:
    'a standalone Experiment is not supported by this version of Glidepath (not supported: Experiment documents); run the comparison as an analysis step of a release',
  AnalysisRun: 'an AnalysisRun is not supported by this version of Glidepath (not supported: AnalysisRun documents); reference an AnalysisTemplate from the release instead',
};

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Classifies a document Glidepath does not read itself: a Kubernetes object it can list, or a problem. */
export function otherDocument(source: string, doc: unknown, glidepathGroups: readonly string[]): OtherDocument | SpecProblem {
  if (!isRecord(doc)) return { source, path: '', message: 'not a Kubernetes object (expected a mapping with apiVersion, kind and metadata.name)' };
  const { apiVersion, kind, metadata } = doc;
  if (typeof apiVersion !== 'string' || apiVersion === '') return { source, path: 'apiVersion', message: 'required: a Kubernetes object names its apiVersion' };
  if (typeof kind !== 'string' || kind === '') return { source, path: 'kind', message: 'required: a Kubernetes object names its kind' };
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  if (glidepathGroups.includes(group)) {
    const refused = REFUSED_ARGO_KINDS[kind];
    return { source, path: 'kind', message: refused ?? `unsupported document "${apiVersion}/${kind}": Glidepath reads Release, Rollout, AnalysisTemplate and ClusterAnalysisTemplate from this API group` };
  }
  if (!isRecord(metadata) || typeof metadata.name !== 'string' || metadata.name === '') {
    return { source, path: 'metadata.name', message: `required: a ${kind} to list or apply needs a name (generateName is not applied by server-side apply)` };
  }
  const namespace = metadata.namespace;
  if (namespace !== undefined && (typeof namespace !== 'string' || !DNS1123.test(namespace))) {
    return { source, path: 'metadata.namespace', message: 'must be a DNS-1123 label (lowercase letters, digits, "-")' };
  }
  return { source, apiVersion, kind, name: metadata.name, ...(typeof namespace === 'string' ? { namespace } : {}), doc };
}

/** The Deployment a `workloadRef` names, when it is among the other documents (in the release's namespace). */
export function referencedDeployment(others: readonly OtherDocument[], name: string, namespace: string): OtherDocument | undefined {
  return others.find((o) => o.apiVersion === 'apps/v1' && o.kind === 'Deployment' && o.name === name && (o.namespace ?? namespace) === namespace);
}

/** The first container of a Deployment document (name and image), when it has one. */
export function firstContainer(deployment: OtherDocument): { name: string; image: string } | undefined {
  const spec = deployment.doc.spec;
  const template = isRecord(spec) ? spec.template : undefined;
  const podSpec = isRecord(template) ? template.spec : undefined;
  const containers = isRecord(podSpec) ? podSpec.containers : undefined;
  const first: unknown = Array.isArray(containers) ? containers[0] : undefined;
  if (!isRecord(first) || typeof first.name !== 'string' || typeof first.image !== 'string') return undefined;
  return { name: first.name, image: first.image };
}

/** "v1/Service rollout-bluegreen-active (file.yaml#2)". */
export function describeOther(o: OtherDocument): string {
  return `${o.apiVersion}/${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name} (${o.source})`;
}
