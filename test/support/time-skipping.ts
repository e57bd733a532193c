// A time-skipping TestWorkflowEnvironment backed by the Java test server that
// scripts/provision-test-server.sh installs (the SDK's own download needs the internet, which CI lacks).
// The test script exports GLIDEPATH_TEST_SERVER=$(bash scripts/provision-test-server.sh).
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { registerSearchAttributes } from '../../workers/search-attributes.ts';

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

let shared: { env: Promise<TestWorkflowEnvironment>; users: number } | undefined;

/**
 * The process's time-skipping server, with Glidepath's search attributes: started by its first user,
 * torn down when its last user releases it. Test files run in one process (the state-machine bench
 * runs them so, one after another) share one server instead of starting a JVM each; a file run on
 * its own process starts and stops its own, as before. Sharing is sound because files in one
 * process run one at a time, as the tests of one file already do on their shared server; workflow
 * time is the server's (`env.currentTimeMs()`), never the wall clock, since earlier files skip it ahead.
 */
export async function acquireTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  shared ??= {
    users: 0,
    env: createTimeSkippingEnv().then(async (env) => {
      await registerSearchAttributes(env.connection, env.namespace ?? 'default');
      return env;
    }),
  };
  shared.users++;
  return shared.env;
}

/** Gives the shared server back; the last user tears it down. */
export async function releaseTimeSkippingEnv(): Promise<void> {
  if (!shared || --shared.users > 0) return;
  const { env } = shared;
  shared = undefined;
  await (await env.catch(() => undefined))?.teardown();
}
