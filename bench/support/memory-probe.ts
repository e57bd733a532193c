/**
 * Loaded into a worker process with `node --import ./bench/support/memory-probe.ts workers/main.ts`
 * by the benches: it answers commands on stdin with one line on stdout, so a bench can see where
 * the worker's memory is without changing the worker.
 *   `memory`      → `MEM {json}`: process.memoryUsage(), the main thread's v8.getHeapStatistics(),
 *                   and every worker thread's (the SDK runs workflows in a worker thread with an
 *                   isolate of its own, invisible to the main thread's figures).
 *   `snapshot D`  → `SNAP file…`: a heap snapshot of the main thread and of each worker thread in directory D.
 *   `gc`          → `GC`: a full collection in the main thread (needs --expose-gc), to tell garbage from what is held.
 * With glibc, `memory` also reads the allocator (`mallinfo2`, summed over every arena): what malloc
 * has handed out and not had back, and what it keeps free, to tell a native leak from fragmentation.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import v8 from 'node:v8';
import { isMainThread } from 'node:worker_threads';
import { workerThreads, writeWorkerThreadSnapshots } from '../../test/support/worker-threads.ts';
import { loadGlibc } from '../../workers/memory-return.ts';

/** glibc's mallinfo2() in bytes, or undefined off glibc: arenas' size from the OS, in use, free inside them, and large blocks in mmaps of their own (all in use). */
interface Mallinfo {
  arena: number;
  inUse: number;
  free: number;
  mmapped: number;
}

async function loadMallinfo(): Promise<(() => Mallinfo) | undefined> {
  const glibc = await loadGlibc();
  if (typeof glibc === 'string') return undefined;
  const { libc, struct: defineStruct } = glibc;
  const fields = ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost'];
  const struct = defineStruct('glidepath_mallinfo2', Object.fromEntries(fields.map((f) => [f, 'size_t'])));
  const call = libc.func('mallinfo2', struct, []) as () => Record<string, number | bigint>;
  return () => {
    const m = call();
    const n = (f: string) => Number(m[f]);
    return { arena: n('arena'), inUse: n('uordblks') + n('hblkhd'), free: n('fordblks'), mmapped: n('hblkhd') };
  };
}
const mallinfo = loadMallinfo();

const heap = (s: v8.HeapInfo) => ({ used: s.used_heap_size, total: s.total_heap_size, limit: s.heap_size_limit, external: s.external_memory, malloced: s.malloced_memory, contexts: s.number_of_native_contexts });

/** The main thread's heap by space, those over 1 MiB committed: name → [committed, used] bytes. */
const spaces = (): Record<string, [number, number]> => Object.fromEntries(v8.getHeapSpaceStatistics().filter((s) => s.space_size > 1048576).map((s) => [s.space_name, [s.space_size, s.space_used_size]]));

/**
 * The process's resident memory by mapping (/proc/self/smaps): the brk heap (glibc's main arena),
 * anonymous mappings (V8's heap pages, glibc's other arenas, large mallocs, thread stacks), and
 * file-backed pages (code); plus its open descriptors and sockets. Where the memory outside the V8
 * heaps sits, without a native profiler.
 */
function mappings(): { brk: number; anonymous: number; files: number; fds: number; sockets: number } {
  const out = { brk: 0, anonymous: 0, files: 0, fds: 0, sockets: 0 };
  let kind: 'brk' | 'anonymous' | 'files' = 'anonymous';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) kind = head[1] === '[heap]' ? 'brk' : head[1]?.startsWith('/') ? 'files' : 'anonymous';
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] += Number(rss[1]) * 1024;
  }
  for (const fd of readdirSync('/proc/self/fd')) {
    out.fds++;
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) out.sockets++;
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** What `memory` answers (after `MEM `): read by the benches. */
export interface ProbeMemory {
  process: NodeJS.MemoryUsage;
  main: ReturnType<typeof heap> & { spaces: Record<string, [number, number]> };
  threads: ReturnType<typeof heap>[];
  mappings: ReturnType<typeof mappings>;
  /** glibc's allocator, when the C library is glibc. */
  malloc?: Mallinfo;
}

async function memory(): Promise<string> {
  const threadHeaps = await Promise.all(workerThreads().map((t) => t.getHeapStatistics().then(heap, () => undefined)));
  const answer: ProbeMemory = { process: process.memoryUsage(), main: { ...heap(v8.getHeapStatistics()), spaces: spaces() }, threads: threadHeaps.filter((h) => h !== undefined), mappings: mappings(), malloc: (await mallinfo)?.() };
  return `MEM ${JSON.stringify(answer)}`;
}

async function snapshot(dir: string): Promise<string> {
  const main = v8.writeHeapSnapshot(path.join(dir, `main-${process.pid}.heapsnapshot`));
  return `SNAP ${[main, ...(await writeWorkerThreadSnapshots(dir, String(process.pid)))].join(' ')}`;
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
