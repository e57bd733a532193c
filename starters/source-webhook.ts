/**
 * The Git sources' webhook: `POST /webhook` with a forge's push event wakes every Git source of that
 * repository and branch at once (instead of at its next poll). The body is verified the way GitHub
 * signs it: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the shared secret>`,
 * compared in constant time; a missing or wrong signature is refused with 401 before the body is
 * read as JSON, and nothing is signalled. The secret comes from a file (never an argument).
 * A wake decides nothing: the source fetches the branch itself.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Client } from '@temporalio/client';
import { wakeSignal } from '../workflows/git-source/messages.ts';
import { GIT_SOURCE_WORKFLOW, normalizeRepository, sourceIdPrefix } from '../workflows/git-source/source.ts';
import { HttpError, readBoundedBody } from './http.ts';

export const WEBHOOK_SECRET_FILE_ENV = 'GLIDEPATH_GIT_WEBHOOK_SECRET_FILE';
export const WEBHOOK_PATH = '/webhook';
/** GitHub caps payloads at 25 MiB; a push event is a few KiB. */
const MAX_BODY_BYTES = 5 * 1024 * 1024;
const MIN_SECRET_LENGTH = 16;
/** The most running sources listed per wake. */
const MAX_SOURCES = 1000;

/** The secret of a secret file (trimmed); refused when missing or short. */
export function readWebhookSecret(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`webhook secret file ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  const secret = text.trim();
  if (secret.length < MIN_SECRET_LENGTH) throw new Error(`webhook secret file ${file}: the secret needs at least ${MIN_SECRET_LENGTH} characters`);
  return secret;
}

/** GitHub's signature header for `body`: `sha256=<hex>`. */
export function signBody(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Whether `header` is the right `sha256=<hex>` signature of `body`, compared in constant time. */
export function signatureValid(secret: string, body: Buffer, header: string | undefined): boolean {
  const m = /^sha256=([0-9a-f]{64})$/i.exec(header?.trim() ?? '');
  const expected = createHmac('sha256', secret).update(body).digest();
  const given = m ? Buffer.from((m[1] as string).toLowerCase(), 'hex') : Buffer.alloc(expected.length);
  return timingSafeEqual(given, expected) && m !== null;
}

export interface PushEvent {
  repositories: string[];
  branch: string;
  commit?: string;
}

/** The repository URLs, branch and new head of a push event; undefined for a push that is not to a branch (a tag). */
export function parsePush(body: Buffer): PushEvent | undefined {
  let event: unknown;
  try {
    event = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
  const e = event as { ref?: unknown; after?: unknown; repository?: Record<string, unknown> };
  if (typeof e.ref !== 'string') throw new HttpError(400, 'ref: required (a push event names the ref it updated)');
  if (!e.ref.startsWith('refs/heads/')) return undefined;
  const repo = e.repository ?? {};
  const repositories = ['clone_url', 'html_url', 'url'].map((k) => repo[k]).filter((v): v is string => typeof v === 'string' && /^https?:\/\//.test(v));
  if (repositories.length === 0) throw new HttpError(400, 'repository.clone_url: required (an http(s) URL)');
  const commit = typeof e.after === 'string' && /^[0-9a-f]{40}$/.test(e.after) ? e.after : undefined;
  return { repositories: [...new Set(repositories.map(normalizeRepository))], branch: e.ref.slice('refs/heads/'.length), ...(commit ? { commit } : {}) };
}

/** Signals `wake` to every running source of the repositories and branch; returns their workflow IDs. */
export async function wakeSources(client: Pick<Client, 'workflow'>, push: PushEvent): Promise<string[]> {
  const prefixes = push.repositories.map((repository) => sourceIdPrefix({ repository, branch: push.branch }));
  const ids: string[] = [];
  let seen = 0;
  for await (const w of client.workflow.list({ query: `WorkflowType = '${GIT_SOURCE_WORKFLOW}' AND ExecutionStatus = 'Running'` })) {
    if (++seen > MAX_SOURCES) break;
    if (prefixes.some((p) => w.workflowId.startsWith(p)) && !ids.includes(w.workflowId)) ids.push(w.workflowId);
  }
  for (const id of ids) await client.workflow.getHandle(id).signal(wakeSignal, { by: 'webhook', ...(push.commit ? { commit: push.commit } : {}) });
  return ids;
}

export interface WebhookServerOptions {
  secret: string;
  wake: (push: PushEvent) => Promise<string[]>;
  /** Called once per request with its outcome (status, what happened). */
  onRequest?: (info: { status: number; message: string }) => void;
}

function reply(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
}

async function handle(o: WebhookServerOptions, req: IncomingMessage, res: ServerResponse): Promise<{ status: number; message: string }> {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname !== WEBHOOK_PATH) throw new HttpError(404, `not found: POST ${WEBHOOK_PATH}`);
  if (req.method !== 'POST') throw new HttpError(405, `method ${req.method ?? ''}: POST only`);
  const body = await readBoundedBody(req, MAX_BODY_BYTES, `body larger than ${MAX_BODY_BYTES} bytes`);
  if (!signatureValid(o.secret, body, req.headers['x-hub-signature-256'] as string | undefined)) throw new HttpError(401, 'X-Hub-Signature-256: missing or wrong signature');
  const event = String(req.headers['x-github-event'] ?? 'push');
  if (event === 'ping') {
    reply(res, 200, { ok: true, event });
    return { status: 200, message: 'ping' };
  }
  if (event !== 'push') {
    reply(res, 202, { ignored: `event ${event}: only push events wake sources` });
    return { status: 202, message: `ignored event ${event}` };
  }
  const push = parsePush(body);
  if (!push) {
    reply(res, 202, { ignored: 'not a branch push' });
    return { status: 202, message: 'ignored: not a branch push' };
  }
  const woken = await o.wake(push);
  reply(res, 202, { woken });
  return { status: 202, message: `${push.repositories[0]} ${push.branch}: woke ${woken.length} source(s)` };
}

export function createWebhookServer(o: WebhookServerOptions): Server {
  return createServer((req, res) => {
    handle(o, req, res).then(
      (outcome) => o.onRequest?.(outcome),
      (err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        const message = err instanceof HttpError ? err.message : `internal error: ${(err as Error).message}`;
        if (!res.headersSent) reply(res, status, { error: message });
        req.resume();
        o.onRequest?.({ status, message });
      },
    );
  });
}
