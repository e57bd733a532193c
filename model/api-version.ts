/**
 * The `ApiVersion` document (`glidepath.dev/v1alpha1`): one version of an HTTP API served side by
 * side with the others behind one host, each version its own Deployment and Service and its own
 * path route (`/v2`). Either a new version (Glidepath creates `<api>-<version>` from an existing
 * version's pod template) or an existing one registered as it is (`existing`), so that it can be
 * retired later. Strict like every Glidepath schema: an unknown field is reported by name.
 * Workflow-safe (no I/O); described in docs/api-versioning.md.
 */
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { DNS1123, dns1123, imageRef } from './fields.ts';
import { referenceProblem } from './reference.ts';
import { formatProblem, pathOf, SpecError, type SourceDoc, type SpecProblem } from './normalize.ts';
import { RELEASE_API_VERSION } from './schema.ts';

z.config({ jitless: true });

export const API_VERSION_KIND = 'ApiVersion';


/** A path prefix such as `/v2`: starts with `/`, no trailing `/`, not `/` alone, no query or fragment. */
export const PATH_PREFIX = /^(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/;


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

/** The router block of a version: an HTTPRoute rule, or an Ingress object of its own. */
export type VersionRoute =
  | { kind: 'httpRoute'; pathPrefix: string; name: string; namespace: string }
  | { kind: 'ingress'; pathPrefix: string; name: string; host?: string | undefined; className?: string | undefined };

/** A validated `ApiVersion` with defaults applied: what the workflow and its activities receive. */
export interface ApiVersionPlan {
  namespace: string;
  api: string;
  version: string;
  /** `new`: Glidepath creates Deployment and Service `<api>-<version>`; `existing`: registered as it runs. */
  source: 'new' | 'existing';
  deployment: string;
  service: string;
  image?: string | undefined;
  templateFrom?: { deployment: string; container?: string | undefined } | undefined;
  replicas?: number | undefined;
  /** Service port (default 80) and target port (default: the container's first port, else the port). */
  port: number;
  targetPort?: number | string | undefined;
  route: VersionRoute;
  approvers: string[];
  deprecationLink?: string | undefined;
  progressDeadlineSeconds: number;
}

export const API_VERSION_DEFAULTS = { namespace: 'default', replicas: 1, port: 80, progressDeadlineSeconds: 600 } as const;

/** `api-<namespace>-<api>`: one long-lived workflow per API. */
export function apiWorkflowId(p: { namespace: string; api: string }): string {
  return `api-${p.namespace}-${p.api}`;
}

/** `namespace/api`, the value of the GlidepathService search attribute. */
export function apiKey(p: { namespace: string; api: string }): string {
  return `${p.namespace}/${p.api}`;
}

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

/**
 * What is wrong with a plan that reached the workflow (any client can send one): the workflow
 * validates again rather than trusting the CLI. Empty when the plan is sound.
 */
export function apiVersionPlanProblems(plan: ApiVersionPlan): string[] {
  const out: string[] = [];
  if (plan === null || typeof plan !== 'object') return ['plan: must be an object'];
  for (const f of ['namespace', 'api', 'version', 'deployment', 'service'] as const) {
    if (typeof plan[f] !== 'string' || !DNS1123.test(plan[f]) || plan[f].length > 63) out.push(`${f}: must be a DNS-1123 label`);
  }
  if (plan.source !== 'new' && plan.source !== 'existing') out.push('source: must be new or existing');
  if (plan.source === 'new') {
    // A plain function, not the `imageRef` schema: this runs in the workflow, where the worker shares the
    // model modules frozen (workers/bundle.ts) and a frozen zod schema cannot define its lazy `safeParse`.
    if (typeof plan.image !== 'string' || referenceProblem(plan.image) !== undefined) out.push('image: must be an image reference');
    if (!plan.templateFrom || !DNS1123.test(plan.templateFrom.deployment ?? '')) out.push('templateFrom.deployment: required for a new version');
    if (!Number.isInteger(plan.replicas) || (plan.replicas ?? 0) < 1) out.push('replicas: must be a whole number ≥ 1');
    if (plan.deployment !== `${plan.api}-${plan.version}` || plan.service !== plan.deployment) out.push(`deployment and service of a new version are named ${plan.api}-${plan.version}`);
  }
  if (!Number.isInteger(plan.port) || plan.port < 1 || plan.port > 65535) out.push('port: must be 1-65535');
  const r = plan.route as VersionRoute | undefined;
  if (!r || (r.kind !== 'httpRoute' && r.kind !== 'ingress')) out.push('route: must be an httpRoute or an ingress');
  else {
    if (typeof r.pathPrefix !== 'string' || !PATH_PREFIX.test(r.pathPrefix)) out.push('route.pathPrefix: must be a path prefix such as /v2');
    if (typeof r.name !== 'string' || !DNS1123.test(r.name)) out.push('route.name: must be a DNS-1123 label');
    if (r.kind === 'httpRoute' && (typeof r.namespace !== 'string' || !DNS1123.test(r.namespace))) out.push('route.namespace: must be a DNS-1123 label');
  }
  if (!Array.isArray(plan.approvers) || plan.approvers.some((a) => typeof a !== 'string' || a === '')) out.push('approvers: must be a list of names');
  if (!Number.isInteger(plan.progressDeadlineSeconds) || plan.progressDeadlineSeconds < 1) out.push('progressDeadlineSeconds: must be a whole number ≥ 1');
  return out;
}

/** The sunset instant from `--sunset`: an RFC 3339 date-time (or date, midnight UTC), or a duration from `now`. */
export function parseSunset(text: string, now: number): number {
  const t = text.trim();
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) return Date.parse(`${t}T00:00:00Z`);
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(t)) {
    const at = Date.parse(t);
    if (Number.isNaN(at)) throw new Error(`"${text}" is not a valid date-time`);
    return at;
  }
  try {
    return now + parseDuration(t);
  } catch {
    throw new Error(`"${text}" is neither an RFC 3339 date-time (2026-12-31T00:00:00Z, 2026-12-31) nor a duration (21d, 72h)`);
  }
}

/** RFC 8594 HTTP-date: `Sun, 13 Dec 2026 00:00:00 GMT`. */
export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/** The response headers a deprecated version carries: RFC 9745 Deprecation, RFC 8594 Sunset, and a deprecation Link. */
export function deprecationHeaders(deprecatedAtMs: number, sunsetMs: number, link: string | undefined): Record<string, string> {
  return {
    Deprecation: `@${Math.floor(deprecatedAtMs / 1000)}`,
    Sunset: httpDate(sunsetMs),
    ...(link ? { Link: `<${link}>; rel="deprecation"; type="text/html"` } : {}),
  };
}

export { formatProblem, SpecError };
