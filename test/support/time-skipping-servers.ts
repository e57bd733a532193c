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

export async function globalSetup(): Promise<void> {
  if (!process.env[TEST_SERVER_ENV] || process.env[TEST_SERVER_POOL_ENV]) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'glidepath-test-servers-'));
  const started = await Promise.allSettled(Array.from({ length: laneCount() }, () => createTimeSkippingEnv()));
  servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await globalTeardown();
    throw failed.reason;
  }
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
