/**
 * untilQuery (test/support/poll.ts), the status poll of the workflow suites, on a handle whose
 * queries take a set time: a deadline is what the caller waits for the predicate, never a cut-off
 * for the query in flight, and a poll that runs out says what it waited for, with the last answer
 * and the last query failure. The handle stands in for a workflow whose worker answers slowly (as
 * on 2 busy cores); `withDeadline` fails a call that outlives its deadline, as the client's does.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { defineQuery } from '@temporalio/workflow';
import { untilQuery } from './poll.ts';

const phaseQuery = defineQuery<string>('phase');

/** A handle whose query answers `answer()` after `answerMs`; calls outliving their deadline fail. */
function slowHandle(answerMs: number, answer: () => string | Error): { handle: WorkflowHandle; deadlines: number[] } {
  const deadlines: number[] = [];
  const withDeadline = <R>(deadline: number, fn: () => Promise<R>): Promise<R> => {
    deadlines.push(deadline - Date.now());
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded')), Math.max(0, deadline - Date.now()));
      fn().then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e as Error);
        },
      );
    });
  };
  const query = () =>
    new Promise<string>((resolve, reject) =>
      setTimeout(() => {
        const a = answer();
        if (a instanceof Error) reject(a);
        else resolve(a);
      }, answerMs),
    );
  return { handle: { client: { withDeadline }, query } as unknown as WorkflowHandle, deadlines };
}

const show = (last: string | undefined) => `last phase ${last}`;

test('a query in flight at the deadline gets its full time and its answer counts', async () => {
  // The first answer comes 300 ms after the poll began, past its 100 ms deadline.
  const { handle, deadlines } = slowHandle(300, () => 'Paused');
  const got = await untilQuery(handle, phaseQuery, (p) => p === 'Paused', 'paused', { timeoutMs: 100, intervalMs: 10, show });
  assert.equal(got, 'Paused');
  assert.ok((deadlines[0] ?? 0) >= 4_000, `each query may take 5 s, whatever the poll's deadline (got ${deadlines[0]} ms)`);
});

test('a predicate that never holds times out naming what it waited for and the last answer', async () => {
  const { handle } = slowHandle(5, () => 'Progressing');
  await assert.rejects(untilQuery(handle, phaseQuery, (p) => p === 'Paused', 'paused', { timeoutMs: 100, intervalMs: 10, show }), /^Error: timed out waiting for paused: last phase Progressing$/);
});

test('queries that keep failing time out naming what was awaited and the last failure', async () => {
  let calls = 0;
  const { handle } = slowHandle(5, () => (++calls === 1 ? 'Progressing' : new Error('14 UNAVAILABLE: connection reset')));
  await assert.rejects(
    untilQuery(handle, phaseQuery, (p) => p === 'Paused', 'paused', { timeoutMs: 100, intervalMs: 10, show }),
    (err: Error) => /^timed out waiting for paused: last phase Progressing; the last query failed: 14 UNAVAILABLE: connection reset$/.test(err.message) && (err.cause as Error).message === '14 UNAVAILABLE: connection reset',
  );
});
