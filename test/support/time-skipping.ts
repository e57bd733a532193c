// A time-skipping TestWorkflowEnvironment backed by the Java test server that
// scripts/provision-test-server.sh installs (the SDK's own download needs the internet, which CI lacks).
// The test script exports GLIDEPATH_TEST_SERVER=$(bash scripts/provision-test-server.sh).
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { claimLane, type Lane } from './time-skipping-pool.ts';

export const TEST_SERVER_ENV = 'GLIDEPATH_TEST_SERVER';

export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const path = process.env[TEST_SERVER_ENV];
  if (!path) {
    throw new Error(
      `${TEST_SERVER_ENV} is not set: it must hold the path of the Temporal test server wrapper. ` +
        `Run the tests through scripts/test.sh, or export ${TEST_SERVER_ENV}="$(bash scripts/provision-test-server.sh)".`,
    );
  }
  return await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path } },
  });
}

interface Held {
  env: TestWorkflowEnvironment;
  /** The pool's lane this process holds, or none: the server is this process's own. */
  lane?: Lane;
}

let shared: Promise<Held> | undefined;
let holders = 0;

async function createShared(): Promise<Held> {
  const lane = await claimLane();
  return lane ? { env: lane.env, lane } : { env: await createTimeSkippingEnv() };
}

/**
 * One time-skipping server for every holder in this process, let go when the last one does.
 * Time skipping is global to a server: holders share it only while their tests run one at a time,
 * kept apart by task queue and workflow ID. Under `node --test` each file is a process: with the
 * pool of the global setup (test/support/time-skipping-pool.ts) the file borrows a lane's server,
 * which the files of that lane use one after another, each finding no open workflow; without it
 * (or with every lane busy), the file starts a server of its own.
 */
export async function holdSharedTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  holders++;
  shared ??= createShared();
  try {
    return (await shared).env;
  } catch (err) {
    holders--;
    shared = undefined;
    throw err;
  }
}

export async function releaseSharedTimeSkippingEnv(): Promise<void> {
  if (holders === 0) return;
  holders--;
  if (holders > 0 || !shared) return;
  const held = shared;
  shared = undefined;
  const { env, lane } = await held;
  if (lane) await lane.release();
  else await env.teardown();
}
