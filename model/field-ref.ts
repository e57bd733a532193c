/**
 * Analysis args `valueFrom.fieldRef`, resolved as Argo Rollouts resolves them: against the Rollout
 * (or Release) document. A `metadata…` path follows Kubernetes' downward-API field paths
 * (`metadata.name`, `metadata.namespace`, `metadata.labels['k']`, `metadata.annotations['k']`, and the
 * whole `metadata.labels` / `metadata.annotations` as `k="v"` lines); any other path walks the
 * document (`spec.template.spec.containers[0].image`) and must end at a scalar. Resolved when the
 * spec is read, so the plan carries the value. Workflow-safe (no I/O).
 */

/** The value, or why the path cannot be resolved. */
export type FieldRefResult = { value: string } | { problem: string };

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Kubernetes' FormatMap: sorted `key="value"` lines (the value quoted as Go's %q would). */
function formatMap(m: Record<string, unknown>): string {
  return Object.keys(m)
    .sort()
    .map((k) => `${k}=${JSON.stringify(String(m[k]))}`)
    .join('\n');
}

function metadataField(doc: Record<string, unknown>, namespace: string, path: string): FieldRefResult {
  const metadata = isRecord(doc.metadata) ? doc.metadata : {};
  const subscript = /^metadata\.(labels|annotations)\['([^']*)'\]$/.exec(path);
  if (subscript) {
    const map = metadata[subscript[1] as string];
    const value = isRecord(map) ? map[subscript[2] as string] : undefined;
    return { value: value === undefined ? '' : String(value) };
  }
  switch (path) {
    case 'metadata.name':
      return { value: String(metadata.name ?? '') };
    case 'metadata.namespace':
      return { value: namespace };
    case 'metadata.labels':
    case 'metadata.annotations': {
      const map = metadata[path.slice('metadata.'.length)];
      return { value: isRecord(map) ? formatMap(map) : '' };
    }
    case 'metadata.uid':
      return { problem: 'metadata.uid is assigned by the apiserver to Argo\'s Rollout object, which a Glidepath release does not create (not supported: fieldRef metadata.uid)' };
    default:
      return { problem: `unsupported fieldPath "${path}": Kubernetes supports metadata.name, metadata.namespace, metadata.labels, metadata.annotations, metadata.labels['KEY'], metadata.annotations['KEY']` };
  }
}

/** Argo's walk over the document for a path outside metadata: `.` and `[i]` separators, ending at a scalar. */
function documentField(doc: unknown, path: string): FieldRefResult {
  let at: unknown = doc;
  for (const section of path.split(/[.[\]]+/)) {
    if (section === '') continue;
    if (Array.isArray(at)) {
      if (!/^\d+$/.test(section)) return { problem: `invalid index "${section}" in fieldPath "${path}"` };
      const i = Number(section);
      if (i >= at.length) return { problem: `index ${i} out of range in fieldPath "${path}"` };
      at = at[i];
    } else if (isRecord(at)) {
      at = Object.hasOwn(at, section) ? at[section] : undefined;
    } else {
      return { problem: `fieldPath "${path}" is not in the document` };
    }
  }
  if (at === undefined || at === null) return { problem: `fieldPath "${path}" is not in the document` };
  if (typeof at === 'object') return { problem: `fieldPath "${path}" must end at a value, not a ${Array.isArray(at) ? 'list' : 'mapping'}` };
  return { value: String(at) };
}

/** Resolves `fieldPath` against `doc`, whose namespace is `namespace` (the release's, defaulted). */
export function resolveFieldRef(doc: unknown, namespace: string, fieldPath: string): FieldRefResult {
  if (fieldPath.startsWith('metadata')) return metadataField(isRecord(doc) ? doc : {}, namespace, fieldPath);
  return documentField(doc, fieldPath);
}
