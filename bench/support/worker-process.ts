/**
 * One real worker (`workers/main.ts` as a child process, default options, the image's environment, a
 * prebuilt workflow bundle) on a task queue of its own, its RSS sampled while it runs. Errors it logs
 * are passed to stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { imageEnv } from './image-env.ts';
import { RssSampler } from './rss.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface WorkerOptions {
  address: string;
  taskQueue: string;
  bundle: string;
  /** Loopback ports for its metrics and the SDK core's metrics. */
  metricsPort: number;
  coreMetricsPort: number;
  env?: Record<string, string>;
}

export class WorkerProcess {
  readonly child: ChildProcess;
  readonly rss: RssSampler;
  readonly ready: Promise<void>;

  constructor(o: WorkerOptions) {
    this.child = spawn(process.execPath, [path.join(root, 'workers/main.ts')], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ...imageEnv(),
        TEMPORAL_ADDRESS: o.address,
        GLIDEPATH_TASK_QUEUE: o.taskQueue,
        GLIDEPATH_WORKFLOW_BUNDLE: o.bundle,
        GLIDEPATH_METRICS_ADDRESS: `127.0.0.1:${o.metricsPort}`,
        GLIDEPATH_CORE_METRICS_ADDRESS: `127.0.0.1:${o.coreMetricsPort}`,
        GLIDEPATH_REGISTER_SEARCH_ATTRIBUTES: 'false',
        GLIDEPATH_SHUTDOWN_GRACE: '2s',
        ...o.env,
      },
    });
    this.rss = new RssSampler(this.child.pid as number);
    let tail = '';
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code, signal) => reject(new Error(`worker exited (${code ?? signal}): ${tail}`)));
      const onLine = (line: string) => {
        tail = `${tail}\n${line}`.slice(-3000);
        if (line.includes('"worker started"')) resolve();
        else if (/"level":(50|60)/.test(line)) process.stderr.write(`worker: ${line.slice(0, 600)}\n`);
      };
      createInterface({ input: this.child.stdout! }).on('line', onLine);
      createInterface({ input: this.child.stderr! }).on('line', onLine);
    });
    this.ready.catch(() => {}); // awaited by the caller; an exit after stop() is expected
  }

  async stop(): Promise<void> {
    this.rss.stop();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
}
