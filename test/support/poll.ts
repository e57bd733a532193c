/** Polling a workflow's query until a predicate holds: the e2e suites and the time-skipping tests share it. */
import type { WorkflowHandle } from '@temporalio/client';
import type { QueryDefinition } from '@temporalio/common';

export interface PollOptions<T> {
  timeoutMs: number;
  intervalMs: number;
  /** What the timeout error says about the last answer (or its absence). */
  show(last: T | undefined): string;
}

/**
 * Queries `handle` every `intervalMs` until `pred` holds and returns that answer. A failing query is
 * retried until the deadline, then rethrown; a predicate that never holds times out naming `what`.
 */
export async function untilQuery<T>(handle: WorkflowHandle, query: QueryDefinition<T, []>, pred: (s: T) => boolean, what: string, o: PollOptions<T>): Promise<T> {
  const end = Date.now() + o.timeoutMs;
  let last: T | undefined;
  for (;;) {
    try {
      last = await handle.query(query);
      if (pred(last)) return last;
    } catch (err) {
      if (Date.now() > end) throw err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${o.show(last)}`);
    await new Promise((r) => setTimeout(r, o.intervalMs));
  }
}
