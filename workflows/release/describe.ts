/** One-line descriptions of route matches and activity failures, for status messages and results. */
import * as wf from '@temporalio/workflow';
import { RetryState, TimeoutType } from '@temporalio/common';
import type { HeaderRoutingMatch, RouteMatch, StringMatch } from '../../model/types.ts';

/** Activities bounded by the progress deadline (profiles.rollout). */
const ROLLOUT_ACTIVITIES = new Set(['ensureCanary', 'setWeight', 'setCanaryScale', 'startExperiment', 'setHeaderRoute', 'setMirrorRoute', 'promoteCanary', 'deployPreview', 'finalizeBlueGreen', 'beginRolling', 'rollBatch', 'completeRolling']);

function describeStringMatch(m: StringMatch): string {
  if (m.exact !== undefined) return `"${m.exact}"`;
  if (m.prefix !== undefined) return `prefix "${m.prefix}"`;
  return `regex "${m.regex ?? ''}"`;
}

export function describeHeaderMatch(match: HeaderRoutingMatch[]): string {
  return match.map((m) => `${m.headerName} ${describeStringMatch(m.headerValue)}`).join(' and ');
}

export function describeRouteMatch(match: RouteMatch[]): string {
  return match
    .map((m) =>
      [
        m.method ? `method ${describeStringMatch(m.method)}` : '',
        m.path ? `path ${describeStringMatch(m.path)}` : '',
        ...Object.entries(m.headers ?? {}).map(([h, v]) => `${h} ${describeStringMatch(v)}`),
      ]
        .filter(Boolean)
        .join(' and '),
    )
    .join(' or ');
}

export function describeError(err: unknown): string {
  if (err instanceof wf.ActivityFailure) {
    const cause = err.cause;
    const last = cause instanceof wf.ApplicationFailure ? `${cause.type ?? 'Error'}: ${cause.message}` : (cause?.message ?? err.message);
    const outOfTime = err.retryState === RetryState.TIMEOUT || (cause instanceof wf.TimeoutFailure && cause.timeoutType === TimeoutType.SCHEDULE_TO_CLOSE);
    if (outOfTime) {
      const kind = ROLLOUT_ACTIVITIES.has(err.activityType) ? 'ProgressDeadlineExceeded' : 'TimedOut';
      return `${err.activityType}: ${kind}: did not complete in time${cause instanceof wf.TimeoutFailure ? '' : ` (last error: ${last})`}`;
    }
    return `${err.activityType}: ${last}`;
  }
  if (err instanceof wf.ApplicationFailure) return `${err.type ?? 'Error'}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
