/**
 * `glidepath codec-server`: Temporal's remote codec protocol over HTTP, so the Web UI and
 * `temporal workflow show --codec-endpoint` can display encrypted payloads.
 *
 * Protocol (temporalio/samples-go codec-server/README.md): `POST …/encode` and `POST …/decode`;
 * only the last path segment selects the endpoint; the body is `Payloads` as proto3 JSON
 * (`{"payloads":[{"metadata":{"encoding":"<base64>"},"data":"<base64>"}]}`, every bytes field
 * base64), answered in the same shape; invalid JSON and codec errors answer 400.
 *
 * Authentication: every POST needs `Authorization: Bearer <token>` with one of the tokens of
 * `--auth-token-file` / GLIDEPATH_CODEC_AUTH_TOKEN_FILE (one per line), compared in constant time;
 * otherwise 401. `temporal --codec-auth "Bearer <token>"` sends it; the Web UI sends the logged-in
 * user's access token when `codec.passAccessToken` is on (docs/security.md: what that does and does
 * not give). `--no-auth` is accepted only when bound to a loopback address.
 *
 * Namespaces: `--namespace` binds the server to the namespaces it serves; a request naming another
 * (in `X-Namespace` or the path segment before the endpoint) is refused. The header never widens
 * what the configuration allows; the keys are not per namespace, so separate namespaces that must
 * not read each other need separate keys and separate codec servers.
 *
 * CORS is answered only for the `--ui-origin` origins (never `*`); a request carrying any other
 * `Origin` is refused with 403 and no CORS headers. Requests without `Origin` (CLI, curl) are served.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Option, type Command } from 'commander';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { KEY_FILE_ENV, KEYS_ENV, loadCodecFromEnv } from '../workers/codec.ts';
import { EXIT } from './output.ts';
import { HttpError, readBoundedBody } from './http.ts';

export const DEFAULT_CODEC_PORT = 8888;
export const DEFAULT_UI_ORIGIN = 'http://127.0.0.1:8233';
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const SHUTDOWN_GRACE_MS = 5_000;
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// Authorization-Extras: the Web UI sends the user's ID token in it along with a passed access token.
export const CORS_ALLOWED_HEADERS = 'Content-Type, X-Namespace, Authorization, Authorization-Extras';

export const AUTH_TOKEN_FILE_ENV = 'GLIDEPATH_CODEC_AUTH_TOKEN_FILE';
/** Tokens shorter than this are refused at start (guessable). */
const MIN_TOKEN_LENGTH = 16;

/** Who may call the server: bearer tokens, or nobody checked (`none`: loopback only, by the CLI). */
export type CodecAuth = { tokens: readonly string[] } | 'none';

/** The tokens of a token file: one per line, `#` comments and blank lines ignored. */
export function readTokenFile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`auth token file ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  const tokens = text.split(/\r?\n/).map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean);
  if (tokens.length === 0) throw new Error(`auth token file ${file} holds no token`);
  if (tokens.some((t) => t.length < MIN_TOKEN_LENGTH || /\s/.test(t))) throw new Error(`auth token file ${file}: every token needs at least ${MIN_TOKEN_LENGTH} characters and no spaces`);
  return tokens;
}

/** Whether `header` is `Bearer <one of tokens>`; every token is compared, in constant time. */
export function bearerMatches(header: string | undefined, tokens: readonly string[]): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  const given = createHash('sha256').update(m?.[1] ?? '').digest();
  let ok = false;
  for (const t of tokens) {
    // Fixed-length digests: timingSafeEqual needs equal lengths, and no length leaks.
    if (timingSafeEqual(given, createHash('sha256').update(t).digest())) ok = true;
  }
  return ok && m !== null;
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Required: the accepted bearer tokens, or `none` (no authentication). */
  auth: CodecAuth;
  /** Browser origins allowed to call the server (the Web UI), e.g. `http://127.0.0.1:8233`. */
  uiOrigins: string[];
  /** Namespaces served (configuration, not the client's word); empty or undefined: any. */
  namespaces?: string[] | undefined;
  /** Called once per failed request (status >= 400). */
  onError?: ((info: { status: number; path: string; namespace?: string | undefined; message: string }) => void) | undefined;
}

/** proto3 JSON of one Payload: bytes fields as base64. */
interface JsonPayload {
  metadata?: Record<string, string> | null;
  data?: string | null;
}

/** `http://Host:8233/` → `http://host:8233`; throws on `*`, `null` or anything that is not an http(s) origin. */
export function normalizeOrigin(origin: string): string {
  if (origin.trim() === '*' || origin.trim() === 'null') throw new Error(`--ui-origin "${origin}": name the Web UI's origin, wildcards are not accepted`);
  let url: URL;
  try {
    url = new URL(origin.trim());
  } catch {
    throw new Error(`--ui-origin "${origin}" is not a URL such as ${DEFAULT_UI_ORIGIN}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--ui-origin "${origin}" must be http or https`);
  return url.origin;
}

function fromBase64(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string' || !BASE64_PATTERN.test(value)) throw new HttpError(400, `${what} is not a base64 string`);
  return new Uint8Array(Buffer.from(value, 'base64'));
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Parses a `Payloads` proto3-JSON body. */
export function payloadsFromJson(body: unknown): Payload[] {
  const list = (body as { payloads?: unknown } | null)?.payloads;
  if (typeof body !== 'object' || body === null || !Array.isArray(list)) throw new HttpError(400, 'body must be a JSON object with a "payloads" array');
  return list.map((item: unknown, i) => {
    if (typeof item !== 'object' || item === null) throw new HttpError(400, `payloads[${i}] is not an object`);
    const { metadata, data } = item as JsonPayload;
    if (metadata !== undefined && metadata !== null && (typeof metadata !== 'object' || Array.isArray(metadata))) {
      throw new HttpError(400, `payloads[${i}].metadata is not an object`);
    }
    return {
      metadata: Object.fromEntries(Object.entries(metadata ?? {}).map(([k, v]) => [k, fromBase64(v, `payloads[${i}].metadata.${k}`)])),
      data: data === undefined || data === null ? new Uint8Array() : fromBase64(data, `payloads[${i}].data`),
    };
  });
}

/** Serialises payloads as a `Payloads` proto3-JSON body (empty data omitted, as protobuf JSON does). */
export function payloadsToJson(payloads: Payload[]): { payloads: JsonPayload[] } {
  return {
    payloads: payloads.map(({ metadata, data }) => ({
      metadata: Object.fromEntries(Object.entries(metadata ?? {}).map(([k, v]) => [k, toBase64(v)])),
      ...(data && data.byteLength > 0 ? { data: toBase64(data) } : {}),
    })),
  };
}

const readBody = (req: IncomingMessage): Promise<Buffer> => readBoundedBody(req, MAX_BODY_BYTES, `body exceeds ${MAX_BODY_BYTES} bytes`);

/** The HTTP server (not yet listening). */
export function createCodecServer(options: CodecServerOptions): Server {
  const allowed = new Set(options.uiOrigins.map(normalizeOrigin));
  const namespaces = new Set(options.namespaces ?? []);

  const corsHeaders = (origin: string): Record<string, string> => ({
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Allow-Credentials': 'true',
    Vary: 'Origin',
  });

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://codec.invalid');
    const segments = url.pathname.split('/').filter(Boolean);
    const endpoint = segments.at(-1);
    const origin = req.headers.origin;
    let cors: Record<string, string> = { Vary: 'Origin' };
    let namespace: string | undefined;
    try {
      if (origin !== undefined) {
        if (!allowed.has(origin)) throw new HttpError(403, `origin ${origin} is not allowed (allowed: ${[...allowed].join(', ')})`);
        cors = corsHeaders(origin);
      }
      if (endpoint !== 'encode' && endpoint !== 'decode') throw new HttpError(404, 'not found: POST …/encode or …/decode');
      if (req.method === 'OPTIONS') {
        res.writeHead(204, {
          ...cors,
          'Access-Control-Allow-Methods': 'POST, OPTIONS',
          'Access-Control-Allow-Headers': CORS_ALLOWED_HEADERS,
          'Access-Control-Max-Age': '600',
        });
        res.end();
        return;
      }
      if (req.method !== 'POST') {
        res.setHeader('Allow', 'POST, OPTIONS');
        throw new HttpError(405, `${req.method} not allowed: use POST`);
      }
      if (options.auth !== 'none' && !bearerMatches(req.headers.authorization, options.auth.tokens)) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="glidepath-codec"');
        throw new HttpError(401, 'unauthorized: send Authorization: Bearer <token>');
      }
      const header = req.headers['x-namespace'];
      const fromHeader = (Array.isArray(header) ? header[0] : header)?.trim() || undefined;
      const fromPath = segments.length >= 2 ? decodeURIComponent(segments.at(-2)!) : undefined;
      namespace = fromHeader ?? fromPath;
      if (fromHeader !== undefined && fromPath !== undefined && fromHeader !== fromPath) {
        throw new HttpError(400, `X-Namespace "${fromHeader}" and the path's namespace "${fromPath}" differ`);
      }
      if (namespaces.size > 0 && (namespace === undefined || !namespaces.has(namespace))) {
        throw new HttpError(403, namespace === undefined ? 'no namespace given: send X-Namespace' : `namespace "${namespace}" is not served here (served: ${[...namespaces].join(', ')})`);
      }
      const raw = await readBody(req);
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        throw new HttpError(400, `invalid JSON: ${(err as Error).message}`);
      }
      const payloads = payloadsFromJson(body);
      let result: Payload[];
      try {
        result = endpoint === 'encode' ? await options.codec.encode(payloads) : await options.codec.decode(payloads);
      } catch (err) {
        throw new HttpError(400, `${endpoint} failed: ${(err as Error).message}`);
      }
      send(res, 200, payloadsToJson(result), cors);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof HttpError ? err.message : `internal error: ${(err as Error).message}`;
      options.onError?.({ status, path: url.pathname, namespace, message });
      // A refused origin has no CORS headers in `cors`, so the browser does not expose even the error.
      if (!res.headersSent) send(res, status, { error: message }, cors);
      else res.destroy();
    }
  };

  return createServer((req, res) => {
    void handle(req, res);
  });
}

/** Resolves when the server has stopped: new connections refused, in-flight requests finished (or cut after `graceMs`). */
export async function closeGracefully(server: Server, graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Keep-alive connections become idle once their response is sent: close them as they do.
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  const timer = setTimeout(() => server.closeAllConnections(), graceMs);
  try {
    await closed;
  } finally {
    clearInterval(sweep);
    clearTimeout(timer);
  }
}

/** Resolves with the first SIGINT or SIGTERM the process receives (and stops listening for either). */
export function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise<NodeJS.Signals>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(sig);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port "${value}" is not a port number`);
  return port;
}

/** The server's auth from its options: a token file (option or env), or `--no-auth` on loopback only. */
export function authFromOptions(opts: { host: string; authTokenFile?: string | undefined; auth: boolean; allowNoAuthOffLoopback?: boolean | undefined }, env: NodeJS.ProcessEnv = process.env): CodecAuth {
  if (!opts.auth) {
    if (!isLoopbackHost(opts.host) && !opts.allowNoAuthOffLoopback) throw new Error(`--no-auth is only accepted with a loopback --host, not ${opts.host}: anyone reaching the port could decrypt (--allow-no-auth-off-loopback when the port is published on loopback only)`);
    return 'none';
  }
  const file = opts.authTokenFile ?? env[AUTH_TOKEN_FILE_ENV];
  if (!file) throw new Error(`no auth tokens: pass --auth-token-file (or set ${AUTH_TOKEN_FILE_ENV}); --no-auth for a loopback-only server without authentication`);
  return { tokens: readTokenFile(file) };
}

export function registerCodecServer(program: Command): void {
  program
    .command('codec-server')
    .description(`serve Temporal's remote codec protocol (POST /encode, /decode) with the keys from ${KEYS_ENV} or ${KEY_FILE_ENV}, for the Web UI and the temporal CLI`)
    .addOption(new Option('--port <port>', 'port to listen on (0: any free port)').default(DEFAULT_CODEC_PORT).argParser(parsePort))
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--ui-origin <origin>', `the Web UI's origin, allowed by CORS (repeatable; default ${DEFAULT_UI_ORIGIN})`, collect)
    .option('--namespace <namespace>', 'serve only this namespace (repeatable; default: any)', collect)
    .option('--auth-token-file <file>', `bearer tokens accepted, one per line (default: $${AUTH_TOKEN_FILE_ENV})`)
    .option('--no-auth', 'accept requests without a token (only with a loopback --host, unless --allow-no-auth-off-loopback)')
    .option('--allow-no-auth-off-loopback', 'with --no-auth: bind a non-loopback address anyway (a container whose port is published on loopback only)')
    .action(async (opts: { port: number; host: string; uiOrigin?: string[]; namespace?: string[]; authTokenFile?: string; auth: boolean; allowNoAuthOffLoopback?: boolean }) => {
      let codec;
      let uiOrigins: string[];
      let auth: CodecAuth;
      try {
        codec = loadCodecFromEnv(process.env);
        uiOrigins = (opts.uiOrigin ?? [DEFAULT_UI_ORIGIN]).map(normalizeOrigin);
      } catch (err) {
        process.stderr.write(`glidepath codec-server: ${(err as Error).message}\n`);
        process.exitCode = EXIT.usage;
        return;
      }
      if (!codec) {
        process.stderr.write(`glidepath codec-server: no encryption keys: set ${KEYS_ENV} or ${KEY_FILE_ENV}\n`);
        process.exitCode = EXIT.usage;
        return;
      }
      try {
        auth = authFromOptions(opts);
      } catch (err) {
        process.stderr.write(`glidepath codec-server: ${(err as Error).message}\n`);
        process.exitCode = EXIT.usage;
        return;
      }
      const server = createCodecServer({
        codec,
        auth,
        uiOrigins,
        namespaces: opts.namespace,
        onError: ({ status, path, namespace, message }) =>
          process.stderr.write(`${JSON.stringify({ level: status >= 500 ? 'error' : 'warn', status, path, namespace, message })}\n`),
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const { address, port } = server.address() as AddressInfo;
      const host = address.includes(':') ? `[${address}]` : address;
      process.stdout.write(
        `codec server listening on http://${host}:${port} (${auth === 'none' ? 'NO authentication' : `${auth.tokens.length} bearer token(s)`}; key ids ${codec.keyIds.join(', ')}; encrypting with ${codec.currentKeyId}; CORS for ${uiOrigins.join(', ')})\n`,
      );
      const signal = await untilStopSignal();
      process.stdout.write(`codec server: ${signal}, shutting down\n`);
      await closeGracefully(server);
      process.stdout.write('codec server stopped\n');
      process.exitCode = EXIT.ok;
    });
}
