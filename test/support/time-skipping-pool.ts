/**
 * Lanes of time-skipping servers shared by test files run one after another. The global setup
 * (test/support/time-skipping-servers.ts) starts one Java test server per concurrency lane and
 * writes `lane-<i>.address` files into the directory named by GLIDEPATH_TEST_SERVER_POOL. A test
 * file's process claims a free lane by creating its `lane-<i>.lock` (exclusively, holding its PID) and
 * gives it back when its last holder lets go (test/support/time-skipping.ts). A lane is handed over
 * clean: every workflow still open on its server is terminated when it is claimed and when it is
 * given back, so a release left paused by one file cannot fire a timer into a queue no worker polls
 * while the next file runs. Terminating does not undo a lock on time skipping that the server took
 * for a task already waiting in such a queue (measured on test server 1.38.0: a 1-day sleep then
 * waits in real time), so a lane is given back only once a 1-day sleep passes within 5 s; a lane that
 * fails it, or whose holder died without giving it back, keeps its lock file and is not used again
 * (the files after it start servers of their own).
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';

export const TEST_SERVER_POOL_ENV = 'GLIDEPATH_TEST_SERVER_POOL';

export interface Lane {
  env: TestWorkflowEnvironment;
  /** Terminates what is still open, closes the connections and frees the lane. */
  release(): Promise<void>;
}

/**
 * A time-skipping environment on a server that is already running. The SDK's public
 * `createFromExistingServer` turns time skipping off (its client never unlocks it while awaiting a
 * result), so this calls the `create` it is built on (private in the typings of @temporalio/testing
 * 1.24, which package.json pins) with time skipping on, as `createTimeSkipping` does.
 */
export async function connectTimeSkipping(address: string): Promise<TestWorkflowEnvironment> {
  const create = (TestWorkflowEnvironment as unknown as { create(opts: object): Promise<TestWorkflowEnvironment> }).create.bind(TestWorkflowEnvironment);
  return await create({ server: { type: 'existing' }, address, namespace: 'default', supportsTimeSkipping: true });
}

/** Terminates every open workflow of the namespace until none is left (children close with their parents). */
/** Whether the server skips a day of its time within `withinMs` of real time (nothing holds skipping locked). */
export async function skipsTime(env: TestWorkflowEnvironment, withinMs = 5_000): Promise<boolean> {
  try {
    // The deadline ends the call on the client and the server alike: none is left pending at teardown.
    await env.connection.withDeadline(Date.now() + withinMs, () => env.sleep(86_400_000));
    return true;
  } catch {
    return false;
  }
}

export async function terminateOpenWorkflows(env: TestWorkflowEnvironment, reason: string): Promise<void> {
  const namespace = env.namespace ?? 'default';
  for (let round = 0; round < 10; round++) {
    const open: { workflowId: string; runId: string }[] = [];
    let nextPageToken: Uint8Array | undefined;
    do {
      const page = await env.client.workflowService.listOpenWorkflowExecutions({ namespace, maximumPageSize: 1000, nextPageToken });
      for (const e of page.executions ?? []) open.push({ workflowId: e.execution?.workflowId ?? '', runId: e.execution?.runId ?? '' });
      nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
    } while (nextPageToken);
    if (open.length === 0) return;
    for (const { workflowId, runId } of open) {
      try {
        await env.client.workflow.getHandle(workflowId, runId).terminate(reason);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err; // closed meanwhile (a child with its parent)
      }
    }
  }
  throw new Error(`workflows were still open on the time-skipping server after 10 rounds of terminating them (${reason})`);
}

/** Claims a free lane of the pool, or returns undefined (no pool, or every lane is busy). */
export async function claimLane(): Promise<Lane | undefined> {
  const dir = process.env[TEST_SERVER_POOL_ENV];
  if (!dir) return undefined;
  const names = (await readdir(dir)).filter((n) => n.endsWith('.address')).sort();
  for (const name of names) {
    const lock = path.join(dir, name.replace(/\.address$/, '.lock'));
    try {
      await writeFile(lock, `${process.pid}\n`, { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw err;
    }
    let env: TestWorkflowEnvironment | undefined;
    try {
      env = await connectTimeSkipping((await readFile(path.join(dir, name), 'utf8')).trim());
      await terminateOpenWorkflows(env, 'a test file left it open on this shared server');
    } catch (err) {
      await env?.teardown();
      await rm(lock, { force: true });
      throw err;
    }
    const claimed = env;
    return {
      env: claimed,
      async release() {
        let clean: boolean;
        try {
          await terminateOpenWorkflows(claimed, 'the test file that started it ended');
          clean = await skipsTime(claimed);
        } finally {
          await claimed.teardown(); // an existing server: closes the connections only
        }
        if (clean) await rm(lock);
        else console.error(`time-skipping server ${claimed.address}: time skipping stays locked after this file, so its lane is not used again`);
      },
    };
  }
  return undefined;
}
