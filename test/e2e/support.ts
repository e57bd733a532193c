/**
 * Shared plumbing of the end-to-end suites: a worker as a child process (so tests can SIGKILL it),
 * the `glidepath` CLI as a child process with its exit code, polling the status query, the clients
 * of the local control plane and Temporal, the stable workload and the Release file the suites write.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, NetworkingV1Api, type V1Deployment } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { statusQuery, type ReleaseStatus } from '../../workflows/messages.ts';
import { freePortsNow } from '../support/daemon.ts';
import { untilQuery } from '../support/poll.ts';

const run = promisify(execFile);
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const temporalAddress = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';

/** A short random suffix for names that must not collide across runs on a persistent server. */
export const randomSuffix = (): string => Math.random().toString(36).slice(2, 7);

/**
 * Environment for a worker and CLI of one suite: its own task queue and metrics ports, so suites
 * never pick up each other's tasks.
 */
export function suiteEnv(taskQueue: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // Below the kernel's ephemeral range, claimed against every other test's ports and checked against
  // every listener (a random pick once met a port in use: the SDK's metrics exporter failed to start).
  const metricsPort = freePortsNow(2);
  return {
    ...process.env,
    TEMPORAL_ADDRESS: temporalAddress,
    GLIDEPATH_TASK_QUEUE: taskQueue,
    GLIDEPATH_USER: 'ci-bot',
    GLIDEPATH_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
    GLIDEPATH_CORE_METRICS_ADDRESS: `127.0.0.1:${metricsPort + 1}`,
    GLIDEPATH_SHUTDOWN_GRACE: '2s',
    GLIDEPATH_WEB_ALLOW: '127.0.0.0/8,::1', // the suites' metric servers are on loopback, refused by default
    // No drift watch per promoted workload in the background of every suite (each would check every
    // minute until its workload is deleted at teardown): the drift suite turns it back on.
    GLIDEPATH_DRIFT_ON_PROMOTION: 'off',
    ...extra,
  };
}

/** Starts `script` (default: the real worker) and resolves once it prints `ready`. */
export async function startWorker(env: NodeJS.ProcessEnv, script = 'workers/main.ts', ready = '"worker started"'): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(root, script)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += String(d);
      if (out.includes(ready)) resolve();
    });
    child.stderr?.on('data', (d: Buffer) => (out += String(d)));
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}: ${out.slice(-3000)}`)));
  });
  return child;
}

export async function killWorker(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `bin/glidepath` and returns its exit code and output (never throws on a non-zero exit). */
export async function cli(env: NodeJS.ProcessEnv, args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(path.join(root, 'bin/glidepath'), args, { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Polls the release's status query until `pred` holds. */
export async function untilStatus(client: Client, id: string, pred: (s: ReleaseStatus) => boolean, what: string, timeoutMs = 90_000): Promise<ReleaseStatus> {
  return untilQuery(client.workflow.getHandle(id), statusQuery, pred, what, { timeoutMs, intervalMs: 200, show: (last) => `${last?.phase} ${last?.message}` });
}

/** The stable workload the suites release: Deployment `web` (4 replicas, v1, a readiness probe, as preflight requires). */
export async function createWebDeployment(apps: AppsV1Api, namespace: string, annotations: Record<string, string> = {}): Promise<void> {
  await apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name: 'web', labels: { app: 'web' } },
      spec: {
        replicas: 4,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' }, annotations },
          spec: { containers: [{ name: 'web', image: 'registry.local/web:v1', readinessProbe: { httpGet: { path: '/healthz', port: 8080 } } }] },
        },
      },
    },
  });
}

/** A Deployment, or undefined when it does not exist. */
export async function findDeployment(apps: AppsV1Api, namespace: string, name: string): Promise<V1Deployment | undefined> {
  try {
    return await apps.readNamespacedDeployment({ name, namespace });
  } catch {
    return undefined;
  }
}

export const imageOf = (d: V1Deployment | undefined): string | undefined => d?.spec?.template.spec?.containers[0]?.image;

export interface Kube {
  kc: KubeConfig;
  apps: AppsV1Api;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  net: NetworkingV1Api;
}

/** The API clients of the local control plane KUBECONFIG points at. */
export function kube(): Kube {
  assert.ok(process.env.KUBECONFIG, 'KUBECONFIG must point at the local control plane (eval "$(bash scripts/kube.sh env)"; scripts/kube.sh up --crds; npm test sets it)');
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return { kc, apps: kc.makeApiClient(AppsV1Api), core: kc.makeApiClient(CoreV1Api), custom: kc.makeApiClient(CustomObjectsApi), net: kc.makeApiClient(NetworkingV1Api) };
}

/** A Temporal client on TEMPORAL_ADDRESS. */
export async function connectClient(): Promise<Client> {
  return new Client({ connection: await Connection.connect({ address: temporalAddress, connectTimeout: '5s' }) });
}

/** A fresh temp dir `glidepath-<name>-e2e-…` for a suite's files. */
export const tempDir = (name: string): Promise<string> => mkdtemp(path.join(os.tmpdir(), `glidepath-${name}-e2e-`));

/** Namespace `ns` with {@link createWebDeployment} and a Service per name in `services`, each selecting `app: web`. */
export async function webNamespace(k: Pick<Kube, 'apps' | 'core'>, ns: string, services: string[] = [], annotations: Record<string, string> = {}): Promise<void> {
  await k.core.createNamespace({ body: { metadata: { name: ns } } });
  await createWebDeployment(k.apps, ns, annotations);
  for (const svc of services) {
    await k.core.createNamespacedService({ namespace: ns, body: { metadata: { name: svc }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } } });
  }
}

/** Waits (up to 30 s, then goes on: the test's own checks fail) until Deployment `name` has `replicas` available. */
export async function waitAvailable(apps: AppsV1Api, namespace: string, name = 'web', replicas = 4): Promise<void> {
  for (let i = 0; i < 120 && (await findDeployment(apps, namespace, name))?.status?.availableReplicas !== replicas; i++) await new Promise((r) => setTimeout(r, 250));
}

/**
 * Writes `<dir>/<ns>.yaml` (`<dir>/<ns>-<name>.yaml` for another workload): the Release `name` (default
 * `web`) in `ns` taking Deployment `name` to registry.local/<name>:v2, followed by `rest` (policy and
 * strategy blocks, indented under `spec:`). Returns the file.
 */
export async function writeRelease(dir: string, ns: string, rest: string, name = 'web'): Promise<string> {
  const file = path.join(dir, name === 'web' ? `${ns}.yaml` : `${ns}-${name}.yaml`);
  await writeFile(
    file,
    `apiVersion: glidepath.dev/v1alpha1
kind: Release
metadata: { name: ${name}, namespace: ${ns} }
spec:
  workloadRef: { kind: Deployment, name: ${name} }
  image: registry.local/${name}:v2
${rest}`,
  );
  return file;
}

/**
 * A canary strategy through Services web-stable/web-canary with `trafficRouting` (its lines, 8 spaces in) and `steps`.
 * The scale-down delays are 1 s, not Argo's 30 s default for a routed canary: no proxy runs in these suites, the
 * same path runs (traffic to stable first, then the canary removed), and the default's wait is not what they test.
 */
export const routedCanary = (trafficRouting: string, steps: string): string => `  strategy:
    canary:
      stableService: web-stable
      canaryService: web-canary
      scaleDownDelaySeconds: 1
      abortScaleDownDelaySeconds: 1
      trafficRouting:
${trafficRouting}      steps:
${steps}`;

/** The `managedRoutes` line of a trafficRouting block; none for no routes. */
export const managedRoutesLine = (names: string[]): string => (names.length ? `        managedRoutes: [${names.map((n) => `{ name: ${n} }`).join(', ')}]\n` : '');

/** The end of a suite: the worker stopped (SIGTERM, awaited), the Temporal connection closed, `namespaces` deleted. */
export async function teardown(s: { worker: ChildProcess | undefined; client: Client | undefined; core: CoreV1Api | undefined; namespaces: string[] }): Promise<void> {
  await killWorker(s.worker, 'SIGTERM');
  await s.client?.connection.close();
  for (const ns of s.namespaces) await s.core?.deleteNamespace({ name: ns }).catch(() => {});
}
