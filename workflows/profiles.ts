/**
 * Named timeout and retry profiles for activities. A rollout-type activity enforces the release's
 * progress deadline itself, the way Kubernetes and Argo Rollouts mean it: no progress for
 * progressDeadlineSeconds (progress resets the clock; the heartbeat carries it across retries) is a
 * non-retryable ProgressDeadlineExceeded naming the Deployment and why its pods are stuck. Temporal's
 * timeouts are the backstops: the heartbeat timeout finds a dead worker, and a generous overall
 * bound keeps a step from running forever (argo-rollouts #4128).
 */
import type { ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../activities/errors.ts';

const retry: RetryPolicy = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '30s',
  nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
};

/** Reads and small writes: preflight, service selector switches. */
export const quick: ActivityOptions = { startToCloseTimeout: '1m', scheduleToCloseTimeout: '10m', retry };

/** The overall bound of a rollout-type activity: 6 hours, or 20 progress deadlines when that is longer. */
export function rolloutBoundSeconds(progressDeadlineSeconds: number): number {
  return Math.max(6 * 3600, 20 * progressDeadlineSeconds);
}

/** Writes that wait for pods to become ready: the progress deadline is enforced by the activity, not by a total-time cap. */
export function rollout(progressDeadlineSeconds: number): ActivityOptions {
  const bound = `${rolloutBoundSeconds(progressDeadlineSeconds)}s`;
  return {
    startToCloseTimeout: bound,
    scheduleToCloseTimeout: bound,
    heartbeatTimeout: '30s',
    retry,
  };
}

/** Putting stable back: retried until it succeeds, with a long but finite bound. */
export const cleanup: ActivityOptions = {
  startToCloseTimeout: '5m',
  scheduleToCloseTimeout: '1h',
  heartbeatTimeout: '30s',
  retry: { ...retry, nonRetryableErrorTypes: ['Forbidden', 'Unauthorized', 'InvalidSpec'] },
};

/** A whole analysis run in one activity (measurements in heartbeats), cancelled on abort. */
export function analysis(expectedMs: number | undefined): ActivityOptions {
  // Unbounded runs (background analysis) end when the release does; a year is "never" for a release.
  const bound = expectedMs === undefined ? 365 * 86_400_000 : expectedMs * 2 + 600_000;
  return { startToCloseTimeout: bound, heartbeatTimeout: '30s', retry: { ...retry, maximumAttempts: 10 } };
}

/** Building an image: long, heartbeating (timer and output), a few attempts for a registry that is down. */
export const build: ActivityOptions = {
  startToCloseTimeout: '30m',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 4, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
};
