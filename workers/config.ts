/**
 * Temporal connection settings from the environment, shared by the worker and the CLI:
 * TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, GLIDEPATH_TASK_QUEUE (or GLIDEPATH_CLUSTER: a cluster's worker
 * polls `glidepath@<cluster>`, see model/group-plan.ts), TEMPORAL_TLS_CERT / _KEY / _CA (files),
 * TEMPORAL_TLS_SERVER_NAME, TEMPORAL_API_KEY, GLIDEPATH_UI_URL (else the local dev server's UI on
 * TEMPORAL_UI_PORT, default 8233), and the payload codec's variables
 * (see workers/codec.ts).
 */
import { readFileSync } from 'node:fs';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import { dataConverterFromEnv } from './codec.ts';
import { DNS1123 } from '../model/fields.ts';
import { clusterTaskQueue } from '../model/group-plan.ts';

export interface TemporalSettings {
  address: string;
  namespace: string;
  taskQueue: string;
  uiUrl: string;
  tls?: { clientCertPair?: { crt: Buffer; key: Buffer }; serverRootCACertificate?: Buffer; serverNameOverride?: string };
  apiKey?: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function readFile(env: NodeJS.ProcessEnv, name: string): Buffer | undefined {
  const file = env[name];
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`${name}=${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** The task queue: GLIDEPATH_TASK_QUEUE, or the cluster's (`glidepath@<GLIDEPATH_CLUSTER>`), or `glidepath`. */
function taskQueueOf(env: NodeJS.ProcessEnv): string {
  const cluster = env.GLIDEPATH_CLUSTER;
  if (cluster === undefined || cluster === '') return env.GLIDEPATH_TASK_QUEUE ?? 'glidepath';
  if (!DNS1123.test(cluster) || cluster.length > 63) throw new ConfigError(`GLIDEPATH_CLUSTER=${cluster}: must be a DNS-1123 label (lowercase letters, digits, "-"), as in a ReleaseGroup's waves`);
  const queue = clusterTaskQueue(cluster);
  if (env.GLIDEPATH_TASK_QUEUE && env.GLIDEPATH_TASK_QUEUE !== queue) throw new ConfigError(`GLIDEPATH_TASK_QUEUE=${env.GLIDEPATH_TASK_QUEUE} contradicts GLIDEPATH_CLUSTER=${cluster} (whose queue is ${queue}): set one`);
  return queue;
}

export function temporalSettings(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const address = env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  if (!/^[\w.-]+:\d+$/.test(address)) throw new ConfigError(`TEMPORAL_ADDRESS=${address}: expected host:port`);
  const crt = readFile(env, 'TEMPORAL_TLS_CERT');
  const key = readFile(env, 'TEMPORAL_TLS_KEY');
  if ((crt === undefined) !== (key === undefined)) throw new ConfigError('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together');
  const ca = readFile(env, 'TEMPORAL_TLS_CA');
  const tlsWanted = crt !== undefined || ca !== undefined || env.TEMPORAL_TLS === 'true' || env.TEMPORAL_API_KEY !== undefined;
  return {
    address,
    namespace: env.TEMPORAL_NAMESPACE ?? 'default',
    taskQueue: taskQueueOf(env),
    uiUrl: (env.GLIDEPATH_UI_URL ?? `http://127.0.0.1:${env.TEMPORAL_UI_PORT ?? '8233'}`).replace(/\/$/, ''),
    ...(tlsWanted
      ? {
          tls: {
            ...(crt && key ? { clientCertPair: { crt, key } } : {}),
            ...(ca ? { serverRootCACertificate: ca } : {}),
            ...(env.TEMPORAL_TLS_SERVER_NAME ? { serverNameOverride: env.TEMPORAL_TLS_SERVER_NAME } : {}),
          },
        }
      : {}),
    ...(env.TEMPORAL_API_KEY ? { apiKey: env.TEMPORAL_API_KEY } : {}),
  };
}

export function uiLink(s: TemporalSettings, workflowId: string): string {
  return `${s.uiUrl}/namespaces/${encodeURIComponent(s.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

export async function connectClient(s: TemporalSettings, env: NodeJS.ProcessEnv = process.env): Promise<Client> {
  const options: ConnectionOptions = { address: s.address, ...(s.tls ? { tls: s.tls } : {}), ...(s.apiKey ? { apiKey: s.apiKey } : {}), connectTimeout: '5s' };
  const connection = await Connection.connect(options);
  return new Client({ connection, namespace: s.namespace, dataConverter: dataConverterFromEnv(env) });
}

export async function connectNative(s: TemporalSettings): Promise<NativeConnection> {
  const options: NativeConnectionOptions = { address: s.address, ...(s.tls ? { tls: s.tls } : {}), ...(s.apiKey ? { apiKey: s.apiKey } : {}) };
  return NativeConnection.connect(options);
}

/**
 * Worker options that bound one activation: the SDK honours `isolateExecutionTimeout` (default 5 s)
 * but leaves it out of WorkerOptions' type, so it is spread in from here. It stays below the
 * workflow task timeout every release and group starts with (workflows/start-options.ts).
 */
export const ACTIVATION_LIMITS: object = { isolateExecutionTimeout: '80s' };

/**
 * The most workflows the worker keeps in its sticky cache (GLIDEPATH_MAX_CACHED_WORKFLOWS): each
 * cached release holds its workflow state and its own evaluation of the (concatenated) workflow
 * modules in the workflow thread's heap (about 0.1 MiB; and about 0.2 MiB more outside the V8 heaps,
 * the SDK's native core and the allocator, measured with 1,000 cached; the shared libraries and model
 * are evaluated once, see workers/bundle.ts). The SDK's default is derived from the V8 heap limit, which follows the
 * machine's memory (2,395 on a 24 GB machine), not the pod's budget: so the worker sets its own.
 * It is sized above the 1,000 releases a worker is meant to hold: a task for a release outside a
 * full cache waits while the SDK evicts others, and the releases it evicts first are the ones paused
 * longest, often the ones being promoted. With 500, a worker just past its cache held promotions
 * for seconds (docs/operations.md, "A full cache").
 */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 1200;

/** Worker options that bound its memory, from GLIDEPATH_MAX_CACHED_WORKFLOWS (default {@link DEFAULT_MAX_CACHED_WORKFLOWS}). */
export function memoryOptions(env: NodeJS.ProcessEnv = process.env): { maxCachedWorkflows: number } {
  const raw = env.GLIDEPATH_MAX_CACHED_WORKFLOWS;
  if (raw === undefined || raw === '') return { maxCachedWorkflows: DEFAULT_MAX_CACHED_WORKFLOWS };
  const n = Number(raw);
  // The SDK takes 0 (no cache: every task replays) or at least 2.
  if (!Number.isInteger(n) || n < 0 || n === 1) throw new ConfigError(`GLIDEPATH_MAX_CACHED_WORKFLOWS=${raw}: a whole number, 0 (no cache) or at least 2`);
  return { maxCachedWorkflows: n };
}
