/**
 * What a cached workflow's last activation completion pins (workers/buffer-pool.ts). The SDK encodes
 * completions with protobufjs, which allocates with Buffer.allocUnsafe from Node's pool, and keeps
 * each cached workflow's last one. This encodes completions as the SDK does, for many workflows
 * taking turns with other work between them (16 KiB of small buffers per turn, as the activities'
 * clients and the logger allocate), keeps the last of each, and sums the distinct slabs those keep
 * alive. In the real worker 200 paused releases kept 132 slabs of 64 KiB alive this way (heap
 * snapshot of the bench's worker).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import proto from '@temporalio/proto';
import { BUFFER_POOL_BYTES, limitBufferPool } from '../../workers/buffer-pool.ts';

const WORKFLOWS = 200;
const KiB = 1024;

/** Bytes of the distinct ArrayBuffers behind the last completion of each of WORKFLOWS workflows. */
function pinnedByLastCompletions(): { pinned: number; encoded: number } {
  const last = new Map<string, Buffer>();
  for (let round = 0; round < 5; round++) {
    for (let w = 0; w < WORKFLOWS; w++) {
      const runId = `run-${w}`;
      const completion = { runId, successful: { commands: Array.from({ length: 1 + (w % 4) }, (_, i) => ({ startTimer: { seq: round * 10 + i, startToFireTimeout: { nanos: 500_000_000 } } })) } };
      last.set(runId, proto.coresdk.workflow_completion.WorkflowActivationCompletion.encodeDelimited(completion).finish() as Buffer);
      for (let k = 0; k < 16; k++) Buffer.allocUnsafe(KiB).fill(k); // other work, dropped at once
    }
  }
  const slabs = new Set([...last.values()].map((b) => b.buffer));
  return { pinned: [...slabs].reduce((sum, ab) => sum + ab.byteLength, 0), encoded: [...last.values()].reduce((sum, b) => sum + b.length, 0) };
}

test(`the last completions of ${WORKFLOWS} cached workflows pin at most a few KiB each once the pool is limited`, () => {
  const original = Buffer.poolSize;
  try {
    Buffer.poolSize = 64 * KiB; // Node 24's default
    const before = pinnedByLastCompletions();
    limitBufferPool();
    const after = pinnedByLastCompletions();
    assert.ok(before.pinned / WORKFLOWS > 8 * KiB, `with 64 KiB slabs each workflow pins ${(before.pinned / WORKFLOWS / KiB).toFixed(1)} KiB for ${(before.encoded / WORKFLOWS).toFixed(0)} bytes of completion`);
    assert.ok(after.pinned / WORKFLOWS <= BUFFER_POOL_BYTES, `with ${BUFFER_POOL_BYTES / KiB} KiB slabs each workflow pins ${(after.pinned / WORKFLOWS / KiB).toFixed(1)} KiB`);
    assert.ok(after.pinned * 4 < before.pinned, `pinned ${(before.pinned / KiB).toFixed(0)} KiB → ${(after.pinned / KiB).toFixed(0)} KiB`);
  } finally {
    Buffer.poolSize = original;
  }
});
