/**
 * `release start --apply-others`: the Kubernetes objects a release file holds besides Glidepath's
 * documents (Services, Ingress, VirtualService, Secret …) are applied by server-side apply before
 * the release starts, so `glidepath release start -f app.yaml` can replace `kubectl apply -f app.yaml`.
 * Every object is first applied as a dry run, so a file with one bad object changes nothing. The
 * Deployment a Rollout's workloadRef names is never applied: the release changes it.
 */
import { KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { describeOther, type OtherDocument } from '../model/documents.ts';

/**
 * Field manager of the objects the CLI applies. Not the workflow's manager (`glidepath`): the workflow
 * applies partial objects (a Service's selector), which must not take ownership of the user's fields.
 */
export const APPLY_FIELD_MANAGER = 'glidepath-cli';

/** The object as applied: its namespace is the release's when the file gives none (namespaced kinds). */
function body(o: OtherDocument, namespace: string, namespaced: boolean): KubernetesObject {
  const metadata = { ...(o.doc.metadata as Record<string, unknown>) };
  if (namespaced && metadata.namespace === undefined) metadata.namespace = namespace;
  return { ...o.doc, metadata } as KubernetesObject;
}

/** The status message of a failed API call, without the object's content (a Secret's data stays out). */
function reason(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  let message = e.message ?? String(err);
  try {
    const parsed = typeof e.body === 'string' ? (JSON.parse(e.body) as { message?: string }) : (e.body as { message?: string } | undefined);
    if (parsed?.message) message = parsed.message;
  } catch {
    // the body is not JSON: keep the error's message
  }
  return `${e.code ? `HTTP ${e.code}: ` : ''}${message.replace(/\s+/g, ' ').trim().slice(0, 500)}`;
}

/** The object API, also telling whether a kind is namespaced (from the apiserver's discovery). */
class ObjectApi extends KubernetesObjectApi {
  async namespaced(apiVersion: string, kind: string): Promise<boolean> {
    const resource = await this.resource(apiVersion, kind);
    if (!resource) throw Object.assign(new Error(`no ${apiVersion} ${kind}`), { code: 404 });
    return resource.namespaced;
  }
}

export interface Applied {
  object: string;
  result: 'applied';
}

/**
 * Applies `others` with server-side apply (dry run of all first, then for real, in file order).
 * Throws an Error naming the object and the apiserver's reason; before the real pass, nothing changed.
 */
export async function applyOthers(others: readonly OtherDocument[], namespace: string, kc: KubeConfig = defaultKubeConfig()): Promise<Applied[]> {
  const api = kc.makeApiClient(ObjectApi);
  const bodies: { o: OtherDocument; body: KubernetesObject }[] = [];
  for (const o of others) {
    let namespaced: boolean;
    try {
      namespaced = await api.namespaced(o.apiVersion, o.kind);
    } catch (err) {
      const missing = (err as { code?: number }).code === 404 || !('code' in (err as object));
      const why = missing ? `the cluster does not serve ${o.apiVersion} ${o.kind} (is its CRD installed?)` : reason(err);
      throw new Error(`--apply-others: ${describeOther(o)}: ${why}; nothing was applied`, { cause: err });
    }
    bodies.push({ o, body: body(o, namespace, namespaced) });
  }
  for (const { o, body: b } of bodies) {
    try {
      await api.patch(b, undefined, 'All', APPLY_FIELD_MANAGER, false, PatchStrategy.ServerSideApply);
    } catch (err) {
      throw new Error(`--apply-others: ${describeOther(o)} is refused by the apiserver (dry run): ${reason(err)}; nothing was applied`, { cause: err });
    }
  }
  const applied: Applied[] = [];
  for (const { o, body: b } of bodies) {
    try {
      await api.patch(b, undefined, undefined, APPLY_FIELD_MANAGER, false, PatchStrategy.ServerSideApply);
    } catch (err) {
      const done = applied.length > 0 ? `; applied before it: ${applied.map((a) => a.object).join(', ')}` : '; nothing was applied';
      throw new Error(`--apply-others: ${describeOther(o)}: ${reason(err)}${done}`, { cause: err });
    }
    applied.push({ object: describeOther(o), result: 'applied' });
  }
  return applied;
}

function defaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}
