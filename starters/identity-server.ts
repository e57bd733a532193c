/**
 * `glidepath identity-server`: proves who sends a release or API-version action. A caller presents a Kubernetes
 * token (`Authorization: Bearer …`, a ServiceAccount token or whatever the apiserver authenticates)
 * and names the action; the server
 *   1. authenticates the token with a TokenReview (audience `--audience`, default glidepath-identity),
 *   2. authorises with a SubjectAccessReview for that user: verb = the action (approve, promote,
 *      abort, retry) on resource `releases` of group `glidepath.dev`, named by the release ID, in
 *      the release's namespace; for an API version's retirement (approve-retirement,
 *      abort-retirement) on resource `apis`, named by the API workflow ID (RBAC rules may name a
 *      resource that has no CRD),
 *   3. answers with an Ed25519-signed assertion (model/identity.ts) that the workflow verifies with
 *      the pinned public key.
 * The token is used for those two reviews only: never logged, stored or put into the assertion.
 *
 * POST /v1/assertions  {action, releaseId, namespace, step?, attempt?, version?}   (version: retirement actions only, and required there)
 *   200 {assertion, sub, exp}   401 not authenticated   403 not allowed (names the permission)
 *   400 bad request (names the field)   503 the apiserver could not be asked
 * GET /v1/public-key   the PEM public key to pin (GLIDEPATH_IDENTITY_PUBLIC_KEYS on the worker)
 * Every decision is written to stderr as one JSON line (the audit of refused attempts included).
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { AuthenticationV1Api, AuthorizationV1Api, KubeConfig } from '@kubernetes/client-node';
import { Option, type Command } from 'commander';
import { IDENTITY_ACTIONS, isRetirementAction, type IdentityAction } from '../model/identity.ts';
import { AssertionSigner } from './identity-signer.ts';
import { isLoopbackHost } from './codec-server.ts';
import { EXIT } from './output.ts';
import { HttpError, readBoundedBody } from './http.ts';

export const DEFAULT_IDENTITY_PORT = 8787;
export const DEFAULT_AUDIENCE = 'glidepath-identity';
export const RELEASES_GROUP = 'glidepath.dev';
export const RELEASES_RESOURCE = 'releases';
export const APIS_RESOURCE = 'apis';
const MAX_BODY_BYTES = 4096;
const MAX_TOKEN_LENGTH = 16 * 1024;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const WORKFLOW_ID = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,254}$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** The RBAC resource (of group glidepath.dev) an action is authorised on. */
export function actionResource(action: IdentityAction): string {
  return isRetirementAction(action) ? APIS_RESOURCE : RELEASES_RESOURCE;
}

export interface IdentityDecision {
  status: number;
  /** The proven identity, or `unauthenticated`. */
  sub: string;
  action?: string | undefined;
  releaseId?: string | undefined;
  namespace?: string | undefined;
  version?: string | undefined;
  message: string;
}

export interface IdentityServerOptions {
  /** Credentials of the server itself: it needs `create` on tokenreviews and subjectaccessreviews (system:auth-delegator). */
  kubeConfig: KubeConfig;
  signer: AssertionSigner;
  audiences?: string[];
  onDecision?: (d: IdentityDecision) => void;
  tls?: { cert: Buffer; key: Buffer } | undefined;
}

interface ActionRequest {
  action: IdentityAction;
  releaseId: string;
  namespace: string;
  step?: number;
  attempt?: number;
  version?: string;
}

/** The request body as an action request; a 400 naming the field otherwise. */
export function parseActionRequest(body: unknown): ActionRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'body: expected {"action", "releaseId", "namespace", "step"?, "attempt"?, "version"?}');
  const b = body as Record<string, unknown>;
  if (!IDENTITY_ACTIONS.includes(b.action as IdentityAction)) throw new HttpError(400, `action: one of ${IDENTITY_ACTIONS.join(', ')}`);
  if (typeof b.releaseId !== 'string' || !WORKFLOW_ID.test(b.releaseId)) throw new HttpError(400, 'releaseId: the release workflow ID');
  if (typeof b.namespace !== 'string' || !DNS_LABEL.test(b.namespace)) throw new HttpError(400, 'namespace: a Kubernetes namespace name');
  for (const k of ['step', 'attempt'] as const) {
    if (b[k] !== undefined && (typeof b[k] !== 'number' || !Number.isSafeInteger(b[k]) || b[k] < 0)) throw new HttpError(400, `${k}: a whole number ≥ 0`);
  }
  if (isRetirementAction(b.action as IdentityAction)) {
    if (typeof b.version !== 'string' || !VERSION.test(b.version)) throw new HttpError(400, `version: the API version whose retirement ${String(b.action)} is for`);
  } else if (b.version !== undefined) {
    throw new HttpError(400, `version: only approve-retirement and abort-retirement take a version`);
  }
  const known = new Set(['action', 'releaseId', 'namespace', 'step', 'attempt', 'version']);
  const extra = Object.keys(b).find((k) => !known.has(k));
  if (extra !== undefined) throw new HttpError(400, `${extra}: unknown field`);
  return b as unknown as ActionRequest;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const body = await readBoundedBody(req, MAX_BODY_BYTES, `body: at most ${MAX_BODY_BYTES} bytes`);
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'body: not JSON');
  }
}

function bearer(req: IncomingMessage): string | undefined {
  const m = /^Bearer ([^\s]+)$/.exec(req.headers.authorization ?? '');
  return m && m[1]!.length <= MAX_TOKEN_LENGTH ? m[1] : undefined;
}

export function createIdentityServer(opts: IdentityServerOptions): Server {
  const authn = opts.kubeConfig.makeApiClient(AuthenticationV1Api);
  const authz = opts.kubeConfig.makeApiClient(AuthorizationV1Api);
  const audiences = opts.audiences ?? [DEFAULT_AUDIENCE];

  const authenticate = async (token: string): Promise<{ username: string; uid?: string | undefined; groups?: string[] | undefined; extra?: Record<string, string[]> | undefined }> => {
    let review;
    try {
      review = await authn.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } } });
    } catch {
      throw new HttpError(503, 'the Kubernetes API could not review the token');
    }
    const user = review.status?.user;
    if (!review.status?.authenticated || !user?.username) throw new HttpError(401, `token not authenticated for audience ${audiences.join(', ')}`);
    return { username: user.username, uid: user.uid, groups: user.groups, extra: user.extra };
  };

  const authorize = async (user: Awaited<ReturnType<typeof authenticate>>, r: ActionRequest): Promise<void> => {
    let review;
    try {
      review = await authz.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: user.username,
            ...(user.uid ? { uid: user.uid } : {}),
            ...(user.groups ? { groups: user.groups } : {}),
            ...(user.extra ? { extra: user.extra } : {}),
            resourceAttributes: { group: RELEASES_GROUP, resource: actionResource(r.action), verb: r.action, namespace: r.namespace, name: r.releaseId },
          },
        },
      });
    } catch {
      throw new HttpError(503, 'the Kubernetes API could not review the access');
    }
    if (!review.status?.allowed) throw new HttpError(403, `${user.username} may not ${r.action} ${actionResource(r.action)}.${RELEASES_GROUP} ${r.releaseId} in namespace ${r.namespace}`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://identity').pathname;
    if (req.method === 'GET' && path === '/v1/public-key') {
      res.writeHead(200, { 'Content-Type': 'application/x-pem-file' }).end(opts.signer.publicKeyPem);
      return;
    }
    if (path !== '/v1/assertions') throw new HttpError(404, `no ${path}`);
    if (req.method !== 'POST') throw new HttpError(405, 'POST only');
    const request = parseActionRequest(await readBody(req));
    const token = bearer(req);
    const decision = { action: request.action, releaseId: request.releaseId, namespace: request.namespace, ...(request.version !== undefined ? { version: request.version } : {}) };
    let sub = 'unauthenticated';
    try {
      if (!token) throw new HttpError(401, 'Authorization: Bearer <Kubernetes token> is required');
      const user = await authenticate(token);
      sub = user.username;
      await authorize(user, request);
    } catch (err) {
      if (err instanceof HttpError) opts.onDecision?.({ status: err.status, sub, ...decision, message: err.message });
      throw err;
    }
    const { assertion, claims } = opts.signer.sign({ sub, ...request });
    opts.onDecision?.({ status: 200, sub, ...decision, message: `signed, nonce ${claims.nonce}` });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify({ assertion, sub, exp: claims.exp }));
  };

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof HttpError ? err.message : 'internal error';
      if (!res.headersSent) {
        res.writeHead(status, { 'Content-Type': 'application/json', ...(status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {}) }).end(JSON.stringify({ error: message }));
      }
    });
  };
  return opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, listener) : createHttpServer(listener);
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port "${value}" is not a port number`);
  return port;
}

interface ServerFlags {
  keyFile?: string;
  port: number;
  host: string;
  ttl: string;
  audience?: string[];
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

/** The signer and TLS material from the flags; throws a message naming the flag. */
export function serverSetup(opts: ServerFlags, env: NodeJS.ProcessEnv = process.env): { signer: AssertionSigner; tls?: { cert: Buffer; key: Buffer } } {
  const keyFile = opts.keyFile ?? env.GLIDEPATH_IDENTITY_KEY_FILE;
  if (!keyFile) throw new Error('--key-file (or GLIDEPATH_IDENTITY_KEY_FILE): the Ed25519 private key (openssl genpkey -algorithm ed25519)');
  const ttl = Number(opts.ttl);
  let signer: AssertionSigner;
  try {
    signer = AssertionSigner.fromFile(keyFile, ttl);
  } catch (err) {
    throw new Error(`--key-file ${keyFile}: ${(err as Error).message}`, { cause: err });
  }
  if (!!opts.tlsCertFile !== !!opts.tlsKeyFile) throw new Error('--tls-cert-file and --tls-key-file go together');
  if (!opts.tlsCertFile && !isLoopbackHost(opts.host)) throw new Error(`--host ${opts.host} is not loopback: callers send Kubernetes tokens, so serve TLS (--tls-cert-file, --tls-key-file)`);
  const tls = opts.tlsCertFile && opts.tlsKeyFile ? { cert: readFileSync(opts.tlsCertFile), key: readFileSync(opts.tlsKeyFile) } : undefined;
  return { signer, ...(tls ? { tls } : {}) };
}

export function registerIdentityServer(program: Command): void {
  program
    .command('identity-server')
    .description('sign proofs of identity for release and API-retirement actions: Kubernetes TokenReview, then RBAC (verbs approve|promote|abort|retry|override-freeze on releases.glidepath.dev, approve-retirement|abort-retirement on apis.glidepath.dev)')
    .option('--key-file <file>', 'Ed25519 private key, PEM (default: $GLIDEPATH_IDENTITY_KEY_FILE)')
    .addOption(new Option('--port <port>', 'port to listen on (0: any free port)').default(DEFAULT_IDENTITY_PORT).argParser(parsePort))
    .option('--host <host>', 'address to bind (not loopback: TLS required)', '127.0.0.1')
    .option('--ttl <seconds>', 'lifetime of an assertion', '120')
    .option('--audience <aud>', `token audience the TokenReview requires (repeatable; default ${DEFAULT_AUDIENCE})`, collect)
    .option('--tls-cert-file <file>', 'serve https with this certificate')
    .option('--tls-key-file <file>', '... and this key')
    .action(async (opts: ServerFlags) => {
      let setup;
      try {
        setup = serverSetup(opts);
      } catch (err) {
        process.stderr.write(`glidepath identity-server: ${(err as Error).message}\n`);
        process.exitCode = EXIT.usage;
        return;
      }
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromDefault();
      const server = createIdentityServer({
        kubeConfig,
        signer: setup.signer,
        tls: setup.tls,
        ...(opts.audience ? { audiences: opts.audience } : {}),
        onDecision: (d) => process.stderr.write(`${JSON.stringify({ level: d.status === 200 ? 'info' : 'warn', ...d })}\n`),
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host, () => resolve());
      });
      const { address, port } = server.address() as AddressInfo;
      process.stdout.write(`identity server listening on ${setup.tls ? 'https' : 'http'}://${address.includes(':') ? `[${address}]` : address}:${port}; public key:\n${setup.signer.publicKeyPem}`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections(); // kept-alive client connections would hold close() open
      await closed;
    });
}
