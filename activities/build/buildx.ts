/**
 * The `docker buildx build` image builder with buildx's `remote` driver: a builder instance pointing at
 * a buildkitd address is created in a private `BUILDX_CONFIG` directory for each build, so no Docker
 * engine is involved (buildx's default `docker` driver builds inside a Docker engine; the `remote`
 * driver is what is exercised here). The standalone `buildx` binary is used (the same program as the
 * `docker buildx` plugin). Provenance and SBOM attestations are off: with them the tag would point at an
 * image index rather than the image manifest, which the source-digest skip check does not follow.
 * Credentials, progress, cancellation and the pushed digest work as for `buildctl` (`buildctl.ts`).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImageBuilder } from '../contract.ts';
import { classifyBuildkitFailure, digestFromMetadata, imageOutput, isBuildkitAddress, type BuildkitOptions } from './buildkit.ts';
import { checkRequest, classifyToolFailure, privateDockerConfig, runTool, type BuildRequest } from './process.ts';

const BUILDER = 'glidepath';

export class BuildxBuilder implements ImageBuilder {
  readonly type = 'buildx';
  private readonly options: BuildkitOptions;

  constructor(options: BuildkitOptions) {
    if (!isBuildkitAddress(options.address)) throw new Error(`buildx: buildkit address "${options.address}": expected tcp://host:port or unix:///path`);
    this.options = options;
  }

  /** Creates the remote builder, builds and pushes to every tag; returns the pushed manifest digest. */
  async build(input: BuildRequest): Promise<{ digest: string }> {
    checkRequest('buildx', input);
    const work = await mkdtemp(join(tmpdir(), 'glidepath-buildx-'));
    const config = await privateDockerConfig('glidepath-buildx-auth-', input.authFile);
    try {
      await mkdir(join(work, 'buildx'), { mode: 0o700 });
      const bin = this.options.bin ?? 'buildx';
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DOCKER_CONFIG: config.dir,
        BUILDX_CONFIG: join(work, 'buildx'),
        BUILDX_BUILDER: BUILDER,
        // The metadata file then holds the digests and not the build's parameters (build args).
        BUILDX_METADATA_PROVENANCE: 'disabled',
        BUILDX_NO_DEFAULT_ATTESTATIONS: '1',
      };
      const common = { tool: 'buildx', bin, env, signal: input.signal, onProgress: input.onProgress, killGraceMs: this.options.killGraceMs };
      await runTool({
        ...common,
        args: ['create', '--name', BUILDER, '--driver', 'remote', this.options.address],
        what: 'create',
        classify: (code, sig, output) => classifyToolFailure('buildx', 'create', code, sig, output, false),
      });
      const metadata = join(work, 'metadata.json');
      const args = ['build', '--progress', 'plain', '--provenance=false', '--sbom=false'];
      if (input.dockerfile) args.push('--file', input.dockerfile);
      for (const [k, v] of Object.entries(input.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
      for (const [k, v] of Object.entries(input.labels ?? {})) args.push('--label', `${k}=${v}`);
      if (input.target) args.push('--target', input.target);
      if (input.platform) args.push('--platform', input.platform);
      args.push('--output', imageOutput(input), '--metadata-file', metadata, input.context);
      await runTool({ ...common, args, what: 'build', classify: (code, sig, output) => classifyBuildkitFailure('buildx', this.options.address, code, sig, output) });
      return { digest: await digestFromMetadata('buildx', metadata) };
    } finally {
      await config.dispose();
      await rm(work, { recursive: true, force: true });
    }
  }
}
