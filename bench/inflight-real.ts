/**
 * In-flight memory of the real worker: `workers/main.ts` as a child process with its default options
 * and the environment the image gives it (the Dockerfile's ENV: NODE_OPTIONS, MALLOC_ARENA_MAX), the
 * real activities against the local control plane (kwok pods), the local Temporal dev server.
 * For each size in BENCH_RELEASES it creates that many Deployments (BENCH_REPLICAS pods each, a
 * readiness probe) in a namespace of its own, starts a fresh worker, starts one release per
 * Deployment (BENCH_START_CONCURRENCY at a time) whose canary pauses at step 1 (step 2 is setWeight
 * 50), and once the visibility store counts them all Paused (and again 35 s later, past the worker's
 * next memory-return pass) prints the worker's RSS, its V8 heaps
 * (the main thread's and the workflow thread's, read in the worker by bench/support/memory-probe.ts)
 * and the MiB per release. Then it promotes them all, BENCH_PROMOTE_CONCURRENCY at a time, and
 * prints promote sent → next step (setWeight 50 scheduled, from each release's history) p50/p99;
 * waits until every release has ended and prints the RSS then and BENCH_SETTLE_SECONDS later, with
 * the drift watches the promotions started still running (one per workload), then terminates those
 * and prints the RSS BENCH_SETTLE_SECONDS later, nothing in flight (memory returned). Peak RSS is sampled every second throughout. Goal: ≥ 1,000 paused at ≤ 1 GB RSS.
 * Env: TEMPORAL_ADDRESS (127.0.0.1:7233), KUBECONFIG (the local control plane), BENCH_RELEASES
 *      ("200,1000"), BENCH_REPLICAS (1), BENCH_START_CONCURRENCY (10), BENCH_PROMOTE_CONCURRENCY (50),
 *      BENCH_SETTLE_SECONDS (30), BENCH_DEADLINE_SECONDS (900 per size: then it stops, prints what it
 *      measured and cleans up), BENCH_WORKER_ENV (extra worker env, `K=V,K=V`, over the image's, e.g. GLIDEPATH_MAX_CACHED_WORKFLOWS=2000),
 *      BENCH_SNAPSHOT_DIR (write heap snapshots of the worker there when all are Paused),
 *      BENCH_HEAPTRACK_DIR (run the worker under heaptrack, from the Debian package; at
 *      BENCH_HEAPTRACK_AT — `paused`: when all are Paused and measured, the size's run ends there;
 *      `end`, the default: after the last reading — SIGKILL the worker, so the trace's "leaked"
 *      allocations are what the worker held then outside the V8 heaps, by call stack:
 *      `heaptrack_print -l` on the file it names).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { KubeConfig } from '@kubernetes/client-node';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import { DRIFT_WORKFLOW } from '../model/drift.ts';
import { releaseWorkflowId, type ReleasePlan } from '../model/types.ts';
import { promoteUpdate } from '../workflows/messages.ts';
import { plan as harnessPlan } from '../test/workflows/harness.ts';
import { imageEnv } from './support/image-env.ts';
import type { ProbeMemory } from './support/memory-probe.ts';
import { createBenchDeployments, pool, realWorkerBenchSetup, startUntilPaused } from './support/workloads.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const int = (name: string, dflt: number, min = 1): number => {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isInteger(v) || v < min) throw new Error(`${name}: a whole number ≥ ${min}`);
  return v;
};
const sizes = (process.env.BENCH_RELEASES ?? '200,1000').split(',').map((s) => {
  const v = Number(s);
  if (!Number.isInteger(v) || v < 1) throw new Error(`BENCH_RELEASES: whole numbers ≥ 1 separated by commas, got ${s}`);
  return v;
});
const replicas = int('BENCH_REPLICAS', 1, 0);
const startConcurrency = int('BENCH_START_CONCURRENCY', 10);
const promoteConcurrency = int('BENCH_PROMOTE_CONCURRENCY', 50);
const settleSeconds = int('BENCH_SETTLE_SECONDS', 30, 0);
const deadlineSeconds = int('BENCH_DEADLINE_SECONDS', 900);
const workerEnv = Object.fromEntries((process.env.BENCH_WORKER_ENV ?? '').split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

const log = (line: string): void => console.log(`inflight-real: ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1048576;
const mib = (b: number) => `${(b / MiB).toFixed(0)} MiB`;
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');
const pct = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
};
const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`);
const rssOf = (pid: number): number => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m)?.[1] ?? NaN) * 1024;


/** The real worker with the memory probe, answering `memory` on stdin. */
class WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  peak = 0;
  private answer: ((line: string) => void) | undefined;
  private readonly sampler: NodeJS.Timeout;
  readonly ready: Promise<string>;

  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, ['--import', path.join(root, 'bench/support/memory-probe.ts'), path.join(root, 'workers/main.ts')], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.child.pid as number;
    let tail = '';
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code, signal) => reject(new Error(`the worker exited (${code ?? signal}): ${tail}`)));
      const onLine = (line: string) => {
        tail = `${tail}\n${line}`.slice(-3000);
        if (line.includes('"worker started"')) resolve(line);
        if (/^(MEM|SNAP|ERR) /.test(line) || line === 'GC') {
          this.answer?.(line);
          this.answer = undefined;
        } else if (/"level":(50|60)/.test(line)) process.stderr.write(`worker: ${line}\n`);
      };
      createInterface({ input: this.child.stdout! }).on('line', onLine);
      createInterface({ input: this.child.stderr! }).on('line', onLine);
    });
    this.sampler = setInterval(() => this.sample(), 1000);
  }

  sample(): number {
    try {
      const rss = rssOf(this.pid);
      this.peak = Math.max(this.peak, rss);
      return rss;
    } catch {
      return NaN; // exited
    }
  }

  private ask(command: string): Promise<string> {
    return new Promise((resolve) => {
      this.answer = resolve;
      this.child.stdin?.write(`${command}\n`);
    });
  }

  async memory(): Promise<ProbeMemory> {
    return JSON.parse((await this.ask('memory')).slice(4)) as ProbeMemory;
  }

  snapshot(dir: string): Promise<string> {
    return this.ask(`snapshot ${dir}`);
  }

  async stop(): Promise<void> {
    clearInterval(this.sampler);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin?.end(); // the probe's reader ends with it
    this.child.kill('SIGTERM');
    await exited;
  }
}

const describeMemory = (m: ProbeMemory): string => {
  const t = m.threads.map((h) => `${mib(h.used)} used of ${mib(h.total)} (limit ${mib(h.limit)}, ${h.contexts} contexts)`).join('; ');
  const spaces = Object.entries(m.main.spaces)
    .map(([name, [size, used]]) => `${name} ${mib(used)}/${mib(size)}`)
    .join(', ');
  return `main thread heap ${mib(m.main.used)} used of ${mib(m.main.total)} (limit ${mib(m.main.limit)}; ${spaces}); workflow thread heap ${t || 'none'}; external ${mib(m.process.external)}; RSS outside these heaps ${mib(m.process.rss - m.main.total - m.threads.reduce((s, h) => s + h.total, 0))} (code, the SDK's Rust core, allocator): V8's own mallocs ${mib(m.main.malloced + m.threads.reduce((s, h) => s + h.malloced, 0))}, array buffers ${mib(m.process.arrayBuffers)} (main thread), resident in the brk heap ${mib(m.mappings.brk)}, in anonymous mappings ${mib(m.mappings.anonymous)} (the V8 heaps among them), in files ${mib(m.mappings.files)}; ${m.mappings.fds} descriptors, ${m.mappings.sockets} sockets${m.malloc ? `; glibc malloc: ${mib(m.malloc.inUse)} in use (${mib(m.malloc.mmapped)} of it in mmaps of its own), ${mib(m.malloc.free)} free inside its arenas of ${mib(m.malloc.arena)}` : ''}`;
};

/**
 * Heaptrack's launch mode by hand (its attach mode, gdb injecting into the running worker, killed it):
 * the worker gets heaptrack's preload library and writes its trace into a pipe that heaptrack's
 * interpreter reads and zstd compresses into `dir`. Resolves with the file once the worker has gone.
 */
function heaptrackLaunch(dir: string): { env: Record<string, string>; trace: Promise<string> } {
  const pipe = path.join(dir, `pipe-${process.pid}`);
  const file = path.join(dir, `worker-${process.pid}-${Date.now()}.zst`);
  rmSync(pipe, { force: true });
  execFileSync('mkfifo', [pipe]);
  const reader = spawn('sh', ['-c', `/usr/lib/heaptrack/libexec/heaptrack_interpret < '${pipe}' | zstd -q -c > '${file}'`], { stdio: 'inherit' });
  const trace = new Promise<string>((resolve, reject) => {
    reader.once('error', reject);
    reader.once('exit', (code) => (rmSync(pipe, { force: true }), code === 0 ? resolve(file) : reject(new Error(`heaptrack_interpret exited ${code}`))));
  });
  return { env: { LD_PRELOAD: '/usr/lib/heaptrack/libheaptrack_preload.so', DUMP_HEAPTRACK_OUTPUT: pipe }, trace };
}

async function killTraced(worker: WorkerProcess, trace: Promise<string>): Promise<string> {
  worker.child.kill('SIGKILL');
  return `the worker was killed; its allocations live then are the "leaked" ones of ${await trace}`;
}

/** The SDK's sticky-cache counters (its Prometheus exporter): hits, and misses (a task for a workflow not in the cache: a replay). */
async function cacheCounters(coreMetricsUrl: string): Promise<{ hit: number; miss: number }> {
  const text = await fetch(coreMetricsUrl).then((r) => r.text(), () => '');
  const sum = (name: string) => [...text.matchAll(new RegExp(`^temporal_sticky_cache_${name}(?:_total)?(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((t, m) => t + Number(m[1]), 0);
  return { hit: sum('hit'), miss: sum('miss') };
}

/** Terminates the drift watches the bench's promotions started on `taskQueue`; returns how many. */
async function terminateWatches(client: Client, taskQueue: string): Promise<number> {
  const ids: string[] = [];
  for await (const w of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND WorkflowType = '${DRIFT_WORKFLOW}' AND ExecutionStatus = 'Running'` })) ids.push(w.workflowId);
  await pool(ids, 20, async (id) => {
    await client.workflow
      .getHandle(id)
      .terminate('inflight-real bench: memory with nothing in flight')
      .catch(() => {}); // ended meanwhile
  });
  return ids.length;
}

async function run(n: number, client: Client, kc: KubeConfig, bundle: string): Promise<void> {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const suffix = Math.random().toString(36).slice(2, 7);
  const namespace = `bench-real-${suffix}`;
  const taskQueue = `bench-real-${suffix}`;
  const deadline = Date.now() + deadlineSeconds * 1000;
  const late = () => Date.now() > deadline;
  const names = Array.from({ length: n }, (_, i) => `app-${i}`);
  const plans: ReleasePlan[] = names.map((name) =>
    harnessPlan(name, { type: 'canary', steps: [{ kind: 'pause' }, { kind: 'setWeight', weight: 50 }] }, { namespace, image: `registry.local/${name}:v2`, retryWindowSeconds: 60 }),
  );
  const ids = plans.map(releaseWorkflowId);
  const count = async (query: string) => (await client.workflow.count(`TaskQueue = '${taskQueue}' AND ${query}`)).count;
  let worker: WorkerProcess | undefined;
  log(`--- ${n} releases (namespace ${namespace}, ${replicas} replica(s) each; load average ${load()} on ${os.cpus().length} cores)`);
  try {
    // 1. the workloads, before the worker starts (not part of its memory); a promotion adds a canary pod and a surge pod
    const nodes = await core.listNode();
    const podRoom = nodes.items.reduce((sum, node) => sum + Number(node.status?.allocatable?.pods ?? 0), 0);
    if (podRoom < n * replicas * 2 + 50) throw new Error(`the cluster's nodes take ${podRoom} pods; ${n} releases of ${replicas} replica(s) need about ${n * replicas * 2 + 50}: start it with more kwok nodes (GLIDEPATH_KUBE_NODES=${Math.ceil((n * replicas * 2 + 50) / 110)} bash scripts/kube.sh up) or set BENCH_REPLICAS=0`);
    const took = await createBenchDeployments({ apps, core }, namespace, names, replicas, late);
    log(`${n} Deployments available in ${(took / 1000).toFixed(0)} s`);

    // 2. a fresh worker: default options, prebuilt bundle as in the image
    const metricsPort = 20000 + Math.floor(Math.random() * 12000); // below the ephemeral range (32768+)
    const image = imageEnv();
    const traced = process.env.BENCH_HEAPTRACK_DIR ? heaptrackLaunch(process.env.BENCH_HEAPTRACK_DIR) : undefined;
    const heaptrack = traced?.trace;
    worker = new WorkerProcess({
      ...process.env,
      ...image,
      TEMPORAL_ADDRESS: address,
      GLIDEPATH_TASK_QUEUE: taskQueue,
      GLIDEPATH_WORKFLOW_BUNDLE: bundle,
      GLIDEPATH_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      GLIDEPATH_CORE_METRICS_ADDRESS: `127.0.0.1:${metricsPort + 1}`,
      GLIDEPATH_REGISTER_SEARCH_ATTRIBUTES: 'false',
      GLIDEPATH_SHUTDOWN_GRACE: '2s',
      ...workerEnv,
      ...traced?.env,
    });
    const started0 = await worker.ready;
    const cache = started0.match(/"maxCachedWorkflows":(\d+)/)?.[1] ?? '?';
    await sleep(2000);
    const idle = worker.sample();
    log(`worker pid ${worker.pid} (maxCachedWorkflows ${cache}; image env ${JSON.stringify(image)}) idle: RSS ${mib(idle)}; ${describeMemory(await worker.memory())}${Object.keys(workerEnv).length ? `; env ${JSON.stringify(workerEnv)}` : ''}`);

    // 3. start them all, bounded; wait until all are Paused
    const { started, paused, ms: pausedMs } = await startUntilPaused(client, taskQueue, plans, startConcurrency, late);
    log(`${paused} of ${started} Paused ${(pausedMs / 1000).toFixed(0)} s after the first start (${startConcurrency} starts at a time); peak RSS so far ${mib(worker.peak)}`);
    await sleep(5000);
    const rss = worker.sample();
    const mem = await worker.memory();
    const perRelease = (rss - idle) / Math.max(1, paused) / MiB;
    log(`RSS with ${paused} Paused: ${mib(rss)} (idle ${mib(idle)}; ${perRelease.toFixed(2)} MiB per release; peak ${mib(worker.peak)}) — goal ≥ 1,000 at ≤ 1 GB: ${paused >= 1000 && worker.peak <= 1e9 ? 'met' : paused >= 1000 ? 'NOT met' : `n/a at ${paused}`}`);
    log(`  ${describeMemory(mem)}`);
    const threadUsed = mem.threads.reduce((s, h) => s + h.used, 0);
    log(`  workflow thread heap per release: ${(threadUsed / Math.max(1, paused) / 1024).toFixed(0)} KiB (all of it, bundle included, over ${paused})`);
    // Held while paused, past the worker's next memory-return pass (every 30 s, workers/memory-return.ts).
    await sleep(35_000);
    const held = worker.sample();
    log(`RSS 40 s after all were Paused: ${mib(held)} (${((held - idle) / Math.max(1, paused) / MiB).toFixed(2)} MiB per release above idle); ${describeMemory(await worker.memory())}`);
    if (process.env.BENCH_SNAPSHOT_DIR) log(`  heap snapshots: ${await worker.snapshot(process.env.BENCH_SNAPSHOT_DIR)}`);
    if (heaptrack && process.env.BENCH_HEAPTRACK_AT === 'paused') return void log(`  heaptrack: ${await killTraced(worker, heaptrack)}, with ${paused} Paused`);

    // 4. promote them all: promote sent → setWeight 50 scheduled (the release's history)
    const coreMetricsUrl = `http://127.0.0.1:${metricsPort + 1}/metrics`;
    const cache0 = await cacheCounters(coreMetricsUrl);
    const sent = new Map<string, number>();
    const promoteErrors: string[] = [];
    const t2 = Date.now();
    let promoted = 0;
    await pool(
      ids,
      promoteConcurrency,
      async (id) => {
        // An update that times out on an overloaded machine is sent again (the promotion is idempotent); the first send counts.
        for (let attempt = 1; ; attempt++) {
          if (!sent.has(id)) sent.set(id, Date.now());
          try {
            await client.workflow.getHandle(id).executeUpdate(promoteUpdate, { args: [{ by: 'bench', reason: 'inflight-real bench' }] });
            promoted++;
            return;
          } catch (err) {
            if (attempt >= 3 || late()) return void promoteErrors.push(`${id}: ${(err as Error).message}`);
          }
        }
      },
      late,
    );
    if (promoteErrors.length) log(`${promoteErrors.length} promotions failed three times, e.g. ${promoteErrors[0]}`);
    const cache1 = await cacheCounters(coreMetricsUrl);
    log(`promoted ${promoted} in ${((Date.now() - t2) / 1000).toFixed(1)} s (${promoteConcurrency} at a time); peak RSS ${mib(worker.peak)}; workflow cache during the promotions: ${cache1.hit - cache0.hit} hits, ${cache1.miss - cache0.miss} misses (a miss replays the history); load average ${load()}`);
    const latencies: number[] = [];
    await pool([...sent.keys()], 10, async (id) => {
      for (let tries = 0; tries < 60 && !late(); tries++) {
        const { events } = await client.workflow.getHandle(id).fetchHistory();
        const accepted = events?.findIndex((e) => e.workflowExecutionUpdateAcceptedEventAttributes) ?? -1;
        const next = events?.slice(accepted).find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'setWeight');
        if (accepted >= 0 && next) return void latencies.push(tsToMs(next.eventTime) - (sent.get(id) as number));
        await sleep(1000);
      }
    });
    const p99 = pct(latencies, 99);
    log(`promote sent → next step scheduled (${latencies.length} releases, ${promoteConcurrency} concurrent promotions, ${n} in flight): p50 ${ms(pct(latencies, 50))}, p99 ${ms(p99)}, max ${ms(pct(latencies, 100))} — goal p99 ≤ 2 s: ${p99 <= 2000 ? 'met' : 'NOT met'}`);

    // 5. every release ends (promoteCanary rolls the stable); then the memory returned. A promotion
    // leaves its workload's drift watch running (activities/drift.ts): RSS with them, then without.
    let running = n;
    while ((running = await count(`WorkflowType = 'release' AND ExecutionStatus = 'Running'`)) > 0 && !late()) await sleep(2000);
    const ended = worker.sample();
    const watches = await count(`WorkflowType = '${DRIFT_WORKFLOW}' AND ExecutionStatus = 'Running'`);
    log(`${n - running} of ${n} ended ${((Date.now() - t2) / 1000).toFixed(0)} s after the first promote; RSS ${mib(ended)}, peak ${mib(worker.peak)}; ${watches} drift watches running (one per promoted workload)`);
    await sleep(settleSeconds * 1000);
    const when = running > 0 ? `after the deadline passed with ${running} releases still running` : 'after the releases ended';
    log(`RSS ${settleSeconds} s ${when}, ${watches} drift watches running: ${mib(worker.sample())} (idle was ${mib(idle)}); ${describeMemory(await worker.memory())}; load average ${load()}`);
    const stopped = await terminateWatches(client, taskQueue);
    while ((await count(`ExecutionStatus = 'Running'`)) > 0 && Date.now() < deadline + 120_000) await sleep(2000);
    await sleep(settleSeconds * 1000);
    const after = worker.sample();
    const verdict = running > 0 ? `not read: ${running} releases still running at the deadline` : `${after - idle <= 0.25 * (rss - idle) ? 'yes' : 'NOT'} (${mib(rss - idle)} above idle with all paused)`;
    log(`RSS ${settleSeconds} s after the ${stopped} drift watches were terminated too: ${mib(after)} (idle was ${mib(idle)}: ${mib(after - idle)} kept) — memory returned: ${verdict}; ${describeMemory(await worker.memory())}; load average ${load()}`);
    if (heaptrack) log(`  heaptrack: ${await killTraced(worker, heaptrack)}, after the releases and watches ended`);
  } catch (err) {
    process.exitCode = 1;
    console.error(`inflight-real: ${n}: ${(err as Error).stack ?? err}`);
  } finally {
    await pool(ids, 20, async (id) => {
      await client.workflow
        .getHandle(id)
        .terminate('inflight-real bench cleanup')
        .catch(() => {}); // closed already, or never started
    });
    await terminateWatches(client, taskQueue).catch(() => 0);
    await worker?.stop();
    await core.deleteNamespace({ name: namespace }).catch(() => {});
  }
}

const { kc, client, bundle, tmp } = await realWorkerBenchSetup('inflight-real', address);
try {
  for (const n of sizes) await run(n, client, kc, bundle);
} finally {
  await client.connection.close();
  rmSync(tmp, { recursive: true, force: true });
}
