/**
 * What every image builder shares: the request shape, running a build tool as a child process (its own
 * process group; output lines to `onProgress`; on cancellation SIGTERM to the group and every descendant
 * found in /proc, SIGKILL after a grace period, settling only once none is alive), temp docker config
 * directories, and the classification of a tool's failure output into the activity error types.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
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

/** The checks every builder makes before running anything: tags present, `insecure` only for loopback. */
export function checkRequest(tool: string, input: BuildRequest): void {
  if (input.tags.length === 0) throw ApplicationFailure.nonRetryable(`${tool}: no tags to push to`, ErrorType.InvalidSpec);
  const refs = input.tags.map((t) => parseImageRef(t));
  if (input.insecure) {
    const remote = refs.find((r) => !isLoopbackRegistry(r.registry));
    if (remote) throw ApplicationFailure.nonRetryable(`${tool}: insecure push is only allowed to loopback registries, not ${remote.registry}`, ErrorType.InvalidSpec);
  }
}

/**
 * A private DOCKER_CONFIG directory (0700) for tools that read `$DOCKER_CONFIG/config.json` (buildctl,
 * buildx): a 0600 copy of `authFile`, or no config.json at all, so the worker user's own
 * `~/.docker/config.json` is never consulted. `dispose()` removes it.
 */
export async function privateDockerConfig(prefix: string, authFile: string | undefined): Promise<{ dir: string; dispose(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o700);
  try {
    if (authFile) {
      await copyFile(authFile, join(dir, 'config.json'));
      await chmod(join(dir, 'config.json'), 0o600);
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw ApplicationFailure.nonRetryable(`registry auth file ${authFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, ErrorType.InvalidSpec);
  }
  return { dir, dispose: () => rm(dir, { recursive: true, force: true }) };
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
  for (const p of known) safeKill(p, sig);
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

export interface RunOptions {
  /** The tool's name in messages (`buildah`, `buildctl`, …). */
  tool: string;
  bin: string;
  args: string[];
  /** What this invocation does, for messages and classification (`build`, `push <tag>`, …). */
  what: string;
  env?: NodeJS.ProcessEnv | undefined;
  signal: AbortSignal;
  onProgress?: ((line: string) => void) | undefined;
  /** Grace between SIGTERM and SIGKILL on cancellation; 3 s by default. */
  killGraceMs?: number | undefined;
  /** Turns a non-zero exit into the error to throw; gets the last 40 output lines. */
  classify(code: number | null, sig: NodeJS.Signals | null, output: string): Error;
}

/**
 * Runs a build tool to completion. Rejects with a `Cancelled` ApplicationFailure once the signal has
 * fired and no process of the tool's tree is alive any more, with `classify(...)` on a non-zero exit,
 * and with a non-retryable `PreflightFailed` when the binary cannot be started.
 */
export function runTool(o: RunOptions): Promise<void> {
  const { signal } = o;
  if (signal.aborted) return Promise.reject(new ApplicationFailure(`${o.tool} ${o.what} cancelled`, 'Cancelled'));
  return new Promise((resolve, reject) => {
    const child = spawn(o.bin, o.args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: o.env ?? process.env });
    const tail: string[] = [];
    let partial = '';
    const onData = (chunk: string): void => {
      const lines = (partial + chunk).split(/\r?\n/);
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        tail.push(line);
        if (tail.length > 40) tail.shift();
        o.onProgress?.(line);
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
      killTimer = setTimeout(() => signalTree(pid, 'SIGKILL', known), o.killGraceMs ?? 3_000);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(ApplicationFailure.nonRetryable(`cannot run ${o.tool}: ${err.message}`, ErrorType.PreflightFailed));
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
          reject(new ApplicationFailure(`${o.tool} ${o.what} cancelled`, 'Cancelled'));
          return;
        }
        if (killTimer) clearTimeout(killTimer);
        if (partial.trim()) tail.push(partial);
        if (code === 0) return resolve();
        reject(o.classify(code, sig, tail.join('\n')));
      })();
    });
  });
}

/**
 * A build tool's failure as an activity error. Registry answers first (words and status phrases only:
 * bare numbers would match inside digests): 401 → `Unauthorized`, 403 → `Forbidden`, both
 * non-retryable; connection problems and 5xx are plain (retried) errors. Otherwise a failure while
 * building (`buildFailed`) is `InvalidSpec`, and anything else is retried.
 */
export function classifyToolFailure(tool: string, what: string, code: number | null, sig: NodeJS.Signals | null, output: string, buildFailed: boolean): Error {
  const msg = `${tool} ${what} failed (${code !== null ? `exit ${code}` : `signal ${sig}`}): ${redact(withoutFileContents(output)).slice(-1500)}`;
  if (/unauthorized|authentication required|invalid username\/password|status(?: code)?:? 401\b/i.test(output)) return ApplicationFailure.nonRetryable(msg, ErrorType.Unauthorized);
  if (/\bdenied\b|forbidden|status(?: code)?:? 403\b/i.test(output)) return ApplicationFailure.nonRetryable(msg, ErrorType.Forbidden);
  if (/connection refused|i\/o timeout|no such host|connection reset|status(?: code)?:? 5\d\d\b|\bEOF\b|\b50[0-4] [A-Z]|deadline exceeded|code = Unavailable/i.test(output)) return new Error(msg);
  if (buildFailed) return ApplicationFailure.nonRetryable(msg, ErrorType.InvalidSpec);
  return new Error(msg);
}

/**
 * A builder's output without the text it quotes from the files it read: BuildKit's source excerpt
 * (`   1 | >>> …` between dashed rules, ` > [stage] …` step echo lines are kept) and the parser's
 * "unknown instruction: …" / "parse error on line N: …" tails (buildah, BuildKit). Whatever file a
 * Dockerfile path reached, its contents must not travel into error text (history, status).
 */
export function withoutFileContents(output: string): string {
  return output
    .split('\n')
    .filter((l) => !/^\s*\d+ \|/.test(l) && !/^-{10,}\s*$/.test(l) && !/^(?:\S+\/)?Dockerfile[^\s:]*:\d+\s*$/.test(l))
    .map((l) => l.replace(/((?:unknown instruction|parse error on line \d+|unexpected token|syntax error)\s*:?)\s*.*$/i, '$1 (file contents not shown)'))
    .join('\n');
}

/** Strips anything that looks like `user:password@` or an Authorization header from a tool's output. */
export function redact(s: string): string {
  return s.replace(/\/\/[^/\s:@]+:[^/\s@]+@/g, '//***@').replace(/(authorization:\s*)\S+(\s+\S+)?/gi, '$1***');
}
