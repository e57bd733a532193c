/**
 * An `ApiVersion` plan as the workflow receives it (model/api-version.ts parses the document into
 * it): its workflow ID and search attribute, the workflow's own check of a plan any client may send,
 * and the deprecation headers. Workflow-safe: plain functions, no zod.
 */
import { parseDuration } from './duration.ts';
import { DNS1123 } from './names.ts';
import { referenceProblem } from './reference.ts';

export const API_VERSION_KIND = 'ApiVersion';

/** A path prefix such as `/v2`: starts with `/`, no trailing `/`, not `/` alone, no query or fragment. */
export const PATH_PREFIX = /^(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/;

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
