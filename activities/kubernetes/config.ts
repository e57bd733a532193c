/**
 * `spec.config` on a real cluster: each source ConfigMap/Secret is copied to an immutable
 * `<name>-<hash>` (model/config.ts) that the canary/preview template and, on promotion, the stable
 * point at; copies no Deployment of the workload uses any more are deleted when the release ends.
 * Values pass through here only: what returns to the workflow is kinds, names and copy names.
 */
import { createHash } from 'node:crypto';
import { PatchStrategy, type KubernetesObject, type V1ConfigMap, type V1Container, type V1PodSpec, type V1Secret } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { copyName, describeRef, type ConfigCopy, type ConfigKind, type ConfigRef } from '../../model/config.ts';
import { inUse, usesOf } from '../../model/config-template.ts';
import type { ReleaseTarget } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import type { Deployments } from './deployments.ts';
import { isNotFound } from './errors.ts';
import { FIELD_MANAGER, LABELS, MANAGED_BY, workloadLabelValue } from './objects.ts';
import type { WorkloadRoom } from './room.ts';

/** On a copy: the source it was made from (with `managed-by: glidepath` and the workload label). */
export const CONFIG_OF_LABEL = 'rollouts.glidepath.dev/config-of';

type ConfigObject = V1ConfigMap | V1Secret;

/** A ConfigMap's binaryData (a Secret keeps everything in data). */
const binaryDataOf = (obj: ConfigObject): Record<string, string> | undefined => ('binaryData' in obj ? obj.binaryData : undefined);

/**
 * The content hash a copy is named by: the workload (each workload has its own copies, so one
 * workload's cleanup never removes another's), kind, Secret type, and every key and value.
 */
export function configContentHash(workload: string, kind: ConfigKind, obj: ConfigObject): string {
  const sorted = (m: Record<string, string> | undefined): [string, string][] => Object.entries(m ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const type = kind === 'Secret' ? ((obj as V1Secret).type ?? 'Opaque') : '';
  return createHash('sha256').update(JSON.stringify([workload, kind, type, sorted(obj.data), sorted(binaryDataOf(obj))])).digest('hex');
}

/** What prepare returns: the copies (names only) the pod templates are pointed at. */
export interface PreparedConfig {
  copies: ConfigCopy[];
}

export interface ConfigOps {
  /**
   * Checks every reference (the source exists, is not itself a copy, is used by the stable's pod
   * template; its copy's name is free or already Glidepath's copy), then, only when all pass,
   * applies the copies (immutable) and reads them back.
   */
  prepareConfig(target: ReleaseTarget, refs: ConfigRef[]): Promise<PreparedConfig>;
  /** Deletes those of `candidates` that are Glidepath's copies and that no Deployment of the workload (stable, canary, preview) uses. */
  collectConfig(target: ReleaseTarget, candidates: ConfigCopy[]): Promise<{ deleted: string[] }>;
}

const field = (i: number, r: ConfigRef): string => `spec.config[${i}] (${describeRef(r)})`;
const invalid = (message: string): ApplicationFailure => ApplicationFailure.nonRetryable(message, ErrorType.InvalidSpec);

export function createConfigOps(room: WorkloadRoom, d: Deployments): ConfigOps {
  const { k } = room;
  const resource = (kind: ConfigKind): string => (kind === 'ConfigMap' ? 'configmaps' : 'secrets');

  const find = async (namespace: string, kind: ConfigKind, name: string): Promise<ConfigObject | undefined> => {
    try {
      return await k.call({ verb: 'get', resource: resource(kind), namespace, name }, () =>
        kind === 'ConfigMap' ? k.core.readNamespacedConfigMap({ name, namespace }) : k.core.readNamespacedSecret({ name, namespace }),
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };

  const ours = (target: ReleaseTarget, source: string, obj: ConfigObject | undefined): boolean => {
    const l = obj?.metadata?.labels ?? {};
    return l[LABELS.managedBy] === MANAGED_BY && l[CONFIG_OF_LABEL] === source && l[LABELS.workload] === workloadLabelValue(target.workload.name);
  };

  /** The copy as applied: the source's content, immutable, labelled as Glidepath's copy of the source for this workload. */
  const copyObject = (target: ReleaseTarget, kind: ConfigKind, source: ConfigObject, name: string, sourceName: string): KubernetesObject => ({
    apiVersion: 'v1',
    kind,
    metadata: {
      name,
      namespace: target.namespace,
      labels: { [LABELS.managedBy]: MANAGED_BY, [CONFIG_OF_LABEL]: sourceName, [LABELS.workload]: workloadLabelValue(target.workload.name) },
      annotations: { 'glidepath.dev/release': target.releaseId },
    },
    immutable: true,
    ...(source.data ? { data: source.data } : {}),
    ...(binaryDataOf(source) ? { binaryData: binaryDataOf(source) } : {}),
    ...(kind === 'Secret' ? { type: (source as V1Secret).type ?? 'Opaque' } : {}),
  } as KubernetesObject);

  return {
    async prepareConfig(target, refs) {
      const stable = await d.getStable(target);
      const podSpec: V1PodSpec = stable.spec?.template?.spec ?? { containers: [] };
      const planned: { ref: ConfigRef; source: ConfigObject; copy: string; exists: boolean; stable: string | undefined }[] = [];
      // Every check first: nothing is applied unless every reference is good.
      for (const [i, ref] of refs.entries()) {
        const source = await find(target.namespace, ref.kind, ref.name);
        if (!source) throw invalid(`${field(i, ref)}: not found in namespace ${target.namespace}`);
        if (source.metadata?.labels?.[CONFIG_OF_LABEL]) throw invalid(`${field(i, ref)}: is a copy Glidepath made of ${source.metadata.labels[CONFIG_OF_LABEL]}; name the source instead`);
        if (usesOf(podSpec, ref).length === 0) {
          throw invalid(`${field(i, ref)}: not used by the pod template of Deployment ${target.namespace}/${target.workload.name} (volumes, envFrom or env valueFrom name neither it nor a copy of it)`);
        }
        const hash = configContentHash(target.workload.name, ref.kind, source);
        const copy = copyName(ref.name, hash);
        const existing = await find(target.namespace, ref.kind, copy);
        if (existing && !ours(target, ref.name, existing)) {
          throw invalid(`${field(i, ref)}: ${ref.kind} ${copy} exists and is not Glidepath's copy of ${ref.name} for ${target.workload.name}; rename or delete it`);
        }
        if (existing && configContentHash(target.workload.name, ref.kind, existing) !== hash) {
          throw invalid(`${field(i, ref)}: ${ref.kind} ${copy} holds other content than ${ref.name}; delete it to have it made again`);
        }
        planned.push({ ref, source, copy, exists: existing !== undefined, stable: inUse(podSpec, ref) });
      }
      for (const p of planned) {
        if (p.exists) continue;
        const body = copyObject(target, p.ref.kind, p.source, p.copy, p.ref.name);
        await k.call({ verb: 'apply', resource: resource(p.ref.kind), namespace: target.namespace, name: p.copy }, () =>
          k.objects.patch(body, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply),
        );
        const got = await find(target.namespace, p.ref.kind, p.copy);
        if (!got || !ours(target, p.ref.name, got) || configContentHash(target.workload.name, p.ref.kind, got) !== configContentHash(target.workload.name, p.ref.kind, p.source)) {
          throw ApplicationFailure.nonRetryable(`${p.ref.kind} ${target.namespace}/${p.copy} reads back differently after apply`, ErrorType.VerificationFailed);
        }
      }
      return { copies: planned.map((p) => ({ kind: p.ref.kind, name: p.ref.name, copy: p.copy, ...(p.stable !== undefined ? { stable: p.stable } : {}) })) };
    },

    async collectConfig(target, candidates) {
      const used = new Set<string>();
      for (const name of [target.workload.name, `${target.workload.name}-canary`, `${target.workload.name}-preview`]) {
        const dep = await d.findDeployment(target.namespace, name);
        const spec = dep?.spec?.template?.spec;
        if (!spec) continue;
        for (const c of candidates) for (const s of usesOf(spec, c)) used.add(`${c.kind}/${s.name}`);
      }
      const deleted: string[] = [];
      const seen = new Set<string>();
      for (const c of candidates) {
        for (const name of [c.copy, c.stable]) {
          const key = `${c.kind}/${name}`;
          if (name === undefined || name === c.name || seen.has(key) || used.has(key)) continue;
          seen.add(key);
          const obj = await find(target.namespace, c.kind, name);
          const uid = obj?.metadata?.uid;
          if (!obj || !uid || !ours(target, c.name, obj)) continue; // gone, or not a copy Glidepath made for this workload
          const site = { verb: 'delete', resource: resource(c.kind), namespace: target.namespace, name };
          const body = { preconditions: { uid } };
          try {
            await k.call(site, () =>
              c.kind === 'ConfigMap' ? k.core.deleteNamespacedConfigMap({ name, namespace: target.namespace, body }) : k.core.deleteNamespacedSecret({ name, namespace: target.namespace, body }),
            );
            deleted.push(key);
          } catch (err) {
            if (!isNotFound(err)) throw err;
          }
        }
      }
      return { deleted };
    },
  };
}

/**
 * The strategic-merge patch of a pod spec from `before` to `after` (a config rewrite): the changed
 * volumes (merged by name), and per container (merged by name) the changed env entries and, when
 * it changed, the whole envFrom list (which has no merge key). Undefined when nothing changed.
 */
export function configPatch(before: V1PodSpec, after: V1PodSpec): Partial<V1PodSpec> | undefined {
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  const out: Partial<V1PodSpec> = {};
  const volumes = (after.volumes ?? []).filter((v, i) => !same(v, before.volumes?.[i]));
  if (volumes.length) out.volumes = volumes;
  const containers = (list: V1Container[] | undefined, old: V1Container[] | undefined): V1Container[] =>
    (list ?? []).flatMap((c, i) => {
      const was = old?.[i];
      const env = (c.env ?? []).filter((e, j) => !same(e, was?.env?.[j]));
      const envFrom = same(c.envFrom, was?.envFrom) ? undefined : c.envFrom;
      if (!env.length && !envFrom) return [];
      return [{ name: c.name, ...(env.length ? { env } : {}), ...(envFrom ? { envFrom } : {}) } as V1Container];
    });
  const init = containers(after.initContainers, before.initContainers);
  if (init.length) out.initContainers = init;
  const main = containers(after.containers, before.containers);
  if (main.length) out.containers = main;
  return Object.keys(out).length ? out : undefined;
}
