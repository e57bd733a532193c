/**
 * In-flight capacity of one worker on the local Temporal dev server (scripts/dev-server.sh).
 * Runs the worker as a child process (this file with `--worker`: the real workflow code from a
 * prebuilt bundle, default worker options as in workers/main.ts, stub activities that report when
 * they start), starts N releases whose canary pauses indefinitely (pause, then setWeight 50), and
 * once the visibility store counts all N as Paused reads the worker's RSS from /proc/<pid>/status.
 * Then it promotes them all (BENCH_PROMOTE_CONCURRENCY updates at a time) and measures the step
 * transition: promote accepted (the update returned) → the next step's activity (setWeight 50)
 * started in the worker. Also CPU per release of the worker and of the dev server (when its pid is
 * known). Goals: ≥ 1,000 in flight at ≤ 1 GB RSS, step transition p99 ≤ 2 s. When
 * BENCH_DEADLINE_SECONDS passes it stops and prints what it measured so far. At the end every
 * release of the bench that still runs is terminated.
 * Env: TEMPORAL_ADDRESS (127.0.0.1:7233), BENCH_RELEASES (1000), BENCH_START_CONCURRENCY (20),
 *      BENCH_PROMOTE_CONCURRENCY (20), BENCH_DEADLINE_SECONDS (480: give up, clean up and fail),
 *      BENCH_MAX_CACHED (the worker's maxCachedWorkflows; default GLIDEPATH_MAX_CACHED_WORKFLOWS's, as workers/main.ts),
 *      BENCH_WORKER_MAX_OLD_SPACE_MB (V8's --max-old-space-size for the worker process: it bounds the heap
 *      of the workflow thread too),
 *      BENCH_SERVER_PID (the dev server's pid for CPU and RSS; default from scripts/dev-server.sh's state).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Connection } from '@temporalio/client';
import type { ReleaseActivities } from '../activities/index.ts';
import { startProblems } from '../model/plan.ts';
import type { ReleasePlan } from '../model/types.ts';
import { plan as harnessPlan } from '../test/workflows/harness.ts';
import { createFreezeActivities } from '../activities/freeze.ts';

const now = (): number => performance.timeOrigin + performance.now(); // wall clock, sub-ms, comparable across processes

// ---- the worker process ------------------------------------------------------------------------

async function runWorker(): Promise<void> {
  const { Context } = await import('@temporalio/activity');
  const { NativeConnection, Runtime, Worker } = await import('@temporalio/worker');
  const { dataConverterFromEnv } = await import('../workers/codec.ts');
  const { WORKFLOWS_PATH } = await import('../workers/bundle.ts');
  const { memoryOptions } = await import('../workers/config.ts');

  const quiet = () => {};
  Runtime.install({ logger: { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: (m) => process.stderr.write(`worker: ${m}\n`), error: (m) => process.stderr.write(`worker: ${m}\n`) } });
  const started = (type: string, arg = ''): void => {
    process.stdout.write(`A ${Context.current().info.workflowExecution?.workflowId} ${type} ${arg} ${now()}\n`);
  };
  const activities: ReleaseActivities = {
    validatePlan: async (plan, initiator) => startProblems(plan, initiator),
    routeToStable: async () => {},
    routeWeight: async () => {},
    removeCanary: async () => {},
    preflight: async () => (started('preflight'), { stableImage: 'registry.local/app:v1', replicas: 4, warnings: [] }),
    ensureCanary: async () => started('ensureCanary'),
    setWeight: async (_t, weight) => (started('setWeight', String(weight)), { canaryReplicas: Math.ceil((4 * weight) / 100) }),
    setCanaryScale: async () => ({ canaryReplicas: 1 }),
    setHeaderRoute: async () => {},
    setMirrorRoute: async () => {},
    promoteCanary: async () => started('promoteCanary'),
    abortCanary: async () => {},
    deployPreview: async () => {},
    switchActive: async () => {},
    finalizeBlueGreen: async () => {},
    abortBlueGreen: async () => {},
    beginRolling: async () => ({ replicas: 4 }),
    rollBatch: async () => ({ updated: 4, replicas: 4 }),
    completeRolling: async () => ({ updated: 4, replicas: 4 }),
    abortRolling: async () => {},
    runAnalysis: async () => ({ metrics: [], terminated: false }),
  };
  const bundle = process.env.GLIDEPATH_WORKFLOW_BUNDLE;
  const maxCached = process.env.BENCH_MAX_CACHED;
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' }),
    taskQueue: process.env.GLIDEPATH_TASK_QUEUE ?? 'bench-inflight',
    ...(bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: WORKFLOWS_PATH }),
    ...(maxCached ? { maxCachedWorkflows: Number(maxCached) } : memoryOptions()), // as workers/main.ts
    activities: { ...activities, identityPolicy: async () => null, driftFollowPromotion: async () => ({ skipped: 'bench: no drift watch' }), ...createFreezeActivities(undefined) },
    dataConverter: dataConverterFromEnv(),
    shutdownGraceTime: '1s',
  });
  // `memory` on stdin: where the memory is (V8 heap vs the rest). Not a signal: the SDK's Runtime
  // shuts the worker down on SIGUSR2, and SIGUSR1 starts Node's inspector.
  const commands = createInterface({ input: process.stdin });
  commands.on('line', (line) => {
    if (line !== 'memory') return;
    const m = process.memoryUsage();
    process.stdout.write(`M ${m.rss} ${m.heapTotal} ${m.heapUsed} ${m.external} ${m.arrayBuffers}\n`);
  });
  process.stdout.write(`worker ready maxCachedWorkflows=${worker.options.maxCachedWorkflows}\n`);
  await worker.run(); // until SIGTERM
  commands.close();
  process.stdin.destroy();
}

// ---- the bench ---------------------------------------------------------------------------------

/** Thrown when BENCH_DEADLINE_SECONDS passes: what was measured so far is still printed. */
class Deadline extends Error {
  override name = 'Deadline';
}

async function runBench(): Promise<void> {
  const { Client, Connection: Conn } = await import('@temporalio/client');
  const { dataConverterFromEnv } = await import('../workers/codec.ts');
  const { SERVICE_ATTRIBUTE, promoteUpdate } = await import('../workflows/messages.ts');
  const { releaseWorkflowId, serviceKey } = await import('../model/types.ts');

  const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  const int = (name: string, dflt: number): number => {
    const v = Number(process.env[name] ?? dflt);
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name}: a whole number ≥ 1`);
    return v;
  };
  const n = int('BENCH_RELEASES', 1000);
  const startConcurrency = int('BENCH_START_CONCURRENCY', 20);
  const promoteConcurrency = int('BENCH_PROMOTE_CONCURRENCY', 20);
  let deadline = Date.now() + int('BENCH_DEADLINE_SECONDS', 480) * 1000;
  // Interrupted: stop as at the deadline, so the releases are still cleaned up.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => (deadline = 0));
  const suffix = Math.random().toString(36).slice(2, 7);
  const taskQueue = `bench-inflight-${suffix}`;
  const self = fileURLToPath(import.meta.url);
  const root = path.resolve(path.dirname(self), '..');
  const log = (line: string): void => console.log(`inflight: ${line}`);
  const checkDeadline = (what: string): void => {
    if (Date.now() > deadline) throw new Deadline(`BENCH_DEADLINE_SECONDS passed while ${what}`);
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  let connection: Connection;
  try {
    connection = await Conn.connect({ address, connectTimeout: '5s' });
  } catch (err) {
    throw new Error(`the Temporal dev server is not reachable at ${address} (TEMPORAL_ADDRESS); start it with \`bash scripts/dev-server.sh start\``, { cause: err });
  }
  const client = new Client({ connection, dataConverter: dataConverterFromEnv() });

  // ---- /proc readings
  const proc = (pid: number) => {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN) * 1024;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    const cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, USER_HZ 100
    return { rss: kb('VmRSS'), hwm: kb('VmHWM'), cpuMs };
  };
  /** The dev server's pid, when it is the one scripts/dev-server.sh runs at this address (or BENCH_SERVER_PID). */
  const serverPid = (): number | undefined => {
    if (process.env.BENCH_SERVER_PID) return Number(process.env.BENCH_SERVER_PID);
    try {
      const state = path.join(process.env.GLIDEPATH_STATE ?? path.join(root, '.state'), 'temporal');
      const port = readFileSync(path.join(state, 'server.ports'), 'utf8').split(' ')[0];
      if (!address.endsWith(`:${port}`)) return undefined;
      const pid = Number(readFileSync(path.join(state, 'server.pid'), 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
  const pct = (xs: number[], p: number) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
  };
  const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`);
  const secs = (a: number, b: number) => `${((b - a) / 1000).toFixed(1)} s`;

  /** Runs `fn` over `items`, `limit` at a time; stops taking new items once `stop()` says so. */
  const pool = async <T>(items: T[], limit: number, fn: (item: T) => Promise<void>, stop = () => false): Promise<void> => {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(limit, items.length) }, async () => {
        while (next < items.length && !stop()) await fn(items[next++] as T);
      }),
    );
  };

  // ---- the worker process, reporting activity starts: `A <workflowId> <type> <arg> <ms>`
  const waiting = new Map<string, (at: number) => void>();
  const seen = new Map<string, number>();
  const key = (id: string, type: string, arg: string) => `${id} ${type} ${arg}`;
  const activityStart = (id: string, type: string, arg = ''): Promise<number> => {
    const at = seen.get(key(id, type, arg));
    return at !== undefined ? Promise.resolve(at) : new Promise((resolve) => waiting.set(key(id, type, arg), resolve));
  };

  // The worker runs a prebuilt workflow bundle, as in the container image (Dockerfile), so its RSS
  // holds no bundler.
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'glidepath-inflight-'));
  const bundle = path.join(tmp, 'workflow-bundle.js');
  await new Promise<void>((resolve, reject) =>
    execFile(process.execPath, [path.join(root, 'workers/bundle.ts'), bundle], (err, _out, stderr) => (err ? reject(new Error(`bundling the workflows failed: ${stderr}`, { cause: err })) : resolve())),
  );
  const maxOldSpace = process.env.BENCH_WORKER_MAX_OLD_SPACE_MB;
  const worker: ChildProcess = spawn(process.execPath, [...(maxOldSpace ? [`--max-old-space-size=${maxOldSpace}`] : []), self, '--worker'], {
    cwd: root,
    env: { ...process.env, TEMPORAL_ADDRESS: address, GLIDEPATH_TASK_QUEUE: taskQueue, GLIDEPATH_WORKFLOW_BUNDLE: bundle },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const workerPid = worker.pid as number;
  let cacheSize = '?';
  let onMemory: ((m: number[]) => void) | undefined;
  /**
   * The worker's own view of its memory (process.memoryUsage(): rss, heapTotal, heapUsed, external,
   * arrayBuffers). The heap is the main thread's; workflows run in a worker thread of their own.
   */
  const workerMemory = async (): Promise<string> => {
    const m = await new Promise<number[]>((resolve) => {
      onMemory = resolve;
      worker.stdin?.write('memory\n');
    });
    return `V8 heap ${mib(m[2] ?? 0)} used of ${mib(m[1] ?? 0)}, external ${mib(m[3] ?? 0)}, so ${mib((m[0] ?? 0) - (m[1] ?? 0))} outside the main thread's V8 heap: the workflow thread's heap, the SDK core, code`;
  };
  let stopping = false;
  /** Rejects when the worker process ends before the bench stops it. */
  const workerDied = new Promise<never>((_, reject) =>
    worker.once('exit', (code, signal) => {
      if (!stopping) reject(new Error(`the worker process exited (${code ?? signal}) during the bench`));
    }),
  );
  workerDied.catch(() => {}); // observed through race() below
  const ready = new Promise<void>((resolve, reject) => {
    worker.once('exit', (code, signal) => reject(new Error(`the worker exited (${code ?? signal}) before it was ready`)));
    createInterface({ input: worker.stdout! }).on('line', (line) => {
      if (line.startsWith('worker ready')) {
        cacheSize = line.split('=')[1] ?? '?';
        resolve();
        return;
      }
      if (line.startsWith('M ')) {
        onMemory?.(line.slice(2).split(' ').map(Number));
        onMemory = undefined;
        return;
      }
      const [tag, id, type, arg, at] = line.split(' ');
      if (tag !== 'A' || !id || !type || at === undefined) return;
      const k = key(id, type, arg ?? '');
      if (!seen.has(k)) seen.set(k, Number(at));
      waiting.get(k)?.(Number(at));
      waiting.delete(k);
    });
  });

  // ---- the releases: preflight, ensureCanary, then step 0 pauses until promoted; step 1 is setWeight 50
  const plans: ReleasePlan[] = Array.from({ length: n }, (_, i) => {
    const name = `inflight-${suffix}-${i}`;
    return harnessPlan(name, { type: 'canary', steps: [{ kind: 'pause' }, { kind: 'setWeight', weight: 50 }] }, { namespace: 'bench', image: `registry.local/${name}:v2`, retryWindowSeconds: 60 });
  });
  const count = async (query: string): Promise<number> => (await client.workflow.count(`TaskQueue = '${taskQueue}' AND ${query}`)).count;

  let failed = false;
  try {
    await ready;
    const server = serverPid();
    const idle = proc(workerPid);
    const server0 = server ? proc(server) : undefined;
    log(`${n} releases on task queue ${taskQueue}; worker pid ${workerPid} (prebuilt bundle, maxCachedWorkflows ${cacheSize}${maxOldSpace ? `, --max-old-space-size=${maxOldSpace}` : ''}) idle RSS ${mib(idle.rss)}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);

    // 1. start N releases, wait until the visibility store counts them Paused
    const t0 = Date.now();
    let started = 0;
    let peak = 0;
    try {
      await pool(
        plans,
        startConcurrency,
        async (p) => {
          await client.workflow.start('release', {
            taskQueue,
            workflowId: releaseWorkflowId(p),
            args: [{ plan: p, initiator: 'bench' }],
            typedSearchAttributes: [{ key: SERVICE_ATTRIBUTE, value: serviceKey(p) }],
          });
          started++;
        },
        () => Date.now() > deadline,
      );
      const t1 = Date.now();
      log(`started ${started} in ${secs(t0, t1)} (${((started * 1000) / (t1 - t0)).toFixed(0)}/s, ${startConcurrency} at a time)`);
      let paused = 0;
      for (;;) {
        if (worker.exitCode !== null || worker.signalCode !== null) await workerDied;
        peak = Math.max(peak, proc(workerPid).rss);
        paused = await count(`GlidepathPhase = 'Paused'`);
        if (paused >= n) break;
        checkDeadline(`waiting for the releases to pause: ${paused} of ${started} Paused after ${secs(t0, Date.now())}`);
        await sleep(1000);
      }
      log(`all ${paused} Paused ${secs(t0, Date.now())} after the first start (${((paused * 1000) / (Date.now() - t0)).toFixed(1)} releases/s to Paused)`);
    } finally {
      await sleep(2000); // let the worker settle
      const w = proc(workerPid);
      const s = server ? proc(server) : undefined;
      const inFlight = await count(`WorkflowType = 'release' AND ExecutionStatus = 'Running'`);
      const pausedNow = await count(`GlidepathPhase = 'Paused'`);
      const met = pausedNow >= 1000 && Math.max(w.hwm, peak) <= 1e9;
      log(`worker RSS with ${inFlight} in flight (${pausedNow} Paused): ${mib(w.rss)}, peak ${mib(Math.max(w.hwm, peak))} (idle ${mib(idle.rss)}; ${((w.rss - idle.rss) / Math.max(1, inFlight) / 1024).toFixed(0)} KiB per release) — goal ≥ 1,000 in flight at ≤ 1 GB: ${met ? 'met' : 'NOT met'}`);
      log(`  worker memory: ${await workerMemory()}`);
      log(`CPU to get ${started} releases to Paused: worker ${((w.cpuMs - idle.cpuMs) / Math.max(1, started)).toFixed(1)} ms per release${s && server0 ? `, dev server ${((s.cpuMs - server0.cpuMs) / Math.max(1, started)).toFixed(1)} ms per release (server RSS ${mib(s.rss)})` : ''}`);
    }
    const pausedIds = plans.map((p) => releaseWorkflowId(p));

    // 2. promote them all: promote accepted → setWeight 50 started in the worker
    const fromAccepted: number[] = [];
    const fromSent: number[] = [];
    const update: number[] = [];
    const t3 = Date.now();
    const w3 = proc(workerPid);
    const s3 = server ? proc(server) : undefined;
    try {
      await pool(
        pausedIds,
        promoteConcurrency,
        async (id) => {
          const next = activityStart(id, 'setWeight', '50');
          const sent = now();
          await Promise.race([client.workflow.getHandle(id).executeUpdate(promoteUpdate, { args: [{ by: 'bench', reason: 'inflight bench' }] }), workerDied]);
          const accepted = now();
          const at = await Promise.race([next, workerDied, sleep(120_000).then(() => Promise.reject(new Error(`${id}: setWeight 50 did not start within 120 s of the promote`)))]);
          fromAccepted.push(at - accepted);
          fromSent.push(at - sent);
          update.push(accepted - sent);
        },
        () => Date.now() > deadline,
      );
      checkDeadline(`promoting (${fromAccepted.length} of ${pausedIds.length} promoted)`);
    } finally {
      const t4 = Date.now();
      const w4 = proc(workerPid);
      const s4 = server ? proc(server) : undefined;
      const k = fromAccepted.length;
      if (k > 0) {
        const p99 = pct(fromAccepted, 99);
        log(`promoted ${k} in ${secs(t3, t4)} (${promoteConcurrency} updates at a time)`);
        log(`step transition, promote accepted → next activity started: p50 ${ms(pct(fromAccepted, 50))}, p99 ${ms(p99)}, max ${ms(pct(fromAccepted, 100))} (goal p99 ≤ 2 s: ${p99 <= 2000 && k === n ? 'met' : 'NOT met'}${k < n ? `; only ${k} of ${n} promoted` : ''})`);
        log(`  promote sent → next activity started: p50 ${ms(pct(fromSent, 50))}, p99 ${ms(pct(fromSent, 99))}; the promote update (sent → accepted): p50 ${ms(pct(update, 50))}, p99 ${ms(pct(update, 99))}`);
        log(`  CPU per promotion: worker ${((w4.cpuMs - w3.cpuMs) / k).toFixed(1)} ms${s4 && s3 ? `, dev server ${((s4.cpuMs - s3.cpuMs) / k).toFixed(1)} ms` : ''}; worker RSS after: ${mib(w4.rss)} (peak ${mib(w4.hwm)}; ${await workerMemory()})`);
      }
    }
    // The promoted releases finish on their own (promoteCanary); anything left is terminated below.
    while ((await count(`WorkflowType = 'release' AND ExecutionStatus = 'Running'`)) > 0 && Date.now() < deadline) await sleep(1000);
  } catch (err) {
    if (err instanceof Deadline) log(`stopped early: ${err.message} (figures above are for what was done by then)`);
    else {
      failed = true;
      console.error(`inflight: ${(err as Error).stack ?? err}`);
    }
  } finally {
    // Clean up: terminate whatever of ours still runs. By ID (visibility may lag behind the starts).
    let terminated = 0;
    const t5 = Date.now();
    const running = new Set<string>();
    for await (const w of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND WorkflowType = 'release' AND ExecutionStatus = 'Running'` })) running.add(w.workflowId);
    const ids = Date.now() > deadline || failed ? plans.map((p) => releaseWorkflowId(p)) : [...running];
    await pool(ids, 20, async (id) => {
      try {
        await client.workflow.getHandle(id).terminate('inflight bench cleanup');
        terminated++;
      } catch {
        // closed already, or never started
      }
    });
    if (terminated > 0) log(`terminated ${terminated} releases still running (${secs(t5, Date.now())})`);
    stopping = true;
    worker.stdin?.end();
    worker.kill('SIGTERM');
    if (worker.exitCode === null && worker.signalCode === null) await new Promise((r) => worker.once('exit', r));
    await connection.close();
    rmSync(tmp, { recursive: true, force: true });
  }
  if (failed) process.exitCode = 1;
}

if (process.argv.includes('--worker')) await runWorker();
else await runBench();
