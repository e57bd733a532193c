/**
 * bench/support/heap-summary.ts reads real heap snapshots of this process: what a second snapshot
 * added is found by its constructor, counted and sized.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import v8 from 'node:v8';
import { added, kinds } from '../../bench/support/heap-summary.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'glidepath-heap-summary-'));
after(() => rmSync(dir, { recursive: true, force: true }));

class HeapSummaryProbe {
  readonly payload: number[];
  constructor(payload: number[]) {
    this.payload = payload;
  }
}

test('what a second snapshot added, by constructor: 500 objects of a class found with their count and size', () => {
  const before = kinds(v8.writeHeapSnapshot(path.join(dir, 'before.heapsnapshot')));
  const held = Array.from({ length: 500 }, (_, i) => new HeapSummaryProbe([i, i + 1, i + 2]));
  const rows = added(before, kinds(v8.writeHeapSnapshot(path.join(dir, 'after.heapsnapshot'))));
  const probe = rows.find(([key]) => key === 'object HeapSummaryProbe');
  assert.ok(probe, `the probe class among the added kinds (top: ${rows.slice(0, 5).map(([k]) => k).join(', ')})`);
  assert.equal(probe[1].count, 500);
  assert.ok(probe[1].bytes >= 500 * 16 && probe[1].bytes <= 500 * 256, `500 small objects: ${probe[1].bytes} bytes`);
  assert.equal(before.get('object HeapSummaryProbe'), undefined, 'none before');
  assert.ok(rows.every(([, k], i) => i === 0 || k.bytes <= rows[i - 1]![1].bytes), 'largest first');
  assert.equal(held.length, 500); // kept alive until the second snapshot
});
