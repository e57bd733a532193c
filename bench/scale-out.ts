/**
 * Scale out and fail over: BENCH_WORKERS real workers (`workers/main.ts` as child processes, default
 * options, a prebuilt bundle) poll one task queue of the local Temporal dev server, with the real
 * activities against the local control plane (kwok pods). It creates BENCH_RELEASES Deployments
 * (BENCH_REPLICAS pods each), starts one release per Deployment whose canary pauses at step 1
 * (steps: pause, setWeight 50, pause), and once the visibility store counts them all Paused prints
 * each worker's share (which worker ran each release's last workflow task, from the
 * `WorkflowTaskStarted` identity in its history: the SDK's default identity is `<pid>@<host>`).
 * Then it sends BENCH_PROMOTIONS promotions at once and SIGKILLs one worker (BENCH_KILL: its index,
 * default the one holding the most of the promoted releases) BENCH_KILL_AFTER_MS after the first is
 * sent, while they are in flight. It prints the takeover time (the kill → the last of the killed
 * worker's promoted releases reaching its next pause, from the histories) and which workers took
 * them, checks that every release converged (promoted: Paused at step 3 with weight 50; the others:
 * Paused at step 1, each answering the status query, so served by a live worker) and that there
 * are no duplicate objects (per workload exactly one canary Deployment where the release is at
 * weight 50 and none with replicas where it is at weight 0, one active canary ReplicaSet, as many
 * canary pods as the canary Deployment asks for, one stable Deployment), and cleans up.
 * BENCH_RESTART_SERVER=1 (or `kill`) restarts the Temporal server instead of killing a worker: it runs
 * `scripts/temporal-sql.sh restart-server` (SIGTERM; `kill`: SIGKILL) BENCH_KILL_AFTER_MS after the
 * first promotion is sent, so against the SQL-backed server of that script only, and prints the
 * recovery (the restart → the last promoted release reaching its next pause) with the same checks.
 * BENCH_KILL=none disturbs nothing: it prints promote sent → next step (setWeight) scheduled and → next
 * pause p50/p99 for the promotions, sent BENCH_PROMOTE_CONCURRENCY at a time, with the same checks.
 * BENCH_KILL_SIGNAL=SIGTERM stops that worker gracefully instead (as a rolling upgrade or a drained node
 * does: it finishes the tasks it holds within GLIDEPATH_SHUTDOWN_GRACE, 2s here, and exits).
 * BENCH_REPLICAS=0 keeps kwok pods out of it (Deployments of 0 replicas: many more releases fit).
 * Env: TEMPORAL_ADDRESS (127.0.0.1:7233), KUBECONFIG (the local control plane), BENCH_WORKERS (3),
 *      BENCH_RELEASES (300; 10,000 with enough kwok nodes and time), BENCH_PROMOTIONS (100),
 *      BENCH_REPLICAS (1; 0 allowed), BENCH_START_CONCURRENCY (10), BENCH_START_WINDOW (no limit: at most this
 *      many releases started and not yet Paused; 10,000 started at once outran the control plane's Deployment
 *      controller on 2 cores, and canaries passed their 600-s progress deadline), BENCH_KILL (index of the worker to kill, or none),
 *      BENCH_PROMOTE_CONCURRENCY (all the promotions at once),
 *      BENCH_KILL_AFTER_MS (300), BENCH_DEADLINE_SECONDS (900: then it stops, prints what it
 *      measured and cleans up), BENCH_WORKER_ENV (extra worker env, `K=V,K=V`), BENCH_METRICS_PORT
 *      (the first of 2 × BENCH_WORKERS ports for the workers' metrics; default a random base below 32000).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { KubeConfig } from '@kubernetes/client-node';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { tsToMs } from '@temporalio/common/lib/time.js';
import { releaseWorkflowId, type ReleasePlan } from '../model/types.ts';
import { promoteUpdate, statusQuery } from '../workflows/messages.ts';
import { LABELS } from '../activities/kubernetes/objects.ts';
import { plan as harnessPlan } from '../test/workflows/harness.ts';
import { createBenchDeployments, pool, realWorkerBenchSetup, startUntilPaused } from './support/workloads.ts';
import { imageEnv } from './support/image-env.ts';

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const int = (name: string, dflt: number, min = 1): number => {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isInteger(v) || v < min) throw new Error(`${name}: a whole number ≥ ${min}`);
  return v;
};
const workers = int('BENCH_WORKERS', 3, 2);
const n = int('BENCH_RELEASES', 300);
const promotions = Math.min(n, int('BENCH_PROMOTIONS', 100));
const replicas = int('BENCH_REPLICAS', 1, 0);
const startConcurrency = int('BENCH_START_CONCURRENCY', 10);
const startWindow = process.env.BENCH_START_WINDOW ? int('BENCH_START_WINDOW', 1) : Infinity;
const killAfterMs = int('BENCH_KILL_AFTER_MS', 300, 0);
const noKill = process.env.BENCH_KILL === 'none';
const killSignal = (process.env.BENCH_KILL_SIGNAL ?? 'SIGKILL') as NodeJS.Signals;
if (!['SIGKILL', 'SIGTERM'].includes(killSignal)) throw new Error(`BENCH_KILL_SIGNAL: SIGKILL (the default) or SIGTERM, not ${killSignal}`);
const killIndex = process.env.BENCH_KILL === undefined || noKill ? undefined : int('BENCH_KILL', 0, 0);
if (killIndex !== undefined && killIndex >= workers) throw new Error(`BENCH_KILL: a worker index below BENCH_WORKERS (${workers}), or none`);
const promoteConcurrency = int('BENCH_PROMOTE_CONCURRENCY', promotions);
const deadlineSeconds = int('BENCH_DEADLINE_SECONDS', 900);
const restartServer = process.env.BENCH_RESTART_SERVER ?? '';
if (!['', '0', '1', 'kill'].includes(restartServer)) throw new Error('BENCH_RESTART_SERVER: 1 (SIGTERM) or kill (SIGKILL)');
if (noKill && ['1', 'kill'].includes(restartServer)) throw new Error('BENCH_KILL=none and BENCH_RESTART_SERVER: choose one (none measures the promotions undisturbed)');
const workerEnv = Object.fromEntries((process.env.BENCH_WORKER_ENV ?? '').split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

const log = (line: string): void => console.log(`scale-out: ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');
const secs = (x: number) => `${(x / 1000).toFixed(1)} s`;
const pct = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
};


/** One real worker process; its Temporal identity is the SDK's default, `<pid>@<host>`. */
class WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly ready: Promise<void>;

  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [path.join(root, 'workers/main.ts')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.pid = this.child.pid as number;
    let tail = '';
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code, signal) => reject(new Error(`worker ${this.pid} exited (${code ?? signal}): ${tail}`)));
      const onLine = (line: string) => {
        tail = `${tail}\n${line}`.slice(-3000);
        if (line.includes('"worker started"')) resolve();
        else if (/"level":(50|60)/.test(line)) process.stderr.write(`worker ${this.pid}: ${line}\n`);
      };
      createInterface({ input: this.child.stdout! }).on('line', onLine);
      createInterface({ input: this.child.stderr! }).on('line', onLine);
    });
    this.ready.catch(() => {}); // a later exit (the kill) is expected
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill(signal);
    await exited;
  }
}

/** A process's resident memory in MiB, from /proc (Linux). */
const rssMiB = (pid: number): number => Math.round(Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024);
const pidOf = (identity: string | null | undefined): number => Number(identity?.split('@')[0]);
/** The identities of the workers that started the workflow tasks among `events`. */
const taskWorkers = (events: HistoryEvent[]): number[] => events.filter((e) => e.workflowTaskStartedEventAttributes).map((e) => pidOf(e.workflowTaskStartedEventAttributes?.identity));
const phaseOf = (e: HistoryEvent): string | undefined => {
  const payload = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.GlidepathPhase;
  return payload?.data ? (JSON.parse(Buffer.from(payload.data).toString('utf8')) as string) : undefined;
};

/**
 * One release's history from `from` (epoch ms) up to and including `until`, as `seconds EventType`
 * with the seconds counted from `zero`
 * (with the timeout kind, the activity's name and attempt, or the identity's worker where they say
 * where the time went), for the slowest of a takeover.
 */
function timeline(events: HistoryEvent[], zero: number, from: number, until: number, label: (pid: number) => string): string {
  const type = (e: HistoryEvent) => proto.temporal.api.enums.v1.EventType[e.eventType ?? 0]?.replace(/^EVENT_TYPE_/, '') ?? `event ${e.eventType}`;
  const detail = (e: HistoryEvent): string => {
    const timeout = e.workflowTaskTimedOutEventAttributes?.timeoutType ?? e.activityTaskTimedOutEventAttributes?.failure?.timeoutFailureInfo?.timeoutType;
    if (timeout) return ` (${proto.temporal.api.enums.v1.TimeoutType[timeout]?.replace(/^TIMEOUT_TYPE_/, '')})`;
    const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
    if (name) return ` ${name}`;
    const started = e.workflowTaskStartedEventAttributes ?? e.activityTaskStartedEventAttributes;
    if (started) return ` by ${label(pidOf(started.identity))}${(e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1 ? `, attempt ${e.activityTaskStartedEventAttributes!.attempt}` : ''}`;
    return '';
  };
  return events
    .filter((e) => tsToMs(e.eventTime) >= from && tsToMs(e.eventTime) <= until)
    .map((e) => `${((tsToMs(e.eventTime) - zero) / 1000).toFixed(1)} ${type(e)}${detail(e)}`)
    .join('; ');
}

/** `scripts/temporal-sql.sh restart-server`: resolves with its report line once the server is ready again. */
function restartTemporalServer(kill: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(root, 'scripts/temporal-sql.sh'), 'restart-server', ...(kill ? ['--kill'] : [])], { cwd: root, env: { ...process.env, TEMPORAL_PORT: address.split(':').at(-1) }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(err.trim().split('\n').at(-1) ?? '') : reject(new Error(`temporal-sql.sh restart-server exited ${code}: ${err.slice(-2000)}`))));
  });
}

async function run(client: Client, kc: KubeConfig, bundle: string): Promise<void> {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const suffix = Math.random().toString(36).slice(2, 7);
  const namespace = `bench-scale-${suffix}`;
  const taskQueue = `bench-scale-${suffix}`;
  const deadline = Date.now() + deadlineSeconds * 1000;
  const late = () => Date.now() > deadline;
  const names = Array.from({ length: n }, (_, i) => `app-${i}`);
  const plans: ReleasePlan[] = names.map((name) =>
    harnessPlan(name, { type: 'canary', steps: [{ kind: 'pause' }, { kind: 'setWeight', weight: 50 }, { kind: 'pause' }] }, { namespace, image: `registry.local/${name}:v2`, retryWindowSeconds: 300 }),
  );
  const ids = plans.map(releaseWorkflowId);
  const history = async (id: string) => (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
  /** A history read that rides out a server restart: retried until the deadline. */
  const historySoon = async (id: string): Promise<HistoryEvent[]> => {
    for (;;) {
      try {
        return await history(id);
      } catch (err) {
        if (late()) throw err;
        await sleep(1000);
      }
    }
  };
  const procs: WorkerProcess[] = [];
  let stopping = false;
  const signalled = new Set<number>(); // the pid of the worker stopped on purpose
  const disruption = noKill ? 'nothing killed' : restartServer === '' || restartServer === '0' ? `one worker stopped with ${killSignal}` : `the Temporal server restarted (SIG${restartServer === 'kill' ? 'KILL' : 'TERM'})`;
  log(`--- ${n} releases, ${workers} workers, ${promotions} promotions (${promoteConcurrency} at a time), ${disruption} (namespace ${namespace}, ${replicas} replica(s) each; load average ${load()} on ${os.cpus().length} cores)`);
  try {
    // 1. the workloads; each promoted release adds a canary at weight 50
    const nodes = await core.listNode();
    const podRoom = nodes.items.reduce((sum, node) => sum + Number(node.status?.allocatable?.pods ?? 0), 0);
    const need = (n + promotions) * replicas + 20;
    if (podRoom < need) throw new Error(`the cluster's nodes take ${podRoom} pods; ${n} releases of ${replicas} replica(s), ${promotions} promoted, need about ${need}: start it with more kwok nodes (GLIDEPATH_KUBE_NODES=${Math.ceil(need / 110)} bash scripts/kube.sh up)`);
    const took = await createBenchDeployments({ apps, core }, namespace, names, replicas, late);
    log(`${n} Deployments available in ${secs(took)}`);

    // 2. the workers, one task queue
    // Below Linux's ephemeral range (32768–60999): a port there can be held by any outgoing connection.
    const metricsBase = process.env.BENCH_METRICS_PORT ? int('BENCH_METRICS_PORT', 1024) : 20000 + Math.floor(Math.random() * 12000);
    const image = imageEnv(); // as in a pod: the Dockerfile's allocator and Node settings
    for (let i = 0; i < workers; i++) {
      procs.push(
        new WorkerProcess({
          ...process.env,
          ...image,
          TEMPORAL_ADDRESS: address,
          GLIDEPATH_TASK_QUEUE: taskQueue,
          GLIDEPATH_WORKFLOW_BUNDLE: bundle,
          GLIDEPATH_METRICS_ADDRESS: `127.0.0.1:${metricsBase + 2 * i}`,
          GLIDEPATH_CORE_METRICS_ADDRESS: `127.0.0.1:${metricsBase + 2 * i + 1}`,
          GLIDEPATH_REGISTER_SEARCH_ATTRIBUTES: 'false',
          GLIDEPATH_SHUTDOWN_GRACE: '2s',
          ...workerEnv,
        }),
      );
    }
    await Promise.all(procs.map((p) => p.ready));
    procs.forEach((p, i) => p.child.once('exit', (code, signal) => !signalled.has(p.pid) && !stopping && log(`worker ${i} (pid ${p.pid}) exited by itself (${code ?? signal})`)));
    const index = new Map(procs.map((p, i) => [p.pid, i]));
    const label = (pid: number) => (index.has(pid) ? `worker ${index.get(pid)} (pid ${pid})` : `unknown ${pid}`);
    log(`workers started: ${procs.map((p, i) => `${i}: pid ${p.pid}`).join(', ')}`);

    // 3. start them all; wait until all are Paused at step 1
    const { started, paused, ended, ms: pausedMs } = await startUntilPaused(client, taskQueue, plans, startConcurrency, late, startWindow);
    const window = Number.isFinite(startWindow) ? `, at most ${startWindow} started and not yet Paused` : '';
    log(`${paused} of ${started} Paused ${secs(pausedMs)} after the first start (${startConcurrency} starts at a time${window}); ${ended} ended before pausing; load average ${load()}`);
    if (paused < n) throw new Error(`only ${paused} of ${n} paused before the deadline`);

    // 4. the per-worker share: who ran each release's workflow tasks so far, and who holds it now (its last task)
    const holder = new Map<string, number>();
    const tasks = new Map<number, number>();
    await pool(ids, 10, async (id) => {
      const ran = taskWorkers(await history(id));
      ran.forEach((pid) => tasks.set(pid, (tasks.get(pid) ?? 0) + 1));
      holder.set(id, ran.at(-1) as number);
    });
    const share = (pid: number) => [...holder.values()].filter((h) => h === pid).length;
    log(`per-worker share (releases whose last workflow task it ran; workflow tasks it ran): ${procs.map((p) => `${label(p.pid)} ${share(p.pid)} (${((100 * share(p.pid)) / n).toFixed(0)}%), ${tasks.get(p.pid) ?? 0} tasks`).join('; ')}`);
    log(`RSS with all ${n} Paused: ${procs.map((p) => `${label(p.pid)} ${rssMiB(p.pid)} MiB`).join('; ')}`);

    // 5. the promotions all at once; one worker killed (or the server restarted) while they are in flight
    const promoted = ids.slice(0, promotions);
    const restarting = restartServer === '1' || restartServer === 'kill';
    const victim = procs[killIndex ?? procs.map((p) => promoted.filter((id) => holder.get(id) === p.pid).length).reduce((best, c, i, all) => (c > (all[best] as number) ? i : best), 0)] as WorkerProcess;
    const sent = new Map<string, number>();
    const outcomes = { accepted: 0, retried: 0, failed: [] as string[] };
    let killedAt = 0;
    let restartReport = '';
    let victimExit = 'it had not exited yet';
    const kill = noKill ? Promise.resolve() : sleep(killAfterMs).then(async () => {
      killedAt = Date.now();
      if (restarting) restartReport = await restartTemporalServer(restartServer === 'kill');
      else {
        signalled.add(victim.pid);
        victim.child.once('exit', (code, signal) => (victimExit = `it exited ${secs(Date.now() - killedAt)} after the signal (${code ?? signal})`));
        victim.child.kill(killSignal);
      }
    });
    await Promise.all([
      kill,
      pool(promoted, promoteConcurrency, async (id) => {
        sent.set(id, Date.now());
        // The same update id on every attempt: a resend after the kill is deduplicated by the server.
        // Sent until the deadline, backing off up to 5 s: a server restart under load outlasts a fixed count
        // (20 sends, about 47 s, left 11 of 100 promotions unsent once), and updates in flight are aborted with it.
        for (let attempt = 1; ; attempt++) {
          try {
            await client.workflow.getHandle(id).executeUpdate(promoteUpdate, { args: [{ by: 'bench', reason: 'scale-out bench' }], updateId: `bench-promote-${id}` });
            outcomes.accepted++;
            return;
          } catch (err) {
            const cause = (err as Error).cause instanceof Error ? `: ${((err as Error).cause as Error).message}` : '';
            if (late()) return void outcomes.failed.push(`${id}: ${(err as Error).message}${cause}`);
            outcomes.retried++;
            await sleep(Math.min(5000, 250 * attempt));
          }
        }
      }),
    ]);
    const victimHeld = restarting || noKill ? [] : promoted.filter((id) => holder.get(id) === victim.pid);
    const updates = `${outcomes.accepted} updates completed (${outcomes.retried} sends repeated), ${outcomes.failed.length} failed${outcomes.failed.length ? `, e.g. ${outcomes.failed[0]}` : ''}`;
    if (noKill) log(`no worker killed, no server restarted; ${updates}`);
    else if (restarting) log(`restarted the Temporal server ${killAfterMs} ms after the first of ${promotions} promotions was sent (${restartReport.replace(/^temporal-sql: /, '')}); ${updates}`);
    else log(`sent ${killSignal} to ${label(victim.pid)} ${killAfterMs} ms after the first of ${promotions} promotions was sent (${victimExit}); it held ${victimHeld.length} of them; ${updates}`);

    // 6. every promoted release reaches its next pause: when, and by which worker (its history)
    // Lost with the stop: workflow tasks that timed out (a task the stopped worker had taken: its start-to-close timeout, 90 s as
    // the CLI starts releases; one left on its sticky queue: 10 s to start) and activities retried (found dead by their heartbeat timeout).
    // Timeouts count from the promote's send, not its acceptance: a promote's speculative task that waits past the sticky
    // queue's schedule-to-start timeout is written to the history before the update is accepted.
    const reached = new Map<string, { at: number; stepAt: number; by: number; timedOutTasks: number; stickyTimeouts: number; failedTasks: number; retriedActivities: number }>();
    await pool(promoted, 10, async (id) => {
      while (!late()) {
        const events = await historySoon(id);
        const accepted = events.findIndex((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
        const after = accepted >= 0 ? events.slice(accepted) : [];
        const weight = after.findIndex((e) => e.activityTaskCompletedEventAttributes);
        const step = after.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'setWeight');
        const pause = weight >= 0 ? after.slice(weight).find((e) => phaseOf(e) === 'Paused') : undefined;
        if (pause) {
          const upTo = events.slice(0, events.indexOf(pause));
          const since = upTo.slice(accepted);
          const sinceSent = upTo.filter((e) => tsToMs(e.eventTime) >= (sent.get(id) as number));
          const timedOut = sinceSent.filter((e) => e.workflowTaskTimedOutEventAttributes);
          return void reached.set(id, {
            at: tsToMs(pause.eventTime),
            stepAt: step ? tsToMs(step.eventTime) : NaN,
            by: taskWorkers(upTo).at(-1) as number,
            timedOutTasks: timedOut.length,
            stickyTimeouts: timedOut.filter((e) => e.workflowTaskTimedOutEventAttributes!.timeoutType === proto.temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START).length,
            failedTasks: sinceSent.filter((e) => e.workflowTaskFailedEventAttributes).length,
            retriedActivities: since.filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1).length,
          });
        }
        await sleep(1000);
      }
    });
    if (restarting) {
      const got = promoted.filter((id) => reached.has(id));
      const before = got.filter((id) => reached.get(id)!.at < killedAt);
      const last = got.length ? Math.max(...got.map((id) => reached.get(id)!.at)) : NaN;
      const latencyAll = got.map((id) => reached.get(id)!.at - (sent.get(id) as number));
      log(
        `recovery: ${got.length} of ${promotions} promoted releases reached their next pause (${before.length} before the restart began); the last ${secs(last - killedAt)} after it began; promote sent → next pause p50 ${secs(pct(latencyAll, 50))}, max ${secs(pct(latencyAll, 100))}; ${got.filter((id) => reached.get(id)!.timedOutTasks > 0).length} with a workflow task timed out, ${got.filter((id) => reached.get(id)!.retriedActivities > 0).length} with an activity retried`,
      );
      if (got.length < promotions) process.exitCode = 1;
    }
    const lost = (xs: string[]) => `${xs.filter((id) => reached.get(id)!.timedOutTasks > 0).length} with a workflow task timed out, ${xs.filter((id) => reached.get(id)!.retriedActivities > 0).length} with an activity retried`;
    if (noKill) {
      const got = promoted.filter((id) => reached.has(id));
      const since = (at: (id: string) => number) => got.map((id) => at(id) - (sent.get(id) as number));
      const figures = (xs: number[]) => `p50 ${secs(pct(xs, 50))}, p99 ${secs(pct(xs, 99))}, max ${secs(pct(xs, 100))}`;
      const toStep = since((id) => reached.get(id)!.stepAt).filter(Number.isFinite);
      const slow = got.filter((id) => reached.get(id)!.stepAt - (sent.get(id) as number) > 2000);
      const sticky = (xs: string[]) => xs.filter((id) => reached.get(id)!.stickyTimeouts > 0).length;
      log(
        `latency: ${got.length} of ${promotions} promoted releases reached their next pause (${promoteConcurrency} promotions at a time, ${n} in flight, ${workers} workers); promote sent → next step (setWeight) scheduled ${figures(toStep)} — goal p99 ≤ 2 s: ${pct(toStep, 99) <= 2000 ? 'met' : 'NOT met'}; → next pause ${figures(since((id) => reached.get(id)!.at))}; ${lost(got)}`,
      );
      const failed = (xs: string[]) => xs.filter((id) => reached.get(id)!.failedTasks > 0).length;
      log(`slower than 2 s to the next step: ${slow.length}; of them ${sticky(slow)} with a workflow task that waited out the sticky queue's schedule-to-start timeout (${sticky(got)} of all ${got.length}), ${failed(slow)} with a workflow task failed (${failed(got)} of all)`);
      if (got.length < promotions) process.exitCode = 1;
    }
    const held = victimHeld.filter((id) => reached.has(id));
    const takeover = held.length ? Math.max(...held.map((id) => reached.get(id)!.at)) - killedAt : NaN;
    const others = promoted.filter((id) => holder.get(id) !== victim.pid && reached.has(id));
    const latency = (xs: string[]) => xs.map((id) => reached.get(id)!.at - (sent.get(id) as number));
    const by = new Map<number, number>();
    held.forEach((id) => by.set(reached.get(id)!.by, (by.get(reached.get(id)!.by) ?? 0) + 1));
    const workerKilled = !restarting && !noKill;
    if (workerKilled) log(
      `takeover: the last of the killed worker's ${victimHeld.length} promoted releases reached its next pause ${secs(takeover)} after the kill (${held.length} of ${victimHeld.length} reached it; promote sent → next pause p50 ${secs(pct(latency(held), 50))}, max ${secs(pct(latency(held), 100))}); finished by ${[...by].map(([pid, c]) => `${label(pid)} ${c}`).join(', ') || 'none'}`,
    );
    const slowest = held.reduce<string | undefined>((a, id) => (a === undefined || reached.get(id)!.at > reached.get(a)!.at ? id : a), undefined);
    if (workerKilled && slowest) log(`the slowest taken over (${slowest}), seconds from the kill, from its promote's send: ${timeline(await historySoon(slowest), killedAt, sent.get(slowest) as number, reached.get(slowest)!.at, label)}`);
    if (workerKilled) log(`lost with the kill: of the killed worker's ${held.length}, ${lost(held)}; of the others' ${others.length}, ${lost(others)}`);
    if (workerKilled) log(`the other workers' ${promotions - victimHeld.length} promoted releases: ${others.length} reached the next pause, promote sent → next pause p50 ${secs(pct(latency(others), 50))}, max ${secs(pct(latency(others), 100))}`);

    // 7. every release converged: the status query (served by a live worker) and the objects
    const promotedSet = new Set(promoted);
    const wrong: string[] = [];
    const weights = new Map<string, number>();
    await pool(ids, 20, async (id) => {
      const s = await client.workflow
        .getHandle(id)
        .query(statusQuery)
        .catch((err: Error) => err);
      if (s instanceof Error) return void wrong.push(`${id}: status query failed: ${s.message}`);
      const want = promotedSet.has(id) ? { index: 2, weight: 50 } : { index: 0, weight: 0 };
      weights.set(id, s.canaryWeight);
      if (s.phase !== 'Paused' || s.step.index !== want.index || s.canaryWeight !== want.weight) wrong.push(`${id}: ${s.phase} at step ${s.step.index + 1} weight ${s.canaryWeight}, expected Paused at step ${want.index + 1} weight ${want.weight}`);
    });
    log(`converged: ${n - wrong.length} of ${n} (${promotions} Paused at step 3 weight 50, the rest Paused at step 1, each answering the status query)${wrong.length ? `; ${wrong.length} not, e.g. ${wrong.slice(0, 3).join('; ')}` : ''}`);

    const duplicates = await duplicateObjects(apps, core, namespace, names, (name) => promotedSet.has(releaseWorkflowId(plans[names.indexOf(name)] as ReleasePlan)), replicas);
    log(`duplicate objects: ${duplicates.length === 0 ? 'none' : `${duplicates.length}, e.g. ${duplicates.slice(0, 5).join('; ')}`} (per workload: one stable Deployment; one canary Deployment with one active ReplicaSet and as many ready canary pods as it asks for where promoted, no canary pods elsewhere)`);
    if (wrong.length || duplicates.length || held.length < victimHeld.length) process.exitCode = 1;
    const died = procs.filter((p) => !p.alive && (restarting || noKill || p !== victim));
    if (died.length) {
      log(`workers that exited by themselves: ${died.map((p) => label(p.pid)).join(', ')}`);
      process.exitCode = 1;
    }
    log(`RSS at the end: ${procs.filter((p) => p.alive).map((p) => `${label(p.pid)} ${rssMiB(p.pid)} MiB`).join('; ')}; load average ${load()}`);
  } catch (err) {
    process.exitCode = 1;
    console.error(`scale-out: ${(err as Error).stack ?? err}`);
  } finally {
    await pool(ids, 20, async (id) => {
      await client.workflow
        .getHandle(id)
        .terminate('scale-out bench cleanup')
        .catch(() => {}); // closed already, or never started
    });
    stopping = true;
    await Promise.all(procs.map((p) => p.stop()));
    await core.deleteNamespace({ name: namespace }).catch(() => {});
  }
}

/** The objects that should exist once per workload but do not, or exist more than once. */
async function duplicateObjects(apps: AppsV1Api, core: CoreV1Api, namespace: string, names: string[], promoted: (name: string) => boolean, stableReplicas: number): Promise<string[]> {
  const [deployments, replicaSets, pods] = await Promise.all([apps.listNamespacedDeployment({ namespace }), apps.listNamespacedReplicaSet({ namespace }), core.listNamespacedPod({ namespace })]);
  const group = <T extends { metadata?: { labels?: Record<string, string> } }>(items: T[], role: string | undefined) => {
    const by = new Map<string, T[]>();
    for (const item of items) {
      const labels = item.metadata?.labels ?? {};
      const workload = role ? labels[LABELS.workload] : labels.app;
      if (workload === undefined || (role ? labels[LABELS.role] !== role : labels[LABELS.role] !== undefined)) continue;
      by.set(workload, [...(by.get(workload) ?? []), item]);
    }
    return by;
  };
  const stables = group(deployments.items, undefined);
  const canaries = group(deployments.items, 'canary');
  const canarySets = group(replicaSets.items, 'canary');
  const canaryPods = group(pods.items, 'canary');
  const out: string[] = [];
  for (const name of names) {
    const stable = stables.get(name)?.length ?? 0;
    if (stable !== 1) out.push(`${name}: ${stable} stable Deployments`);
    const canary = canaries.get(name) ?? [];
    const activeSets = (canarySets.get(name) ?? []).filter((rs) => (rs.spec?.replicas ?? 0) > 0).length;
    const podCount = (canaryPods.get(name) ?? []).filter((p) => !p.metadata?.deletionTimestamp).length;
    if (promoted(name)) {
      const want = canary[0]?.spec?.replicas ?? 0;
      if (canary.length !== 1) out.push(`${name}: ${canary.length} canary Deployments`);
      // A canary of 0 replicas (a workload of 0): no ReplicaSet with replicas, no pods.
      if (activeSets !== (want > 0 ? 1 : 0)) out.push(`${name}: ${activeSets} canary ReplicaSets with replicas`);
      if (podCount !== want || (stableReplicas > 0 && want < 1)) out.push(`${name}: ${podCount} canary pods for ${want} asked`);
    } else {
      if (canary.length > 1) out.push(`${name}: ${canary.length} canary Deployments`);
      if (podCount > 0 || activeSets > 0) out.push(`${name}: ${podCount} canary pods, ${activeSets} canary ReplicaSets with replicas at weight 0`);
    }
  }
  return out;
}

const { kc, client, bundle, tmp } = await realWorkerBenchSetup('scale-out', address);
try {
  await run(client, kc, bundle);
} finally {
  await client.connection.close();
  rmSync(tmp, { recursive: true, force: true });
}
