/**
 * A real OCI registry for tests: Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1, a free
 * port and a temp storage dir, optionally behind htpasswd basic auth (bcrypt from bcryptjs).
 * `bash scripts/provision-build.sh` installs it. Resolves once `GET /v2/` answers (200, or 401 with auth).
 */
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { freePort, spawnDaemon } from './daemon.ts';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface RegistryOptions {
  /** Basic-auth users; without it the registry is open. */
  users?: Record<string, string>;
  /** Reuse a port (restart after a stop); a free one otherwise. */
  port?: number;
  /** Reuse a storage dir (restart keeps the images); a temp one otherwise. */
  storageDir?: string;
}

export interface RegistryInstance {
  /** `127.0.0.1:<port>`: what image references start with. */
  host: string;
  url: string;
  port: number;
  storageDir: string;
  process: ChildProcess;
  /** SIGTERM and wait; removes the temp dirs. Safe to call twice. */
  stop(): Promise<void>;
  /** Stops the process but keeps the storage dir (for a restart on the same port). */
  halt(): Promise<void>;
  log(): string;
}

export function registryBinary(): string {
  try {
    accessSync(REGISTRY_BIN, constants.X_OK);
    return REGISTRY_BIN;
  } catch {
    throw new Error(`no ${REGISTRY_BIN}: run bash scripts/provision-build.sh (installs Debian's docker-registry)`);
  }
}


export async function startRegistry(options: RegistryOptions = {}): Promise<RegistryInstance> {
  const bin = registryBinary();
  const dir = mkdtempSync(join(tmpdir(), 'glidepath-registry-'));
  const storageDir = options.storageDir ?? join(dir, 'storage');
  const port = options.port ?? (await freePort());
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(storageDir)}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
  ];
  if (options.users) {
    const htpasswd = Object.entries(options.users)
      .map(([user, password]) => `${user}:${bcrypt.hashSync(password, 4)}`)
      .join('\n');
    writeFileSync(join(dir, 'htpasswd'), `${htpasswd}\n`);
    lines.push('auth:', '  htpasswd:', '    realm: glidepath-test', `    path: ${JSON.stringify(join(dir, 'htpasswd'))}`);
  }
  writeFileSync(join(dir, 'config.yml'), `${lines.join('\n')}\n`);
  const daemon = spawnDaemon(bin, ['serve', join(dir, 'config.yml')]);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (daemon.exited()) throw new Error(`docker-registry exited before answering:\n${daemon.log()}`);
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      daemon.process.kill('SIGKILL');
      throw new Error(`docker-registry did not answer /v2/ within 20s:\n${daemon.log()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const halt = (): Promise<void> => daemon.terminate(5_000);
  return {
    host: `127.0.0.1:${port}`,
    url,
    port,
    storageDir,
    process: daemon.process,
    halt,
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
      if (!options.storageDir) rmSync(storageDir, { recursive: true, force: true });
    },
    log: daemon.log,
  };
}
