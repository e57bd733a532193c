/**
 * The CLI against releases whose workflow fails with their outcome (RolledBack, Aborted) or
 * completes (Promoted): `start --wait` and `watch` exit 0/3/4 as documented, also once the
 * workflow has closed FAILED (the status `release list` prints; the test server has no visibility
 * list to run it against). The real CLI
 * process against Temporal's test server and the real workflow, activities stubbed as Temporal's
 * convention has it for workflow tests. Needs GLIDEPATH_TEST_SERVER (npm test sets it).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { ReleaseTarget } from '../../activities/contract.ts';
import { createTimeSkippingEnv } from '../support/time-skipping.ts';
import { succeedingActivities } from '../workflows/harness.ts';
import { WORKFLOWS_PATH } from '../../workers/bundle.ts';
import { registerSearchAttributes } from '../../workers/search-attributes.ts';
import { root } from '../e2e/support.ts';
import { cliEnv, runCli, type CliRun } from './support.ts';
import { createFreezeActivities } from '../../activities/freeze.ts';

const taskQueue = 'cli-outcome';
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let dir: string;

const cli = (args: string[]): Promise<CliRun> => runCli(env.address, taskQueue, args);

/** A CLI process left running (start --wait) while the test steers the release. */
function background(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawn(path.join(root, 'bin/glidepath'), args, { env: cliEnv(env.address, taskQueue) });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => p.kill(), 60_000);
  return new Promise((resolve) => p.on('close', (code) => (clearTimeout(killer), resolve({ code, stdout, stderr }))));
}

async function spec(name: string, steps: string): Promise<string> {
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(file, `apiVersion: glidepath.dev/v1alpha1
kind: Release
metadata: { name: ${name}, namespace: shop }
spec:
  workloadRef: { kind: Deployment, name: ${name} }
  image: registry.local/${name}:v2
  policy: { aborters: [ci-bot, oncall] }
  strategy: { canary: { steps: ${steps} } }
`);
  return file;
}

const startedId = (stdout: string): string => /^started (\S+)$/m.exec(stdout)?.[1] ?? assert.fail(`no workflow ID in ${stdout}`);

async function untilPhase(id: string, phase: string): Promise<void> {
  for (let i = 0; i < 80; i++) {
    if ((await cli(['-o', 'json', 'release', 'status', id])).stdout.includes(`"phase": "${phase}"`)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`${id} never reached ${phase}`);
}

/** Closes a release that waits for a retry and waits for its workflow to end. */
async function close(id: string): Promise<string> {
  assert.equal((await cli(['release', 'abort', id, '--as', 'oncall'])).code, 0);
  const handle = env.client.workflow.getHandle(id);
  await handle.result().catch(() => undefined);
  return (await handle.describe()).status.name;
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'glidepath-cli-outcome-'));
  env = await createTimeSkippingEnv();
  await registerSearchAttributes(env.client.connection, 'default');
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    activities: {
      ...succeedingActivities(),
      identityPolicy: async () => null, // the worker's identity policy: none (claimed identity)
      driftFollowPromotion: async () => ({ skipped: 'off' }), // the worker's drift setting: off
      ...createFreezeActivities(undefined), // no worker freeze policy
      // Deployment "broken" never takes traffic: its first setWeight fails for good, so the release rolls back.
      setWeight: async (t: ReleaseTarget, weight: number) => {
        if (t.workload.name === 'broken') throw ApplicationFailure.nonRetryable('canary pods crash-loop', 'CanaryNotReady');
        return succeedingActivities().setWeight(t, weight);
      },
    },
  });
  running = worker.run();
});

after(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

test('start --wait on a rollback exits 3; once the workflow closed FAILED, watch still exits 3', async () => {
  const r = await cli(['release', 'start', '--wait', '-f', await spec('broken', '[{ setWeight: 50 }]')]);
  assert.equal(r.code, 3, r.stderr);
  const id = startedId(r.stdout);
  // Settled while start still waited for preflight (stderr) or while following (stdout): exit 3 either way.
  assert.match(r.stdout + r.stderr, /RolledBack.*setWeight: CanaryNotReady: canary pods crash-loop/);
  assert.equal(await close(id), 'FAILED');
  assert.equal((await cli(['release', 'watch', id])).code, 3, 'watch on the closed release');
});

test('start --wait on an abort exits 4; watch on the closed workflow exits 4', async () => {
  const file = await spec('aborted', '[{ setWeight: 50 }, { pause: {} }]');
  const waiting = background(['release', 'start', '--wait', '-f', file]);
  const id = 'release_shop_aborted';
  await untilPhase(id, 'Paused');
  assert.equal((await cli(['release', 'abort', id, '--as', 'oncall'])).code, 0);
  const r = await waiting;
  assert.equal(r.code, 4, r.stderr);
  assert.equal(startedId(r.stdout), id);
  assert.equal(await close(id), 'FAILED');
  assert.equal((await cli(['release', 'watch', id])).code, 4);
});

test('start --wait on a promotion exits 0; the workflow completed', async () => {
  const r = await cli(['release', 'start', '--wait', '-f', await spec('fine', '[{ setWeight: 50 }]')]);
  assert.equal(r.code, 0, r.stderr);
  const id = startedId(r.stdout);
  await env.client.workflow.getHandle(id).result();
  assert.equal((await env.client.workflow.getHandle(id).describe()).status.name, 'COMPLETED');
  assert.equal((await cli(['release', 'watch', id])).code, 0);
});
