/**
 * The Prometheus metric provider (Argo's `provider.prometheus`), over the HTTP API with axios.
 *
 * It returns raw values shaped as Argo does (scalar → number, vector → array of numbers, so
 * conditions read `result[0]`) and fails closed: an empty vector, NaN, ±Inf, a sample older than
 * the staleness bound, an unreachable server or a 5xx answer throw, so the analysis loop records an
 * Error measurement and the metric's limits decide; none of them is ever a value. A query Prometheus
 * rejects (400/422 with `errorType: bad_data`) is `ApplicationFailure.nonRetryable(…, 'QueryRejected')`.
 *
 * Credentials never come from workflow input: either from analysis args the activity resolved
 * (`headers: [{key: Authorization, value: "Bearer {{args.token}}"}]` with a secretKeyRef arg), or from
 * the worker's configuration ({@link PrometheusServer}), which is sent only to the address it names.
 * Semantics and the measured figures: docs/analysis.md.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Agent as HttpsAgent } from 'node:https';
import { ApplicationFailure } from '@temporalio/common';
import axios, { type AxiosResponse } from 'axios';
import { TemplateError, renderHeader, renderPromQL } from '../../model/template.ts';
import type { MetricSpec, PrometheusProviderSpec } from '../../model/types.ts';
import type { MeasureContext, MetricProvider } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { redact } from './redact.ts';

/** Argo's default query timeout (seconds) when the metric sets none. */
export const DEFAULT_TIMEOUT_SECONDS = 30;
/** Samples older than this (relative to the evaluation time) are not used; see {@link PrometheusOptions.stalenessSeconds}. */
export const DEFAULT_STALENESS_SECONDS = 120;

/** Worker-side settings for one Prometheus (or Thanos/Mimir/Cortex) endpoint. */
export interface PrometheusServer {
  /** `scheme://host[:port][/path]`: the settings apply to metric addresses under it, and to no other. */
  address: string;
  bearerToken?: string;
  /** Read on every request, so a rotated token (projected service-account token) is picked up. */
  bearerTokenFile?: string;
  basicAuth?: { username: string; password?: string; passwordFile?: string };
  /** Extra headers, e.g. `X-Scope-OrgID` for Mimir/Cortex tenants or `THANOS-TENANT`. */
  headers?: Record<string, string>;
  /** PEM bundle of CAs to trust for this address (in addition to none: it replaces the default store). */
  caFile?: string;
}

export interface PrometheusOptions {
  servers?: PrometheusServer[];
  /**
   * Samples older than this many seconds before the evaluation time are not used. Sent to Prometheus
   * as `lookback_delta` (so an instant selector whose newest sample is older yields nothing) and
   * checked on every sample timestamp in the answer. Default {@link DEFAULT_STALENESS_SECONDS}.
   */
  stalenessSeconds?: number;
  /** The evaluation time of an instant query; injectable for tests. */
  now?: () => Date;
}

/** What a range query returns: one series per label set, samples as [unix seconds, value]. */
export interface RangeSeries {
  metric: Record<string, string>;
  values: [number, number][];
}

export interface PrometheusProvider extends MetricProvider {
  readonly type: 'prometheus';
  /** An instant query at `at` (default now), shaped as Argo shapes it. */
  query(spec: PrometheusProviderSpec, args: Record<string, string>, signal: AbortSignal, at?: Date): Promise<number | number[]>;
  /** A range query (for the judge): every series with its finite samples; fails closed like `query`. */
  queryRange(
    spec: PrometheusProviderSpec,
    args: Record<string, string>,
    range: { start: Date; end: Date; stepSeconds: number },
    signal: AbortSignal,
  ): Promise<RangeSeries[]>;
}

/** Thrown for answers that must not become a value (stale, empty, NaN …); the loop records an Error. */
export class MeasurementError extends Error {
  override name = 'MeasurementError';
  /** The message with URL userinfo and credential-like parameters redacted (see redact.ts). */
  constructor(message: string, options?: ErrorOptions) {
    super(redact(message), options);
  }
}

// ---- worker configuration ---------------------------------------------------------------------

/**
 * Reads one server's settings from the worker's environment (the worker calls this; activities never
 * read env): GLIDEPATH_PROMETHEUS_URL scopes GLIDEPATH_PROMETHEUS_BEARER_TOKEN[_FILE],
 * GLIDEPATH_PROMETHEUS_USERNAME + GLIDEPATH_PROMETHEUS_PASSWORD[_FILE], GLIDEPATH_PROMETHEUS_CA_FILE and
 * GLIDEPATH_PROMETHEUS_HEADERS (`Name: value` pairs separated by newlines or `;`);
 * GLIDEPATH_PROMETHEUS_STALENESS_SECONDS sets the staleness bound.
 */
export function prometheusOptionsFromEnv(env: NodeJS.ProcessEnv): PrometheusOptions {
  const options: PrometheusOptions = {};
  const staleness = env['GLIDEPATH_PROMETHEUS_STALENESS_SECONDS'];
  if (staleness !== undefined && staleness !== '') {
    const n = Number(staleness);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`GLIDEPATH_PROMETHEUS_STALENESS_SECONDS must be a positive number of seconds, got "${staleness}"`);
    options.stalenessSeconds = n;
  }
  const address = env['GLIDEPATH_PROMETHEUS_URL'];
  if (!address) return options;
  const server: PrometheusServer = { address };
  const e = (name: string): string | undefined => env[`GLIDEPATH_PROMETHEUS_${name}`] || undefined;
  if (e('BEARER_TOKEN')) server.bearerToken = e('BEARER_TOKEN') as string;
  if (e('BEARER_TOKEN_FILE')) server.bearerTokenFile = e('BEARER_TOKEN_FILE') as string;
  if (e('USERNAME')) {
    server.basicAuth = { username: e('USERNAME') as string };
    if (e('PASSWORD')) server.basicAuth.password = e('PASSWORD') as string;
    if (e('PASSWORD_FILE')) server.basicAuth.passwordFile = e('PASSWORD_FILE') as string;
  }
  if (e('CA_FILE')) server.caFile = e('CA_FILE') as string;
  const headers = e('HEADERS');
  if (headers) {
    server.headers = {};
    for (const pair of headers.split(/[;\n]/)) {
      if (pair.trim() === '') continue;
      const colon = pair.indexOf(':');
      if (colon <= 0) throw new Error('GLIDEPATH_PROMETHEUS_HEADERS holds "Name: value" pairs separated by ";" or newlines');
      server.headers[pair.slice(0, colon).trim()] = pair.slice(colon + 1).trim();
    }
  }
  options.servers = [server];
  return options;
}

/** The configured server an address falls under: same origin, and the server's path is a prefix. */
export function serverFor(servers: readonly PrometheusServer[] | undefined, address: string): PrometheusServer | undefined {
  const url = new URL(address);
  return servers?.find((s) => {
    const base = new URL(s.address);
    const path = base.pathname.replace(/\/+$/, '');
    return base.origin === url.origin && (url.pathname === path || url.pathname.startsWith(`${path}/`) || path === '');
  });
}

// ---- HTTP plumbing (shared with the web provider) -----------------------------------------------

const agents = new Map<string, HttpsAgent>();

/** A keep-alive HTTPS agent per TLS setting; `insecure` skips verification, `caFile` replaces the trust store. */
export function httpsAgentFor(insecure: boolean, caFile: string | undefined): HttpsAgent {
  const key = `${insecure}|${caFile ?? ''}`;
  let agent = agents.get(key);
  if (!agent) {
    agent = new HttpsAgent({ keepAlive: true, rejectUnauthorized: !insecure, ...(caFile ? { ca: readFileSync(caFile) } : {}) });
    agents.set(key, agent);
  }
  return agent;
}

/** A transport failure (refused, reset, timeout, TLS) as a plain message; never includes headers. */
export function transportMessage(err: unknown, address: string, timeoutSeconds: number): string {
  if (axios.isAxiosError(err)) {
    if (err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT') return `${address} did not answer within ${timeoutSeconds}s`;
    return `${address} unreachable: ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' ').trim();
  }
  return `${address}: ${(err as Error).message}`;
}

export function clip(text: string, max = 500): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** Whether the worker holds credentials (a token, a password, extra headers) for this server. */
function hasCredentials(server: PrometheusServer): boolean {
  return Boolean(server.bearerToken || server.bearerTokenFile || server.basicAuth || Object.keys(server.headers ?? {}).length > 0);
}

async function authHeaders(server: PrometheusServer | undefined): Promise<Record<string, string>> {
  if (!server) return {};
  const out: Record<string, string> = { ...server.headers };
  const token = server.bearerTokenFile ? (await readFile(server.bearerTokenFile, 'utf8')).trim() : server.bearerToken;
  if (token) out['Authorization'] = `Bearer ${token}`;
  else if (server.basicAuth) {
    const password = server.basicAuth.passwordFile ? (await readFile(server.basicAuth.passwordFile, 'utf8')).replace(/\r?\n$/, '') : (server.basicAuth.password ?? '');
    out['Authorization'] = `Basic ${Buffer.from(`${server.basicAuth.username}:${password}`).toString('base64')}`;
  }
  return out;
}

// ---- result shaping ---------------------------------------------------------------------------

type Sample = [number, string];

/** Prometheus encodes values as Go formats them: "NaN", "+Inf", "-Inf", or a decimal. */
export function parseSampleValue(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number.parseFloat(text);
}

function sampleValue(s: Sample, what: string): number {
  const v = parseSampleValue(s[1]);
  if (Number.isNaN(v)) throw new MeasurementError(`${what} is NaN`);
  if (!Number.isFinite(v)) throw new MeasurementError(`${what} is ${v > 0 ? '+Inf' : '-Inf'}`);
  return v;
}

function checkFresh(ts: number, evalSeconds: number, stalenessSeconds: number, what: string): void {
  const age = evalSeconds - ts;
  if (age > stalenessSeconds) throw new MeasurementError(`${what} is ${age.toFixed(1)}s older than the evaluation time (staleness bound ${stalenessSeconds}s)`);
}

function labels(metric: Record<string, string> | undefined): string {
  const entries = Object.entries(metric ?? {});
  return entries.length === 0 ? '{}' : `{${entries.map(([k, v]) => `${k}="${v}"`).join(', ')}}`;
}

/**
 * An instant query's `data` as Argo shapes it, failing closed. Exported for unit tests of the rules.
 * @param evalSeconds the evaluation time sent to Prometheus (unix seconds)
 */
export function shapeInstant(data: { resultType?: unknown; result?: unknown }, evalSeconds: number, stalenessSeconds: number): number | number[] {
  switch (data.resultType) {
    case 'scalar': {
      const s = data.result as Sample;
      checkFresh(s[0], evalSeconds, stalenessSeconds, 'the scalar');
      return sampleValue(s, 'the scalar');
    }
    case 'vector': {
      const series = data.result as { metric?: Record<string, string>; value: Sample }[];
      if (!Array.isArray(series) || series.length === 0) throw new MeasurementError('empty result: no series matched the query');
      return series.map((s) => {
        const what = `the sample of ${labels(s.metric)}`;
        checkFresh(s.value[0], evalSeconds, stalenessSeconds, what);
        return sampleValue(s.value, what);
      });
    }
    case 'matrix':
    case 'string':
      throw ApplicationFailure.nonRetryable(
        `the query returns a ${data.resultType === 'matrix' ? 'range vector (matrix)' : 'string'}; an analysis query must return a scalar or an instant vector (e.g. wrap a range selector in rate() or avg_over_time())`,
        ErrorType.QueryRejected,
      );
    default:
      throw new MeasurementError(`unexpected resultType ${JSON.stringify(data.resultType)}`);
  }
}

// ---- freshness of the samples a query reads ---------------------------------------------------

const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan', 'atan2']);

export interface Selector {
  /** The selector as written: `name`, `name{…}` or `{…}`, without its range. */
  text: string;
  /** It is read through a range (`[5m]`): fresh enough when its newest series is fresh. */
  range: boolean;
}

/**
 * The vector selectors a PromQL query reads, skipping strings, comments, function and aggregation
 * names, label lists (`by (…)`, `on (…)` …) and selectors moved in time (`offset`, `@`), whose
 * samples are old on purpose. Pure; used to ask Prometheus for the timestamps of the samples behind
 * a result, which its instant-query answer does not carry.
 */
export function promqlSelectors(q: string): Selector[] {
  const out: Selector[] = [];
  const n = q.length;
  const at = (j: number): string => q[j] ?? '';
  const skipWs = (j: number): number => {
    while (j < n && /\s/.test(at(j))) j++;
    return j;
  };
  const skipString = (j: number): number => {
    const quote = at(j);
    j++;
    while (j < n && at(j) !== quote) {
      if (quote !== '`' && at(j) === '\\') j++;
      j++;
    }
    return j + 1;
  };
  const skipBlock = (j: number, open: string, close: string): number => {
    let depth = 0;
    while (j < n) {
      const c = at(j);
      if (c === '"' || c === "'" || c === '`') {
        j = skipString(j);
        continue;
      }
      if (c === open) depth++;
      else if (c === close && --depth === 0) return j + 1;
      j++;
    }
    return n;
  };
  let i = 0;
  while (i < n) {
    const c = at(i);
    if (/\s/.test(c)) i++;
    else if (c === '#') while (i < n && at(i) !== '\n') i++;
    else if (c === '"' || c === "'" || c === '`') i = skipString(i);
    else if (/[0-9.]/.test(c)) {
      i++;
      while (i < n && /[0-9a-zA-Z_.]/.test(at(i))) i++; // numbers, durations, hex
    } else if (c === '[') i = skipBlock(i, '[', ']'); // a subquery's range after ")"
    else if (/[a-zA-Z_:]/.test(c) || c === '{') {
      let j = i;
      while (j < n && /[a-zA-Z0-9_:]/.test(at(j))) j++;
      const name = q.slice(i, j).toLowerCase();
      const k = skipWs(j);
      if (name !== '' && LABEL_LISTS.has(name)) {
        i = at(k) === '(' ? skipBlock(k, '(', ')') : j;
        continue;
      }
      if (name !== '' && (at(k) === '(' || AGGREGATIONS.has(name) || KEYWORDS.has(name))) {
        i = j;
        continue;
      }
      const end = at(k) === '{' ? skipBlock(k, '{', '}') : j;
      const text = q.slice(i, end);
      let m = skipWs(end);
      let range = false;
      if (at(m) === '[') {
        range = true;
        m = skipBlock(m, '[', ']');
      }
      const next = skipWs(m);
      const moved = at(next) === '@' || (q.startsWith('offset', next) && !/[a-zA-Z0-9_:]/.test(at(next + 6)));
      if (!moved) out.push({ text, range });
      i = m;
    } else i++;
  }
  return out;
}

/**
 * One query for the newest-sample timestamps behind each selector: the oldest series of an instant
 * selector (every series it reads must be fresh) and the newest series of a range selector.
 */
export function freshnessQuery(selectors: readonly Selector[]): string {
  return selectors
    .map((s, i) => `label_replace(${s.range ? 'max' : 'min'}(timestamp(${s.text})), "glidepath_selector", "${i}", "", "")`)
    .join(' or ');
}

// ---- the provider -----------------------------------------------------------------------------

interface ApiBody {
  status?: string;
  data?: { resultType?: unknown; result?: unknown };
  errorType?: string;
  error?: string;
}

function specOf(metric: MetricSpec): PrometheusProviderSpec {
  if (!('prometheus' in metric.provider)) {
    throw ApplicationFailure.nonRetryable(`metric "${metric.name}" has no prometheus provider`, ErrorType.InvalidSpec);
  }
  return metric.provider.prometheus;
}

export function createPrometheusProvider(options: PrometheusOptions = {}): PrometheusProvider {
  const now = options.now ?? (() => new Date());
  const staleness = options.stalenessSeconds ?? DEFAULT_STALENESS_SECONDS;

  /** Renders the spec's templates; a misplaced arg or one without a value is a spec error. */
  const render = (spec: PrometheusProviderSpec, args: Record<string, string>): { query: string; headers: Record<string, string> } => {
    if (spec.authentication && Object.keys(spec.authentication).length > 0) {
      throw ApplicationFailure.nonRetryable(`authentication.${Object.keys(spec.authentication).join(', ')} is not supported by this version of Glidepath`, ErrorType.UnsupportedProvider);
    }
    try {
      const headers: Record<string, string> = {};
      for (const h of spec.headers ?? []) headers[h.key] = renderHeader(h.value, args);
      return { query: renderPromQL(spec.query, args), headers };
    } catch (err) {
      if (err instanceof TemplateError) throw ApplicationFailure.nonRetryable(err.message, ErrorType.InvalidSpec);
      throw err;
    }
  };

  const call = async (spec: PrometheusProviderSpec, specHeaders: Record<string, string>, endpoint: 'query' | 'query_range', params: Record<string, string>, signal: AbortSignal): Promise<ApiBody['data']> => {
    const server = serverFor(options.servers, spec.address);
    if (server && spec.insecure === true && spec.address.startsWith('https:') && hasCredentials(server)) {
      // The worker's own credentials never go to a server whose certificate is not verified.
      throw ApplicationFailure.nonRetryable(
        `provider.prometheus.insecure: true with ${new URL(spec.address).origin}, for which this worker holds credentials: they are not sent without TLS verification (remove insecure, or give the worker its CA with GLIDEPATH_PROMETHEUS_CA_FILE)`,
        ErrorType.InvalidSpec,
      );
    }
    const timeoutSeconds = spec.timeout ?? DEFAULT_TIMEOUT_SECONDS;
    const url = `${spec.address.replace(/\/+$/, '')}/api/v1/${endpoint}`;
    let res: AxiosResponse<unknown>;
    try {
      res = await axios.post(url, new URLSearchParams({ timeout: `${timeoutSeconds}s`, ...params }).toString(), {
        headers: { ...(await authHeaders(server)), ...specHeaders, 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        timeout: timeoutSeconds * 1000,
        signal,
        validateStatus: () => true,
        maxRedirects: 0,
        httpsAgent: url.startsWith('https:') ? httpsAgentFor(spec.insecure === true, server?.caFile) : undefined,
        responseType: 'json',
      });
    } catch (err) {
      if (signal.aborted) throw err;
      throw new MeasurementError(`prometheus ${transportMessage(err, spec.address, timeoutSeconds)}`);
    }
    const body = (typeof res.data === 'object' && res.data !== null ? res.data : {}) as ApiBody;
    if ((res.status === 400 || res.status === 422) && body.errorType === 'bad_data') {
      throw ApplicationFailure.nonRetryable(redact(`prometheus rejected the query of this metric (${res.status} bad_data): ${clip(body.error ?? '')}`), ErrorType.QueryRejected);
    }
    if (res.status < 200 || res.status > 299 || body.status !== 'success' || !body.data) {
      const detail = body.error ? `${body.errorType ?? 'error'}: ${clip(body.error)}` : clip(typeof res.data === 'string' ? res.data : JSON.stringify(res.data ?? ''), 200);
      throw new MeasurementError(`prometheus at ${spec.address} answered ${res.status}${res.status === 401 || res.status === 403 ? ' (check its credentials)' : ''}: ${detail}`);
    }
    return body.data;
  };

  /** Fails when a selector the query reads has a sample older than the bound (see {@link freshnessQuery}). */
  const checkSelectorsFresh = async (spec: PrometheusProviderSpec, query: string, headers: Record<string, string>, evalSeconds: number, signal: AbortSignal): Promise<void> => {
    const selectors = promqlSelectors(query);
    if (selectors.length === 0) return;
    let data: ApiBody['data'];
    try {
      data = await call(spec, headers, 'query', { query: freshnessQuery(selectors), time: evalSeconds.toFixed(3) }, signal);
    } catch (err) {
      if (err instanceof ApplicationFailure) throw new MeasurementError(`the freshness check of this query failed: ${err.message}`);
      throw err;
    }
    for (const s of (data?.result ?? []) as { metric?: Record<string, string>; value: Sample }[]) {
      const selector = selectors[Number(s.metric?.['glidepath_selector'])];
      const newest = Number.parseFloat(s.value[1]);
      if (selector && Number.isFinite(newest)) checkFresh(newest, evalSeconds, staleness, `the newest sample of ${clip(selector.text, 120)}${selector.range ? '' : ' (its oldest series)'}`);
    }
  };

  const query = async (spec: PrometheusProviderSpec, args: Record<string, string>, signal: AbortSignal, at?: Date): Promise<number | number[]> => {
    const evalSeconds = (at ?? now()).getTime() / 1000;
    const { query: rendered, headers } = render(spec, args);
    const [main, fresh] = await Promise.allSettled([
      call(spec, headers, 'query', { query: rendered, time: evalSeconds.toFixed(3), lookback_delta: `${staleness}s` }, signal),
      checkSelectorsFresh(spec, rendered, headers, evalSeconds, signal),
    ]);
    if (main.status === 'rejected') throw main.reason;
    const value = shapeInstant(main.value ?? {}, evalSeconds, staleness);
    if (fresh.status === 'rejected') throw fresh.reason;
    return value;
  };

  return {
    type: 'prometheus',
    query,
    async measure(metric: MetricSpec, ctx: MeasureContext): Promise<unknown> {
      return query(specOf(metric), ctx.args, ctx.signal);
    },
    async queryRange(spec, args, range, signal) {
      const start = range.start.getTime() / 1000;
      const end = range.end.getTime() / 1000;
      const { query: rendered, headers } = render(spec, args);
      const data = await call(spec, headers, 'query_range', { query: rendered, start: start.toFixed(3), end: end.toFixed(3), step: `${range.stepSeconds}s`, lookback_delta: `${staleness}s` }, signal);
      if (data?.resultType !== 'matrix') throw new MeasurementError(`a range query answered ${JSON.stringify(data?.resultType)}, not a matrix`);
      const series = (data.result ?? []) as { metric?: Record<string, string>; values: Sample[] }[];
      const out: RangeSeries[] = [];
      for (const s of series) {
        const values: [number, number][] = [];
        for (const v of s.values) {
          const n = parseSampleValue(v[1]);
          if (Number.isFinite(n)) values.push([v[0], n]);
        }
        if (values.length > 0) out.push({ metric: s.metric ?? {}, values });
      }
      if (out.length === 0) throw new MeasurementError('empty result: no finite samples in the range');
      const newest = Math.max(...out.map((s) => (s.values[s.values.length - 1] as [number, number])[0]));
      checkFresh(newest, end, staleness + range.stepSeconds, 'the newest sample in the range');
      return out;
    },
  };
}
