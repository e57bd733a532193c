/**
 * A real BuildKit daemon for tests: `buildkitd` (built by `scripts/provision-buildkit.sh`, path in
 * BUILDKITD_BIN) as root on `tcp://127.0.0.1:<free port>`, state under a temp `--root`, the OCI worker
 * with the `native` snapshotter (plain copies: no overlay mounts needed) and Debian's runc, the containerd
 * worker off. Resolves once `buildctl debug workers` answers. `stop()` sends SIGTERM (SIGKILL after 10 s),
 * waits for the exit and removes the state.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { spawnDaemon } from './daemon.ts';
import { freePort } from './daemon.ts';

const run = promisify(execFile);

export interface BuildkitdInstance {
  /** `tcp://127.0.0.1:<port>`: what buildctl's `--addr` and buildx's remote driver take. */
  address: string;
  root: string;
  process: ChildProcess;
  stop(): Promise<void>;
  log(): string;
}

function binary(env: string, name: string): string {
  const bin = process.env[env];
  if (!bin) throw new Error(`${env} is not set: eval "$(bash scripts/provision-buildkit.sh)" builds ${name} and sets it`);
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(`${env}=${bin} is not executable: run bash scripts/provision-buildkit.sh`);
  }
  return bin;
}

export const buildkitdBinary = (): string => binary('BUILDKITD_BIN', 'buildkitd');
export const buildctlBinary = (): string => binary('BUILDCTL_BIN', 'buildctl');
export const buildxBinary = (): string => binary('BUILDX_BIN', 'buildx');

export async function startBuildkitd(): Promise<BuildkitdInstance> {
  const bin = buildkitdBinary();
  const buildctl = buildctlBinary();
  const dir = mkdtempSync(join(tmpdir(), 'glidepath-buildkitd-'));
  const root = join(dir, 'root');
  const port = await freePort();
  const address = `tcp://127.0.0.1:${port}`;
  const args = [
    '--addr',
    address,
    '--root',
    root,
    '--oci-worker=true',
    '--oci-worker-snapshotter=native',
    '--containerd-worker=false',
    // Keep the OTLP trace socket and the config out of the machine's /run/buildkit and /etc/buildkit.
    '--otel-socket-path',
    join(dir, 'otel.sock'),
    '--config',
    join(dir, 'buildkitd.toml'),
  ];
  if (process.env.RUNC_BIN) args.push('--oci-worker-binary', process.env.RUNC_BIN);
  const daemon = spawnDaemon(bin, args);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (daemon.exited()) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`buildkitd exited before answering:\n${daemon.log()}`);
    }
    try {
      const { stdout } = await run(buildctl, ['--addr', address, 'debug', 'workers'], { timeout: 5_000 });
      if (/\S/.test(stdout.split('\n').slice(1).join('\n'))) break; // a header line and at least one worker
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      daemon.process.kill('SIGKILL');
      await daemon.exit;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`buildkitd did not list a worker within 30s:\n${daemon.log()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    address,
    root,
    process: daemon.process,
    async stop() {
      await daemon.terminate(10_000);
      rmSync(dir, { recursive: true, force: true });
    },
    log: daemon.log,
  };
}
