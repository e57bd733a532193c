/**
 * A fixture workflow module run in Temporal's workflow sandbox: bundled on its own (quietly), with a
 * worker on a time-skipping server of its own. Not a lane of the shared pool: earlier files have
 * skipped that server's clock ahead, and workflow time there is no longer the wall clock (a CI
 * rehearsal's identity test found its two-minute proofs expired). For tests of what only the sandbox
 * shows (module isolation, microtask turns), without the release's bundle.
 */
import { fileURLToPath } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { createTimeSkippingEnv } from './time-skipping.ts';

const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

export interface SandboxWorker {
  env: TestWorkflowEnvironment;
  /** Shuts the worker down, then the server. */
  stop(): Promise<void>;
}

/** Runs the workflows of `workflows` (a module's URL) on `taskQueue` until `stop`. */
export async function startSandboxWorker(workflows: URL, taskQueue: string): Promise<SandboxWorker> {
  const env = await createTimeSkippingEnv();
  try {
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: fileURLToPath(workflows), logger: quiet });
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle });
    const running = worker.run();
    return {
      env,
      async stop() {
        worker.shutdown();
        await running;
        await env.teardown();
      },
    };
  } catch (err) {
    await env.teardown();
    throw err;
  }
}
