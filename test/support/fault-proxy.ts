/**
 * A fault-injecting reverse proxy in front of the Kubernetes apiserver, for tests of retry and
 * idempotency. It listens on plain HTTP on 127.0.0.1 and forwards to the apiserver over HTTPS with
 * the upstream kubeconfig's credentials (client certificate or token), so the client under test
 * needs no credentials: {@link FaultProxy.kubeConfig} points at the proxy.
 *
 * Per request it injects at most one fault, drawn with a seeded generator at the configured rates:
 * - `conflict`: 409 Conflict (mutating requests only), not forwarded
 * - `tooManyRequests`: 429 with `Retry-After`, not forwarded
 * - `serverError`: 500, not forwarded
 * - `resetBefore`: the connection is reset (TCP RST) before forwarding
 * - `resetAfter`: forwarded, the apiserver's answer is dropped and the connection reset (mutating
 *   requests only): the change happened but the client cannot know, the case idempotency is for.
 * With `answerDelayMs`, every forwarded answer reaches the client that much later than the apiserver
 * gave it: the change has happened while the client still waits (a busy machine, a slow link).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export const FAULT_KINDS = ['conflict', 'tooManyRequests', 'serverError', 'resetBefore', 'resetAfter'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export type FaultRates = Partial<Record<FaultKind, number>>;

export interface FaultProxyOptions {
  rates: FaultRates;
  /** Sent with every injected 429. Default 1. */
  retryAfterSeconds?: number;
  /** Seed of the fault generator, for reproducible runs. Default 1. */
  seed?: number;
  /** Holds every forwarded answer this long before the client gets it. Default 0. */
  answerDelayMs?: number;
}

export interface FaultCounts {
  requests: number;
  forwarded: number;
  injected: Record<FaultKind, number>;
}

export interface FaultProxy {
  readonly url: string;
  readonly counts: FaultCounts;
  /** A KubeConfig whose cluster is this proxy (no credentials: the proxy adds them upstream). */
  kubeConfig(): KubeConfig;
  setRates(rates: FaultRates): void;
  totalInjected(): number;
  close(): Promise<void>;
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'content-length']);

/** mulberry32: a small seeded PRNG in [0, 1), so that a failing schedule can be run again. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function status(code: number, reason: string, message: string): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `injected by fault-proxy: ${message}`, reason, code });
}

export async function startFaultProxy(upstream: KubeConfig, opts: FaultProxyOptions): Promise<FaultProxy> {
  const cluster = upstream.getCurrentCluster();
  if (!cluster) throw new Error('fault-proxy: the upstream kubeconfig has no current cluster');
  const target = new URL(cluster.server);
  const tls: https.RequestOptions = {};
  await upstream.applyToHTTPSOptions(tls); // ca, cert, key and an Authorization header, as the kubeconfig says
  const agent = new https.Agent({ keepAlive: true, ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: tls.rejectUnauthorized ?? true });
  const authHeaders = (tls.headers ?? {}) as Record<string, string>;

  let rates: FaultRates = { ...opts.rates };
  const random = seededRandom(opts.seed ?? 1);
  const retryAfter = opts.retryAfterSeconds ?? 1;
  const counts: FaultCounts = { requests: 0, forwarded: 0, injected: { conflict: 0, tooManyRequests: 0, serverError: 0, resetBefore: 0, resetAfter: 0 } };

  const pick = (method: string): FaultKind | undefined => {
    const mutating = MUTATING.has(method);
    let r = random();
    for (const kind of FAULT_KINDS) {
      if (!mutating && (kind === 'conflict' || kind === 'resetAfter')) continue;
      const rate = rates[kind] ?? 0;
      if (r < rate) return kind;
      r -= rate;
    }
    return undefined;
  };

  const forward = (req: http.IncomingMessage, body: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && k !== 'host' && k !== 'authorization') headers[k] = v;
      Object.assign(headers, authHeaders, { 'content-length': body.length });
      const up = https.request(
        { protocol: 'https:', hostname: target.hostname, port: target.port || 443, method: req.method, path: req.url, headers, agent, servername: tls.servername },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      up.on('error', reject);
      up.end(body);
    });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        counts.requests++;
        const method = req.method ?? 'GET';
        const fault = pick(method);
        if (fault) counts.injected[fault]++;
        const reply = (code: number, reason: string, message: string, extra: Record<string, string> = {}): void => {
          const text = status(code, reason, message);
          res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
          res.end(text);
        };
        switch (fault) {
          case 'conflict':
            return reply(409, 'Conflict', `the object has been modified; please apply your changes to the latest version and try again (${method} ${req.url})`);
          case 'tooManyRequests':
            return reply(429, 'TooManyRequests', 'too many requests, please try again later', { 'retry-after': String(retryAfter) });
          case 'serverError':
            return reply(500, 'InternalError', 'an error on the server has prevented the request from succeeding');
          case 'resetBefore':
            return req.socket.resetAndDestroy();
        }
        try {
          const answer = await forward(req, Buffer.concat(chunks));
          counts.forwarded++;
          if (fault === 'resetAfter') return req.socket.resetAndDestroy();
          if (opts.answerDelayMs) await new Promise((r) => setTimeout(r, opts.answerDelayMs));
          const headers: http.OutgoingHttpHeaders = {};
          for (const [k, v] of Object.entries(answer.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
          headers['content-length'] = answer.body.length;
          res.writeHead(answer.status, headers);
          res.end(answer.body);
        } catch (err) {
          reply(502, 'BadGateway', `upstream: ${(err as Error).message}`);
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    counts,
    kubeConfig(): KubeConfig {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        // client-node refuses plain http unless skipTLSVerify is set; there is no TLS to verify here.
        clusters: [{ name: 'fault-proxy', server: url, skipTLSVerify: true }],
        users: [{ name: 'fault-proxy' }],
        contexts: [{ name: 'fault-proxy', cluster: 'fault-proxy', user: 'fault-proxy' }],
        currentContext: 'fault-proxy',
      });
      return kc;
    },
    setRates(r: FaultRates): void {
      rates = { ...r };
    },
    totalInjected(): number {
      return Object.values(counts.injected).reduce((a, b) => a + b, 0);
    },
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
