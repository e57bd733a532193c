/**
 * `spec.config`: the ConfigMaps and Secrets a release carries with its image. Each is named by the
 * source object the user keeps in the release's namespace; at the start of each attempt an activity
 * copies it to an immutable `<name>-<hash>` (the hash of its content, as kustomize's generators
 * name theirs) and the canary/preview pod template points at the copy, so abort and rollback leave
 * the stable on the copy it ran before. The workflow holds only names and hashes, never values.
 * Workflow-safe: no I/O (the schema of `spec.config` is in model/config-schema.ts, edge only).
 */
export const CONFIG_KINDS = ['ConfigMap', 'Secret'] as const;
export type ConfigKind = (typeof CONFIG_KINDS)[number];

/** Most references a release may carry (a bounded list in workflow inputs). */
export const MAX_CONFIG_REFS = 16;

/** Hex digits of the content hash in a copy's name. */
export const CONFIG_HASH_LENGTH = 10;

/** A source object the release carries: its kind and name in the release's namespace. */
export interface ConfigRef {
  kind: ConfigKind;
  name: string;
}

/** A source and the content-hashed copy this attempt made of it (what pod templates are pointed at). */
export interface ConfigCopy extends ConfigRef {
  copy: string;
  /** What the stable's template used when the attempt started (the source or an older copy): where abort puts it back. */
  stable?: string | undefined;
}

/** Why `config` is refused with strategy.rolling (the stable itself becomes the new version there: nothing would keep the old config). */
export const CONFIG_WITH_ROLLING = 'not supported with strategy rolling (the canary and blueGreen strategies release config with the image)';

/** The copy of `name` whose content hashes to `hash`. */
export function copyName(name: string, hash: string): string {
  return `${name}-${hash.slice(0, CONFIG_HASH_LENGTH)}`;
}

/** Whether `candidate` is named like a copy of `name` (`<name>-<10 hex>`). */
export function isCopyName(name: string, candidate: string): boolean {
  if (!candidate.startsWith(`${name}-`)) return false;
  return new RegExp(`^[0-9a-f]{${CONFIG_HASH_LENGTH}}$`).test(candidate.slice(name.length + 1));
}

/** Whether a name a pod template uses refers to `ref`: the source itself or any copy of it. */
export function refersTo(ref: ConfigRef, used: string): boolean {
  return used === ref.name || isCopyName(ref.name, used);
}

/** `kind name` for messages. */
export const describeRef = (r: ConfigRef): string => `${r.kind} ${r.name}`;
