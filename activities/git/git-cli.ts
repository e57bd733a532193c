/**
 * The git CLI for the Git source's activities: one bare cache repository per source, fetched over
 * HTTP(S). Credentials come from a reference (a file holding `user:password` or a token, or an
 * environment variable naming one), never from the workflow input, and reach git as an
 * `http.extraHeader` in its environment: not in argv, a URL, or error text. Errors are classified:
 * authentication refused is permanent for this attempt (`GitAuthFailed`), a repository or branch that
 * is not there is `GitNotFound`, anything else (connection refused, timeouts, 5xx) is transient.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';

export const GIT_BIN_ENV = 'GIT_BIN';
export const GIT_CACHE_ENV = 'GLIDEPATH_GIT_CACHE';
/** The longest a single git command may run. */
const GIT_TIMEOUT_MS = 60_000;
/** The most output read from one git command. */
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

export const GitErrorType = {
  AuthFailed: 'GitAuthFailed',
  NotFound: 'GitNotFound',
  InvalidSource: 'GitInvalidSource',
} as const;

/** Where a source's credentials are read from (a reference: the secret itself never enters history). */
export interface CredentialsRef {
  /** A file holding `user:password`, or a bare token (sent as `x-access-token:<token>`, as forges take it). */
  file?: string;
  /** An environment variable of the worker holding the same. */
  env?: string;
}

export interface GitSourceRef {
  repository: string;
  branch: string;
  path: string;
  credentials?: CredentialsRef;
}

/** The directory credentials files must be in (the worker's setting); none: files are refused. */
export const CREDENTIALS_DIR_ENV = 'GLIDEPATH_GIT_CREDENTIALS_DIR';
/** Credentials variables must start with this: a source cannot send any other variable of the worker. */
export const CREDENTIALS_ENV_PREFIX = 'GLIDEPATH_GIT_';

/**
 * The file a credentials reference may read: inside the worker's credentials directory, symbolic
 * links resolved. Whoever starts a source names the file, and its content is sent to the source's
 * URL, so any other file of the worker is refused.
 */
function credentialsFile(file: string): string {
  const dir = process.env[CREDENTIALS_DIR_ENV];
  const refuse = (why: string) => ApplicationFailure.nonRetryable(`credentials file ${file}: ${why}`, GitErrorType.AuthFailed);
  if (!dir) throw refuse(`credentials files are refused unless the worker sets ${CREDENTIALS_DIR_ENV}`);
  let real: string;
  let base: string;
  try {
    base = realpathSync(dir);
    real = realpathSync(isAbsolute(file) ? file : join(base, file));
  } catch (err) {
    throw refuse(`cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const rel = relative(base, real);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw refuse(`not inside ${CREDENTIALS_DIR_ENV} (${dir})`);
  return real;
}

function authHeader(ref: CredentialsRef | undefined): string | undefined {
  if (!ref) return undefined;
  let text: string | undefined;
  if (ref.file) {
    const file = credentialsFile(ref.file);
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw ApplicationFailure.nonRetryable(`credentials file ${ref.file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, GitErrorType.AuthFailed);
    }
  } else if (ref.env) {
    if (!ref.env.startsWith(CREDENTIALS_ENV_PREFIX)) throw ApplicationFailure.nonRetryable(`credentials variable ${ref.env}: only variables named ${CREDENTIALS_ENV_PREFIX}* are read`, GitErrorType.AuthFailed);
    text = process.env[ref.env];
    if (text === undefined) throw ApplicationFailure.nonRetryable(`credentials variable ${ref.env} is not set on this worker`, GitErrorType.AuthFailed);
  }
  const value = text?.trim();
  if (!value) return undefined;
  const pair = value.includes(':') ? value : `x-access-token:${value}`;
  return `Authorization: Basic ${Buffer.from(pair).toString('base64')}`;
}

/** The bare cache repository of one source (created on first use). */
export function cacheDir(sourceId: string): string {
  const base = process.env[GIT_CACHE_ENV] ?? join(tmpdir(), 'glidepath-git-cache');
  const dir = join(base, createHash('sha256').update(sourceId).digest('hex').slice(0, 24));
  return dir;
}

export interface GitRun {
  (args: readonly string[], opts?: { input?: string; allowExit?: number[]; env?: Record<string, string> }): Promise<{ stdout: string; stderr: string; code: number }>;
}

/** A git runner for one cache dir with the source's credentials. */
export function gitIn(dir: string, credentials?: CredentialsRef): GitRun {
  const header = authHeader(credentials);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '/bin/false',
    GIT_CONFIG_NOSYSTEM: '1',
    ...(header ? { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'http.extraHeader', GIT_CONFIG_VALUE_0: header } : {}),
  };
  const bin = process.env[GIT_BIN_ENV] ?? 'git';
  return (args, opts = {}) =>
    new Promise((resolve, reject) => {
      const child = execFile(bin, ['-c', 'gc.auto=0', '-c', 'protocol.allow=never', '-c', 'protocol.http.allow=always', '-c', 'protocol.https.allow=always', ...args], { cwd: dir, env: { ...env, ...opts.env }, timeout: GIT_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
        if (!err || opts.allowExit?.includes(code)) resolve({ stdout, stderr: String(stderr), code });
        else reject(classify(String(stderr), (err as { killed?: boolean }).killed === true));
      });
      // A command that exits without reading its input closes the pipe: that is its answer, not an error.
      child.stdin?.on('error', () => {});
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      else child.stdin?.end();
    });
}

/** A git failure as a retryable error or a named non-retryable one; the text is git's first lines (no credentials are in it). */
export function classify(stderr: string, timedOut: boolean): Error {
  const text = stderr.split('\n').filter((l) => l.trim() !== '').slice(0, 3).join(' | ').slice(0, 500);
  if (timedOut) return new Error(`git timed out after ${GIT_TIMEOUT_MS / 1000}s`);
  if (/Authentication failed|could not read Username|HTTP 401|HTTP 403|returned error: 40[13]/i.test(text)) {
    return ApplicationFailure.nonRetryable(`authentication refused: ${text}`, GitErrorType.AuthFailed);
  }
  if (/returned error: 404|not found|couldn't find remote ref|does not appear to be a git repository/i.test(text)) {
    return ApplicationFailure.nonRetryable(`not found: ${text}`, GitErrorType.NotFound);
  }
  return new Error(`git failed: ${text || 'no output'}`);
}

/** The cache repository of a source, initialised when missing. */
export async function openCache(sourceId: string, credentials?: CredentialsRef): Promise<GitRun> {
  const dir = cacheDir(sourceId);
  if (!existsSync(join(dir, 'HEAD'))) {
    mkdirSync(dir, { recursive: true });
    await gitIn(dir)(['init', '--quiet', '--bare']);
  }
  return gitIn(dir, credentials);
}
