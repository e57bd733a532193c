/**
 * What the real-worker benches (inflight-real.ts, scale-out.ts) share: their setup, a bounded pool, and the bench's
 * Deployments (`replicas` kwok pods each, a readiness probe, image v1) created in one namespace and
 * waited for until every one is available.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig, type AppsV1Api, type CoreV1Api } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { dataConverterFromEnv } from '../../workers/codec.ts';
import { releaseWorkflowId, serviceKey, type ReleasePlan } from '../../model/types.ts';
import { SERVICE_ATTRIBUTE } from '../../workflows/messages.ts';
import { WORKFLOW_TASK_TIMEOUT } from '../../workflows/start-options.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Runs `fn` over `items`, `limit` at a time; stops taking new items once `stop()` says so. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>, stop = () => false): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length && !stop()) await fn(items[next++] as T);
    }),
  );
}

/**
 * Creates namespace `namespace` and a Deployment per name (20 at a time), then waits until all are
 * available; `late()` true stops the wait with an error. Returns the milliseconds it took.
 */
export async function createBenchDeployments(k: { apps: AppsV1Api; core: CoreV1Api }, namespace: string, names: readonly string[], replicas: number, late: () => boolean): Promise<number> {
  await k.core.createNamespace({ body: { metadata: { name: namespace } } });
  const t0 = Date.now();
  await pool(names, 20, async (name) => {
    await k.apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name, labels: { app: name } },
        spec: {
          replicas,
          selector: { matchLabels: { app: name } },
          template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: `registry.local/${name}:v1`, readinessProbe: { httpGet: { path: '/healthz', port: 8080 } } }] } },
        },
      },
    });
  });
  for (;;) {
    const list = await k.apps.listNamespacedDeployment({ namespace });
    // Observed first: a Deployment of 0 replicas the controller has not seen yet also has 0 available.
    const available = list.items.filter((d) => (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1) && (d.status?.availableReplicas ?? 0) === replicas).length;
    if (available >= names.length) break;
    if (late()) throw new Error(`only ${available} of ${names.length} Deployments available before the deadline`);
    await new Promise((r) => setTimeout(r, 2000));
  }
  return Date.now() - t0;
}

/**
 * What a real-worker bench needs before it runs: the local control plane (KUBECONFIG), a client of the
 * Temporal dev server at `address`, and the workflows bundled once into a temp dir (the workers run a
 * prebuilt bundle, as in the container image). The caller removes `tmp` when done.
 */
export async function realWorkerBenchSetup(name: string, address: string): Promise<{ kc: KubeConfig; client: Client; bundle: string; tmp: string }> {
  if (!process.env.KUBECONFIG) throw new Error('KUBECONFIG must point at the local control plane (bash scripts/kube.sh up; eval "$(bash scripts/kube.sh env)")');
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const connection = await Connection.connect({ address, connectTimeout: '5s' }).catch((err: Error) => {
    throw new Error(`the Temporal dev server is not reachable at ${address} (TEMPORAL_ADDRESS): ${err.message}`);
  });
  const client = new Client({ connection, dataConverter: dataConverterFromEnv() });
  const tmp = mkdtempSync(path.join(os.tmpdir(), `glidepath-${name}-`));
  const bundle = path.join(tmp, 'workflow-bundle.js');
  await new Promise<void>((resolve, reject) =>
    execFile(process.execPath, [path.join(root, 'workers/bundle.ts'), bundle], (err, _out, stderr) => (err ? reject(new Error(`bundling the workflows failed: ${stderr}`, { cause: err })) : resolve())),
  );
  return { kc, client, bundle, tmp };
}

/**
 * Starts one release per plan on `taskQueue` (`concurrency` at a time, as the CLI would) and waits until
 * the task queue counts every one Paused, or ended otherwise, or `late()`. With a `window`, a start waits
 * while that many started releases have not paused yet (releases rolled out in a stream, not all at once:
 * the cluster then works on at most `window` new canaries). Returns how many started, paused and ended
 * before pausing, and the milliseconds from the first start.
 */
export async function startUntilPaused(client: Client, taskQueue: string, plans: readonly ReleasePlan[], concurrency: number, late: () => boolean, window = Infinity): Promise<{ started: number; paused: number; ended: number; ms: number }> {
  const t1 = Date.now();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const count = async (query: string): Promise<number> => (await client.workflow.count(`TaskQueue = '${taskQueue}' AND ${query}`)).count;
  const settled = async () => {
    const [paused, ended] = await Promise.all([count(`GlidepathPhase = 'Paused'`), count(`ExecutionStatus != 'Running'`)]);
    return { paused, ended };
  };
  let sent = 0; // a failed start ends the run, so every one sent has started
  let done = 0; // paused or ended, as last counted
  let counting: Promise<void> | undefined;
  const recount = () =>
    (counting ??= settled()
      .then((s) => void (done = s.paused + s.ended))
      .finally(() => (counting = undefined)));
  await pool(
    plans,
    concurrency,
    async (p) => {
      while (sent - done >= window && !late()) {
        await recount();
        if (sent - done >= window) await sleep(1000);
      }
      sent++;
      await client.workflow.start('release', { taskQueue, workflowId: releaseWorkflowId(p), args: [{ plan: p, initiator: 'bench' }], typedSearchAttributes: [{ key: SERVICE_ATTRIBUTE, value: serviceKey(p) }], workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT });
    },
    late,
  );
  let s = await settled();
  while (s.paused + s.ended < plans.length && !late()) {
    await sleep(2000);
    s = await settled();
  }
  return { started: sent, paused: s.paused, ended: s.ended, ms: Date.now() - t1 };
}
