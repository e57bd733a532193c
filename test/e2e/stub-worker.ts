/**
 * A worker process for the dev-server suite: the real workflow code and data converter, with
 * activities that succeed after a short delay (the issue allows stubs until Kubernetes lands; the
 * Kubernetes suites run the real ones). Its own process, so tests can SIGKILL it.
 * Notification delivery is the real activity (activities/notify/), reading Secrets from the
 * control plane KUBECONFIG names, when it is set.
 * Env: TEMPORAL_ADDRESS, GLIDEPATH_TASK_QUEUE, STUB_DELAY_MS, KUBECONFIG, GLIDEPATH_WEB_ALLOW.
 */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Worker } from '@temporalio/worker';
import { Context } from '@temporalio/activity';
import { batchReplicas, isNodeWave } from '../../model/rolling.ts';
import type { ReleaseActivities } from '../../activities/index.ts';
import { createFreezeActivities, freezePolicyFromEnv } from '../../activities/freeze.ts';
import { createIdentityActivities, identityPolicyFromEnv } from '../../activities/identity.ts';
import type { SecretResolver } from '../../activities/contract.ts';
import { createNotifyActivities } from '../../activities/notify/index.ts';
import { startProblems } from '../../model/plan.ts';
import { connectNative, temporalSettings } from '../../workers/config.ts';
import { dataConverterFromEnv } from '../../workers/codec.ts';
import { WORKFLOWS_PATH } from '../../workers/bundle.ts';

const delay = Number(process.env.STUB_DELAY_MS ?? '50');
const sleep = async (ms: number) => {
  const ctx = Context.current();
  const end = Date.now() + ms;
  while (Date.now() < end) {
    ctx.heartbeat();
    await ctx.sleep(Math.min(200, end - Date.now()));
  }
};

const activities: ReleaseActivities = {
  validatePlan: async (plan, initiator) => startProblems(plan, initiator),
  routeToStable: async () => {},
  routeWeight: async () => {},
  removeCanary: async () => {},
  preflight: async () => ({ stableImage: 'registry.local/app:v1', replicas: 4, warnings: [] }),
  ensureCanary: async () => sleep(delay),
  setWeight: async (_t, weight) => (await sleep(delay), { canaryReplicas: Math.ceil((4 * weight) / 100) }),
  setCanaryScale: async () => ({ canaryReplicas: 1 }),
  setHeaderRoute: async () => sleep(delay),
  setMirrorRoute: async () => sleep(delay),
  promoteCanary: async () => sleep(delay),
  abortCanary: async () => sleep(delay),
  deployPreview: async () => sleep(delay),
  switchActive: async () => sleep(delay),
  finalizeBlueGreen: async () => sleep(delay),
  abortBlueGreen: async () => sleep(delay),
  beginRolling: async () => (await sleep(delay), { replicas: 4 }),
  rollBatch: async (_t, step) => (await sleep(delay), { updated: isNodeWave(step) ? 4 : batchReplicas(step, 4), replicas: 4 }),
  completeRolling: async () => (await sleep(delay), { updated: 4, replicas: 4 }),
  abortRolling: async () => sleep(delay),
  runAnalysis: async (_t, run) => ({ metrics: run.metrics.map((m) => ({ name: m.name, measurements: [{ phase: 'Successful', value: [1], startedAt: new Date().toISOString(), finishedAt: new Date().toISOString() }] })), terminated: false }),
};

/** Secrets from the control plane, as the real worker reads them (workers/deps.ts). */
function kubeSecrets(): SecretResolver | undefined {
  if (!process.env.KUBECONFIG) return undefined;
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const core = kc.makeApiClient(CoreV1Api);
  return async (namespace, ref) => {
    const value = (await core.readNamespacedSecret({ name: ref.name, namespace })).data?.[ref.key];
    if (value === undefined) throw new Error(`secret ${namespace}/${ref.name} has no key ${ref.key}`);
    return Buffer.from(value, 'base64').toString('utf8');
  };
}

const settings = temporalSettings();
const worker = await Worker.create({
  connection: await connectNative(settings),
  namespace: settings.namespace,
  taskQueue: settings.taskQueue,
  workflowsPath: WORKFLOWS_PATH,
  activities: { ...activities, ...createNotifyActivities({ secrets: kubeSecrets() }), ...createIdentityActivities(identityPolicyFromEnv(process.env)), ...createFreezeActivities(freezePolicyFromEnv(process.env)) },
  dataConverter: dataConverterFromEnv(),
  shutdownGraceTime: '1s',
});
process.stdout.write('worker ready\n');
await worker.run();
