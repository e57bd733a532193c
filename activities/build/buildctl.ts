/**
 * The BuildKit image builder through `buildctl` against a buildkitd that runs elsewhere (a sidecar, a
 * shared build service; `tcp://` or `unix://`): one `buildctl build` with the built-in Dockerfile
 * frontend (`dockerfile.v0`, nothing pulled for it), the image exporter pushing to every tag, and
 * `--metadata-file` giving the pushed manifest digest. Registry credentials reach buildctl as a private
 * `DOCKER_CONFIG` directory holding a copy of the resolved docker config (buildctl hands them to the
 * daemon through its session), removed afterwards. Output lines go to `onProgress`; cancellation kills
 * buildctl's process tree (shared handling in `process.ts`), and buildkitd cancels the solve when its
 * client goes away.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { ImageBuilder } from '../contract.ts';
import { classifyBuildkitFailure, digestFromMetadata, imageOutput, isBuildkitAddress, type BuildkitOptions } from './buildkit.ts';
import { checkRequest, privateDockerConfig, runTool, type BuildRequest } from './process.ts';

export class BuildctlBuilder implements ImageBuilder {
  readonly type = 'buildctl';
  private readonly options: BuildkitOptions;

  constructor(options: BuildkitOptions) {
    if (!isBuildkitAddress(options.address)) throw new Error(`buildctl: buildkit address "${options.address}": expected tcp://host:port or unix:///path`);
    this.options = options;
  }

  /** Builds and pushes to every tag in one solve; returns the pushed manifest digest. */
  async build(input: BuildRequest): Promise<{ digest: string }> {
    checkRequest('buildctl', input);
    const work = await mkdtemp(join(tmpdir(), 'glidepath-buildctl-'));
    const config = await privateDockerConfig('glidepath-buildctl-auth-', input.authFile);
    try {
      const metadata = join(work, 'metadata.json');
      const dockerfile = input.dockerfile ?? join(input.context, 'Dockerfile');
      const args = ['--addr', this.options.address, 'build', '--progress', 'plain', '--frontend', 'dockerfile.v0'];
      args.push('--local', `context=${input.context}`, '--local', `dockerfile=${dirname(dockerfile)}`, '--opt', `filename=${basename(dockerfile)}`);
      for (const [k, v] of Object.entries(input.buildArgs ?? {})) args.push('--opt', `build-arg:${k}=${v}`);
      for (const [k, v] of Object.entries(input.labels ?? {})) args.push('--opt', `label:${k}=${v}`);
      if (input.target) args.push('--opt', `target=${input.target}`);
      if (input.platform) args.push('--opt', `platform=${input.platform}`);
      args.push('--output', imageOutput(input), '--metadata-file', metadata);
      await runTool({
        tool: 'buildctl',
        bin: this.options.bin ?? 'buildctl',
        args,
        what: 'build',
        env: { ...process.env, DOCKER_CONFIG: config.dir },
        signal: input.signal,
        onProgress: input.onProgress,
        killGraceMs: this.options.killGraceMs,
        classify: (code, sig, output) => classifyBuildkitFailure('buildctl', this.options.address, code, sig, output),
      });
      return { digest: await digestFromMetadata('buildctl', metadata) };
    } finally {
      await config.dispose();
      await rm(work, { recursive: true, force: true });
    }
  }
}
