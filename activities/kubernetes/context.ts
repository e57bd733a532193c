/**
 * The running activity's heartbeat and cancellation, when there is one. Everything here also works
 * outside an activity (tests, benchmarks): heartbeats go nowhere and nothing cancels.
 */
import { asyncLocalStorage, type Context } from '@temporalio/activity';

export type Heartbeat = (details: unknown) => void;

/** The current activity's Context, or undefined outside an activity (never throws). */
export function activityContext(): Context | undefined {
  return asyncLocalStorage.getStore();
}

/** Heartbeats the current activity, if any. */
export const activityHeartbeat: Heartbeat = (details) => {
  activityContext()?.heartbeat(details);
};

/** The current activity's cancellation signal combined with `extra`; undefined when there is neither. */
export function cancellationSignal(extra?: AbortSignal): AbortSignal | undefined {
  const activity = activityContext()?.cancellationSignal;
  if (activity && extra) return AbortSignal.any([activity, extra]);
  return activity ?? extra;
}

/** Sleeps `ms`, waking early (and throwing the signal's reason) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error(`cancelled${signal.reason ? `: ${String(signal.reason)}` : ''}`);
}
