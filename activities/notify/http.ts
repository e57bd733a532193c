/**
 * One bounded HTTP POST to a receiver (notifications, webhook gates) under the worker's egress
 * policy (activities/metrics/egress.ts, GLIDEPATH_WEB_ALLOW: loopback, link-local and metadata
 * addresses refused unless listed). No redirects; the answer is read up to a bound and kept only
 * clipped. Error text names the receiver, never its URL (the URL may come from a Secret).
 */
import { ApplicationFailure } from '@temporalio/common';
import axios, { type AxiosRequestConfig, type AxiosResponse } from 'axios';
import { ErrorType } from '../errors.ts';
import { EgressRefused, type Egress } from '../metrics/egress.ts';

/** The most of an answer read at all, and the most recorded (audit, history). */
export const MAX_ANSWER_BYTES = 64 * 1024;
export const MAX_RECORDED_ANSWER = 1024;

export interface Answer {
  status: number;
  /** The answer's body, clipped to MAX_RECORDED_ANSWER characters. */
  body: string;
}

export interface PostRequest {
  /** Who is asked, for messages: `notification ops` or `webhook gate load-test`. */
  who: string;
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export function clipAnswer(text: string): string {
  return text.length > MAX_RECORDED_ANSWER ? `${text.slice(0, MAX_RECORDED_ANSWER)}… (truncated, ${text.length} characters)` : text;
}

/** Posts and returns the answer, whatever its status; throws a retryable Error on a transport failure and a non-retryable Forbidden on an egress refusal. */
export async function post(egress: Egress, req: PostRequest): Promise<Answer> {
  egress.checkLiteral(new URL(req.url));
  let res: AxiosResponse<string>;
  try {
    res = await axios.request({
      url: req.url,
      method: 'POST',
      headers: req.headers,
      data: req.body,
      timeout: req.timeoutMs,
      ...(req.signal ? { signal: req.signal } : {}),
      validateStatus: () => true,
      maxRedirects: 0,
      maxContentLength: MAX_ANSWER_BYTES,
      lookup: egress.lookup as unknown as AxiosRequestConfig['lookup'],
      responseType: 'text',
      transformResponse: (d: unknown) => d,
    });
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof EgressRefused || (err as { code?: unknown }).code === 'EGRESS_REFUSED') {
      throw ApplicationFailure.nonRetryable(`${req.who}: ${cause instanceof Error ? cause.message : (err as Error).message}`, ErrorType.Forbidden);
    }
    // No `cause`: a transport error's text may carry the URL, which may come from a Secret.
    const code = axios.isAxiosError(err) ? err.code : undefined;
    // eslint-disable-next-line preserve-caught-error
    if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') throw new Error(`${req.who}: no answer within ${req.timeoutMs / 1000}s`);
    // eslint-disable-next-line preserve-caught-error
    throw new Error(`${req.who}: receiver unreachable (${code ?? (err as Error).name})`);
  }
  return { status: res.status, body: clipAnswer(String(res.data ?? '')) };
}
