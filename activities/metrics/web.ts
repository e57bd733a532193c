/**
 * The web metric provider (Argo's `provider.web`): an HTTP(S) request whose JSON answer, read at
 * `jsonPath`, is the value. JSONPath is evaluated by jsonpath-plus with `eval: false`, so filter and
 * script expressions (`[?(…)]`, `(…)`) are refused rather than run. Argo writes paths the way
 * Kubernetes does (`{$.data.ok}`); the braces are optional here.
 *
 * Fails closed like the Prometheus provider: unreachable, timeout, non-2xx, a body that is not JSON,
 * a path that matches nothing, null or a non-finite number → throw (an Error measurement).
 * Args are substituted with model/template.ts: percent-encoded in the URL path/query, JSON-escaped
 * inside body strings, checked for control characters in headers.
 */
import { ApplicationFailure } from '@temporalio/common';
import axios, { type AxiosRequestConfig, type AxiosResponse } from 'axios';
import { JSONPath } from 'jsonpath-plus';
import { TemplateError, renderHeader, renderJsonText, renderJsonValue, renderUrl, wholeUrlArg } from '../../model/template.ts';
import type { MetricSpec, WebProviderSpec } from '../../model/types.ts';
import type { MeasureContext, MetricProvider } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { Egress, EgressRefused, egressPolicyFromEnv, type EgressPolicy } from './egress.ts';
import { MeasurementError, clip, httpsAgentFor, transportMessage } from './prometheus.ts';

/** Argo's default for `timeoutSeconds`. */
export const DEFAULT_WEB_TIMEOUT_SECONDS = 10;

export interface WebOptions {
  /** PEM bundle of CAs to trust for https URLs (worker configuration). */
  caFile?: string;
  /** Where requests may go (egress.ts); by default from GLIDEPATH_WEB_ALLOW. */
  egress?: EgressPolicy;
}

/** The most of an answer recorded as a value (JSON text); longer values are cut with a marker. */
export const MAX_RECORDED_BYTES = 4096;
/** The most of an answer read at all. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * A value as recorded: unchanged when its JSON is at most {@link MAX_RECORDED_BYTES}, else the
 * first bytes of that JSON and `… (truncated, N bytes)`: a whole answer never lands in history.
 */
export function boundedValue(value: unknown): unknown {
  const text = JSON.stringify(value) ?? '';
  if (Buffer.byteLength(text) <= MAX_RECORDED_BYTES) return value;
  const head = Buffer.from(text).subarray(0, MAX_RECORDED_BYTES).toString('utf8').replace(/\uFFFD$/, '');
  return `${head}… (truncated, ${Buffer.byteLength(text)} bytes)`;
}

/** `{$.a.b}` (Kubernetes style, as Argo documents it) → `$.a.b`; `.a` → `$.a`. */
export function normalizeJsonPath(path: string): string {
  let p = path.trim();
  if (p.startsWith('{') && p.endsWith('}')) p = p.slice(1, -1).trim();
  if (p.startsWith('.')) p = `$${p}`;
  if (!p.startsWith('$')) p = `$.${p}`;
  return p;
}

/** The value at `path` in `json`: one match → that value, several → an array; fails closed on none or null. */
export function valueAt(json: unknown, path: string): unknown {
  let matches: unknown[];
  try {
    matches = JSONPath({ path: normalizeJsonPath(path), json: json as object, wrap: true, eval: false }) as unknown[];
  } catch (err) {
    throw ApplicationFailure.nonRetryable(`jsonPath "${path}" cannot be evaluated: ${(err as Error).message}`, ErrorType.InvalidSpec);
  }
  if (matches.length === 0) throw new MeasurementError(`jsonPath "${path}" matched nothing in the answer`);
  const value = matches.length === 1 ? matches[0] : matches;
  const bad = (v: unknown): boolean => v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v));
  if (bad(value) || (Array.isArray(value) && value.some(bad))) throw new MeasurementError(`jsonPath "${path}" matched null`);
  return value;
}

export function createWebProvider(options: WebOptions = {}): MetricProvider {
  const egress = new Egress(options.egress ?? egressPolicyFromEnv());
  return {
    type: 'web',
    async measure(metric: MetricSpec, ctx: MeasureContext): Promise<unknown> {
      if (!('web' in metric.provider)) throw ApplicationFailure.nonRetryable(`metric "${metric.name}" has no web provider`, ErrorType.InvalidSpec);
      const spec: WebProviderSpec = metric.provider.web;
      let url: string;
      let data: string | undefined;
      const headers: Record<string, string> = {};
      try {
        url = renderUrl(spec.url, ctx.args);
        for (const h of spec.headers ?? []) headers[h.key] = renderHeader(h.value, ctx.args);
        if (spec.body !== undefined) data = renderJsonText(spec.body, ctx.args);
        if (spec.jsonBody !== undefined) data = JSON.stringify(renderJsonValue(spec.jsonBody, ctx.args));
      } catch (err) {
        if (err instanceof TemplateError) throw ApplicationFailure.nonRetryable(err.message, ErrorType.InvalidSpec);
        throw err;
      }
      if (data !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
      const timeoutSeconds = spec.timeoutSeconds ?? DEFAULT_WEB_TIMEOUT_SECONDS;
      // Never the path or query: they may carry args; nothing of a URL that is one arg (it may be a Secret).
      const whole = wholeUrlArg(spec.url);
      const where = whole === undefined ? new URL(url).origin : `the URL in {{args.${whole}}}`;
      try {
        egress.checkLiteral(new URL(url));
      } catch (err) {
        if (whole !== undefined && err instanceof ApplicationFailure) throw ApplicationFailure.nonRetryable(`web url: ${where} is refused by the worker's egress policy (GLIDEPATH_WEB_ALLOW)`, ErrorType.Forbidden);
        throw err;
      }
      let res: AxiosResponse<string>;
      try {
        res = await axios.request({
          url,
          method: spec.method ?? 'GET',
          headers: { Accept: 'application/json', ...headers },
          ...(data !== undefined ? { data } : {}),
          timeout: timeoutSeconds * 1000,
          signal: ctx.signal,
          validateStatus: () => true,
          maxRedirects: 0,
          maxContentLength: MAX_RESPONSE_BYTES,
          lookup: egress.lookup as unknown as AxiosRequestConfig['lookup'],
          responseType: 'text',
          transformResponse: (d: unknown) => d,
          httpsAgent: url.startsWith('https:') ? httpsAgentFor(spec.insecure === true, options.caFile) : undefined,
        });
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        const refused = (err as { cause?: unknown }).cause;
        if (refused instanceof EgressRefused || (err as { code?: unknown }).code === 'EGRESS_REFUSED') {
          if (whole !== undefined) throw ApplicationFailure.nonRetryable(`web url: ${where} is refused by the worker's egress policy (GLIDEPATH_WEB_ALLOW)`, ErrorType.Forbidden);
          throw ApplicationFailure.nonRetryable(`web url: ${refused instanceof Error ? refused.message : (err as Error).message}`, ErrorType.Forbidden);
        }
        if (whole !== undefined) throw new MeasurementError(`web ${where} ${axios.isAxiosError(err) && (err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT') ? `did not answer within ${timeoutSeconds}s` : `unreachable (${(err as { code?: string }).code ?? 'error'})`}`);
        throw new MeasurementError(`web ${transportMessage(err, where, timeoutSeconds)}`);
      }
      if (res.status < 200 || res.status > 299) throw new MeasurementError(`web ${where} answered ${res.status}: ${clip(String(res.data ?? ''), 200)}`);
      let json: unknown;
      try {
        json = JSON.parse(String(res.data));
      } catch {
        throw new MeasurementError(`web ${where} answered ${res.status} with a body that is not JSON: ${clip(String(res.data ?? ''), 100)}`);
      }
      return boundedValue(spec.jsonPath === undefined ? json : valueAt(json, spec.jsonPath));
    },
  };
}
