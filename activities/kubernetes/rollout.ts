/**
 * "Rolled out", by kubectl's definition (`kubectl rollout status`), and a wait for it that heartbeats,
 * honours cancellation, polls through transient apiserver errors and turns the Deployment
 * controller's `ProgressDeadlineExceeded` into a non-retryable failure naming the Deployment.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../errors.ts';
import { abortReason, sleep, type Heartbeat } from './context.ts';
import { isNotFound, isRetryable } from './errors.ts';
import { stalledPollInterval } from './poll-delay.ts';

export interface RolloutState {
  done: boolean;
  /** The controller reported `Progressing=False, reason ProgressDeadlineExceeded` for this generation. */
  deadlineExceeded: boolean;
  message: string;
}

export function rolloutState(d: V1Deployment): RolloutState {
  const name = `${d.metadata?.namespace}/${d.metadata?.name}`;
  const generation = d.metadata?.generation ?? 0;
  const status = d.status ?? {};
  if ((status.observedGeneration ?? 0) < generation) {
    return { done: false, deadlineExceeded: false, message: `waiting for the controller to observe generation ${generation} of ${name}` };
  }
  const want = d.spec?.replicas ?? 1;
  const updated = status.updatedReplicas ?? 0;
  const total = status.replicas ?? 0;
  const available = status.availableReplicas ?? 0;
  const progressing = status.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    return {
      done: false,
      deadlineExceeded: true,
      message: `Deployment ${name} exceeded its progress deadline (${d.spec?.progressDeadlineSeconds ?? 600}s): ${available} of ${want} replicas available, ${updated} updated${progressing.message ? `; ${progressing.message}` : ''}`,
    };
  }
  if (updated < want) return { done: false, deadlineExceeded: false, message: `${name}: ${updated} of ${want} new replicas updated` };
  if (total > updated) return { done: false, deadlineExceeded: false, message: `${name}: ${total - updated} old replicas pending termination` };
  if (available < want) return { done: false, deadlineExceeded: false, message: `${name}: ${available} of ${want} updated replicas available` };
  return { done: true, deadlineExceeded: false, message: `${name}: rolled out (${want} replicas)` };
}

export interface WaitOptions {
  pollIntervalMs: number;
  /**
   * The progress deadline: the wait fails (non-retryable ProgressDeadlineExceeded) when nothing has
   * progressed for this long. Progress (more updated, ready or available pods, a new generation)
   * resets the clock, so a large or slow-starting but progressing rollout is never cut short.
   * The Deployment's own spec.progressDeadlineSeconds applies too when shorter (600 s when unset).
   */
  progressDeadlineSeconds?: number | undefined;
  /** An optional cap on the total time, progress or not (undefined: none). */
  timeoutMs?: number | undefined;
  heartbeat: Heartbeat;
  signal?: AbortSignal | undefined;
  /**
   * The last heartbeat of a previous attempt of this activity: when it was waiting for the same
   * Deployment and nothing has progressed since, the stall clock continues from there instead of
   * starting again (a retried activity cannot stretch the deadline).
   */
  resumeFrom?: unknown;
  /** Why the rollout is stuck, in Kubernetes' words (pods Pending/Unschedulable, image pulls, readiness); added to the deadline message. */
  diagnose?: (d: V1Deployment) => Promise<string | undefined>;
  /** Consecutive transient read failures tolerated before the wait gives up (retryable). */
  maxConsecutiveErrors?: number;
  now?: () => number;
}

/** What a rollout wait heartbeats: the progress it has seen and when it last moved. */
export interface WaitHeartbeat {
  waiting: string;
  /** The progress mark (generation, observed generation, updated/ready/available/total replicas). */
  progress: string;
  /** Epoch ms of the last change of `progress`. */
  progressAt: number;
  elapsedMs: number;
  state?: string;
  error?: string;
}

/** What counts as progress: the same signals the Deployment controller uses (more updated, ready or available pods, a new generation). */
export function progressMark(d: V1Deployment): string {
  const s = d.status ?? {};
  return [d.metadata?.generation, s.observedGeneration, s.updatedReplicas ?? 0, s.readyReplicas ?? 0, s.availableReplicas ?? 0, s.replicas ?? 0].join('/');
}

function resumed(details: unknown, what: string): { progress: string; progressAt: number } | undefined {
  if (!details || typeof details !== 'object') return undefined;
  const d = details as Partial<WaitHeartbeat>;
  return d.waiting === what && typeof d.progress === 'string' && typeof d.progressAt === 'number' ? { progress: d.progress, progressAt: d.progressAt } : undefined;
}

/**
 * Polls `read` until the Deployment is rolled out; returns it. Fails with a non-retryable
 * `ProgressDeadlineExceeded` naming the Deployment and the cause Kubernetes gives when the controller
 * reports the deadline exceeded, or when nothing has progressed for `progressDeadlineSeconds` (the
 * controller only reports it for a rollout of a new ReplicaSet, never for a scale-up of a complete
 * Deployment, such as a canary going from 1 to 2 replicas). There is no cap on the total time: a
 * rollout that keeps progressing is waited for (the activity's own timeout is the overall bound).
 */
export async function waitForRollout(read: () => Promise<V1Deployment>, what: string, opts: WaitOptions): Promise<V1Deployment> {
  const now = opts.now ?? Date.now;
  const started = now();
  const maxErrors = opts.maxConsecutiveErrors ?? 20;
  const previous = resumed(opts.resumeFrom, what);
  let errors = 0;
  let delay = Math.min(100, opts.pollIntervalMs);
  let mark = previous?.progress ?? '';
  let lastProgress = previous?.progressAt ?? started;
  const beat = (extra: { state?: string; error?: string }): void =>
    opts.heartbeat({ waiting: what, progress: mark, progressAt: lastProgress, elapsedMs: now() - started, ...extra } satisfies WaitHeartbeat);
  const deadlineExceeded = async (dep: V1Deployment, cause: string): Promise<ApplicationFailure> => {
    let why: string | undefined;
    try {
      why = await opts.diagnose?.(dep);
    } catch {
      why = undefined; // the diagnosis is a courtesy: the deadline failure stands without it
    }
    return ApplicationFailure.nonRetryable(`${cause}${why ? `; ${why}` : ''}`, ErrorType.ProgressDeadlineExceeded);
  };
  for (;;) {
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    let dep: V1Deployment | undefined;
    try {
      dep = await read();
      errors = 0;
    } catch (err) {
      if (opts.signal?.aborted) throw abortReason(opts.signal);
      if (isNotFound(err)) throw new Error(`${what} was deleted while waiting for it to roll out`, { cause: err }); // retried: the retry re-creates it
      if (!isRetryable(err) || ++errors > maxErrors) throw err;
      beat({ error: (err as Error).message });
    }
    if (dep) {
      const state = rolloutState(dep);
      if (state.done) return dep;
      if (state.deadlineExceeded) throw await deadlineExceeded(dep, state.message);
      const m = progressMark(dep);
      if (m !== mark) {
        mark = m;
        lastProgress = now();
      }
      const deadlineSeconds = Math.min(opts.progressDeadlineSeconds ?? Infinity, dep.spec?.progressDeadlineSeconds ?? 600); // the controller reports its own at the Deployment's
      const stalledMs = now() - lastProgress;
      if (stalledMs > deadlineSeconds * 1000) {
        throw await deadlineExceeded(
          dep,
          `Deployment ${dep.metadata?.namespace}/${dep.metadata?.name} exceeded its progress deadline (${deadlineSeconds}s): no progress for ${Math.round(stalledMs / 1000)}s; ${state.message}`,
        );
      }
      beat({ state: state.message });
      if (opts.timeoutMs !== undefined && now() - started > opts.timeoutMs) {
        throw await deadlineExceeded(dep, `${what} did not roll out within ${Math.round(opts.timeoutMs / 1000)}s: ${state.message}`);
      }
    }
    await sleep(delay, opts.signal);
    // Quick first looks, then the steady interval; slower while nothing moves (poll-delay.ts).
    delay = Math.min(delay * 2, stalledPollInterval(opts.pollIntervalMs, now() - lastProgress));
  }
}
