/**
 * Gives memory the worker no longer uses back to the OS, on a timer (GLIDEPATH_MEMORY_RETURN_INTERVAL).
 * Neither V8 nor glibc does it by itself for a worker that starts and promotes releases in bursts
 * (docs/operations.md, "Memory given back"):
 *
 * - **The main thread's V8 heap.** The activities' garbage (Kubernetes and Temporal answers) grows
 *   the old space; after a burst its pages stay committed with a few live objects each (200 releases
 *   started and promoted: 75 MiB used of 249 MiB committed 30 s later). Only a memory-reducing
 *   collection compacts them, and V8 starts one only when the thread looks idle, which a polling
 *   worker never does. When more than {@link HEAP_SLACK_BYTES} is committed but unused, the timer runs
 *   that collection (`gc({ flavor: 'last-resort' })`), which needs the worker started with
 *   `--expose-gc` (the image's NODE_OPTIONS): without it this step is skipped, and said at start.
 * - **glibc's arenas.** The SDK's Rust core, Node's buffers and V8's threads allocate with malloc,
 *   and glibc returns memory only from the top of an arena, so a chunk in use above freed ones keeps
 *   them all resident: heaptrack on the real worker (bench/inflight-real.ts, BENCH_HEAPTRACK_DIR) saw
 *   at most 119 MiB allocated at once and 49 MiB at the end, while 375 MiB stayed resident outside
 *   the V8 heaps. `malloc_trim(0)` releases every free page of every arena, wherever it sits. It is
 *   called through koffi (foreign functions, prebuilt binaries), so nothing is compiled at install;
 *   only on Linux with glibc (elsewhere this step is skipped, and said at start).
 */
import v8 from 'node:v8';
import type { LibraryHandle, TypeObject } from 'koffi';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { parseDuration } from '../model/duration.ts';

export const DEFAULT_MEMORY_RETURN_INTERVAL = '30s';
/** Committed but unused main-thread heap above which the timer compacts it. */
export const HEAP_SLACK_BYTES = 64 * 1048576;

/** GLIDEPATH_MEMORY_RETURN_INTERVAL: a duration of at least 1s (default 30s), or `off`. A bad value stops the worker at its start, named. */
export function memoryReturnIntervalFromEnv(env: NodeJS.ProcessEnv): number | 'off' {
  const raw = env.GLIDEPATH_MEMORY_RETURN_INTERVAL?.trim() || DEFAULT_MEMORY_RETURN_INTERVAL;
  if (raw === 'off') return 'off';
  let ms: number;
  try {
    ms = parseDuration(raw);
  } catch (err) {
    throw new Error(`GLIDEPATH_MEMORY_RETURN_INTERVAL: ${(err as Error).message}, or "off"`, { cause: err });
  }
  if (ms < 1000) throw new Error(`GLIDEPATH_MEMORY_RETURN_INTERVAL=${raw}: at least 1s, or "off"`);
  return ms;
}

type MallocTrim = (pad: number) => number;
type CompactingGc = (options: { type: 'major'; flavor: 'last-resort' }) => void;

/** glibc loaded through koffi (foreign functions), or why it cannot be here. */
export async function loadGlibc(): Promise<{ libc: LibraryHandle; struct: (name: string, fields: Record<string, string>) => TypeObject } | string> {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  if (!header?.glibcVersionRuntime) return 'the C library is not glibc';
  const { default: koffi } = await import('koffi');
  return { libc: koffi.load('libc.so.6'), struct: (name, fields) => koffi.struct(name, fields) };
}

/** glibc's malloc_trim, or why there is none here. */
async function loadMallocTrim(): Promise<MallocTrim | string> {
  const glibc = await loadGlibc();
  return typeof glibc === 'string' ? glibc : (glibc.libc.func('int malloc_trim(size_t pad)') as MallocTrim);
}

export interface MemoryReturn {
  /** One pass now: the resident memory it gave back, in bytes (RSS before less after; 0 when it grew meanwhile). */
  run(): number;
  stop(): void;
}

/**
 * Runs every `intervalMs` (the timer does not keep the process alive): compacts the main thread's
 * heap when it holds more than {@link HEAP_SLACK_BYTES} unused, then trims the allocator. Counts its
 * passes, compactions and the bytes given back (glidepath_worker_memory_return_*).
 */
export async function startMemoryReturn(intervalMs: number, log: Logger, registry: Registry): Promise<MemoryReturn> {
  const mallocTrim = await loadMallocTrim();
  const gc = typeof globalThis.gc === 'function' ? (globalThis.gc as unknown as CompactingGc) : 'the worker was started without --expose-gc';
  const passes = new Counter({ name: 'glidepath_worker_memory_return_passes_total', help: 'Passes of the memory return (GLIDEPATH_MEMORY_RETURN_INTERVAL)', registers: [registry] });
  const compactions = new Counter({ name: 'glidepath_worker_memory_return_compactions_total', help: 'Memory-reducing collections of the main thread heap, run when it held more than 64 MiB committed but unused', registers: [registry] });
  const returned = new Counter({ name: 'glidepath_worker_memory_return_bytes_total', help: 'Resident memory given back (RSS before less after each pass)', registers: [registry] });
  const run = (): number => {
    const before = process.memoryUsage.rss();
    if (typeof gc === 'function') {
      const heap = v8.getHeapStatistics();
      if (heap.total_heap_size - heap.used_heap_size > HEAP_SLACK_BYTES) {
        gc({ type: 'major', flavor: 'last-resort' });
        compactions.inc();
      }
    }
    if (typeof mallocTrim === 'function') mallocTrim(0);
    const gave = Math.max(0, before - process.memoryUsage.rss());
    passes.inc();
    returned.inc(gave);
    return gave;
  };
  const timer = setInterval(run, intervalMs).unref();
  log.info({ intervalMs, heapCompaction: typeof gc === 'function' ? 'on' : gc, mallocTrim: typeof mallocTrim === 'function' ? 'on' : mallocTrim }, 'memory return on');
  return { run, stop: () => clearInterval(timer) };
}
