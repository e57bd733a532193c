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
