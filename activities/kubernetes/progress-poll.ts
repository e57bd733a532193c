/**
 * The wait a rolling batch, promotion or abort runs on a workload: poll a step until it says done,
 * heartbeat what it waits for, honour cancellation, ride out up to 20 transient read errors in a
 * row, and fail with a non-retryable ProgressDeadlineExceeded when nothing has moved for the
 * release's progress deadline, naming the workload, what it waits for and what its pods say.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type { ReleaseTarget } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { cancellationSignal, sleep } from './context.ts';
import { describePodCauses } from './diagnose.ts';
import { isRetryable } from './errors.ts';
import { stalledPollInterval } from './poll-delay.ts';
import type { WorkloadRoom } from './room.ts';

export interface ProgressStep<T> {
  /** Set when the wait is over: what it returns. */
  done?: T;
  /** Changes whenever something moved (the stall clock restarts). */
  mark: string;
  /** What is awaited, in words. */
  state: string;
  /** The workload's pods, read only when the deadline is missed, to say why. */
  pods: () => Promise<V1Pod[]>;
  /** Run after the deadline check when the wait goes on (a batch deleting the next pods). */
  next?: () => Promise<void>;
}

export async function pollProgress<T>(room: WorkloadRoom, t: ReleaseTarget, where: string, step: () => Promise<ProgressStep<T>>, intervalMs = room.pollIntervalMs): Promise<T> {
  const signal = cancellationSignal(room.signal);
  let mark = '';
  let movedAt = Date.now();
  let errors = 0;
  for (;;) {
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('cancelled');
    try {
      const r = await step();
      errors = 0;
      if (r.done !== undefined) return r.done;
      if (r.mark !== mark) {
        mark = r.mark;
        movedAt = Date.now();
      }
      const stalled = Date.now() - movedAt;
      if (stalled > t.progressDeadlineSeconds * 1000) {
        const why = describePodCauses(await r.pods());
        throw ApplicationFailure.nonRetryable(`${where} exceeded its progress deadline (${t.progressDeadlineSeconds}s): no progress for ${Math.round(stalled / 1000)}s; ${r.state}${why ? `; ${why}` : ''}`, ErrorType.ProgressDeadlineExceeded);
      }
      await r.next?.();
      room.heartbeat({ waiting: where, state: r.state, progressAt: movedAt });
    } catch (err) {
      if (err instanceof ApplicationFailure || signal?.aborted || !isRetryable(err) || ++errors > 20) throw err;
      room.heartbeat({ waiting: where, error: (err as Error).message });
    }
    await sleep(stalledPollInterval(intervalMs, Date.now() - movedAt), signal);
  }
}
