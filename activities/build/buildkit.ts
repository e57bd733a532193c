/**
 * What the two BuildKit clients (`buildctl`, `docker buildx`) share: the daemon address check, the image
 * exporter's `--output` value, reading the pushed digest from `--metadata-file`, and the classification
 * of their failure output (both print BuildKit's `ERROR:`/`error:` lines).
 */
import { readFile } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import { parseReference } from '../../model/reference.ts';
import { ErrorType } from '../errors.ts';
import { classifyToolFailure, type BuildRequest } from './process.ts';

export interface BuildkitOptions {
  /** buildkitd's address: `tcp://host:port` or `unix:///path/buildkitd.sock`. */
  address: string;
  /** The client binary (`buildctl` or `buildx`); the bare name on PATH by default. */
  bin?: string | undefined;
  /** Grace between SIGTERM and SIGKILL on cancellation. */
  killGraceMs?: number | undefined;
}

/** Whether `address` is something buildctl and buildx's remote driver both accept. */
export function isBuildkitAddress(address: string): boolean {
  return /^(tcp:\/\/[^\s/]+:\d+|unix:\/\/\/\S+)$/.test(address);
}

/** The image exporter pushing to every tag (`registry.insecure` only when the request says so). */
export function imageOutput(input: BuildRequest): string {
  // CSV: the quoted field keeps the tag list together. References by the grammar contain neither
  // `"` nor `,` nor `=`: anything else could add exporter fields (type=local,dest=…, registry.insecure).
  for (const t of input.tags) {
    if (typeof parseReference(t) === 'string') throw ApplicationFailure.nonRetryable(`build tag ${JSON.stringify(t)} is not an image reference`, ErrorType.InvalidSpec);
  }
  return `type=image,"name=${input.tags.join(',')}",push=true${input.insecure ? ',registry.insecure=true' : ''}`;
}

/** The pushed manifest's digest from a BuildKit metadata file (`containerimage.digest`). */
export async function digestFromMetadata(tool: string, file: string): Promise<string> {
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${tool}: no readable metadata file after the build (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  const digest = meta['containerimage.digest'];
  if (typeof digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(digest)) {
    throw new Error(`${tool}: the metadata file has no containerimage.digest (keys: ${Object.keys(meta).join(', ')})`);
  }
  return digest;
}

/**
 * BuildKit clients print the whole progress (including RUN steps' own output) and end with the error.
 * Only the error lines (and the failing step's name) are classified and quoted: a RUN step printing
 * "unauthorized" is not a registry answer. A failed solve that is not about pushing, exporting or
 * reaching a registry is the Dockerfile's or the context's (`InvalidSpec`); an unreachable buildkitd
 * is retried. The message names the daemon's address.
 */
export function classifyBuildkitFailure(tool: string, address: string, code: number | null, sig: NodeJS.Signals | null, output: string): Error {
  const errorLines = output
    .split('\n')
    .filter((l) => /^(error|ERROR)\b|^#\d+ ERROR:|failed to solve|^ > /.test(l))
    .join('\n');
  const quoted = errorLines || output;
  const solveFailed = /failed to solve|^#\d+ ERROR:/m.test(quoted);
  const registryOrDaemon = /failed to push|pushing|exporting|failed to (do|fetch|authorize|resolve)|unexpected status|failed to copy|connection|dial |listing workers|deadline exceeded|x509|tls:/i.test(quoted);
  return classifyToolFailure(tool, `build on ${address}`, code, sig, quoted, solveFailed && !registryOrDaemon);
}
