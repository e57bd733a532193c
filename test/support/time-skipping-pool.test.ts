/**
 * The pool of time-skipping servers (test/support/time-skipping-pool.ts), on a server of its own with
 * one lane, claimed through the harness as a test file claims it: a second claim finds the lane busy;
 * a release one file leaves paused is terminated when the lane is given back, and the next file's
 * 1-day pause passes in seconds on the same server; a release left waiting in a queue no worker
 * polls keeps time skipping locked, so that lane is not given back and the next file gets a server
 * of its own; a lane whose holder died is not claimed.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Harness, canary, releaseResult, waitForStatus } from '../workflows/harness.ts';
import { releaseWorkflowId } from '../../model/types.ts';
import { claimLane, TEST_SERVER_POOL_ENV } from './time-skipping-pool.ts';
import { createTimeSkippingEnv } from './time-skipping.ts';

const DAY = 86_400_000;
let server: TestWorkflowEnvironment;
let dir: string;
let lock: string;
const outerPool = process.env[TEST_SERVER_POOL_ENV];

before(async () => {
  server = await createTimeSkippingEnv();
  dir = await mkdtemp(path.join(os.tmpdir(), 'pool-test-'));
  lock = path.join(dir, 'lane-0.lock');
  await writeFile(path.join(dir, 'lane-0.address'), `${server.address}\n`);
  process.env[TEST_SERVER_POOL_ENV] = dir;
});

after(async () => {
  if (outerPool === undefined) delete process.env[TEST_SERVER_POOL_ENV];
  else process.env[TEST_SERVER_POOL_ENV] = outerPool;
  await server?.teardown();
  await rm(dir, { recursive: true, force: true });
});

const paused = (name: string) => canary(name, [{ kind: 'setWeight', weight: 50 }, { kind: 'pause', durationMs: DAY }]);

test('a lane is handed over clean: what one file left paused is terminated, and time skips for the next', async () => {
  const first = new Harness();
  await first.start();
  assert.equal(first.env.address, server.address, 'the harness runs on the lane, not on a server of its own');
  assert.ok(existsSync(lock), 'the lane is locked while held');
  assert.equal(await claimLane(), undefined, 'the only lane is busy');
  const left = await first.begin(paused('pool-left'));
  await waitForStatus(left, (s) => s.phase === 'Paused', 'the 1-day pause');
  await first.stop();
  assert.ok(!existsSync(lock), 'the lane was given back');

  const next = new Harness();
  await next.start();
  try {
    assert.equal(next.env.address, server.address, 'the next file runs on the same server');
    assert.equal((await next.env.client.workflow.getHandle(left.workflowId).describe()).status.name, 'TERMINATED');
    const [t0, from] = [Date.now(), await next.env.currentTimeMs()];
    assert.equal((await releaseResult(await next.begin(paused('pool-next')))).outcome, 'Promoted');
    assert.ok((await next.env.currentTimeMs()) - from >= DAY, 'a day passed on the server');
    assert.ok(Date.now() - t0 < 30_000, `the 1-day pause took ${Date.now() - t0} ms of real time`);
  } finally {
    await next.stop();
  }
  assert.ok(!existsSync(lock));
});

test('a lane whose time skipping stays locked is not given back; the next file starts its own server', async () => {
  const first = new Harness();
  await first.start();
  assert.equal(first.env.address, server.address);
  const orphan = paused('pool-orphan');
  await first.env.client.workflow.start('release', { taskQueue: 'no-worker-polls-this', workflowId: releaseWorkflowId(orphan), args: [{ plan: orphan, initiator: 'ci-bot' }] });
  await first.stop(); // terminates the orphan, whose workflow task, waiting in the queue, still locks time skipping
  assert.ok(existsSync(lock), 'the lane stays locked');
  assert.equal(await claimLane(), undefined);

  const next = new Harness();
  await next.start();
  try {
    assert.notEqual(next.env.address, server.address, 'a server of its own');
    assert.equal((await releaseResult(await next.begin(paused('pool-own')))).outcome, 'Promoted');
  } finally {
    await next.stop();
  }
});
