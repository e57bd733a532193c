/**
 * Start → first activity latency on the local Temporal dev server (scripts/dev-server.sh): the time
 * from the `client.workflow.start` call to the release's first activity (preflight) starting in the
 * worker. One in-process worker with the real workflow code and stub activities; releases run one
 * at a time (a one-step canary that completes), so each figure is one release's own latency.
 * Prints p50/p95 (goal p95 ≤ 300 ms).
 * Env: TEMPORAL_ADDRESS (127.0.0.1:7233), BENCH_LATENCY_RELEASES (50, at least 30), BENCH_WARMUP (3).
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Context } from '@temporalio/activity';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { ReleaseActivities } from '../activities/index.ts';
import { plan as harnessPlan, succeedingActivities } from '../test/workflows/harness.ts';
import { dataConverterFromEnv } from '../workers/codec.ts';
import { WORKFLOWS_PATH } from '../workers/bundle.ts';
import { SERVICE_ATTRIBUTE, type ReleaseInput } from '../workflows/messages.ts';
import { releaseWorkflowId, serviceKey, type ReleasePlan } from '../model/types.ts';
import { createFreezeActivities } from '../activities/freeze.ts';

const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const releases = Number(process.env.BENCH_LATENCY_RELEASES ?? '50');
const warmup = Number(process.env.BENCH_WARMUP ?? '3');
if (!Number.isInteger(releases) || releases < 30) throw new Error('BENCH_LATENCY_RELEASES: a whole number ≥ 30');
const suffix = Math.random().toString(36).slice(2, 7);
const taskQueue = `bench-latency-${suffix}`;

Runtime.install({ logger: { log: () => {}, trace: () => {}, debug: () => {}, info: () => {}, warn: (m) => console.error(`worker: ${m}`), error: (m) => console.error(`worker: ${m}`) } });

/** preflight started, per workflow ID (performance.now(), same process as the client). */
const firstActivity = new Map<string, (at: number) => void>();

const activities: ReleaseActivities = {
  ...succeedingActivities(),
  preflight: async () => {
    const at = performance.now();
    firstActivity.get(Context.current().info.workflowExecution?.workflowId ?? '')?.(at);
    return { stableImage: 'registry.local/app:v1', replicas: 4, warnings: [] };
  },
};

function plan(name: string): ReleasePlan {
  return harnessPlan(name, { type: 'canary', steps: [{ kind: 'setWeight', weight: 100 }] }, { namespace: 'bench', image: `registry.local/${name}:v2`, retryWindowSeconds: 60 });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

let connection: Connection;
try {
  connection = await Connection.connect({ address, connectTimeout: '5s' });
} catch (err) {
  throw new Error(`the Temporal dev server is not reachable at ${address} (TEMPORAL_ADDRESS); start it with \`bash scripts/dev-server.sh start\``, { cause: err });
}
const client = new Client({ connection, dataConverter: dataConverterFromEnv() });
const worker = await Worker.create({
  connection: await NativeConnection.connect({ address }),
  taskQueue,
  workflowsPath: WORKFLOWS_PATH,
  activities: { ...activities, identityPolicy: async () => null, ...createFreezeActivities(undefined) }, // no identity policy: claimed identity
  dataConverter: dataConverterFromEnv(),
  shutdownGraceTime: '1s',
});

const latencies: number[] = [];
const startRpc: number[] = [];
const warm: number[] = [];
const load = os.loadavg()[0]?.toFixed(2);

await worker.runUntil(async () => {
  for (let i = 0; i < warmup + releases; i++) {
    const p = plan(`lat-${suffix}-${i}`);
    const workflowId = releaseWorkflowId(p);
    const started = new Promise<number>((resolve) => firstActivity.set(workflowId, resolve));
    const input: ReleaseInput = { plan: p, initiator: 'bench' };
    const t0 = performance.now();
    const handle = await client.workflow.start('release', {
      taskQueue,
      workflowId,
      args: [input],
      typedSearchAttributes: [{ key: SERVICE_ATTRIBUTE, value: serviceKey(p) }],
    });
    const t1 = performance.now();
    const at = await started;
    firstActivity.delete(workflowId);
    if (i < warmup) warm.push(at - t0);
    else {
      latencies.push(at - t0);
      startRpc.push(t1 - t0);
    }
    const result = (await handle.result()) as { outcome: string; reason: string };
    if (result.outcome !== 'Promoted') throw new Error(`${workflowId} ended ${result.outcome}: ${result.reason}`);
  }
});
await connection.close();

const sorted = [...latencies].sort((a, b) => a - b);
const rpc = [...startRpc].sort((a, b) => a - b);
const p50 = percentile(sorted, 50);
const p95 = percentile(sorted, 95);
const ms = (x: number) => `${x.toFixed(1)} ms`;
console.log(`temporal-latency: start → first activity over ${releases} releases one at a time (dev server ${address}, in-process worker, load average ${load} at start, ${os.cpus().length} cores)`);
console.log(`temporal-latency: p50 ${ms(p50)}, p95 ${ms(p95)}, min ${ms(sorted[0] as number)}, max ${ms(sorted[sorted.length - 1] as number)} (goal p95 ≤ 300 ms: ${p95 <= 300 ? 'met' : 'NOT met'})`);
console.log(`temporal-latency: of which the start RPC: p50 ${ms(percentile(rpc, 50))}, p95 ${ms(percentile(rpc, 95))}; ${warmup} warm-up releases (not counted): ${warm.map((w) => ms(w)).join(', ')}`);
