/**
 * The size of Node's Buffer pool in the worker. Node 24 made the pool 64 KiB (8 KiB before):
 * `Buffer.allocUnsafe` of less than half the pool returns a slice of a shared 64 KiB slab, and a slab
 * is freed only when no slice of it is left. protobufjs encodes every workflow activation completion
 * that way, and the SDK keeps each cached workflow's last completion (its state between activations),
 * so each cached release could pin a 64 KiB slab for a completion of a few hundred bytes: the main
 * thread's array buffers grew by about 50 KiB per cached release (docs/operations.md, "What each
 * cached release still cost"). With 2 KiB slabs only buffers under 1 KiB are pooled and a retained completion pins at most
 * 2 KiB; larger ones get a buffer of their own size. (Measured with protobufjs, 200 workflows with
 * other small allocations between their turns: 16.3 KiB pinned per workflow with 64 KiB slabs, 8.0
 * with 8 KiB, 0.18 with 2 KiB; test/workers/buffer-pool.test.ts.)
 */
export const BUFFER_POOL_BYTES = 2 * 1024;

/** Sets the pool size for the slabs Node allocates from now on. */
export function limitBufferPool(bytes = BUFFER_POOL_BYTES): void {
  Buffer.poolSize = bytes;
}
