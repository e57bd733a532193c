/**
 * OCI image references by the grammar of distribution/reference (the one Docker, containerd and
 * BuildKit parse with):
 *
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [domain "/"] path            (at most 255 characters)
 *   domain     := host [":" port]              host: DNS labels, IPv4, or [IPv6]
 *   path       := component ("/" component)*   component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
 *   tag        := [\w][\w.-]{0,127}
 *   digest     := sha256 ":" 64 hex            (the only algorithm Glidepath pins by)
 *
 * Nothing outside that alphabet (quotes, commas, `=`, spaces, control characters) can pass, so a
 * checked reference is safe to place in a builder's CSV `--output` value or on a command line.
 * Pure and workflow-safe.
 */

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN = `(?:${DOMAIN_NAME}|${IPV6})(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const PATH = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = 'sha256:[a-f0-9]{64}';

const REFERENCE_RE = new RegExp(`^((?:${DOMAIN}/)?${PATH})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const NAME_MAX = 255;

export interface Reference {
  /** `domain/path` as written (without tag or digest). */
  name: string;
  tag?: string | undefined;
  digest?: string | undefined;
}

/** Whether `text` is a bare tag (`v1.2`, `latest`). */
export function isTag(text: string): boolean {
  return TAG_RE.test(text);
}

/** Parses a reference; returns why not (a sentence) when it does not follow the grammar. */
export function parseReference(text: string): Reference | string {
  if (typeof text !== 'string' || text.length === 0) return 'is empty';
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(text)) return 'contains control characters';
  const m = REFERENCE_RE.exec(text);
  if (!m) return 'is not an image reference ([registry[:port]/]path[:tag][@sha256:<64 hex>], lowercase path)';
  const name = m[1] as string;
  if (name.length > NAME_MAX) return `its repository name is longer than ${NAME_MAX} characters`;
  return { name, tag: m[2], digest: m[3] };
}

/** Undefined when `text` is a reference by the grammar, else the reason. */
export function referenceProblem(text: string): string | undefined {
  const r = parseReference(text);
  return typeof r === 'string' ? r : undefined;
}

/**
 * Undefined when `text` is a valid build tag: a bare tag, or a full reference without a digest (tags
 * name where to push), else the reason.
 */
export function buildTagProblem(text: string): string | undefined {
  if (isTag(text)) return undefined;
  const r = parseReference(text);
  if (typeof r === 'string') return `${r}; a build tag is a bare tag (v1.2) or registry/repo:tag`;
  if (r.digest) return 'has a digest; build tags name where to push';
  return undefined;
}
