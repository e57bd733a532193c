/**
 * The worker threads of this process, for reading their heaps: the SDK runs workflows in a worker
 * thread with a V8 isolate of its own, invisible to process.memoryUsage() and v8.getHeapStatistics().
 * Import before the SDK's Worker is created: each thread is recorded the first time it is sent a message.
 */
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';

const threads = new Set<Worker>();
const original = Worker.prototype.postMessage;
Worker.prototype.postMessage = function (this: Worker, ...args: Parameters<Worker['postMessage']>) {
  if (!threads.has(this)) {
    threads.add(this);
    this.once('exit', () => threads.delete(this));
  }
  return original.apply(this, args);
};

/** The live worker threads of this process. */
export const workerThreads = (): Worker[] => [...threads];

/** Bytes used in the heaps of all worker threads. */
export async function workerThreadHeapUsed(): Promise<number> {
  const stats = await Promise.all(workerThreads().map((t) => t.getHeapStatistics()));
  return stats.reduce((sum, s) => sum + s.used_heap_size, 0);
}

/** Writes a heap snapshot of each worker thread to `dir` (`<label>-thread<i>.heapsnapshot`); returns the files. */
export async function writeWorkerThreadSnapshots(dir: string, label: string): Promise<string[]> {
  const files: string[] = [];
  for (const [i, t] of workerThreads().entries()) {
    const file = path.join(dir, `${label}-thread${i}.heapsnapshot`);
    await pipeline(await t.getHeapSnapshot(), createWriteStream(file));
    files.push(file);
  }
  return files;
}
