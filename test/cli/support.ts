/** The real glidepath CLI as a child process against a test server: what the CLI test files share. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { root } from '../e2e/support.ts';

const run = promisify(execFile);

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI's environment for a server and task queue: UI links on their defaults, ci-bot as the user. */
export function cliEnv(address: string, taskQueue: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: address, GLIDEPATH_TASK_QUEUE: taskQueue, GLIDEPATH_USER: 'ci-bot' };
  delete e.GLIDEPATH_UI_URL;
  delete e.TEMPORAL_UI_PORT;
  return e;
}

/** Runs `bin/glidepath args` to its exit (at most 60 s); a non-zero exit is a result, not a throw. */
export async function runCli(address: string, taskQueue: string, args: string[]): Promise<CliRun> {
  try {
    const { stdout, stderr } = await run(path.join(root, 'bin/glidepath'), args, { env: cliEnv(address, taskQueue), timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const x = err as CliRun;
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}
