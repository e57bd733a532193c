/**
 * The build activities: `buildImage(target, build)` builds the release's image from a source context
 * with one of the worker's builders (`build.builder`, else the worker's GLIDEPATH_BUILDER, else
 * `buildah`; see builders.ts), pushes it, checks that the registry serves the reported digest under
 * every tag, and returns the pinned `repo@sha256:…` reference;
 * `verifyImage(target, image)` checks that an image's manifest exists in its registry (preflight).
 *
 * Idempotency: the source digest (sha256 over the context's files, the Dockerfile, build args,
 * target and platform) is stored as the image label `io.glidepath.source-digest`. Before building,
 * every requested tag is resolved; when all of them point at one manifest whose config carries that
 * label with the same value, the build is skipped and that digest returned. A label (not a tag
 * suffix) keeps the registry's tag list clean and survives retags; it costs two GETs per check.
 *
 * Credentials never travel through workflow input or history: `build.registry.authSecret` names a
 * Kubernetes Secret (`.dockerconfigjson`) in the release's namespace, resolved here through
 * `deps.secrets`; otherwise the worker's docker config file (`GLIDEPATH_REGISTRY_AUTH_FILE`) is used.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, mkdtemp, readFile, readdir, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { Context, CancelledFailure } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { BuildSpec } from '../../model/types.ts';
import type { ActivityDeps, ReleaseTarget } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { REFUSED_CONTEXT_DIRS } from '../../model/fields.ts';
import { buildTagProblem, isTag } from '../../model/reference.ts';
import { BUILDER_ENV, BUILDKIT_ADDR_ENV, DEFAULT_BUILDER } from './builders.ts';
import { withoutFileContents, type BuildRequest } from './process.ts';
import { RegistryClient, credentialsFromDockerConfig, isLoopbackRegistry, parseImageRef, repositoryOf, type Credentials } from './registry.ts';

export const SOURCE_DIGEST_LABEL = 'io.glidepath.source-digest';
export const REGISTRY_AUTH_FILE_ENV = 'GLIDEPATH_REGISTRY_AUTH_FILE';
export const CONTEXT_ROOTS_ENV = 'GLIDEPATH_BUILD_CONTEXT_ROOTS';

/** Directories a build context may never be or lie under, whatever GLIDEPATH_BUILD_CONTEXT_ROOTS says (model/fields.ts). */
export { REFUSED_CONTEXT_DIRS };

/** The build section of a release (workflow input: paths and names only, no secrets). */
export type { BuildSpec };

export interface BuildResult {
  /** `registry/repo@sha256:…` of the first tag's repository. */
  image: string;
  digest: string;
  sourceDigest: string;
  /** True when the tags already carried an image of this source digest. */
  skipped: boolean;
}

export interface BuildActivityOptions {
  /** Docker config.json path with registry credentials (worker configuration). */
  authFile?: string | undefined;
  /** The builder for a build without `builder` (GLIDEPATH_BUILDER; `buildah` when unset). */
  defaultBuilder?: string | undefined;
  /** Directories build contexts must lie under (GLIDEPATH_BUILD_CONTEXT_ROOTS, comma-separated); unset: anywhere but {@link REFUSED_CONTEXT_DIRS}. */
  contextRoots?: string[] | undefined;
}

/** Options from the worker's environment. */
export function buildOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): BuildActivityOptions {
  const roots = (env[CONTEXT_ROOTS_ENV] ?? '').split(',').map((r) => r.trim()).filter(Boolean);
  for (const r of roots) if (!isAbsolute(r)) throw new Error(`${CONTEXT_ROOTS_ENV}: "${r}" is not an absolute path`);
  return { authFile: env[REGISTRY_AUTH_FILE_ENV] || undefined, defaultBuilder: env[BUILDER_ENV] || undefined, ...(roots.length > 0 ? { contextRoots: roots } : {}) };
}

/** sha256 over the sorted context tree (path, type, mode's exec bit, content or link target) and the build inputs. */
export async function sourceDigest(build: BuildSpec, signal?: AbortSignal): Promise<string> {
  const root = await realpath(resolve(build.context)).catch(() => resolve(build.context));
  const h = createHash('sha256');
  const walk = async (dir: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      if (signal?.aborted) throw new CancelledFailure('build cancelled while hashing the context');
      const full = join(dir, name);
      const rel = relative(root, full);
      const st = await lstat(full);
      if (st.isDirectory()) {
        h.update(`d\0${rel}\0`);
        await walk(full);
      } else if (st.isSymbolicLink()) {
        h.update(`l\0${rel}\0${await readlink(full)}\0`);
      } else if (st.isFile()) {
        h.update(`f\0${rel}\0${st.mode & 0o111 ? 'x' : '-'}\0${st.size}\0`);
        for await (const chunk of createReadStream(full)) h.update(chunk as Buffer); // streamed: contexts can be large
      }
    }
  };
  try {
    await walk(root);
  } catch (err) {
    if (err instanceof CancelledFailure) throw err;
    throw ApplicationFailure.nonRetryable(`build context ${build.context} cannot be read: ${(err as Error).message}`, ErrorType.InvalidSpec);
  }
  // The Dockerfile is inside the context (resolveBuildPaths), so the walk above hashed it.
  const inputs = { dockerfile: build.dockerfile ?? null, buildArgs: sortObj(build.buildArgs ?? {}), target: build.target ?? null, platform: build.platform ?? null };
  h.update(JSON.stringify(inputs));
  return `sha256:${h.digest('hex')}`;
}

function sortObj(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The context and Dockerfile as real paths (symlinks resolved), the Dockerfile inside the context: a
 * Dockerfile elsewhere would let a spec make the builder read (and quote in its errors) any file the
 * worker can read. Undefined dockerfile: the builder's default `Dockerfile` in the context.
 */
export async function resolveBuildPaths(build: Pick<BuildSpec, 'context' | 'dockerfile'>, contextRoots?: readonly string[]): Promise<{ context: string; dockerfile?: string | undefined }> {
  let context: string;
  try {
    context = await realpath(resolve(build.context));
  } catch (err) {
    throw ApplicationFailure.nonRetryable(`build.context ${build.context} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, ErrorType.InvalidSpec);
  }
  const under = (dir: string): boolean => context === dir || context.startsWith(dir.endsWith(sep) ? dir : dir + sep);
  if (context === sep || REFUSED_CONTEXT_DIRS.some(under)) {
    throw ApplicationFailure.nonRetryable(`build.context ${build.context} is ${context}: a system directory is never a build context`, ErrorType.InvalidSpec);
  }
  if (contextRoots && !contextRoots.some((r) => under(resolve(r)))) {
    throw ApplicationFailure.nonRetryable(`build.context ${build.context} is outside the worker's ${CONTEXT_ROOTS_ENV} (${contextRoots.join(', ')})`, ErrorType.InvalidSpec);
  }
  const candidate = build.dockerfile ?? 'Dockerfile';
  if (isAbsolute(candidate) || candidate.split(/[\\/]/).includes('..')) {
    throw ApplicationFailure.nonRetryable(`build.dockerfile "${candidate}" must be a path inside build.context (relative, without "..")`, ErrorType.InvalidSpec);
  }
  let dockerfile: string;
  try {
    dockerfile = await realpath(join(context, candidate));
  } catch (err) {
    if (build.dockerfile === undefined && (err as NodeJS.ErrnoException).code === 'ENOENT') return { context };
    throw ApplicationFailure.nonRetryable(`build.dockerfile ${candidate} cannot be read in build.context: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, ErrorType.InvalidSpec);
  }
  if (!dockerfile.startsWith(context + sep)) {
    throw ApplicationFailure.nonRetryable(`build.dockerfile ${candidate} resolves outside build.context (symbolic links are followed)`, ErrorType.InvalidSpec);
  }
  return { context, dockerfile: build.dockerfile === undefined ? undefined : dockerfile };
}

/** Full references for the build's tags: bare tags go on `image`'s repository. */
export function fullTags(build: BuildSpec, image: string): string[] {
  if (build.tags.length === 0) throw ApplicationFailure.nonRetryable('build.tags is empty', ErrorType.InvalidSpec);
  return build.tags.map((t, i) => {
    const problem = buildTagProblem(t);
    if (problem) throw ApplicationFailure.nonRetryable(`build.tags[${i}] ${JSON.stringify(t)} ${problem}`, ErrorType.InvalidSpec);
    if (isTag(t)) {
      const ref = parseImageRef(image);
      return `${repositoryOf(ref)}:${t}`;
    }
    const ref = parseImageRef(t);
    if (ref.digest) throw ApplicationFailure.nonRetryable(`build tag "${t}" has a digest; tags name where to push`, ErrorType.InvalidSpec);
    return `${repositoryOf(ref)}:${ref.tag ?? 'latest'}`;
  });
}

interface ResolvedAuth {
  /** A docker config.json on disk for buildah (a temp copy when it came from a Secret). */
  authFile?: string | undefined;
  configJson?: string | undefined;
  cleanup(): Promise<void>;
}

async function resolveAuth(deps: ActivityDeps, options: BuildActivityOptions, target: ReleaseTarget, build: BuildSpec): Promise<ResolvedAuth> {
  const secret = build.registry?.authSecret;
  if (secret) {
    if (!deps.secrets) throw ApplicationFailure.nonRetryable(`build.registry.authSecret "${secret}" needs a secret resolver on this worker`, ErrorType.InvalidSpec);
    const configJson = await deps.secrets(target.namespace, { name: secret, key: '.dockerconfigjson' });
    const dir = await mkdtemp(join(tmpdir(), 'glidepath-auth-'));
    await chmod(dir, 0o700);
    const authFile = join(dir, 'config.json');
    await writeFile(authFile, configJson, { mode: 0o600 });
    return { authFile, configJson, cleanup: () => rm(dir, { recursive: true, force: true }) };
  }
  if (options.authFile) {
    let configJson: string;
    try {
      configJson = await readFile(options.authFile, 'utf8');
    } catch (err) {
      throw ApplicationFailure.nonRetryable(`registry auth file ${options.authFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, ErrorType.InvalidSpec);
    }
    return { authFile: options.authFile, configJson, cleanup: async () => undefined };
  }
  return { cleanup: async () => undefined };
}

function clientFor(registry: string, auth: ResolvedAuth, insecure: boolean, signal?: AbortSignal): RegistryClient {
  const credentials: Credentials | undefined = auth.configJson ? credentialsFromDockerConfig(auth.configJson, registry) : undefined;
  return new RegistryClient(registry, { insecure: insecure && isLoopbackRegistry(registry), credentials, ...(signal ? { signal } : {}) });
}

/** The source digest already pushed under every tag, as one manifest digest; undefined when a build is needed. */
async function alreadyPushed(tags: string[], source: string, auth: ResolvedAuth, insecure: boolean, signal: AbortSignal): Promise<string | undefined> {
  let digest: string | undefined;
  for (const tag of tags) {
    const ref = parseImageRef(tag);
    const client = clientFor(ref.registry, auth, insecure, signal);
    let d: string;
    try {
      d = await client.resolveDigest(ref.repository, ref.tag ?? 'latest');
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === ErrorType.NotFound) return undefined;
      throw err;
    }
    if (digest !== undefined && d !== digest) return undefined;
    digest = d;
    const labels = await client.imageLabels(ref.repository, d);
    if (labels?.[SOURCE_DIGEST_LABEL] !== source) return undefined;
  }
  return digest;
}

const HEARTBEAT_EVERY_MS = 2_000;

export function createBuildActivities(deps: ActivityDeps, options: BuildActivityOptions = buildOptionsFromEnv()) {
  return {
    async buildImage(target: ReleaseTarget, build: BuildSpec): Promise<BuildResult> {
      const ctx = Context.current();
      const signal = ctx.cancellationSignal;
      const type = build.builder ?? options.defaultBuilder ?? DEFAULT_BUILDER;
      const builder = deps.builders && Object.hasOwn(deps.builders, type) ? deps.builders[type] : undefined;
      if (!builder) {
        const configured = Object.keys(deps.builders ?? {});
        const hint = type === 'buildctl' || type === 'buildx' ? `; it needs ${BUILDKIT_ADDR_ENV} on the worker` : '';
        throw ApplicationFailure.nonRetryable(`image builder "${type}" is not available on this worker (configured: ${configured.join(', ') || 'none'}${hint})`, ErrorType.UnsupportedProvider);
      }
      const tags = fullTags(build, target.image);
      const insecure = build.registry?.insecure === true;
      if (insecure) {
        for (const t of tags) {
          const r = parseImageRef(t).registry;
          if (!isLoopbackRegistry(r)) throw ApplicationFailure.nonRetryable(`build.registry.insecure is only allowed for loopback registries, not ${r}`, ErrorType.InvalidSpec);
        }
      }
      const paths = await resolveBuildPaths(build, options.contextRoots);
      ctx.heartbeat({ phase: 'hashing' });
      const source = await sourceDigest(build, signal);
      const first = parseImageRef(tags[0] as string);
      const pinned = (digest: string): string => `${repositoryOf(first)}@${digest}`;
      const auth = await resolveAuth(deps, options, target, build);
      try {
        const existing = await alreadyPushed(tags, source, auth, insecure, signal);
        if (existing) {
          ctx.heartbeat({ phase: 'skipped', digest: existing });
          return { image: pinned(existing), digest: existing, sourceDigest: source, skipped: true };
        }
        let last = 0;
        let lines = 0;
        const request: BuildRequest = {
          context: paths.context,
          dockerfile: paths.dockerfile,
          tags,
          signal,
          buildArgs: build.buildArgs,
          target: build.target,
          platform: build.platform,
          labels: { [SOURCE_DIGEST_LABEL]: source },
          insecure,
          authFile: auth.authFile,
          onProgress: (line: string) => {
            lines++;
            const now = Date.now();
            if (now - last < HEARTBEAT_EVERY_MS) return;
            last = now;
            ctx.heartbeat({ phase: 'building', lines, line: withoutFileContents(line).slice(0, 300) });
          },
        };
        let digest: string;
        // A RUN step can be silent for minutes: heartbeat on a timer too, not only on output.
        const timer = setInterval(() => ctx.heartbeat({ phase: 'building', lines }), HEARTBEAT_EVERY_MS * 5);
        try {
          ({ digest } = await builder.build(request));
        } catch (err) {
          if (signal.aborted) throw new CancelledFailure(`build of ${tags[0]} cancelled`);
          throw err;
        } finally {
          clearInterval(timer);
        }
        // What the builder reported must be what the registry serves under every tag now.
        for (const tag of tags) {
          const ref = parseImageRef(tag);
          const served = await clientFor(ref.registry, auth, insecure, signal).resolveDigest(ref.repository, ref.tag ?? 'latest');
          if (served !== digest) throw new Error(`${type} reported ${digest} for ${tag}, but registry ${ref.registry} serves ${served} for it`);
        }
        ctx.heartbeat({ phase: 'pushed', digest, builder: type });
        return { image: pinned(digest), digest, sourceDigest: source, skipped: false };
      } finally {
        await auth.cleanup();
      }
    },

    /** Preflight for an image: its manifest exists; a tag is resolved to the digest it points at now. */
    async verifyImage(target: ReleaseTarget, image: string, registry?: BuildSpec['registry']): Promise<{ image: string; digest: string }> {
      const ref = parseImageRef(image);
      const auth = await resolveAuth(deps, options, target, { context: '.', tags: [], registry });
      try {
        const client = clientFor(ref.registry, auth, registry?.insecure === true, Context.current().cancellationSignal);
        const digest = await client.resolveDigest(ref.repository, ref.digest ?? ref.tag ?? 'latest');
        if (ref.digest && digest !== ref.digest) {
          throw ApplicationFailure.nonRetryable(`image ${image}: registry ${ref.registry} serves ${digest} for it`, ErrorType.VerificationFailed);
        }
        return { image: `${repositoryOf(ref)}@${digest}`, digest };
      } finally {
        await auth.cleanup();
      }
    },
  };
}

export type BuildActivities = ReturnType<typeof createBuildActivities>;
