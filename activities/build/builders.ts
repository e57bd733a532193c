/**
 * The worker's image builders from its environment:
 * - `buildah` always (storage under GLIDEPATH_BUILD_ROOT, default `<tmpdir>/glidepath-buildah`);
 * - `buildctl` and `buildx` only when GLIDEPATH_BUILDKIT_ADDR names a buildkitd (`tcp://host:port` or
 *   `unix:///path`); their binaries are GLIDEPATH_BUILDCTL_BIN / GLIDEPATH_BUILDX_BIN, else `buildctl` /
 *   `buildx` on PATH.
 * GLIDEPATH_BUILDER picks the builder for releases whose `spec.build.builder` is unset (default `buildah`);
 * naming one that is not configured stops the worker at start, not a release later.
 */
import os from 'node:os';
import path from 'node:path';
import type { ImageBuilder } from '../contract.ts';
import { BuildahBuilder } from './buildah.ts';
import { BuildctlBuilder } from './buildctl.ts';
import { isBuildkitAddress } from './buildkit.ts';
import { BuildxBuilder } from './buildx.ts';

export const BUILDER_ENV = 'GLIDEPATH_BUILDER';
export const BUILDKIT_ADDR_ENV = 'GLIDEPATH_BUILDKIT_ADDR';
export const DEFAULT_BUILDER = 'buildah';

export class BuilderConfigError extends Error {
  override name = 'BuilderConfigError';
}

export function buildersFromEnv(env: NodeJS.ProcessEnv = process.env): Record<string, ImageBuilder> {
  const builders: Record<string, ImageBuilder> = {
    buildah: new BuildahBuilder({ root: env.GLIDEPATH_BUILD_ROOT || path.join(os.tmpdir(), 'glidepath-buildah') }),
  };
  const address = env[BUILDKIT_ADDR_ENV];
  if (address) {
    if (!isBuildkitAddress(address)) throw new BuilderConfigError(`${BUILDKIT_ADDR_ENV}=${address}: expected tcp://host:port or unix:///path`);
    builders.buildctl = new BuildctlBuilder({ address, bin: env.GLIDEPATH_BUILDCTL_BIN || undefined });
    builders.buildx = new BuildxBuilder({ address, bin: env.GLIDEPATH_BUILDX_BIN || undefined });
  }
  const chosen = env[BUILDER_ENV];
  if (chosen && !Object.hasOwn(builders, chosen)) {
    const hint = chosen === 'buildctl' || chosen === 'buildx' ? ` (set ${BUILDKIT_ADDR_ENV} to a buildkitd address)` : '';
    throw new BuilderConfigError(`${BUILDER_ENV}=${chosen}: not a configured builder; configured: ${Object.keys(builders).join(', ')}${hint}`);
  }
  return builders;
}
