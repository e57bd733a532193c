/**
 * The buildah image builder: `buildah build` (chroot isolation, vfs storage, no daemon) into a local
 * store under a configurable root, then `buildah push` of the built image id to every tag, with
 * `--digestfile` giving the manifest digest the registry stores. Each output line goes to
 * `onProgress` (the activity heartbeats them). Cancellation (the signal) terminates the whole process
 * tree: SIGTERM to buildah's process group and every descendant, SIGKILL after a grace period, and the
 * build only settles once the tree is gone.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { ImageBuilder } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { isLoopbackRegistry, parseImageRef } from './registry.ts';

/** What a build needs beyond the contract's `{context, dockerfile, tags, signal}`; all optional. */
export interface BuildRequest {
  context: string;
  dockerfile?: string | undefined;
  /** Full references to push to (`host/repo:tag`). */
  tags: string[];
  signal: AbortSignal;
  buildArgs?: Record<string, string> | undefined;
  target?: string | undefined;
  platform?: string | undefined;
  labels?: Record<string, string> | undefined;
  /** Plain HTTP and no TLS verification; refused unless every tag's registry is loopback. */
  insecure?: boolean | undefined;
  /** A docker `config.json` with the registry's credentials (never logged). */
  authFile?: string | undefined;
  onProgress?: ((line: string) => void) | undefined;
}

export interface BuildahOptions {
  /** Directory holding buildah's storage (`<root>/storage`) and run state (`<root>/run`). */
  root: string;
  /** The buildah binary; `buildah` on PATH by default. */
  bin?: string;
  /** Grace between SIGTERM and SIGKILL on cancellation. */
  killGraceMs?: number;
}

/** Pids of every live descendant of `pid` (from /proc), deepest last. */
export function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e));
      children.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

function signalTree(pid: number, sig: NodeJS.Signals, known: Set<number>): void {
  for (const d of descendantsOf(pid)) known.add(d);
  try {
    process.kill(-pid, sig);
  } catch {
    // group gone
  }
  for (const p of known) {
    try {
      process.kill(p, sig);
    } catch {
      // gone
    }
  }
}

export class BuildahBuilder implements ImageBuilder {
  readonly type = 'buildah';
  private readonly options: BuildahOptions;

  constructor(options: BuildahOptions) {
    this.options = options;
  }

  private globalArgs(): string[] {
    return ['--root', join(this.options.root, 'storage'), '--runroot', join(this.options.root, 'run'), '--storage-driver', 'vfs'];
  }

  /** Builds, pushes to every tag, and returns the pushed manifest digest (the same for every tag). */
  async build(input: BuildRequest): Promise<{ digest: string }> {
    if (input.tags.length === 0) throw ApplicationFailure.nonRetryable('build: no tags to push to', ErrorType.InvalidSpec);
    const refs = input.tags.map((t) => parseImageRef(t));
    if (input.insecure) {
      const remote = refs.find((r) => !isLoopbackRegistry(r.registry));
      if (remote) throw ApplicationFailure.nonRetryable(`build: insecure push is only allowed to loopback registries, not ${remote.registry}`, ErrorType.InvalidSpec);
    }
    const work = await mkdtemp(join(tmpdir(), 'glidepath-buildah-'));
    try {
      const iidfile = join(work, 'iid');
      const args = [...this.globalArgs(), 'build', '--isolation', 'chroot', '--iidfile', iidfile];
      if (input.dockerfile) args.push('--file', input.dockerfile);
      for (const [k, v] of Object.entries(input.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
      for (const [k, v] of Object.entries(input.labels ?? {})) args.push('--label', `${k}=${v}`);
      if (input.target) args.push('--target', input.target);
      if (input.platform) args.push('--platform', input.platform);
      args.push(input.context);
      await this.run(args, input, 'build');
      const imageId = (await readFile(iidfile, 'utf8')).trim();

      let digest: string | undefined;
      for (const tag of input.tags) {
        const digestfile = join(work, 'digest');
        const push = [...this.globalArgs(), 'push', '--digestfile', digestfile];
        if (input.insecure) push.push('--tls-verify=false');
        if (input.authFile) push.push('--authfile', input.authFile);
        push.push(imageId, `docker://${tag}`);
        await this.run(push, input, `push ${tag}`);
        const pushed = (await readFile(digestfile, 'utf8')).trim();
        digest ??= pushed;
        if (pushed !== digest) input.onProgress?.(`warning: ${tag} was pushed as ${pushed}, the first tag as ${digest}`);
      }
      return { digest: digest as string };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** Removes every image and container of this builder's store (worker housekeeping). */
  async prune(signal: AbortSignal): Promise<void> {
    await this.run([...this.globalArgs(), 'rmi', '--all', '--force'], { signal }, 'rmi').catch(() => undefined);
  }

  private run(args: string[], input: Pick<BuildRequest, 'signal' | 'onProgress'>, what: string): Promise<void> {
    const { signal } = input;
    if (signal.aborted) return Promise.reject(new ApplicationFailure(`buildah ${what} cancelled`, 'Cancelled'));
    return new Promise((resolve, reject) => {
      const child = spawn(this.options.bin ?? 'buildah', args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BUILDAH_ISOLATION: 'chroot' } });
      const tail: string[] = [];
      let partial = '';
      const onData = (chunk: string): void => {
        const lines = (partial + chunk).split(/\r?\n/);
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (!line.trim()) continue;
          tail.push(line);
          if (tail.length > 20) tail.shift();
          input.onProgress?.(line);
        }
      };
      child.stdout.setEncoding('utf8').on('data', onData);
      child.stderr.setEncoding('utf8').on('data', onData);
      const known = new Set<number>();
      let killTimer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        if (child.pid === undefined) return;
        const pid = child.pid;
        signalTree(pid, 'SIGTERM', known);
        killTimer = setTimeout(() => signalTree(pid, 'SIGKILL', known), this.options.killGraceMs ?? 3_000);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      child.once('error', (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(ApplicationFailure.nonRetryable(`cannot run buildah: ${err.message}`, ErrorType.PreflightFailed));
      });
      child.once('close', (code, sig) => {
        signal.removeEventListener('abort', onAbort);
        void (async () => {
          if (signal.aborted) {
            // Wait until nothing of the tree is left, escalating to SIGKILL.
            const deadline = Date.now() + 15_000;
            while ([...known].some(alive) && Date.now() < deadline) {
              for (const p of known) if (alive(p)) safeKill(p, 'SIGKILL');
              await new Promise((r) => setTimeout(r, 50));
            }
            if (killTimer) clearTimeout(killTimer);
            reject(new ApplicationFailure(`buildah ${what} cancelled`, 'Cancelled'));
            return;
          }
          if (killTimer) clearTimeout(killTimer);
          if (partial.trim()) tail.push(partial);
          if (code === 0) return resolve();
          reject(classifyBuildahFailure(what, code, sig, tail.join('\n')));
        })();
      });
    });
  }
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function safeKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

/** Build errors in the Dockerfile or context are permanent; push errors follow the registry's answer. */
export function classifyBuildahFailure(what: string, code: number | null, sig: NodeJS.Signals | null, output: string): Error {
  const msg = `buildah ${what} failed (${code !== null ? `exit ${code}` : `signal ${sig}`}): ${redact(output).slice(-1500)}`;
  // Words and status phrases only: bare numbers would match inside digests.
  if (/unauthorized|authentication required|invalid username\/password|status(?: code)?:? 401\b/i.test(output)) return ApplicationFailure.nonRetryable(msg, ErrorType.Unauthorized);
  if (/\bdenied\b|forbidden|status(?: code)?:? 403\b/i.test(output)) return ApplicationFailure.nonRetryable(msg, ErrorType.Forbidden);
  if (/connection refused|i\/o timeout|no such host|connection reset|status(?: code)?:? 5\d\d\b|\bEOF\b/i.test(output)) return new Error(msg);
  if (what === 'build') return ApplicationFailure.nonRetryable(msg, ErrorType.InvalidSpec);
  return new Error(msg);
}

/** Strips anything that looks like `user:password@` or an Authorization header from buildah's output. */
function redact(s: string): string {
  return s.replace(/\/\/[^/\s:@]+:[^/\s@]+@/g, '//***@').replace(/(authorization:\s*)\S+(\s+\S+)?/gi, '$1***');
}
