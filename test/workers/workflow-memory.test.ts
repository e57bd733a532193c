/**
 * The memory a cached release costs the worker, with the production workflow bundle
 * (workers/bundle.ts: libraries and model preloaded, shared between workflows): releases paused at
 * a step must cost well under 2 MiB each of the workflow thread's heap (when every module of the
 * bundle was evaluated per workflow, each cost 4–13 MiB), and the shared, deep-frozen modules must
 * still work: every release validates its plan at start, pauses, is promoted and ends Promoted.
 * Time skipping with stubbed activities (Temporal's convention); needs GLIDEPATH_TEST_SERVER.
 * MEM_RELEASES (40) sets how many pause after the first; MEM_SNAPSHOT_DIR, when set, gets heap
 * snapshots of the workflow thread with one release and with all (for bench/support/heap-summary.ts).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { createFreezeActivities } from '../../activities/freeze.ts';
import { releaseWorkflowId } from '../../model/types.ts';
import { ACTIVATION_LIMITS } from '../../workers/config.ts';
import { WORKFLOW_TASK_TIMEOUT } from '../../workflows/start-options.ts';
import { bundleWebpackConfig, PRELOAD_MODULES, WORKFLOWS_PATH } from '../../workers/bundle.ts';
import { registerSearchAttributes } from '../../workers/search-attributes.ts';
import { promoteUpdate } from '../../workflows/messages.ts';
import { workerThreadHeapUsed, writeWorkerThreadSnapshots } from '../support/worker-threads.ts';
import { createTimeSkippingEnv } from '../support/time-skipping.ts';
import { canary, releaseResult, succeedingActivities, waitForStatus } from '../workflows/harness.ts';

const RELEASES = Number(process.env.MEM_RELEASES ?? 40);
const MiB = 1048576;
const taskQueue = 'workflow-memory';
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;

before(async () => {
  const [e, bundle] = await Promise.all([createTimeSkippingEnv(), bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, preloadModules: PRELOAD_MODULES, webpackConfigHook: bundleWebpackConfig, logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } })]);
  env = e;
  await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: { code: bundle.code },
    activities: { ...succeedingActivities(), identityPolicy: async () => null, driftFollowPromotion: async () => ({ skipped: 'off' }), ...createFreezeActivities(undefined) },
    ...ACTIVATION_LIMITS,
    maxCachedWorkflows: RELEASES * 2, // every release stays cached: the figure is what a cached one costs
    shutdownGraceTime: '2s',
    shutdownForceTime: '5s',
  });
  running = worker.run();
});

after(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

test(`${RELEASES} paused releases cost under 2 MiB each of the workflow heap, and the shared modules still work`, { timeout: 240_000 }, async (t) => {
  // One release first, so the heap holds the bundle's shared part before the baseline is read.
  const plans = Array.from({ length: RELEASES + 1 }, (_, i) => canary(`mem-${i}`, [{ kind: 'pause' }, { kind: 'setWeight', weight: 50 }]));
  const start = (p: (typeof plans)[number]) =>
    env.client.workflow.start('release', { taskQueue, workflowId: releaseWorkflowId(p), args: [{ plan: p, initiator: 'ci-bot' }], workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT });
  const first = await start(plans[0]!);
  await waitForStatus(first, (s) => s.phase === 'Paused', 'the first release paused', 60_000);
  const snapshotDir = process.env.MEM_SNAPSHOT_DIR;
  if (snapshotDir) t.diagnostic(`heap snapshots with one release: ${(await writeWorkerThreadSnapshots(snapshotDir, 'one')).join(' ')}`);
  const baseline = await workerThreadHeapUsed();
  assert.ok(baseline > 0, 'the workflow thread was found');
  const handles = [first];
  for (const p of plans.slice(1)) handles.push(await start(p));
  for (const h of handles) await waitForStatus(h, (s) => s.phase === 'Paused', `${h.workflowId} paused`, 60_000);
  const perRelease = ((await workerThreadHeapUsed()) - baseline) / RELEASES;
  if (snapshotDir) t.diagnostic(`heap snapshots with ${RELEASES + 1}: ${(await writeWorkerThreadSnapshots(snapshotDir, 'all')).join(' ')}`);
  t.diagnostic(`workflow thread heap: ${(baseline / MiB).toFixed(0)} MiB with one release, ${(perRelease / MiB).toFixed(2)} MiB per further paused release`);
  assert.ok(perRelease < 2 * MiB, `each paused release costs ${(perRelease / MiB).toFixed(2)} MiB of the workflow thread's heap (baseline ${(baseline / MiB).toFixed(0)} MiB); expected under 2 MiB`);

  for (const h of handles) await h.executeUpdate(promoteUpdate, { args: [{ by: 'ci-bot', reason: 'memory test' }] });
  for (const h of handles) assert.equal((await releaseResult(h)).outcome, 'Promoted', h.workflowId);
});
