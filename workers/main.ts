/**
 * The Glidepath worker: `node workers/main.ts`. Connection from the environment (workers/config.ts),
 * activities with real clients (workers/deps.ts), a prebuilt workflow bundle when
 * GLIDEPATH_WORKFLOW_BUNDLE names one, metrics on GLIDEPATH_METRICS_ADDRESS (127.0.0.1:9464), which
 * include the SDK's: its exporter listens on a second port, GLIDEPATH_CORE_METRICS_ADDRESS (127.0.0.1:9465),
 * the workflow cache from GLIDEPATH_MAX_CACHED_WORKFLOWS (workers/config.ts), unused heap and allocator
 * memory given back every GLIDEPATH_MEMORY_RETURN_INTERVAL (workers/memory-return.ts), JSON logs, graceful shutdown on SIGTERM/SIGINT (in-flight activities get GLIDEPATH_SHUTDOWN_GRACE).
 */
import { Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities/index.ts';
import { createFreezeActivities, freezePolicyFromEnv } from '../activities/freeze.ts';
import { createIdentityActivities, identityPolicyFromEnv } from '../activities/identity.ts';
import { createNotifyActivities } from '../activities/notify/index.ts';
import { createTaskQueueActivities } from '../activities/task-queue.ts';
import { createGitActivities } from '../activities/git/index.ts';
import { createDriftActivities, driftOnPromotionFromEnv } from '../activities/drift.ts';
import { KubeConfig } from '@kubernetes/client-node';
import { ACTIVATION_LIMITS, connectClient, connectNative, memoryOptions, temporalSettings } from './config.ts';
import { dataConverterFromEnv } from './codec.ts';
import { buildDeps, buildVersioningActivities } from './deps.ts';
import { bundleWebpackConfig, PRELOAD_MODULES, WORKFLOWS_PATH } from './bundle.ts';
import { Metrics, createLogger, sdkLogger } from './observability.ts';
import { registerSearchAttributes } from './search-attributes.ts';
import { memoryReturnIntervalFromEnv, startMemoryReturn } from './memory-return.ts';
import { limitBufferPool } from './buffer-pool.ts';

const log = createLogger();
const [metricsHost, metricsPort] = (process.env.GLIDEPATH_METRICS_ADDRESS ?? '127.0.0.1:9464').split(':') as [string, string];
const coreMetrics = process.env.GLIDEPATH_CORE_METRICS_ADDRESS ?? '127.0.0.1:9465';

/** The drift activities' kubeconfig: the one every workload activity uses (KUBECONFIG, else in-cluster). */
function driftKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

limitBufferPool(); // small slabs: the SDK keeps each cached workflow's last encoded completion (workers/buffer-pool.ts)

Runtime.install({
  logger: sdkLogger(log),
  telemetryOptions: { metrics: { prometheus: { bindAddress: coreMetrics } } },
});

try {
  const settings = temporalSettings();
  const memoryReturnInterval = memoryReturnIntervalFromEnv(process.env);
  const client = await connectClient(settings);
  if (process.env.GLIDEPATH_REGISTER_SEARCH_ATTRIBUTES !== 'false') {
    await registerSearchAttributes(client.connection, settings.namespace).catch((err: Error) => log.warn({ err: err.message }, 'could not register search attributes (register them on the namespace)'));
  }
  const metrics = new Metrics(client, `http://${coreMetrics}/metrics`);
  const server = await metrics.serve(metricsHost, Number(metricsPort));
  const memoryReturn = memoryReturnInterval === 'off' ? undefined : await startMemoryReturn(memoryReturnInterval, log, metrics.registry);
  const connection = await connectNative(settings);
  const bundlePath = process.env.GLIDEPATH_WORKFLOW_BUNDLE;
  const deps = buildDeps(log);
  const options: WorkerOptions = {
    connection,
    namespace: settings.namespace,
    taskQueue: settings.taskQueue,
    // The identity policy is read (and a malformed one refused) here, at start.
    activities: { ...createActivities(deps), ...createNotifyActivities({ secrets: deps.secrets }), ...buildVersioningActivities(), ...createIdentityActivities(identityPolicyFromEnv(process.env)), ...createFreezeActivities(freezePolicyFromEnv(process.env)), ...createTaskQueueActivities(client), ...createGitActivities({ client, taskQueue: settings.taskQueue }), ...createDriftActivities({ kubeConfig: driftKubeConfig(), workload: deps.workload, routers: deps.routers, registry: metrics.registry, client, taskQueue: settings.taskQueue, onPromotion: driftOnPromotionFromEnv(process.env) }) },
    dataConverter: dataConverterFromEnv(),
    interceptors: { activity: [metrics.interceptor()] },
    shutdownGraceTime: process.env.GLIDEPATH_SHUTDOWN_GRACE ?? '30s',
    ...ACTIVATION_LIMITS, // a flood of signals is one long activation (workers/config.ts)
    ...memoryOptions(), // the workflow cache, sized for the worker's memory budget (workers/config.ts)
    // Shared libraries and model evaluated once, not per cached workflow (workers/bundle.ts).
    ...(bundlePath ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: WORKFLOWS_PATH, bundlerOptions: { preloadModules: PRELOAD_MODULES, webpackConfigHook: bundleWebpackConfig } }),
  };
  const worker = await Worker.create(options);
  log.info({ address: settings.address, namespace: settings.namespace, taskQueue: settings.taskQueue, metrics: `http://${metricsHost}:${metricsPort}/metrics`, bundle: bundlePath ?? 'built at start', maxCachedWorkflows: worker.options.maxCachedWorkflows }, 'worker started');
  await worker.run(); // returns after SIGTERM/SIGINT once in-flight work is done
  memoryReturn?.stop();
  server.close();
  await client.connection.close();
  await connection.close();
  log.info('worker stopped');
} catch (err) {
  log.error({ err: (err as Error).message }, 'worker failed');
  // Exit now: the metrics server and connections would otherwise keep a broken worker alive.
  log.flush();
  process.exit(1);
}
