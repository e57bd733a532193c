/**
 * Where a pod template names a ConfigMap or Secret, and the rewrite that points those places at a
 * release's copies (model/config.ts). The places: volumes (configMap, secret, projected sources)
 * and, in every container and init container, envFrom and env valueFrom. Pure, workflow-safe.
 */
import { refersTo, type ConfigCopy, type ConfigKind, type ConfigRef } from './config.ts';

interface NameRef {
  name?: string | undefined;
}
interface ContainerLike {
  envFrom?: { configMapRef?: NameRef | undefined; secretRef?: NameRef | undefined }[] | undefined;
  env?: { valueFrom?: { configMapKeyRef?: NameRef | undefined; secretKeyRef?: NameRef | undefined } | undefined }[] | undefined;
}
/** The parts of a Kubernetes pod spec that name ConfigMaps and Secrets (a PodSpecLike is one). */
export interface PodSpecLike {
  volumes?: { configMap?: NameRef | undefined; secret?: { secretName?: string | undefined } | undefined; projected?: { sources?: { configMap?: NameRef | undefined; secret?: NameRef | undefined }[] | undefined } | undefined }[] | undefined;
  initContainers?: ContainerLike[] | undefined;
  containers?: ContainerLike[] | undefined;
}

/** One place in a pod spec that names a ConfigMap or Secret. */
export interface ConfigSite {
  kind: ConfigKind;
  /** The name used there now. */
  name: string;
  /** Where, as a dotted path under the pod spec (for messages). */
  path: string;
  set(name: string): void;
}

/** Every place in `spec` that names a ConfigMap or Secret (the setters write into `spec`). */
export function configSites(spec: PodSpecLike): ConfigSite[] {
  const out: ConfigSite[] = [];
  const add = (kind: ConfigKind, holder: Record<string, unknown> | undefined, field: string, path: string): void => {
    const name = holder?.[field];
    if (holder && typeof name === 'string') out.push({ kind, name, path, set: (n) => void (holder[field] = n) });
  };
  (spec.volumes ?? []).forEach((v, i) => {
    add('ConfigMap', v.configMap as Record<string, unknown> | undefined, 'name', `volumes[${i}].configMap.name`);
    add('Secret', v.secret as Record<string, unknown> | undefined, 'secretName', `volumes[${i}].secret.secretName`);
    (v.projected?.sources ?? []).forEach((s, j) => {
      add('ConfigMap', s.configMap as Record<string, unknown> | undefined, 'name', `volumes[${i}].projected.sources[${j}].configMap.name`);
      add('Secret', s.secret as Record<string, unknown> | undefined, 'name', `volumes[${i}].projected.sources[${j}].secret.name`);
    });
  });
  for (const [list, containers] of [['initContainers', spec.initContainers ?? []], ['containers', spec.containers ?? []]] as const) {
    containers.forEach((c, i) => {
      const at = `${list}[${i}]`;
      (c.envFrom ?? []).forEach((e, j) => {
        add('ConfigMap', e.configMapRef as Record<string, unknown> | undefined, 'name', `${at}.envFrom[${j}].configMapRef.name`);
        add('Secret', e.secretRef as Record<string, unknown> | undefined, 'name', `${at}.envFrom[${j}].secretRef.name`);
      });
      (c.env ?? []).forEach((e, j) => {
        add('ConfigMap', e.valueFrom?.configMapKeyRef as Record<string, unknown> | undefined, 'name', `${at}.env[${j}].valueFrom.configMapKeyRef.name`);
        add('Secret', e.valueFrom?.secretKeyRef as Record<string, unknown> | undefined, 'name', `${at}.env[${j}].valueFrom.secretKeyRef.name`);
      });
    });
  }
  return out;
}

/** The places in `spec` that use `ref` (its source name or any copy of it). */
export function usesOf(spec: PodSpecLike, ref: ConfigRef): ConfigSite[] {
  return configSites(spec).filter((s) => s.kind === ref.kind && refersTo(ref, s.name));
}

/** A copy of `spec` with every use of a source (or of an older copy of it) pointed at the copy in `copies`. */
export function rewriteConfigRefs<T extends PodSpecLike>(spec: T, copies: readonly ConfigCopy[]): T {
  const out = structuredClone(spec);
  for (const site of configSites(out)) {
    const copy = copies.find((c) => c.kind === site.kind && refersTo(c, site.name));
    if (copy) site.set(copy.copy);
  }
  return out;
}

/** What `ref` is used as in `spec` now (the first use's name), or undefined when unused. */
export function inUse(spec: PodSpecLike, ref: ConfigRef): string | undefined {
  return usesOf(spec, ref)[0]?.name;
}

/**
 * The rewrite that puts a stable back on what it used when the attempt started, when it now points
 * at this attempt's copies (a promotion changed it); undefined when there is nothing to put back.
 */
export function configBack(spec: PodSpecLike, copies: readonly ConfigCopy[] | undefined): ConfigCopy[] | undefined {
  const moved = (copies ?? []).filter((c) => c.stable !== undefined && c.stable !== c.copy);
  if (moved.length === 0 || !moved.some((c) => usesOf(spec, c).some((s) => s.name === c.copy))) return undefined;
  return moved.map((c) => ({ kind: c.kind, name: c.name, copy: c.stable as string }));
}

/** Whether every use of each copy's source in `spec` is that copy. */
export function pointsAt(spec: PodSpecLike, copies: readonly ConfigCopy[]): boolean {
  return copies.every((c) => usesOf(spec, c).every((s) => s.name === c.copy));
}
