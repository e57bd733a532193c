/**
 * The CLI side of proven identity: with `$GLIDEPATH_IDENTITY_URL` (or `--identity-url`) and a
 * Kubernetes token (`--token-file`, else `$GLIDEPATH_TOKEN_FILE`), `release approve|promote|abort|retry`
 * and `api approve-retirement|abort-retirement` ask the identity server (starters/identity-server.ts)
 * for an assertion bound to this action on this release (or API version), and send it as the update
 * payload's `proof`. The token goes only to the identity
 * server, never into the payload.
 */
import { readFileSync } from 'node:fs';
import type { IdentityAction } from '../model/identity.ts';
import type { ApiStatus } from '../workflows/api-version-messages.ts';
import type { ReleaseStatus } from '../workflows/messages.ts';

export const IDENTITY_URL_ENV = 'GLIDEPATH_IDENTITY_URL';
export const TOKEN_FILE_ENV = 'GLIDEPATH_TOKEN_FILE';
const REQUEST_TIMEOUT_MS = 15_000;

export interface IdentityFlags {
  identityUrl?: string | undefined;
  tokenFile?: string | undefined;
}

/** Where to ask and with which token, or undefined when no identity server is configured. Throws naming the flag. */
export function identitySource(flags: IdentityFlags, env: NodeJS.ProcessEnv = process.env): { url: URL; token: string } | undefined {
  const url = flags.identityUrl ?? env[IDENTITY_URL_ENV];
  const tokenFile = flags.tokenFile ?? env[TOKEN_FILE_ENV];
  if (!url) {
    if (flags.tokenFile) throw new Error(`--token-file needs the identity server: --identity-url or $${IDENTITY_URL_ENV}`);
    return undefined;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`--identity-url / $${IDENTITY_URL_ENV}: not a URL: ${url}`);
  }
  if (parsed.protocol !== 'https:' && !['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname)) {
    throw new Error(`--identity-url / $${IDENTITY_URL_ENV}: ${parsed.origin} is not https; the token would travel in clear`);
  }
  if (!tokenFile) throw new Error(`a Kubernetes token is needed for ${parsed.origin}: --token-file or $${TOKEN_FILE_ENV} (e.g. kubectl create token NAME --audience glidepath-identity)`);
  let token: string;
  try {
    token = readFileSync(tokenFile, 'utf8').trim();
  } catch (err) {
    throw new Error(`--token-file ${tokenFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  if (!token || /\s/.test(token)) throw new Error(`--token-file ${tokenFile}: expected one token`);
  return { url: parsed, token };
}

/** What the assertion must bind, from the release's status: its namespace, the pending approval step, the attempt. */
export function actionTarget(action: IdentityAction, status: Pick<ReleaseStatus, 'releaseId' | 'service' | 'approvals' | 'attempt'>): ActionTarget {
  const namespace = status.service.split('/')[0] ?? '';
  return { action, releaseId: status.releaseId, namespace, ...(action === 'approve' && status.approvals ? { step: status.approvals.step } : {}), attempt: status.attempt };
}

/** What an API version's retirement action binds: the API workflow, its namespace, the version. */
export function retirementTarget(action: 'approve-retirement' | 'abort-retirement', api: Pick<ApiStatus, 'workflowId' | 'namespace'>, version: string): ActionTarget {
  return { action, releaseId: api.workflowId, namespace: api.namespace, version };
}

/** The body of an assertion request (identity-server's POST /v1/assertions). */
export interface ActionTarget {
  action: IdentityAction;
  /** The release's (or API's) workflow ID. */
  releaseId: string;
  namespace: string;
  step?: number;
  attempt?: number;
  version?: string;
}

/** Asks the identity server for an assertion; throws with the server's reason when refused. */
export async function requestAssertion(source: { url: URL; token: string }, target: ActionTarget): Promise<{ assertion: string; sub: string; exp: number }> {
  const endpoint = new URL('v1/assertions', source.url.href.endsWith('/') ? source.url : `${source.url.href}/`);
  let res: Response;
  try {
    res = await fetch(endpoint, {
      method: 'POST',
      headers: { Authorization: `Bearer ${source.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(target),
      redirect: 'error',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    throw new Error(`identity server ${source.url.origin} not reachable: ${(err as Error).message}`, { cause: err });
  }
  const body = (await res.json().catch(() => ({}))) as { assertion?: unknown; sub?: unknown; exp?: unknown; error?: unknown };
  if (!res.ok) throw new Error(`identity server refused (HTTP ${res.status}): ${typeof body.error === 'string' ? body.error : res.statusText}`);
  if (typeof body.assertion !== 'string' || typeof body.sub !== 'string' || typeof body.exp !== 'number') throw new Error(`identity server ${source.url.origin}: unexpected answer`);
  return { assertion: body.assertion, sub: body.sub, exp: body.exp };
}
