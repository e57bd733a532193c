/**
 * A real Prometheus for tests: its own process on 127.0.0.1 (a free port, a temp data dir, 1 s scrape
 * and evaluation intervals) scraping the targets a test names, stopped (or killed) by the test.
 * The binary comes from PROMETHEUS_BIN or PATH; `bash scripts/provision-prometheus.sh` installs it.
 * Optional: the remote-write receiver, a web config (basic auth, TLS) for auth tests.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './daemon.ts';

export const PROMETHEUS_BIN_ENV = 'PROMETHEUS_BIN';

/** The Prometheus binary, or an error that says how to get one. */
export function prometheusBinary(): string {
  const fromEnv = process.env[PROMETHEUS_BIN_ENV];
  if (fromEnv) {
    try {
      accessSync(fromEnv, constants.X_OK);
      return fromEnv;
    } catch {
      throw new Error(`${PROMETHEUS_BIN_ENV}=${fromEnv} is not an executable file`);
    }
  }
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const candidate = join(dir, 'prometheus');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error(
    `no prometheus binary: set ${PROMETHEUS_BIN_ENV} or put prometheus on PATH ` +
      `(export ${PROMETHEUS_BIN_ENV}="$(bash scripts/provision-prometheus.sh)" installs Debian's package)`,
  );
}


export interface PrometheusOptions {
  /** `host:port` scrape targets (job "app"). */
  targets: string[];
  scrapeIntervalSeconds?: number;
  remoteWriteReceiver?: boolean;
  /** Contents of a `--web.config.file` (basic_auth_users, tls_server_config); paths in it are the caller's. */
  webConfig?: string;
}

export interface PrometheusInstance {
  /** `http://127.0.0.1:<port>` (https when the web config enables TLS). */
  url: string;
  port: number;
  dataDir: string;
  process: ChildProcess;
  /** SIGTERM and wait; removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /** SIGKILL at once (a crash), then waits for the exit; the temp dir stays until stop(). */
  kill(): Promise<void>;
  /** Everything Prometheus logged, for failure messages. */
  log(): string;
}

/** Starts Prometheus and resolves once it logs that it is ready to receive web requests. */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusInstance> {
  const bin = prometheusBinary();
  const dir = mkdtempSync(join(tmpdir(), 'glidepath-prometheus-'));
  const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  scrape_timeout: ${interval}`,
    `  evaluation_interval: ${interval}`,
    'scrape_configs:',
    '  - job_name: app',
    '    static_configs:',
    `      - targets: [${options.targets.map((t) => JSON.stringify(t)).join(', ')}]`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'prometheus.yml'), config);
  const port = await freePort();
  const args = [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=info',
  ];
  if (options.remoteWriteReceiver) args.push('--web.enable-remote-write-receiver');
  const tls = options.webConfig?.includes('tls_server_config') ?? false;
  if (options.webConfig !== undefined) {
    writeFileSync(join(dir, 'web.yml'), options.webConfig);
    args.push(`--web.config.file=${join(dir, 'web.yml')}`);
  }
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`prometheus did not become ready within 30s:\n${log}`)), 30_000);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      log += chunk;
      if (log.includes('Server is ready to receive web requests')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`prometheus exited (${code ?? signal}) before it was ready:\n${log}`));
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });

  let removed = false;
  const instance: PrometheusInstance = {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    dataDir: dir,
    process: child,
    log: () => log,
    async kill() {
      if (!exited) child.kill('SIGKILL');
      await exit;
    },
    async stop() {
      if (!exited) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
      if (!removed) rmSync(dir, { recursive: true, force: true });
      removed = true;
    },
  };
  return instance;
}

/** A self-signed certificate for 127.0.0.1 (openssl), for TLS tests: returns the PEM paths. */
export function selfSignedCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl could not make a certificate: ${r.stderr || r.error?.message}`);
  return { cert, key };
}

/** Polls `fn` until it resolves truthy or `timeoutMs` passes. */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs}ms${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
