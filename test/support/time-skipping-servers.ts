/**
 * Global setup for `node --test --test-global-setup=test/support/time-skipping-servers.ts`: starts
 * one time-skipping test server per concurrency lane (GLIDEPATH_TEST_SERVER_LANES, else the runner's
 * --test-concurrency, else 1) and publishes them as a pool (test/support/time-skipping-pool.ts) to
 * the test files, which the runner starts after this. Without GLIDEPATH_TEST_SERVER it starts nothing
 * (the files then say what is missing). The servers stop in the global teardown.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { TEST_SERVER_POOL_ENV } from './time-skipping-pool.ts';
import { createTimeSkippingEnv, TEST_SERVER_ENV } from './time-skipping.ts';

let servers: TestWorkflowEnvironment[] = [];
let dir: string | undefined;

export function laneCount(env: NodeJS.ProcessEnv = process.env, execArgv: string[] = process.execArgv): number {
  const flag = execArgv.map((a) => /^--test-concurrency=(\d+)$/.exec(a)?.[1]).find((v) => v !== undefined);
  const n = Number(env.GLIDEPATH_TEST_SERVER_LANES ?? flag ?? 1);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`GLIDEPATH_TEST_SERVER_LANES / --test-concurrency: ${n} is not a lane count (1 to 64)`);
  return n;
}

/** A server, with up to 3 tries: on 2 loaded cores a JVM can miss the SDK's 5-s startup budget. */
async function startServer(): Promise<TestWorkflowEnvironment | undefined> {
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await createTimeSkippingEnv();
    } catch (err) {
      console.error(`time-skipping server for the pool, try ${attempt} of 3: ${(err as Error).message}`);
    }
  }
  return undefined;
}

export async function globalSetup(): Promise<void> {
  if (!process.env[TEST_SERVER_ENV] || process.env[TEST_SERVER_POOL_ENV]) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'glidepath-test-servers-'));
  // A lane that does not start is left out: the files then start servers of their own, as without the pool.
  const lanes = laneCount();
  servers = (await Promise.all(Array.from({ length: lanes }, startServer))).filter((s) => s !== undefined);
  console.error(`time-skipping test servers: ${servers.length} shared (of ${lanes} lanes)`); // the bench reads this line
  await Promise.all(servers.map((s, i) => writeFile(path.join(dir!, `lane-${i}.address`), `${s.address}\n`)));
  process.env[TEST_SERVER_POOL_ENV] = dir;
}

export async function globalTeardown(): Promise<void> {
  await Promise.all(servers.map((s) => s.teardown()));
  servers = [];
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
  delete process.env[TEST_SERVER_POOL_ENV];
}
