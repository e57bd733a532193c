/**
 * Error classification for every Kubernetes API call, in one place. An apiserver answer or a
 * network failure becomes either a retryable error (Temporal retries the activity) or an
 * `ApplicationFailure.nonRetryable(message, type)` with a type from {@link ErrorType}.
 *
 * - 409 Conflict, 429 Too Many Requests (honouring Retry-After through `nextRetryDelay`), 408, 410,
 *   5xx, connection resets, refused connections and request timeouts: retryable.
 * - 400, 401, 403, 404, 422 and every other 4xx: non-retryable, naming the verb, the resource,
 *   the object and the apiserver's own message.
 */
import { ApiException } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../errors.ts';

/** What a call was doing, for messages: `patch deployments.apps shop/web-canary`. */
export interface CallSite {
  verb: string;
  resource: string;
  namespace?: string | undefined;
  name?: string | undefined;
}

export function describeCall(site: CallSite): string {
  const object = site.name ? `${site.namespace ? `${site.namespace}/` : ''}${site.name}` : site.namespace ? `in namespace ${site.namespace}` : '';
  return `${site.verb} ${site.resource}${object ? ` ${object}` : ''}`;
}

/** Retryable failure types: not in NON_RETRYABLE_ERROR_TYPES, so the retry policy retries them. */
export const RetryableType = {
  Conflict: 'Conflict',
  TooManyRequests: 'TooManyRequests',
  ServerError: 'ServerError',
  Unavailable: 'Unavailable',
} as const;

const NON_RETRYABLE_BY_STATUS: Record<number, string> = {
  400: ErrorType.BadRequest,
  401: ErrorType.Unauthorized,
  403: ErrorType.Forbidden,
  404: ErrorType.NotFound,
  422: ErrorType.Unprocessable,
};

/** Statuses in the 4xx range that are worth retrying. */
const RETRYABLE_4XX = new Set([408, 409, 410, 425, 429]);

/** Network-level failure codes (Node and undici) that mean "try again". */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_ABORTED',
]);

/** The apiserver's `Status.message` (and reason) from an error body, when it sent one. */
export function apiserverMessage(body: unknown): { message?: string; reason?: string } {
  let status: unknown = body;
  if (typeof body === 'string') {
    try {
      status = JSON.parse(body);
    } catch {
      return body.trim() ? { message: body.trim().slice(0, 500) } : {};
    }
  }
  if (status && typeof status === 'object') {
    const s = status as { message?: unknown; reason?: unknown };
    return {
      ...(typeof s.message === 'string' ? { message: s.message } : {}),
      ...(typeof s.reason === 'string' ? { reason: s.reason } : {}),
    };
  }
  return {};
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date); undefined when absent or unusable. */
export function retryAfterSeconds(headers: Record<string, string> | undefined, now = Date.now()): number | undefined {
  const raw = headers?.['retry-after'] ?? headers?.['Retry-After'];
  if (raw === undefined) return undefined;
  const trimmed = raw.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** The code of a network failure, looking through `fetch failed` TypeErrors and their causes. */
function networkCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return code;
    const name = (e as { name?: unknown }).name;
    if (name === 'TimeoutError') return 'ETIMEDOUT';
    if (name === 'SocketError' || name === 'ConnectTimeoutError' || name === 'HeadersTimeoutError' || name === 'BodyTimeoutError') return name;
  }
  return undefined;
}

/**
 * Turns whatever a Kubernetes API call threw into the error the activity should throw.
 * `ApplicationFailure`s pass through unchanged; `cancelled` (the activity's cancellation) is
 * rethrown as it is, so Temporal sees a cancellation and not an apiserver failure.
 */
export function classifyKubeError(err: unknown, site: CallSite, cancelled?: AbortSignal): Error {
  if (err instanceof ApplicationFailure) return err;
  if (cancelled?.aborted) return cancelled.reason instanceof Error ? cancelled.reason : new Error(`${describeCall(site)}: cancelled`);
  const what = describeCall(site);

  if (err instanceof ApiException) {
    const code = err.code;
    const { message, reason } = apiserverMessage(err.body);
    const detail = `${message ?? 'no message from the apiserver'} (HTTP ${code}${reason ? ` ${reason}` : ''})`;
    const text = `${what}: ${detail}`;
    if (code === 429 || code === 503) {
      const after = retryAfterSeconds(err.headers);
      return ApplicationFailure.create({
        message: text,
        type: code === 429 ? RetryableType.TooManyRequests : RetryableType.Unavailable,
        nonRetryable: false,
        ...(after !== undefined ? { nextRetryDelay: `${Math.max(after, 1)}s` } : {}),
      });
    }
    if (code >= 500) return ApplicationFailure.retryable(text, RetryableType.ServerError);
    if (code === 409) return ApplicationFailure.retryable(text, RetryableType.Conflict);
    if (RETRYABLE_4XX.has(code)) return ApplicationFailure.retryable(text, RetryableType.ServerError);
    const type = NON_RETRYABLE_BY_STATUS[code] ?? ErrorType.BadRequest;
    return ApplicationFailure.nonRetryable(text, type);
  }

  const net = networkCode(err);
  if (net) {
    const msg = err instanceof Error ? err.message : String(err);
    return new Error(`${what}: ${net === 'ETIMEDOUT' ? 'request timed out' : 'connection failed'} (${net}): ${msg}`);
  }
  if (err instanceof Error) {
    // Not from the apiserver and not the network (a bug, a bad kubeconfig...): keep it, with context.
    const wrapped = new Error(`${what}: ${err.message}`, { cause: err });
    return wrapped;
  }
  return new Error(`${what}: ${String(err)}`);
}

/** Whether a classified error should be retried (by Temporal, or by a wait loop polling through it). */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ApplicationFailure) return !err.nonRetryable;
  return true;
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApplicationFailure && err.type === ErrorType.NotFound;
}
