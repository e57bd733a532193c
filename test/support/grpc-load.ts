/**
 * gRPC load for the request-level tests: a bounded loop of unary calls at fixed concurrency through a
 * proxy on loopback, made by @grpc/grpc-js (the gRPC client the Temporal SDK ships) over h2c on one
 * channel. The data plane's pods answer each call with their version as the message (backend.ts,
 * `h2c:<port>`). Counted as load.ts counts HTTP answers, so the same checks apply: an OK call counts for
 * the version it names; any other gRPC status, with the code's name, among the failures
 * (`connectionErrors`, e.g. `grpc UNAVAILABLE`).
 */
import { credentials, Client, Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { LoadResult, Outcome, RunningLoad } from '../../dataplane/load.ts';

export interface GrpcLoadOptions {
  /** Proxy address, loopback only: `127.0.0.1:29080`. */
  target: string;
  /** The :authority the routes' hostnames match. */
  authority?: string;
  /** The method called, `/package.Service/Method`. */
  method: string;
  /** Request metadata (a header route's match). */
  metadata?: Record<string, string>;
  /** How many calls in all. */
  requests: number;
  /** Calls in flight at once. Default 8. */
  concurrency?: number;
  /** No call starts after this Date.now() value. */
  deadlineMs?: number;
  /** One call's deadline. Default 5000 ms. */
  timeoutMs?: number;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost):\d+$/;
const identity = (b: Buffer): Buffer => b;
const codeName = (code: number): string => (Object.entries(GrpcStatus).find(([, v]) => v === code)?.[0] ?? String(code));

function call(client: Client, o: GrpcLoadOptions): Promise<Outcome> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(o.metadata ?? {})) md.set(k, v);
  return new Promise((resolve) => {
    client.makeUnaryRequest(o.method, identity, identity, Buffer.alloc(0), md, { deadline: Date.now() + (o.timeoutMs ?? 5000) }, (err: ServiceError | null, reply?: Buffer) => {
      if (err) resolve({ error: `grpc ${codeName(err.code)}` });
      else resolve({ version: reply?.toString() ?? '', status: 200 });
    });
  });
}

/** Starts `requests` unary calls through the proxy, `concurrency` at a time; see RunningLoad (load.ts). */
export function startGrpcLoad(o: GrpcLoadOptions): RunningLoad {
  if (!LOOPBACK.test(o.target)) throw new Error(`load goes to loopback only, not ${o.target}`);
  if (!(Number.isInteger(o.requests) && o.requests >= 0)) throw new Error(`requests must be a whole number, got ${o.requests}`);
  const client = new Client(o.target, credentials.createInsecure(), o.authority ? { 'grpc.default_authority': o.authority } : {});
  const r: LoadResult = { sent: 0, byVersion: {}, serverErrors: {}, otherStatus: {}, connectionErrors: {}, samples: [], elapsedMs: 0 };
  const t0 = Date.now();
  let stopped = false;
  const stop = (): boolean => stopped || r.sent >= o.requests || (o.deadlineMs !== undefined && Date.now() >= o.deadlineMs);
  const worker = async (): Promise<void> => {
    while (!stop()) {
      r.sent++;
      const start = Date.now();
      const outcome = await call(client, o);
      r.samples.push({ start, end: Date.now(), outcome });
      if ('error' in outcome) r.connectionErrors[outcome.error] = (r.connectionErrors[outcome.error] ?? 0) + 1;
      else r.byVersion[outcome.version] = (r.byVersion[outcome.version] ?? 0) + 1;
    }
  };
  const done = Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 8) }, worker)).then(() => {
    client.close();
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

/** Makes `requests` unary calls through the proxy, `concurrency` at a time, and counts what came back. */
export function runGrpcLoad(o: GrpcLoadOptions): Promise<LoadResult> {
  return startGrpcLoad(o).done;
}
