/**
 * A Git source: one (repository, branch, path), its workflow ID and the checks on its input, shared by
 * the CLI (at the edge) and the workflow (at its start). Workflow-safe: no I/O.
 */
import { parseDuration } from '../../model/duration.ts';

/** The shortest poll interval accepted: a source is woken at once by its webhook, polling is the fallback. */
export const MIN_POLL_INTERVAL_MS = 10_000;
export const DEFAULT_POLL_INTERVAL = '1m';
export const GIT_SOURCE_WORKFLOW = 'gitSource';
/** Prefix of every Git source's workflow ID. */
export const GIT_SOURCE_ID_PREFIX = 'gitsource:';

export interface GitSourceSpec {
  /** http(s) URL of the repository, without credentials. */
  repository: string;
  branch: string;
  /** Directory in the repository holding the documents ("." for the root). */
  path: string;
  /** How often to poll, e.g. "1m"; at least {@link MIN_POLL_INTERVAL_MS}. */
  pollInterval: string;
  /** A reference to the credentials (a file or an environment variable of the worker), never the secret. */
  credentials?: { file?: string; env?: string };
  /** Start releases for the documents of the first commit seen (default: that commit is the baseline). */
  startExisting?: boolean;
  /**
   * Where a rollback is written back: `commit` (default) on the branch itself, or `branch`: a review
   * branch `glidepath/revert/<release>/<commit>` from the branch's head, for a person to merge.
   */
  revert?: RevertMode;
}

export const REVERT_MODES = ['commit', 'branch'] as const;
export type RevertMode = (typeof REVERT_MODES)[number];

/** The review branch a rollback of `releaseId` (started from `commit`) is proposed on. */
export function reviewBranchOf(releaseId: string, commit: string): string {
  return `glidepath/revert/${releaseId}/${commit.slice(0, 12)}`;
}

/** The repository URL as sources compare it: no trailing slash or `.git`. */
export function normalizeRepository(url: string): string {
  return url.replace(/\/+$/, '').replace(/\.git$/, '');
}

/** The path as stored: no leading `./` or `/`, no trailing `/`; the root is ".". */
export function normalizePath(path: string): string {
  const p = path.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
  return p === '' ? '.' : p;
}

/**
 * `gitsource:<repository>:<branch>:<path>`, each part percent-encoded (encodeURIComponent encodes ":"),
 * so the three parts are recovered unambiguously and every source of a repository and branch shares
 * the prefix {@link sourceIdPrefix}.
 */
export function gitSourceWorkflowId(s: Pick<GitSourceSpec, 'repository' | 'branch' | 'path'>): string {
  return `${sourceIdPrefix(s)}${encodeURIComponent(normalizePath(s.path))}`;
}

export function sourceIdPrefix(s: Pick<GitSourceSpec, 'repository' | 'branch'>): string {
  return `${GIT_SOURCE_ID_PREFIX}${encodeURIComponent(normalizeRepository(s.repository))}:${encodeURIComponent(s.branch)}:`;
}

// git check-ref-format's rules, as far as a branch name given by a user needs them.
const BAD_BRANCH = /(^[-/.])|([/.]$)|\.\.|\/\/|@\{|[\s~^:?*[\\]|\.lock(\/|$)/;
const hasControl = (text: string): boolean => [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

/** Every problem of a source spec, each naming its field. */
export function sourceProblems(s: GitSourceSpec): string[] {
  const problems: string[] = [];
  let url: URL | undefined;
  try {
    url = new URL(s.repository);
  } catch {
    problems.push(`repository: not a URL: ${JSON.stringify(s.repository.slice(0, 200))}`);
  }
  if (url) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') problems.push(`repository: must be an http:// or https:// URL, got ${url.protocol}`);
    if (url.username || url.password) problems.push('repository: must not hold credentials; name them with --credentials-file or --credentials-env');
    if (url.search || url.hash) problems.push('repository: must not have a query or fragment');
  }
  if (s.repository.length > 500) problems.push('repository: at most 500 characters');
  if (!s.branch || s.branch.length > 200 || BAD_BRANCH.test(s.branch) || hasControl(s.branch)) problems.push(`branch: not a valid branch name: ${JSON.stringify(s.branch.slice(0, 200))}`);
  const path = normalizePath(s.path);
  if (path.length > 300 || path.split('/').some((seg) => seg === '..' || seg === '') || hasControl(path)) problems.push(`path: must be a relative directory inside the repository without "..": ${JSON.stringify(s.path.slice(0, 300))}`);
  let interval: number | undefined;
  try {
    interval = parseDuration(s.pollInterval);
  } catch (err) {
    problems.push(`pollInterval: ${(err as Error).message}`);
  }
  if (s.revert !== undefined && !(REVERT_MODES as readonly string[]).includes(s.revert)) problems.push(`revert: must be ${REVERT_MODES.map((m) => `"${m}"`).join(' or ')}, got ${JSON.stringify(String(s.revert).slice(0, 50))}`);
  if (interval !== undefined && interval < MIN_POLL_INTERVAL_MS) problems.push(`pollInterval: at least ${MIN_POLL_INTERVAL_MS / 1000}s (a webhook wakes a source at once), got ${s.pollInterval}`);
  const c = s.credentials;
  if (c && c.file !== undefined && c.env !== undefined) problems.push('credentials: name a file or an environment variable, not both');
  if (c?.env !== undefined && !/^GLIDEPATH_GIT_[A-Za-z0-9_]+$/.test(c.env)) problems.push('credentials.env: must name an environment variable GLIDEPATH_GIT_* of the worker');
  if (c?.file !== undefined && (c.file === '' || c.file.length > 500)) problems.push('credentials.file: a file path (at most 500 characters)');
  return problems;
}
