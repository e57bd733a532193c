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
  /** A backstop: give up (ProgressDeadlineExceeded) after this long even while progress is being made. */
  timeoutMs: number;
  heartbeat: Heartbeat;
  signal?: AbortSignal | undefined;
  /** Consecutive transient read failures tolerated before the wait gives up (retryable). */
  maxConsecutiveErrors?: number;
  now?: () => number;
}

/** What counts as progress: the same signals the Deployment controller uses (more updated, ready or available pods, a new generation). */
function progressMark(d: V1Deployment): string {
  const s = d.status ?? {};
  return [d.metadata?.generation, s.observedGeneration, s.updatedReplicas ?? 0, s.readyReplicas ?? 0, s.availableReplicas ?? 0, s.replicas ?? 0].join('/');
}

/**
 * Polls `read` until the Deployment is rolled out; returns it. The progress deadline is enforced
 * here too: the Deployment controller only reports `ProgressDeadlineExceeded` for a rollout of a new
 * ReplicaSet, never for a scale-up of a complete Deployment (a canary going from 1 to 2 replicas), so
 * the wait fails the same way when nothing has progressed for the Deployment's progressDeadlineSeconds.
 */
export async function waitForRollout(read: () => Promise<V1Deployment>, what: string, opts: WaitOptions): Promise<V1Deployment> {
  const now = opts.now ?? Date.now;
  const started = now();
  const maxErrors = opts.maxConsecutiveErrors ?? 20;
  let errors = 0;
  let delay = Math.min(100, opts.pollIntervalMs);
  let mark = '';
  let lastProgress = started;
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
      opts.heartbeat({ waiting: what, elapsedMs: now() - started, error: (err as Error).message });
    }
    if (dep) {
      const state = rolloutState(dep);
      if (state.done) return dep;
      if (state.deadlineExceeded) throw ApplicationFailure.nonRetryable(state.message, ErrorType.ProgressDeadlineExceeded);
      const m = progressMark(dep);
      if (m !== mark) {
        mark = m;
        lastProgress = now();
      }
      const deadlineSeconds = dep.spec?.progressDeadlineSeconds ?? 600;
      const stalledMs = now() - lastProgress;
      if (stalledMs > deadlineSeconds * 1000) {
        throw ApplicationFailure.nonRetryable(
          `Deployment ${dep.metadata?.namespace}/${dep.metadata?.name} exceeded its progress deadline (${deadlineSeconds}s): no progress for ${Math.round(stalledMs / 1000)}s; ${state.message}`,
          ErrorType.ProgressDeadlineExceeded,
        );
      }
      opts.heartbeat({ waiting: what, elapsedMs: now() - started, state: state.message });
      if (now() - started > opts.timeoutMs) {
        throw ApplicationFailure.nonRetryable(`${what} did not roll out within ${Math.round(opts.timeoutMs / 1000)}s: ${state.message}`, ErrorType.ProgressDeadlineExceeded);
      }
    }
    await sleep(delay, opts.signal);
    delay = Math.min(delay * 2, opts.pollIntervalMs); // quick first looks, then the steady interval
  }
}
