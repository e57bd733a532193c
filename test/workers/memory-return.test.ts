/**
 * The worker's memory return (workers/memory-return.ts): its setting, and that one pass really gives
 * back what V8 and glibc keep. Each case runs in a child process (so the runner's own memory does
 * not blur the figures) started as the image starts the worker (--expose-gc, MALLOC_ARENA_MAX=2).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { memoryReturnIntervalFromEnv } from '../../workers/memory-return.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MiB = 1048576;

test('GLIDEPATH_MEMORY_RETURN_INTERVAL: 30s unless set, a duration of at least 1s or off; a bad value is named', () => {
  assert.equal(memoryReturnIntervalFromEnv({}), 30_000);
  assert.equal(memoryReturnIntervalFromEnv({ GLIDEPATH_MEMORY_RETURN_INTERVAL: '' }), 30_000);
  assert.equal(memoryReturnIntervalFromEnv({ GLIDEPATH_MEMORY_RETURN_INTERVAL: '5m' }), 300_000);
  assert.equal(memoryReturnIntervalFromEnv({ GLIDEPATH_MEMORY_RETURN_INTERVAL: 'off' }), 'off');
  for (const bad of ['500ms', '0', 'soon', '-1s']) {
    assert.throws(() => memoryReturnIntervalFromEnv({ GLIDEPATH_MEMORY_RETURN_INTERVAL: bad }), (err: Error) => err.message.startsWith('GLIDEPATH_MEMORY_RETURN_INTERVAL') && err.message.includes('"off"'), bad);
  }
});

interface Pass {
  before: number;
  after: number;
  returned: number;
  heapBefore: [number, number];
  heapAfter: [number, number];
  metrics: Record<string, number>;
}

/** Runs `setup` (JavaScript building the garbage) in a child, then one pass; returns what it measured. */
function onePass(setup: string, nodeOptions: string[] = ['--expose-gc']): Pass {
  const child = `
import v8 from 'node:v8';
import pino from 'pino';
import { Registry } from 'prom-client';
import { startMemoryReturn } from './workers/memory-return.ts';
const heap = () => { const s = v8.getHeapStatistics(); return [s.used_heap_size, s.total_heap_size]; };
const registry = new Registry();
const memoryReturn = await startMemoryReturn(3_600_000, pino({ level: 'silent' }), registry);
${setup}
await new Promise((r) => setTimeout(r, 200));
const before = process.memoryUsage.rss(), heapBefore = heap();
const returned = memoryReturn.run();
const after = process.memoryUsage.rss(), heapAfter = heap();
const metrics = Object.fromEntries((await registry.getMetricsAsJSON()).map((m) => [m.name, m.values[0]?.value]));
memoryReturn.stop();
console.log(JSON.stringify({ before, after, returned, heapBefore, heapAfter, metrics }));
`;
  const out = execFileSync(process.execPath, [...nodeOptions, '--max-semi-space-size=4', '--input-type=module', '-e', child], { cwd: root, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: (process.env.NODE_OPTIONS ?? '').replace(/--expose-gc\b/g, ''), MALLOC_ARENA_MAX: '2' } });
  return JSON.parse(out.trim().split('\n').at(-1) as string) as Pass;
}

const mib = (b: number) => `${(b / MiB).toFixed(0)} MiB`;

test('a pass gives back the freed native memory glibc kept, and counts it', { skip: process.platform !== 'linux' && 'glibc only' }, () => {
  // About 300 MiB of Node buffers (malloc'd outside the V8 heap); one in 50 kept, the rest collected:
  // glibc keeps the freed pages resident between the survivors.
  const r = onePass(`
let kept = [];
for (let i = 0; i < 250_000; i++) kept.push(Buffer.allocUnsafeSlow(1000 + (i % 500)));
kept = kept.filter((_, i) => i % 50 === 0);
globalThis.gc();
globalThis.kept = kept;`);
  assert.ok(r.before > 250 * MiB, `RSS before the pass ${mib(r.before)}`);
  assert.ok(r.returned > 150 * MiB, `returned ${mib(r.returned)} (RSS ${mib(r.before)} → ${mib(r.after)})`);
  assert.ok(Math.abs(r.returned - (r.before - r.after)) < 8 * MiB, 'what the pass counts is what RSS shows');
  assert.equal(r.metrics.glidepath_worker_memory_return_passes_total, 1);
  assert.equal(r.metrics.glidepath_worker_memory_return_bytes_total, r.returned);
});

// Objects of which one in 40 outlives the rest: after a regular collection the old space's pages
// stay committed, each with a few live objects on it.
const fragmentedHeap = `
const keep = [];
let junk = [];
for (let i = 0; i < 1_200_000; i++) {
  const o = { a: 'x'.repeat(50) + i, b: [i, i + 1], c: { d: i } };
  if (i % 40 === 0) keep.push(o);
  else junk.push(o);
  if (junk.length > 200_000) junk = [];
}
junk = null;
globalThis.keep = keep;
globalThis.gc({ type: 'major' });`;

test('a pass compacts a main-thread heap that holds more than 64 MiB unused', () => {
  const r = onePass(fragmentedHeap);
  const [usedBefore, totalBefore] = r.heapBefore;
  const [, totalAfter] = r.heapAfter;
  assert.ok(totalBefore - usedBefore > 64 * MiB, `unused before the pass: ${mib(totalBefore - usedBefore)} of ${mib(totalBefore)}`);
  assert.ok(totalAfter < totalBefore / 2, `heap committed ${mib(totalBefore)} → ${mib(totalAfter)}`);
  assert.equal(r.metrics.glidepath_worker_memory_return_compactions_total, 1);
  assert.ok(r.returned > 32 * MiB, `returned ${mib(r.returned)}`);
});

test('without --expose-gc the heap is left as it is and the pass still runs', () => {
  const r = onePass(fragmentedHeap.replace("globalThis.gc({ type: 'major' });", ''), []);
  assert.equal(r.metrics.glidepath_worker_memory_return_compactions_total, 0);
  assert.equal(r.metrics.glidepath_worker_memory_return_passes_total, 1);
});
