/**
 * A small service for metric tests: an HTTP server on 127.0.0.1 that serves `/work/<version>` with the
 * error rate and latency the test sets per version, drives its own steady traffic at those endpoints,
 * and exposes Prometheus text at `/metrics` (prom-client): `http_requests_total{version,code}` and
 * `http_request_duration_seconds{version}` (histogram). Errors are deterministic, not random: at rate r
 * the n-th request fails when floor(n·r) grows, so a 10% rate fails exactly every tenth request.
 *
 * For staleness tests it can also expose `glidepath_frozen_ratio{version}` with an explicit sample
 * timestamp fixed when {@link MetricsApp.freeze} was called: Prometheus stores no staleness marker for
 * such series, so the sample only ages.
 */
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Histogram, Registry } from 'prom-client';

export interface MetricsApp {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>`, a Prometheus scrape target. */
  target: string;
  setErrorRate(version: string, rate: number): void;
  setLatencyMs(version: string, ms: number): void;
  /** Exports `glidepath_frozen_ratio{version} value <now in ms>` from now on, never updated. */
  freeze(version: string, value: number): void;
  /** Requests served per version and status so far. */
  served(): Record<string, { ok: number; errors: number }>;
  stop(): Promise<void>;
}

export interface MetricsAppOptions {
  versions?: string[];
  /** Requests per second the app sends to each version's endpoint. Default 20. */
  rps?: number;
  errorRate?: Record<string, number>;
  latencyMs?: Record<string, number>;
}

export async function startMetricsApp(options: MetricsAppOptions = {}): Promise<MetricsApp> {
  const versions = options.versions ?? ['stable', 'canary'];
  const rps = options.rps ?? 20;
  const errorRate = new Map<string, number>(versions.map((v) => [v, options.errorRate?.[v] ?? 0]));
  const latency = new Map<string, number>(versions.map((v) => [v, options.latencyMs?.[v] ?? 5]));
  const seen = new Map<string, number>();
  const counts: Record<string, { ok: number; errors: number }> = Object.fromEntries(versions.map((v) => [v, { ok: 0, errors: 0 }]));
  const frozen = new Map<string, { value: number; atMs: number }>();

  const registry = new Registry();
  const requests = new Counter({ name: 'http_requests_total', help: 'Requests served, by version and status code.', labelNames: ['version', 'code'], registers: [registry] });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Request latency by version.',
    labelNames: ['version'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  for (const v of versions) {
    // Series exist from the first scrape, so rates have a zero to start from.
    requests.inc({ version: v, code: '200' }, 0);
    requests.inc({ version: v, code: '500' }, 0);
  }

  const work = (version: string, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    const n = (seen.get(version) ?? 0) + 1;
    seen.set(version, n);
    const rate = errorRate.get(version) ?? 0;
    const fail = Math.floor(n * rate) > Math.floor((n - 1) * rate);
    setTimeout(() => {
      const code = fail ? 500 : 200;
      requests.inc({ version, code: String(code) });
      duration.observe({ version }, Number(process.hrtime.bigint() - started) / 1e9);
      (counts[version] as { ok: number; errors: number })[fail ? 'errors' : 'ok']++;
      res.writeHead(code, { 'Content-Type': 'text/plain' }).end(fail ? 'error\n' : 'ok\n');
    }, latency.get(version) ?? 0);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    if (path === '/metrics') {
      void registry.metrics().then((text) => {
        let extra = '';
        if (frozen.size > 0) {
          extra += '# HELP glidepath_frozen_ratio A sample with an explicit, fixed timestamp.\n# TYPE glidepath_frozen_ratio gauge\n';
          for (const [v, f] of frozen) extra += `glidepath_frozen_ratio{version="${v}"} ${f.value} ${f.atMs}\n`;
        }
        res.writeHead(200, { 'Content-Type': registry.contentType }).end(text + extra);
      });
      return;
    }
    const m = /^\/work\/([\w-]+)$/.exec(path);
    if (m && versions.includes(m[1] as string)) return work(m[1] as string, res);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  // Steady traffic to every version, spread over each second.
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const timers = versions.map((v) =>
    setInterval(() => {
      const req = request({ host: '127.0.0.1', port, path: `/work/${v}`, agent }, (res) => res.resume());
      req.on('error', () => {}); // the app is stopping
      req.end();
    }, Math.max(1, Math.round(1000 / rps))),
  );

  return {
    url: `http://127.0.0.1:${port}`,
    target: `127.0.0.1:${port}`,
    setErrorRate: (v, r) => void errorRate.set(v, r),
    setLatencyMs: (v, ms) => void latency.set(v, ms),
    freeze: (v, value) => void frozen.set(v, { value, atMs: Date.now() }),
    served: () => structuredClone(counts),
    async stop() {
      timers.forEach(clearInterval);
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
