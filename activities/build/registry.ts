/**
 * A small OCI distribution API client (axios): resolve a tag to its manifest digest, check that a
 * digest exists, read an image's config labels. Auth follows the registry's challenge: the first
 * request goes anonymous; a `401` with `WWW-Authenticate: Basic` is retried with the credentials, a
 * `Bearer realm=…,service=…,scope=…` challenge fetches a token from the realm (with the credentials
 * as basic auth when there are any) and retries with it.
 *
 * Errors name the registry, never the password: 401 → `Unauthorized`, 403 → `Forbidden`, 404 →
 * `NotFound` (non-retryable); connection refused, timeouts and 5xx are plain errors (retried).
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import axios, { type AxiosResponse } from 'axios';
import { parseReference } from '../../model/reference.ts';
import { ErrorType } from '../errors.ts';

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

export interface ImageRef {
  /** Registry host as written (`127.0.0.1:5000`, `ghcr.io`); `docker.io` for Docker Hub. */
  registry: string;
  /** Repository path inside the registry (`team/app`; `library/nginx` on Docker Hub). */
  repository: string;
  tag?: string | undefined;
  digest?: string | undefined;
}

export interface Credentials {
  username: string;
  password: string;
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** Parses `host[:port]/path[:tag][@sha256:…]`; a first component without `.`/`:` (and not localhost) means Docker Hub. */
export function parseImageRef(ref: string): ImageRef {
  // The reference grammar first: nothing else (quotes, commas, `=`) may reach a builder's arguments.
  const checked = parseReference(ref);
  if (typeof checked === 'string') throw ApplicationFailure.nonRetryable(`image "${printable(ref)}" ${checked}`, ErrorType.InvalidSpec);
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw ApplicationFailure.nonRetryable(`image "${ref}": "${digest}" is not a sha256 digest`, ErrorType.InvalidSpec);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const first = rest.split('/')[0] ?? '';
  let registry: string;
  let repository: string;
  if (rest.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    repository = rest.slice(first.length + 1);
  } else {
    registry = 'docker.io';
    repository = rest.includes('/') ? rest : `library/${rest}`;
  }
  if (!repository || !/^[a-z0-9]+(?:[._/-][a-z0-9]+)*$/.test(repository.replaceAll('__', '_'))) {
    throw ApplicationFailure.nonRetryable(`image "${ref}": "${repository}" is not a repository name`, ErrorType.InvalidSpec);
  }
  if (tag !== undefined && !/^[\w][\w.-]{0,127}$/.test(tag)) throw ApplicationFailure.nonRetryable(`image "${ref}": "${tag}" is not a tag`, ErrorType.InvalidSpec);
  return { registry, repository, tag, digest };
}

/** A reference for a message: control characters escaped, at most 200 characters. */
function printable(ref: string): string {
  const s = JSON.stringify(String(ref)).slice(1, -1);
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

/** `registry/repository` as it is written in an image reference. */
export function repositoryOf(ref: ImageRef): string {
  return `${ref.registry}/${ref.repository}`;
}

/** True for 127.0.0.0/8, ::1 and localhost: the only registries plain HTTP is allowed for. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(1, registry.indexOf(']')) : (registry.split(':')[0] ?? '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Reads the credentials for `registry` from a docker `config.json` document (`auths[host].auth` or username/password). */
export function credentialsFromDockerConfig(configJson: string, registry: string): Credentials | undefined {
  let doc: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
  try {
    doc = JSON.parse(configJson) as typeof doc;
  } catch {
    throw ApplicationFailure.nonRetryable('registry auth file is not valid JSON', ErrorType.InvalidSpec);
  }
  const keys = registry === 'docker.io' ? ['docker.io', 'index.docker.io', 'https://index.docker.io/v1/', 'registry-1.docker.io'] : [registry, `https://${registry}`, `http://${registry}`];
  for (const key of keys) {
    const entry = doc.auths?.[key];
    if (!entry) continue;
    if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i > 0) return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
    }
  }
  return undefined;
}

export interface RegistryClientOptions {
  /** Registries (host[:port]) spoken to over plain HTTP; only loopback hosts are accepted. */
  insecure?: boolean;
  credentials?: Credentials | undefined;
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"|(\w+)=([^,\s]+)/g)) {
    const key = (p[1] ?? p[3] ?? '').toLowerCase();
    params[key] = p[2] ?? p[4] ?? '';
  }
  return { scheme: (m[1] ?? '').toLowerCase(), params };
}

/** One registry host: the base URL and the authorization header learnt from its challenges. */
export class RegistryClient {
  readonly registry: string;
  readonly baseUrl: string;
  private readonly options: RegistryClientOptions;
  private authorization: string | undefined;

  constructor(registry: string, options: RegistryClientOptions = {}) {
    if (options.insecure && !isLoopbackRegistry(registry)) {
      throw ApplicationFailure.nonRetryable(`registry ${registry}: insecure (plain HTTP) is only allowed for loopback registries`, ErrorType.InvalidSpec);
    }
    this.registry = registry;
    this.options = options;
    const host = registry === 'docker.io' ? 'registry-1.docker.io' : registry;
    this.baseUrl = `${options.insecure ? 'http' : 'https'}://${host}`;
  }

  /** The digest a tag (or digest) points at now, from `Docker-Content-Digest` (or the body's sha256 when a GET is needed). */
  async resolveDigest(repository: string, reference: string): Promise<string> {
    const res = await this.request('HEAD', `/v2/${repository}/manifests/${reference}`, { accept: MANIFEST_ACCEPT }, refName(repository, reference));
    const header = res.headers['docker-content-digest'];
    if (typeof header === 'string' && DIGEST_RE.test(header)) return header;
    const got = await this.request('GET', `/v2/${repository}/manifests/${reference}`, { accept: MANIFEST_ACCEPT }, refName(repository, reference));
    const body = Buffer.from(got.data as ArrayBuffer);
    return `sha256:${createHash('sha256').update(body).digest('hex')}`;
  }

  /** True when the manifest exists; false on 404; other failures throw. */
  async manifestExists(repository: string, reference: string): Promise<boolean> {
    try {
      await this.resolveDigest(repository, reference);
      return true;
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === ErrorType.NotFound) return false;
      throw err;
    }
  }

  /** The config labels of a single-platform image manifest; undefined for an index or a config without labels. */
  async imageLabels(repository: string, reference: string): Promise<Record<string, string> | undefined> {
    const res = await this.request('GET', `/v2/${repository}/manifests/${reference}`, { accept: MANIFEST_ACCEPT }, refName(repository, reference));
    const manifest = JSON.parse(Buffer.from(res.data as ArrayBuffer).toString('utf8')) as { config?: { digest?: string } };
    const configDigest = manifest.config?.digest;
    if (!configDigest) return undefined;
    const blob = await this.request('GET', `/v2/${repository}/blobs/${configDigest}`, {}, `${repository}@${configDigest}`);
    const config = JSON.parse(Buffer.from(blob.data as ArrayBuffer).toString('utf8')) as { config?: { Labels?: Record<string, string> } };
    return config.config?.Labels ?? undefined;
  }

  private async request(method: 'HEAD' | 'GET', path: string, headers: Record<string, string>, what: string): Promise<AxiosResponse> {
    let res = await this.send(method, `${this.baseUrl}${path}`, headers);
    if (res.status === 401) {
      const challenge = parseChallenge(headerOf(res, 'www-authenticate'));
      const next = await this.answer(challenge);
      if (next !== undefined) {
        this.authorization = next;
        res = await this.send(method, `${this.baseUrl}${path}`, headers);
      }
    }
    this.classify(res, what);
    return res;
  }

  /** The Authorization header for a challenge, or undefined when there is nothing new to try. */
  private async answer(challenge: Challenge | undefined): Promise<string | undefined> {
    const creds = this.options.credentials;
    const basic = creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : undefined;
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') return basic !== undefined && basic !== this.authorization ? basic : undefined;
    if (challenge.scheme !== 'bearer') return undefined;
    const realm = challenge.params['realm'];
    if (!realm) return undefined;
    const url = new URL(realm);
    if (challenge.params['service']) url.searchParams.set('service', challenge.params['service']);
    if (challenge.params['scope']) url.searchParams.set('scope', challenge.params['scope']);
    const res = await this.send('GET', url.toString(), basic ? { authorization: basic } : {}, true);
    this.classify(res, `token endpoint ${url.origin}${url.pathname}`);
    const body = JSON.parse(Buffer.from(res.data as ArrayBuffer).toString('utf8')) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw ApplicationFailure.nonRetryable(`registry ${this.registry}: token endpoint answered without a token`, ErrorType.Unauthorized);
    return `Bearer ${token}`;
  }

  private async send(method: 'HEAD' | 'GET', url: string, headers: Record<string, string>, bare = false): Promise<AxiosResponse> {
    const h: Record<string, string> = { ...headers };
    if (!bare && this.authorization) h['authorization'] = this.authorization;
    try {
      return await axios.request({
        method,
        url,
        headers: h,
        responseType: 'arraybuffer',
        timeout: this.options.timeoutMs ?? 15_000,
        validateStatus: () => true,
        maxRedirects: 5,
        proxy: false,
        ...(this.options.signal ? { signal: this.options.signal } : {}),
      });
    } catch (err) {
      // Connection refused, reset, timeout, DNS: transient, retried by the activity's retry policy.
      // The AxiosError is not kept as the cause: its `config` holds the Authorization header, and
      // workers log failures with their causes.
      const code = axios.isAxiosError(err) ? (err.code ?? '') : '';
      // eslint-disable-next-line preserve-caught-error
      throw new Error(`registry ${this.registry} unreachable${code ? ` (${code})` : ''}: ${(err as Error).message}`);
    }
  }

  private classify(res: AxiosResponse, what: string): void {
    const s = res.status;
    if (s >= 200 && s < 300) return;
    if (s === 401) throw ApplicationFailure.nonRetryable(`registry ${this.registry}: unauthorized for ${what} (credentials missing or rejected)`, ErrorType.Unauthorized);
    if (s === 403) throw ApplicationFailure.nonRetryable(`registry ${this.registry}: forbidden for ${what}`, ErrorType.Forbidden);
    if (s === 404) throw ApplicationFailure.nonRetryable(`registry ${this.registry}: ${what} not found`, ErrorType.NotFound);
    if (s === 429 || s >= 500) throw new Error(`registry ${this.registry}: HTTP ${s} for ${what}`);
    throw ApplicationFailure.nonRetryable(`registry ${this.registry}: HTTP ${s} for ${what}`, ErrorType.BadRequest);
  }
}

function headerOf(res: AxiosResponse, name: string): string | undefined {
  const v: unknown = res.headers[name];
  if (Array.isArray(v)) return typeof v[0] === 'string' ? v[0] : undefined;
  return typeof v === 'string' ? v : undefined;
}

/** `repo:tag` or `repo@sha256:…`, for messages. */
function refName(repository: string, reference: string): string {
  return reference.startsWith('sha256:') ? `${repository}@${reference}` : `${repository}:${reference}`;
}
