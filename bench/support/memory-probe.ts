/**
 * Loaded into a worker process with `node --import ./bench/support/memory-probe.ts workers/main.ts`
 * by the benches: it answers commands on stdin with one line on stdout, so a bench can see where
 * the worker's memory is without changing the worker.
 *   `memory`      → `MEM {json}`: process.memoryUsage(), the main thread's v8.getHeapStatistics(),
 *                   and every worker thread's (the SDK runs workflows in a worker thread with an
 *                   isolate of its own, invisible to the main thread's figures).
 *   `snapshot D`  → `SNAP file…`: a heap snapshot of the main thread and of each worker thread in directory D.
 *   `gc`          → `GC`: a full collection in the main thread (needs --expose-gc), to tell garbage from what is held.
 */
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import v8 from 'node:v8';
import { isMainThread } from 'node:worker_threads';
import { workerThreads } from '../../test/support/worker-threads.ts';

const heap = (s: v8.HeapInfo) => ({ used: s.used_heap_size, total: s.total_heap_size, limit: s.heap_size_limit, external: s.external_memory, contexts: s.number_of_native_contexts });

async function memory(): Promise<string> {
  const threadHeaps = await Promise.all(workerThreads().map((t) => t.getHeapStatistics().then(heap, () => undefined)));
  return `MEM ${JSON.stringify({ process: process.memoryUsage(), main: heap(v8.getHeapStatistics()), threads: threadHeaps.filter(Boolean) })}`;
}

async function snapshot(dir: string): Promise<string> {
  const files = [v8.writeHeapSnapshot(path.join(dir, `main-${process.pid}.heapsnapshot`))];
  let i = 0;
  for (const t of workerThreads()) {
    const file = path.join(dir, `thread${i++}-${process.pid}.heapsnapshot`);
    await pipeline(await t.getHeapSnapshot(), createWriteStream(file));
    files.push(file);
  }
  return `SNAP ${files.join(' ')}`;
}

// `--import` runs in every thread; the probe lives in the main one.
if (isMainThread) createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, arg] = line.split(' ');
  const answer = cmd === 'memory' ? memory() : cmd === 'snapshot' && arg ? snapshot(arg) : cmd === 'gc' ? Promise.resolve((globalThis.gc?.(), 'GC')) : undefined;
  answer?.then(
    (l) => process.stdout.write(`${l}\n`),
    (err: Error) => process.stdout.write(`ERR ${err.message}\n`),
  );
});
