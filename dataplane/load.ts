/**
 * The load generator of the request-level tests, benchmarks and demo: a bounded loop of HTTP requests
 * at fixed concurrency through a proxy on loopback. It stops by itself after `requests` requests (or
 * at `deadlineMs`, or when `signal` aborts), and counts the answers per version (the backends' `x-version`
 * header), 5xx answers and connection errors. Every request is kept in a timeline (start, end, outcome)
 * so a test can ask what the client saw after a given moment.
 */
import { Agent, request } from 'node:http';

export interface LoadOptions {
  /** Proxy address, loopback only: `http://127.0.0.1:29080`. */
  url: string;
  /** The Host header the routes match. */
  host?: string;
  /** Extra request headers (a header route's match). */
  headers?: Record<string, string>;
  /** How many requests in all. */
  requests: number;
  /** Requests in flight at once. Default 8. */
  concurrency?: number;
  /** Pause between two requests of one worker, to spread `requests` over time. Default 0. */
  gapMs?: number;
  /** Start at most this many requests per second in all, evenly paced (the demo's modest load). Default: no pacing. */
  ratePerSecond?: number;
  /** No request starts after this Date.now() value. */
  deadlineMs?: number;
  /** Stops starting requests. */
  signal?: AbortSignal;
  /** One request's timeout. Default 5000 ms. */
  timeoutMs?: number;
}

export type Outcome = { version: string; status: number } | { error: string };

export interface Sample {
  /** Date.now() when the request started and when its answer (or error) came. */
  start: number;
  end: number;
  outcome: Outcome;
}

export interface LoadResult {
  sent: number;
  /** 2xx answers per version. */
  byVersion: Record<string, number>;
  /** Answers with status ≥ 500, per status. */
  serverErrors: Record<number, number>;
  /** Other non-2xx answers, per status. */
  otherStatus: Record<number, number>;
  /** Requests that got no HTTP answer (refused, reset, timed out), per error code. */
  connectionErrors: Record<string, number>;
  samples: Sample[];
  elapsedMs: number;
}

const LOOPBACK = /^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?(\/|$)/;

/** Sums of a result: 5xx count, connection errors, 2xx count. */
export function totals(r: LoadResult): { ok: number; serverErrors: number; connectionErrors: number } {
  const sum = (o: Record<string | number, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  return { ok: sum(r.byVersion), serverErrors: sum(r.serverErrors), connectionErrors: sum(r.connectionErrors) };
}

function once(agent: Agent, o: LoadOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request(o.url, { agent, headers: { ...(o.host ? { host: o.host } : {}), ...(o.headers ?? {}) }, timeout: o.timeoutMs ?? 5000 }, (res) => {
      const version = String(res.headers['x-version'] ?? '');
      res.resume();
      res.on('end', () => resolve({ version, status: res.statusCode ?? 0 }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

export interface RunningLoad {
  /** The counts so far (the same object `done` resolves with). */
  result: LoadResult;
  /** Resolves when the last request has come back. */
  done: Promise<LoadResult>;
  /** Starts no more requests; the ones in flight finish. */
  stop(): Promise<LoadResult>;
}

/** Starts sending `requests` requests through the proxy, `concurrency` at a time; see {@link RunningLoad}. */
export function startLoad(o: LoadOptions): RunningLoad {
  if (!LOOPBACK.test(o.url)) throw new Error(`load goes to loopback only, not ${o.url}`);
  if (!(Number.isInteger(o.requests) && o.requests >= 0)) throw new Error(`requests must be a whole number, got ${o.requests}`);
  if (o.ratePerSecond !== undefined && !(o.ratePerSecond > 0)) throw new Error(`ratePerSecond must be above 0, got ${o.ratePerSecond}`);
  const concurrency = Math.max(1, o.concurrency ?? 8);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const r: LoadResult = { sent: 0, byVersion: {}, serverErrors: {}, otherStatus: {}, connectionErrors: {}, samples: [], elapsedMs: 0 };
  const t0 = Date.now();
  let stopped = false;
  const stop = (): boolean => stopped || r.sent >= o.requests || (o.deadlineMs !== undefined && Date.now() >= o.deadlineMs) || Boolean(o.signal?.aborted);
  let slots = 0;
  /** With ratePerSecond: waits for this request's slot (t0 + n/rate). */
  const paced = async (): Promise<void> => {
    if (!o.ratePerSecond) return;
    const due = t0 + (slots++ * 1000) / o.ratePerSecond;
    if (due > Date.now()) await new Promise((res) => setTimeout(res, due - Date.now()));
  };
  const worker = async (): Promise<void> => {
    while (!stop()) {
      await paced();
      if (stop()) break;
      r.sent++;
      const start = Date.now();
      const outcome = await once(agent, o);
      r.samples.push({ start, end: Date.now(), outcome });
      if ('error' in outcome) r.connectionErrors[outcome.error] = (r.connectionErrors[outcome.error] ?? 0) + 1;
      else if (outcome.status >= 200 && outcome.status < 300) r.byVersion[outcome.version] = (r.byVersion[outcome.version] ?? 0) + 1;
      else if (outcome.status >= 500) r.serverErrors[outcome.status] = (r.serverErrors[outcome.status] ?? 0) + 1;
      else r.otherStatus[outcome.status] = (r.otherStatus[outcome.status] ?? 0) + 1;
      if (o.gapMs) await new Promise((res) => setTimeout(res, o.gapMs));
    }
  };
  const done = Promise.all(Array.from({ length: concurrency }, worker)).then(() => {
    agent.destroy();
    r.elapsedMs = Date.now() - t0;
    return r;
  });
  return {
    result: r,
    done,
    stop: () => {
      stopped = true;
      return done;
    },
  };
}

/** Sends `requests` requests through the proxy, `concurrency` at a time, and counts what came back. */
export function runLoad(o: LoadOptions): Promise<LoadResult> {
  return startLoad(o).done;
}

/** Whether the last `n` answers (by start time) were all 2xx from `version`. */
export function lastServedBy(r: LoadResult, version: string, n: number): boolean {
  if (r.samples.length < n) return false;
  const last = [...r.samples].sort((a, b) => a.start - b.start).slice(-n);
  return last.every((s) => !('error' in s.outcome) && s.outcome.status < 300 && s.outcome.version === version);
}

/**
 * The first moment from which every request that started at or after it was answered 2xx by
 * `version`, or undefined when the last request started was not. `after` bounds the search.
 */
export function allServedBySince(samples: Sample[], version: string, after = 0): number | undefined {
  const sorted = samples.filter((s) => s.start >= after).sort((a, b) => a.start - b.start);
  let since: number | undefined;
  for (const s of sorted) {
    const good = !('error' in s.outcome) && s.outcome.status < 300 && s.outcome.version === version;
    if (!good) since = undefined;
    else since ??= s.start;
  }
  return since;
}

/**
 * Whether `hits` out of `n` is within `sigmas` standard deviations of the expected share `p` (binomial),
 * with at least one request of slack (a proxy's weighted round robin gives exact splits, which are in).
 */
export function withinBinomial(hits: number, n: number, p: number, sigmas = 4.5): { ok: boolean; expected: number; tolerance: number } {
  const expected = n * p;
  const tolerance = Math.max(1, sigmas * Math.sqrt(n * p * (1 - p)));
  return { ok: Math.abs(hits - expected) <= tolerance, expected, tolerance };
}
