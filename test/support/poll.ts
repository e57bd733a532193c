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
 * Queries `handle` every `intervalMs` until `pred` holds and returns that answer. Each query has its
 * own bound of 5 s, whatever is left of `timeoutMs` (a query sent just before the deadline still gets
 * its full time, so a slow but healthy answer is read, never cut off at a deadline near zero); a
 * failing query is retried. Once the deadline has passed and the last answer did not satisfy `pred`,
 * the error names `what`, the last answer and the last query failure.
 */
export async function untilQuery<T>(handle: WorkflowHandle, query: QueryDefinition<T, []>, pred: (s: T) => boolean, what: string, o: PollOptions<T>): Promise<T> {
  const end = Date.now() + o.timeoutMs;
  let last: T | undefined;
  let failure: unknown;
  for (;;) {
    try {
      // Each query is bounded: one sent to a run that is closing as it continues as new can go
      // unanswered on the Java test server, and the next attempt reaches the new run.
      last = await handle.client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => handle.query(query));
      failure = undefined;
      if (pred(last)) return last;
    } catch (err) {
      failure = err;
    }
    if (Date.now() > end) {
      const why = failure === undefined ? '' : `; the last query failed: ${failure instanceof Error ? failure.message : String(failure)}`;
      throw new Error(`timed out waiting for ${what}: ${o.show(last)}${why}`, failure === undefined ? undefined : { cause: failure });
    }
    await new Promise((r) => setTimeout(r, o.intervalMs));
  }
}
