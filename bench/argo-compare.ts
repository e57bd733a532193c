/**
 * Glidepath and Argo Rollouts side by side on the same local control plane (kwok pods), one after the
 * other in the same window: Glidepath with the real worker (`workers/main.ts`, real activities), Argo
 * with its controller (scripts/provision-argo-rollouts.sh), which runs only while its half runs.
 *
 * (a) BENCH_CANARIES canaries per side, all started at once, each of BENCH_REPLICAS pods: five
 *     setWeight steps (10, 20, 40, 60, 80 %), each followed by a 1 s pause, then promotion. Start
 *     (the release started / the Rollout's image patched) → fully promoted (Glidepath: phase Promoted,
 *     from its history; Argo: status Healthy with the new revision stable, from a watch), p50/p95.
 *     Then where Glidepath's time goes (bench/support/release-phases.ts: activities, timers, the rest),
 *     and inside promotion (a watch on the Deployments: the stable takes the new image, is rolled out,
 *     the canary is deleted).
 * (b) BENCH_BURST releases per side (1 pod each) started BENCH_START_CONCURRENCY at a time, whose
 *     canary is setWeight 20 then an indefinite pause: start → first pause p50/p99, first start → all
 *     paused, and the peak RSS of the worker / the controller during the burst (a fresh process each);
 *     then where Glidepath's time to the first pause goes, p50 and p99 over the releases.
 *
 * Env: TEMPORAL_ADDRESS (127.0.0.1:7233), KUBECONFIG (the local control plane), ARGO_ROLLOUTS (the bin
 *      dir scripts/provision-argo-rollouts.sh prints), BENCH_CANARIES (20; 0 skips (a)), BENCH_REPLICAS (4),
 *      BENCH_BURST (1000; 0 skips (b)), BENCH_START_CONCURRENCY (50), BENCH_PORT_BASE (27500: the
 *      controller's metrics and healthz, the worker's two metrics ports, base..base+3, loopback),
 *      BENCH_DEADLINE_SECONDS (2400 for the whole run: then it stops, prints what it measured and
 *      cleans up), BENCH_WORKER_ENV (extra worker env, `K=V,K=V`, over the image's: the worker runs with the
 *      Dockerfile's ENV), BENCH_SIDES (`glidepath,argo`: one side alone to re-measure it).
 */
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KubeConfig, V1Deployment } from '@kubernetes/client-node';
import { AppsV1Api, CoreV1Api, KubernetesObjectApi } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { releaseWorkflowId, serviceKey, type CanaryStep, type ReleasePlan } from '../model/types.ts';
import { SERVICE_ATTRIBUTE } from '../workflows/messages.ts';
import { roleName } from '../activities/kubernetes/objects.ts';
import { plan as harnessPlan } from '../test/workflows/harness.ts';
import { ArgoController, ROLLOUTS, applyArgoCrds, deleteCrds, rolloutBody, setRolloutImage, type ArgoStep, type Rollout } from './support/argo-rollouts.ts';
import { FirstSeenWatch } from './support/first-seen-watch.ts';
import { phaseAt, releasePhases, type Phases } from './support/release-phases.ts';
import { WorkerProcess } from './support/worker-process.ts';
import { createBenchDeployments, pool, realWorkerBenchSetup } from './support/workloads.ts';

const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const int = (name: string, dflt: number, min = 1): number => {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isInteger(v) || v < min) throw new Error(`${name}: a whole number ≥ ${min}`);
  return v;
};
const argoBin = process.env.ARGO_ROLLOUTS;
if (!argoBin) throw new Error('ARGO_ROLLOUTS must name the Argo Rollouts bin dir: ARGO_ROLLOUTS=$(bash scripts/provision-argo-rollouts.sh)');
const canaries = int('BENCH_CANARIES', 20, 0);
const replicas = int('BENCH_REPLICAS', 4);
const burst = int('BENCH_BURST', 1000, 0);
const sides = (process.env.BENCH_SIDES ?? 'glidepath,argo').split(',');
if (sides.some((x) => x !== 'glidepath' && x !== 'argo') || sides.length === 0) throw new Error(`BENCH_SIDES=${process.env.BENCH_SIDES}: glidepath, argo, or both (comma-separated)`);
const startConcurrency = int('BENCH_START_CONCURRENCY', 50);
const portBase = int('BENCH_PORT_BASE', 27500, 1024);
const ports = { metrics: portBase, healthz: portBase + 1, worker: portBase + 2, core: portBase + 3 };
const deadline = Date.now() + int('BENCH_DEADLINE_SECONDS', 2400) * 1000;
const late = () => Date.now() > deadline;
const workerEnv = Object.fromEntries((process.env.BENCH_WORKER_ENV ?? '').split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

const log = (line: string): void => console.log(`argo-compare: ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');
const secs = (x: number) => `${(x / 1000).toFixed(1)} s`;
const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
const pct = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
};
const median = (xs: number[]) => pct(xs, 50);
const suffix = Math.random().toString(36).slice(2, 7);
const names = (n: number) => Array.from({ length: n }, (_, i) => `app-${i}`);

/** The canary of (a): five weights, each followed by a 1 s pause. */
const WEIGHTS = [10, 20, 40, 60, 80];
const canarySteps: CanaryStep[] = WEIGHTS.flatMap((weight) => [{ kind: 'setWeight', weight }, { kind: 'pause', durationMs: 1000 }] as CanaryStep[]);
const argoCanarySteps: ArgoStep[] = WEIGHTS.flatMap((weight) => [{ setWeight: weight }, { pause: { duration: 1 } }]);
/** The canary of (b): the first pause holds until promoted. */
const burstSteps: CanaryStep[] = [{ kind: 'setWeight', weight: 20 }, { kind: 'pause' }, { kind: 'setWeight', weight: 50 }];
const argoBurstSteps: ArgoStep[] = [{ setWeight: 20 }, { pause: {} }, { setWeight: 50 }];

interface Cluster {
  kc: KubeConfig;
  apps: AppsV1Api;
  core: CoreV1Api;
  objects: KubernetesObjectApi;
}

/** A namespace for one half, deleted (with everything in it) when `fn` is done. */
async function inNamespace<T>(k: Cluster, name: string, fn: (namespace: string) => Promise<T>): Promise<T> {
  const namespace = `bench-${name}-${suffix}`;
  try {
    return await fn(namespace);
  } finally {
    await k.core.deleteNamespace({ name: namespace }).catch(() => {});
  }
}

/** Waits until `done()` or the deadline; says how far it got. */
async function until(what: string, done: () => boolean | Promise<boolean>, progress: () => string): Promise<void> {
  while (!(await done())) {
    if (late()) throw new Error(`${what}: not before the deadline (${progress()})`);
    await sleep(250);
  }
}

// ---- Glidepath ---------------------------------------------------------------------------------------

/** Starts a fresh worker on a task queue of its own, then `fn`; the worker stops and every workflow on its queue is terminated after. */
async function withWorker<T>(client: Client, bundle: string, fn: (w: WorkerProcess, taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `bench-argo-compare-${suffix}-${Math.random().toString(36).slice(2, 6)}`;
  const worker = new WorkerProcess({ address, taskQueue, bundle, metricsPort: ports.worker, coreMetricsPort: ports.core, env: workerEnv });
  try {
    await worker.ready;
    return await fn(worker, taskQueue);
  } finally {
    await worker.stop();
    const running: string[] = [];
    for await (const w of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` })) running.push(w.workflowId);
    await pool(running, 20, async (id) => void (await client.workflow.getHandle(id).terminate('argo-compare bench cleanup').catch(() => {})));
  }
}

/** Starts one release per plan, `concurrency` at a time; returns when each start was sent. */
async function startReleases(client: Client, taskQueue: string, plans: readonly ReleasePlan[], concurrency: number): Promise<Map<string, number>> {
  const sent = new Map<string, number>();
  await pool(
    plans,
    concurrency,
    async (p) => {
      const id = releaseWorkflowId(p);
      sent.set(id, Date.now());
      await client.workflow.start('release', { taskQueue, workflowId: id, args: [{ plan: p, initiator: 'bench' }], typedSearchAttributes: [{ key: SERVICE_ATTRIBUTE, value: serviceKey(p) }] });
    },
    late,
  );
  return sent;
}

const history = async (client: Client, id: string) => (await client.workflow.getHandle(id).fetchHistory()).events ?? [];

/** (a), Glidepath: the canaries, their times, where the time goes. */
async function glidepathCanaries(k: Cluster, client: Client, bundle: string): Promise<number[]> {
  return inNamespace(k, 'gp-canary', async (namespace) => {
    const workloads = names(canaries);
    const took = await createBenchDeployments(k, namespace, workloads, replicas, late);
    log(`(a) Glidepath: ${canaries} Deployments of ${replicas} pods available in ${secs(took)}`);
    const plans = workloads.map((name) => harnessPlan(name, { type: 'canary', steps: canarySteps }, { namespace, image: `registry.local/${name}:v2`, retryWindowSeconds: 60 }));
    const deployments = promotionWatch(k.kc, namespace);
    await deployments.start();
    try {
      return await withWorker(client, bundle, async (_w, taskQueue) => {
        const sent = await startReleases(client, taskQueue, plans, canaries);
        const ids = plans.map(releaseWorkflowId);
        let ended = 0;
        for (const id of ids) void client.workflow.getHandle(id).result().catch(() => {}).finally(() => ended++); // Promoted or not: its history says
        await until('(a) Glidepath releases', () => ended >= ids.length, () => `${ended} of ${ids.length} ended`);
        const histories = new Map(await Promise.all(ids.map(async (id) => [id, await history(client, id)] as const)));
        const times: number[] = [];
        const phases: Phases[] = [];
        for (const id of ids) {
          const events = histories.get(id) ?? [];
          const promoted = phaseAt(events, 'Promoted');
          if (promoted === undefined) continue;
          times.push(promoted - (sent.get(id) as number));
          phases.push(releasePhases(events, promoted));
        }
        log(`(a) Glidepath: ${times.length} of ${canaries} Promoted; start → Promoted p50 ${secs(pct(times, 50))}, p95 ${secs(pct(times, 95))}, max ${secs(pct(times, 100))} (load average ${load()})`);
        printPhases(phases, '(a) Glidepath, start → Promoted');
        printPromotion(deployments, workloads, ids, histories);
        return times;
      });
    } finally {
      deployments.stop();
    }
  });
}

/** The Deployments of a namespace: when a stable first has the new image, is rolled out on it, and when a canary is deleted. */
function promotionWatch(kc: KubeConfig, namespace: string): FirstSeenWatch<V1Deployment> {
  const newImage = (d: V1Deployment) => d.spec?.template.spec?.containers[0]?.image?.endsWith(':v2') === true;
  return new FirstSeenWatch<V1Deployment>(kc, `/apis/apps/v1/namespaces/${namespace}/deployments`, {
    image: newImage,
    rolled: (d) => {
      const want = d.spec?.replicas ?? 1;
      const s = d.status;
      return newImage(d) && (s?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1) && s?.updatedReplicas === want && s?.availableReplicas === want && s?.replicas === want;
    },
  });
}

/** Per part of the releases' phases, largest median first: the median and the 99th percentile over releases (each column read on its own: percentiles do not add up). */
function printPhases(phases: Phases[], title: string): void {
  if (phases.length === 0) return;
  const labels = [...new Set(phases.flatMap((p) => [...p.parts.keys()]))];
  const at = (q: number, f: (p: Phases) => number) => secs(pct(phases.map(f), q)).padStart(8);
  const rows = labels.map((label) => {
    const ms = (p: Phases) => p.parts.get(label)?.ms ?? 0;
    return { label, ms, p50: median(phases.map(ms)), count: median(phases.map((p) => p.parts.get(label)?.count ?? 0)) };
  });
  rows.sort((a, b) => b.p50 - a.p50);
  log(`${title}, where the time goes (${phases.length} releases; p50 and p99 over releases, wall p50 ${secs(median(phases.map((p) => p.wall)))}; ${median(phases.map((p) => p.events))} history events each, median):`);
  for (const r of rows) log(`      ${r.label.padEnd(26)} ${at(50, r.ms)} ${at(99, r.ms)}  (${r.count}×)`);
  log(`      ${'workflow tasks and gaps'.padEnd(26)} ${at(50, (p) => p.rest)} ${at(99, (p) => p.rest)}  (outside every activity and timer)`);
  log(`      ${'of which workflow tasks queued'.padEnd(26)} ${at(50, (p) => p.workflowTaskQueue)} ${at(99, (p) => p.workflowTaskQueue)}  (scheduled → started: waiting for a worker's workflow task poller and slot)`);
  log(`      ${'and workflow tasks ran'.padEnd(26)} ${at(50, (p) => p.workflowTaskRun)} ${at(99, (p) => p.workflowTaskRun)}  (started → completed: the worker running workflow code)`);
  log(`      ${'activities queued'.padEnd(26)} ${at(50, (p) => p.activityQueue)} ${at(99, (p) => p.activityQueue)}  (scheduled → started: waiting for a worker's activity slot)`);
}

/** Inside promoteCanary, per release (median): scheduled → the stable has the new image → rolled out → the canary deleted → the activity closed. */
function printPromotion(w: FirstSeenWatch<V1Deployment>, workloads: string[], ids: string[], histories: Map<string, Awaited<ReturnType<typeof history>>>): void {
  const rows: number[][] = [];
  for (const [i, name] of workloads.entries()) {
    const events = histories.get(ids[i] as string) ?? [];
    const promoted = phaseAt(events, 'Promoted');
    if (promoted === undefined) continue;
    const span = releasePhases(events, promoted).spans.get('promoteCanary');
    const image = w.at(name, 'image');
    const rolled = w.at(name, 'rolled');
    const deleted = w.at(roleName(name, 'canary'), 'deleted');
    if (!span || image === undefined || rolled === undefined || deleted === undefined) continue;
    rows.push([image - span.scheduled, rolled - image, deleted - rolled, span.closed - deleted, promoted - span.closed]);
  }
  if (rows.length === 0) return log('(a) Glidepath, inside promotion: not observed');
  const m = (j: number) => secs(median(rows.map((r) => r[j] as number)));
  log(`(a) Glidepath, inside promotion (median of ${rows.length}): promoteCanary scheduled → stable has the new image ${m(0)}; → stable rolled out (${replicas} pods replaced) ${m(1)}; → canary Deployment deleted ${m(2)}; → canary pods gone and the activity closed ${m(3)}; → Promoted ${m(4)}`);
}

/** (b), Glidepath: the burst, to the first pause; the worker's peak RSS meanwhile. */
async function glidepathBurst(k: Cluster, client: Client, bundle: string): Promise<void> {
  await inNamespace(k, 'gp-burst', async (namespace) => {
    const workloads = names(burst);
    const took = await createBenchDeployments(k, namespace, workloads, 1, late);
    log(`(b) Glidepath: ${burst} Deployments available in ${secs(took)}`);
    const plans = workloads.map((name) => harnessPlan(name, { type: 'canary', steps: burstSteps }, { namespace, image: `registry.local/${name}:v2`, retryWindowSeconds: 60 }));
    await withWorker(client, bundle, async (worker, taskQueue) => {
      const idle = worker.rss.sample();
      worker.rss.reset();
      const t0 = Date.now();
      const sent = await startReleases(client, taskQueue, plans, startConcurrency);
      const count = async () => (await client.workflow.count(`TaskQueue = '${taskQueue}' AND GlidepathPhase = 'Paused'`)).count;
      let paused = 0;
      await until('(b) Glidepath burst', async () => (paused = await count()) >= burst, () => `${paused} of ${burst} Paused`);
      const allMs = Date.now() - t0;
      const peak = worker.rss.peak;
      const times: number[] = [];
      const phases: Phases[] = [];
      await pool([...sent.keys()], 20, async (id) => {
        const events = await history(client, id);
        const at = phaseAt(events, 'Paused');
        if (at === undefined) return;
        times.push(at - (sent.get(id) as number));
        phases.push(releasePhases(events, at));
      });
      log(`(b) Glidepath: ${times.length} of ${burst} at their first pause; start → first pause p50 ${secs(pct(times, 50))}, p99 ${secs(pct(times, 99))}; first start → all paused ${secs(allMs)} (visibility count, polled); worker RSS idle ${mib(idle)}, peak during the burst ${mib(peak)} (load average ${load()})`);
      printPhases(phases, '(b) Glidepath, workflow start → first pause');
    });
  });
}

// ---- Argo Rollouts -----------------------------------------------------------------------------------

/** The controller for one half: started, healthy, then `fn`, then stopped. */
async function withController<T>(fn: (c: ArgoController) => Promise<T>): Promise<T> {
  const c = new ArgoController(argoBin as string, process.env.KUBECONFIG as string, { metrics: ports.metrics, healthz: ports.healthz });
  try {
    await c.ready(ports.healthz, late);
    return await fn(c);
  } finally {
    await c.stop();
  }
}

/**
 * Creates `workloads` as Rollouts of image v1 and waits until each is Healthy on it (its first
 * revision stable); returns the stable pod hash of each. `watch` must record `initial`.
 */
async function createRollouts(k: Cluster, namespace: string, workloads: string[], pods: number, steps: ArgoStep[], watch: FirstSeenWatch<Rollout>): Promise<Map<string, string>> {
  const t0 = Date.now();
  await pool(workloads, 20, async (name) => void (await k.objects.create(rolloutBody(namespace, name, pods, `registry.local/${name}:v1`, steps))), late);
  await until(`Rollouts of ${namespace} Healthy on v1`, () => watch.count(workloads, 'initial') >= workloads.length, () => `${watch.count(workloads, 'initial')} of ${workloads.length}`);
  log(`    ${workloads.length} Rollouts of ${pods} pod(s) Healthy on v1 in ${secs(Date.now() - t0)}`);
  return new Map(workloads.map((n) => [n, watch.latest(n)?.status?.stableRS as string]));
}

/** A watch on a namespace's Rollouts: `initial` (Healthy on its first revision), `promoted` (Healthy with a later one stable), `paused` (paused on a later one). */
function rolloutWatch(k: Cluster, namespace: string, initial: Map<string, string>): FirstSeenWatch<Rollout> {
  const current = (r: Rollout) => (r.metadata?.generation ?? 0) > 0 && String(r.status?.observedGeneration ?? '') === String(r.metadata?.generation);
  const later = (r: Rollout) => {
    const first = initial.get(r.metadata?.name as string);
    return first !== undefined && r.status?.currentPodHash !== undefined && r.status.currentPodHash !== first;
  };
  return new FirstSeenWatch<Rollout>(k.kc, `/apis/${ROLLOUTS.group}/${ROLLOUTS.version}/namespaces/${namespace}/${ROLLOUTS.plural}`, {
    initial: (r) => current(r) && r.status?.phase === 'Healthy' && !!r.status.stableRS && r.status.stableRS === r.status.currentPodHash,
    promoted: (r) => later(r) && current(r) && r.status?.phase === 'Healthy' && r.status.stableRS === r.status.currentPodHash,
    paused: (r) => later(r) && r.status?.phase === 'Paused',
  });
}

/** Patches each Rollout to image v2, `concurrency` at a time; returns when each patch was sent. */
async function patchRollouts(k: Cluster, namespace: string, workloads: string[], concurrency: number): Promise<Map<string, number>> {
  const sent = new Map<string, number>();
  await pool(
    workloads,
    concurrency,
    async (name) => {
      sent.set(name, Date.now());
      await setRolloutImage(k.objects, namespace, name, `registry.local/${name}:v2`);
    },
    late,
  );
  return sent;
}

/** One Argo half: namespace, controller, Rollouts on v1, then `fn` with the watch and the v1 hashes. */
async function argoHalf<T>(k: Cluster, name: string, n: number, pods: number, steps: ArgoStep[], fn: (ns: string, w: FirstSeenWatch<Rollout>, c: ArgoController, workloads: string[]) => Promise<T>): Promise<T> {
  return inNamespace(k, name, (namespace) =>
    withController(async (c) => {
      await k.core.createNamespace({ body: { metadata: { name: namespace } } });
      const initial = new Map<string, string>();
      const watch = rolloutWatch(k, namespace, initial);
      await watch.start();
      try {
        const workloads = names(n);
        const hashes = await createRollouts(k, namespace, workloads, pods, steps, watch);
        for (const [w, h] of hashes) initial.set(w, h);
        return await fn(namespace, watch, c, workloads);
      } finally {
        watch.stop();
      }
    }),
  );
}

/** (a), Argo: the same canaries as Rollouts. */
async function argoCanaries(k: Cluster): Promise<number[]> {
  log('(a) Argo Rollouts:');
  return argoHalf(k, 'argo-canary', canaries, replicas, argoCanarySteps, async (namespace, watch, _c, workloads) => {
    const sent = await patchRollouts(k, namespace, workloads, canaries);
    await until('(a) Argo canaries', () => watch.count(workloads, 'promoted') >= workloads.length, () => `${watch.count(workloads, 'promoted')} of ${workloads.length} promoted`);
    const times = workloads.map((w) => (watch.at(w, 'promoted') as number) - (sent.get(w) as number));
    log(`(a) Argo Rollouts: ${times.length} of ${canaries} Healthy on v2; image patched → Healthy with v2 stable p50 ${secs(pct(times, 50))}, p95 ${secs(pct(times, 95))}, max ${secs(pct(times, 100))} (load average ${load()})`);
    return times;
  });
}

/** (b), Argo: the burst, to the first pause; the controller's peak RSS meanwhile. */
async function argoBurst(k: Cluster): Promise<void> {
  log('(b) Argo Rollouts:');
  await argoHalf(k, 'argo-burst', burst, 1, argoBurstSteps, async (namespace, watch, c, workloads) => {
    const idle = c.rss.sample();
    c.rss.reset();
    const t0 = Date.now();
    const sent = await patchRollouts(k, namespace, workloads, startConcurrency);
    await until('(b) Argo burst', () => watch.count(workloads, 'paused') >= workloads.length, () => `${watch.count(workloads, 'paused')} of ${workloads.length} paused`);
    const allMs = Date.now() - t0;
    const peak = c.rss.peak;
    const times = workloads.map((w) => (watch.at(w, 'paused') as number) - (sent.get(w) as number));
    log(`(b) Argo Rollouts: ${times.length} of ${burst} at their first pause; patch → Paused p50 ${secs(pct(times, 50))}, p99 ${secs(pct(times, 99))}; first patch → all paused ${secs(allMs)} (watch); controller RSS before the burst ${mib(idle)} (${burst} Rollouts known), peak during the burst ${mib(peak)}, lifetime peak ${mib(c.rss.lifetimePeak)} (load average ${load()})`);
  });
}

// ---- the run -----------------------------------------------------------------------------------------

async function run(kc: KubeConfig, client: Client, bundle: string): Promise<void> {
  const k: Cluster = { kc, apps: kc.makeApiClient(AppsV1Api), core: kc.makeApiClient(CoreV1Api), objects: KubernetesObjectApi.makeApiClient(kc) };
  log(`--- (a) ${canaries} canaries of ${replicas} pods (setWeight ${WEIGHTS.join('/')} %, a 1 s pause after each), (b) a burst of ${burst} (1 pod each, ${startConcurrency} starts at a time); ${os.cpus().length} cores, load average ${load()}`);
  const crds = await applyArgoCrds(kc, path.join(argoBin as string, 'crds'), late);
  try {
    if (canaries > 0) {
      const gp = sides.includes('glidepath') ? await glidepathCanaries(k, client, bundle) : [];
      const argo = sides.includes('argo') ? await argoCanaries(k) : [];
      if (gp.length && argo.length) log(`(a) p50 Glidepath ${secs(pct(gp, 50))} vs Argo ${secs(pct(argo, 50))}; p95 ${secs(pct(gp, 95))} vs ${secs(pct(argo, 95))}`);
    }
    if (burst > 0) {
      if (sides.includes('glidepath')) await glidepathBurst(k, client, bundle);
      if (sides.includes('argo')) await argoBurst(k);
    }
    log(`load average at the end ${load()}`);
  } finally {
    await deleteCrds(kc, crds);
  }
}

const { kc, client, bundle, tmp } = await realWorkerBenchSetup('argo-compare', address);
try {
  await run(kc, client, bundle);
} catch (err) {
  process.exitCode = 1;
  console.error(`argo-compare: ${(err as Error).stack ?? err}`);
} finally {
  await client.connection.close();
  rmSync(tmp, { recursive: true, force: true });
}
