/** Polling a workflow's query until a predicate holds: the e2e suites and the time-skipping tests share it. */
import type { WorkflowHandle } from '@temporalio/client';
import type { QueryDefinition } from '@temporalio/common';

/** How long one query may take before it is abandoned and sent again. */
const QUERY_TIMEOUT_MS = 5_000;

export interface PollOptions<T> {
  timeoutMs: number;
  intervalMs: number;
  /** What the timeout error says about the last answer (or its absence). */
  show(last: T | undefined): string;
}

/**
 * Queries `handle` every `intervalMs` until `pred` holds and returns that answer. A failing query is
 * retried until the deadline (each attempt at most 5 s), then rethrown; a predicate that never holds times out naming `what`.
 */
export async function untilQuery<T>(handle: WorkflowHandle, query: QueryDefinition<T, []>, pred: (s: T) => boolean, what: string, o: PollOptions<T>): Promise<T> {
  const end = Date.now() + o.timeoutMs;
  let last: T | undefined;
  for (;;) {
    try {
      // Each query is bounded: one sent to a run that is closing as it continues as new can go
      // unanswered on the Java test server, and the next attempt reaches the new run.
      last = await handle.client.withDeadline(Math.min(end, Date.now() + QUERY_TIMEOUT_MS), () => handle.query(query));
      if (pred(last)) return last;
    } catch (err) {
      if (Date.now() > end) throw err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${o.show(last)}`);
    await new Promise((r) => setTimeout(r, o.intervalMs));
  }
}
