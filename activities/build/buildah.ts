/**
 * The buildah image builder: `buildah build` (chroot isolation, vfs storage, no daemon) into a local
 * store under a configurable root, then `buildah push` of the built image id to every tag, with
 * `--digestfile` giving the manifest digest the registry stores. Each output line goes to
 * `onProgress` (the activity heartbeats them). Cancellation (the signal) terminates the whole process
 * tree: SIGTERM to buildah's process group and every descendant, SIGKILL after a grace period, and the
 * build only settles once the tree is gone.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImageBuilder } from '../contract.ts';
import { checkRequest, classifyToolFailure, runTool, type BuildRequest } from './process.ts';

export type { BuildRequest };

export interface BuildahOptions {
  /** Directory holding buildah's storage (`<root>/storage`) and run state (`<root>/run`). */
  root: string;
  /** The buildah binary; `buildah` on PATH by default. */
  bin?: string;
  /** Grace between SIGTERM and SIGKILL on cancellation. */
  killGraceMs?: number;
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
    checkRequest('build', input);
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
    return runTool({
      tool: 'buildah',
      bin: this.options.bin ?? 'buildah',
      args,
      what,
      env: { ...process.env, BUILDAH_ISOLATION: 'chroot' },
      signal: input.signal,
      onProgress: input.onProgress,
      killGraceMs: this.options.killGraceMs,
      classify: (code, sig, output) => classifyBuildahFailure(what, code, sig, output),
    });
  }
}

/** Build errors in the Dockerfile or context are permanent; push errors follow the registry's answer. */
export function classifyBuildahFailure(what: string, code: number | null, sig: NodeJS.Signals | null, output: string): Error {
  return classifyToolFailure('buildah', what, code, sig, output, what === 'build');
}
