/** A server process (Traefik in the data plane; buildkitd, docker-registry in the tests): its output collected, its exit tracked, a graceful stop. */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Daemon {
  process: ChildProcess;
  /** stdout and stderr so far. */
  log(): string;
  exited(): boolean;
  /** Resolves when the process exits. */
  exit: Promise<void>;
  /** SIGTERM, SIGKILL after `graceMs`, and wait for the exit; nothing when it has already exited. */
  terminate(graceMs: number): Promise<void>;
}

/** Starts `bin` with `args`; `env` is added to this process's environment. */
export function spawnDaemon(bin: string, args: string[], env?: Record<string, string>): Daemon {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
  let log = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (log += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (log += c));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  return {
    process: child,
    log: () => log,
    exited: () => exited,
    exit,
    async terminate(graceMs) {
      if (exited) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(t);
    },
  };
}
