/**
 * The `ApiVersion` document (`glidepath.dev/v1alpha1`): one version of an HTTP API served side by
 * side with the others behind one host, each version its own Deployment and Service and its own
 * path route (`/v2`). Either a new version (Glidepath creates `<api>-<version>` from an existing
 * version's pod template) or an existing one registered as it is (`existing`), so that it can be
 * retired later. Strict like every Glidepath schema: an unknown field is reported by name.
 * No I/O; described in docs/api-versioning.md. The plan the workflow receives, its check and its
 * headers are in model/api-version-plan.ts (zod-free: the workflow imports that file, never this one).
 */
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { dns1123, imageRef } from './fields.ts';
import { API_VERSION_DEFAULTS, API_VERSION_KIND, PATH_PREFIX, type ApiVersionPlan, type VersionRoute } from './api-version-plan.ts';
import { formatProblem, pathOf, SpecError, type SourceDoc, type SpecProblem } from './normalize.ts';
import { RELEASE_API_VERSION } from './schema.ts';

z.config({ jitless: true });

export * from './api-version-plan.ts';

const port = z.number().int().min(1).max(65535);

const route = z
  .strictObject({
    pathPrefix: z.string().max(1024).regex(PATH_PREFIX, 'must be a path prefix such as /v2 (starts with "/", not "/" alone, no trailing "/")'),
    httpRoute: z.strictObject({ name: dns1123, namespace: dns1123.optional() }).optional(),
    ingress: z.strictObject({ name: dns1123, host: z.string().min(1).max(253).optional(), className: z.string().min(1).optional() }).optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.httpRoute === undefined) === (v.ingress === undefined)) ctx.addIssue({ code: 'custom', message: 'set exactly one of httpRoute and ingress' });
  });

const apiVersionSpec = z
  .strictObject({
    api: dns1123,
    version: dns1123,
    image: imageRef.optional(),
    templateFrom: z.strictObject({ deployment: dns1123, container: z.string().min(1).optional() }).optional(),
    replicas: z.number().int().min(1).optional(),
    service: z.strictObject({ port: port.optional(), targetPort: z.union([port, z.string().min(1).max(15)]).optional() }).optional(),
    existing: z.strictObject({ deployment: dns1123, service: dns1123 }).optional(),
    route,
    retirement: z
      .strictObject({
        approvers: z.array(z.string().min(1)).optional(),
        deprecationLink: z.string().url('must be a URL such as https://example.com/docs/v1-deprecation').optional(),
      })
      .optional(),
    progressDeadline: z.union([z.string(), z.number()]).superRefine((v, ctx) => {
      try {
        parseDuration(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }).optional(),
  })
  .superRefine((v, ctx) => {
    if (v.existing) {
      for (const f of ['image', 'templateFrom', 'replicas', 'service'] as const) {
        if (v[f] !== undefined) ctx.addIssue({ code: 'custom', path: [f], message: 'not with existing (an existing version is registered as it runs)' });
      }
    } else {
      if (v.image === undefined) ctx.addIssue({ code: 'custom', path: ['image'], message: 'required for a new version (or register a running one with existing)' });
      if (v.templateFrom === undefined) ctx.addIssue({ code: 'custom', path: ['templateFrom'], message: 'required for a new version: {deployment: <an existing version\'s Deployment>}' });
      if (`${v.api}-${v.version}`.length > 63) ctx.addIssue({ code: 'custom', path: ['version'], message: `"${v.api}-${v.version}" (the Deployment and Service name) is longer than 63 characters` });
    }
  });

export const apiVersionDoc = z.strictObject({
  apiVersion: z.literal(RELEASE_API_VERSION),
  kind: z.literal(API_VERSION_KIND),
  metadata: z.strictObject({
    name: dns1123,
    namespace: dns1123.optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: apiVersionSpec,
});

function zodProblems(source: string, error: z.ZodError): SpecProblem[] {
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ source, path: pathOf([...issue.path, key]), message: 'unsupported field (remove it or see docs/api-versioning.md)' }))
      : [{ source, path: pathOf(issue.path), message: issue.message }],
  );
}

/** Validates one `ApiVersion` document; returns the plan or the problems (each naming its field). */
export function parseApiVersion(source: string, doc: unknown): { plan?: ApiVersionPlan; problems: SpecProblem[] } {
  const parsed = apiVersionDoc.safeParse(doc);
  if (!parsed.success) return { problems: zodProblems(source, parsed.error) };
  const { metadata, spec } = parsed.data;
  const namespace = metadata.namespace ?? API_VERSION_DEFAULTS.namespace;
  const r = spec.route;
  const routeOut: VersionRoute = r.httpRoute
    ? { kind: 'httpRoute', pathPrefix: r.pathPrefix, name: r.httpRoute.name, namespace: r.httpRoute.namespace ?? namespace }
    : { kind: 'ingress', pathPrefix: r.pathPrefix, name: r.ingress?.name ?? '', ...(r.ingress?.host ? { host: r.ingress.host } : {}), ...(r.ingress?.className ? { className: r.ingress.className } : {}) };
  const name = `${spec.api}-${spec.version}`;
  const plan: ApiVersionPlan = {
    namespace,
    api: spec.api,
    version: spec.version,
    source: spec.existing ? 'existing' : 'new',
    deployment: spec.existing?.deployment ?? name,
    service: spec.existing?.service ?? name,
    ...(spec.image ? { image: spec.image } : {}),
    ...(spec.templateFrom ? { templateFrom: { deployment: spec.templateFrom.deployment, ...(spec.templateFrom.container ? { container: spec.templateFrom.container } : {}) } } : {}),
    ...(spec.existing ? {} : { replicas: spec.replicas ?? API_VERSION_DEFAULTS.replicas }),
    port: spec.service?.port ?? API_VERSION_DEFAULTS.port,
    ...(spec.service?.targetPort !== undefined ? { targetPort: spec.service.targetPort } : {}),
    route: routeOut,
    approvers: spec.retirement?.approvers ?? [],
    ...(spec.retirement?.deprecationLink ? { deprecationLink: spec.retirement.deprecationLink } : {}),
    progressDeadlineSeconds: spec.progressDeadline === undefined ? API_VERSION_DEFAULTS.progressDeadlineSeconds : Math.ceil(parseDuration(spec.progressDeadline) / 1000),
  };
  return { plan, problems: [] };
}

/** Exactly one `ApiVersion` among the documents; throws {@link SpecError} listing every problem. */
export function loadApiVersion(docs: readonly SourceDoc[]): ApiVersionPlan {
  const found = docs.filter((d) => d.doc !== null && d.doc !== undefined);
  const mains = found.filter((d) => (d.doc as { kind?: unknown }).kind === API_VERSION_KIND);
  const problems: SpecProblem[] = [];
  for (const d of found) {
    if ((d.doc as { kind?: unknown }).kind !== API_VERSION_KIND) problems.push({ source: d.source, path: 'kind', message: `expected ${API_VERSION_KIND} (${RELEASE_API_VERSION})` });
  }
  if (mains.length !== 1) problems.push({ source: docs.map((d) => d.source).join(',') || '(no file)', path: '', message: `expected exactly one ApiVersion document, found ${mains.length}` });
  if (problems.length > 0) throw new SpecError(problems);
  const main = mains[0] as SourceDoc;
  const { plan, problems: p } = parseApiVersion(main.source, main.doc);
  if (!plan) throw new SpecError(p);
  return plan;
}

export { formatProblem, SpecError };
