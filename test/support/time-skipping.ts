// A time-skipping TestWorkflowEnvironment backed by the Java test server that
// scripts/provision-test-server.sh installs (the SDK's own download needs the internet, which CI lacks).
// The test script exports GLIDEPATH_TEST_SERVER=$(bash scripts/provision-test-server.sh).
import { TestWorkflowEnvironment } from '@temporalio/testing';

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

let shared: Promise<TestWorkflowEnvironment> | undefined;
let holders = 0;

/**
 * One time-skipping server for every holder in this process, torn down when the last one lets go.
 * The suites run file by file (a process each, `node --test`), so a file holds it alone, as with its
 * own server. Time skipping is global to a server: holders in one process share it only while their
 * tests run one at a time, kept apart by task queue and workflow ID.
 */
export async function holdSharedTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  holders++;
  shared ??= createTimeSkippingEnv();
  try {
    return await shared;
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
  const env = shared;
  shared = undefined;
  await (await env).teardown();
}
