/**
 * A fixture workflow module run in Temporal's workflow sandbox: bundled on its own (quietly), with a
 * worker on the process's shared time-skipping server (holdSharedTimeSkippingEnv). For tests of what
 * only the sandbox shows (module isolation, microtask turns), without the release's bundle.
 */
import { fileURLToPath } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { holdSharedTimeSkippingEnv, releaseSharedTimeSkippingEnv } from './time-skipping.ts';

const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

export interface SandboxWorker {
  env: TestWorkflowEnvironment;
  /** Shuts the worker down and lets go of the server. */
  stop(): Promise<void>;
}

/** Runs the workflows of `workflows` (a module's URL) on `taskQueue` until `stop`. */
export async function startSandboxWorker(workflows: URL, taskQueue: string): Promise<SandboxWorker> {
  const env = await holdSharedTimeSkippingEnv();
  try {
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: fileURLToPath(workflows), logger: quiet });
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle });
    const running = worker.run();
    return {
      env,
      async stop() {
        worker.shutdown();
        await running;
        await releaseSharedTimeSkippingEnv();
      },
    };
  } catch (err) {
    await releaseSharedTimeSkippingEnv();
    throw err;
  }
}
