/**
 * Webhook gates (model/webhooks.ts), Flagger's semantics: confirm-* hooks are polled (durable timers
 * between polls) until they answer 2xx; pre-rollout and rollout hooks roll back after `retries`
 * non-2xx answers; a rollback hook answering 2xx aborts; post-rollout answers are only recorded.
 * Every answer that decides something is audited with its status and body (bounded). A hook that
 * cannot be reached counts as a non-2xx answer (status 0).
 *
 * Only releases whose plan has webhooks call anything here (behind WEBHOOK_GATES_PATCH).
 */
import * as wf from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../../activities/errors.ts';
import type { createNotifyActivities } from '../../activities/notify/index.ts';
import type { WebhookPayload, WebhookSpec, WebhookType } from '../../model/webhooks.ts';
import { describeError } from './describe.ts';
import { stepNumber, type ReleaseState } from './state.ts';
import { releasePatched } from './patch-epoch.ts';

type NotifyActivities = ReturnType<typeof createNotifyActivities>;
interface Answer {
  status: number;
  body: string;
}

export const WEBHOOK_GATES_PATCH = 'glidepath-webhook-gates';
/** The most polls of one confirm hook before the release aborts (keeps history bounded). */
export const MAX_CONFIRM_POLLS = 2000;

const ok = (a: Answer): boolean => a.status >= 200 && a.status <= 299;
const clip = (s: string, n = 300): string => (s.length > n ? `${s.slice(0, n)}…` : s);

export class Gates {
  private readonly r: ReleaseState;
  private readonly hooks: WebhookSpec[];

  constructor(r: ReleaseState, hooks: WebhookSpec[]) {
    this.r = r;
    this.hooks = hooks;
  }

  private of(type: WebhookType): WebhookSpec[] {
    return this.hooks.filter((h) => h.type === type);
  }

  /** One request; a transport failure (after the activity's retries) is an answer with status 0. */
  private async ask(hook: WebhookSpec): Promise<Answer> {
    const { status, plan, image } = this.r;
    const acts = wf.proxyActivities<NotifyActivities>({
      startToCloseTimeout: hook.timeoutMs + 5_000,
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
    });
    const payload: WebhookPayload = {
      name: plan.name,
      namespace: plan.namespace,
      type: hook.type,
      hook: hook.name,
      releaseId: status.releaseId,
      phase: status.phase,
      step: stepNumber(status.step.index),
      weight: status.canaryWeight,
      image,
      metadata: hook.metadata ?? {},
    };
    try {
      return await acts.callWebhook(plan.namespace, hook, payload);
    } catch (err) {
      if (wf.isCancellation(err)) throw err;
      return { status: 0, body: describeError(err) };
    }
  }

  private record(hook: WebhookSpec, a: Answer, verdict: string): void {
    this.r.audit(`webhook ${hook.name}`, 'webhook', true, undefined, `${hook.type} ${hook.name} answered ${a.status || 'nothing'} (${verdict})${a.body ? `: ${a.body}` : ''}`.slice(0, 1500));
  }

  /** confirm-rollout, confirm-traffic-increase, confirm-promotion: each hook polled until it answers 2xx. */
  async confirm(type: 'confirm-rollout' | 'confirm-traffic-increase' | 'confirm-promotion'): Promise<void> {
    for (const hook of this.of(type)) {
      let waiting = false;
      for (let poll = 1; ; poll++) {
        const a = await this.ask(hook);
        if (ok(a)) {
          this.record(hook, a, 'confirmed');
          break;
        }
        if (poll >= MAX_CONFIRM_POLLS) {
          this.record(hook, a, `not confirmed after ${poll} polls`);
          this.r.halt({ kind: 'abort', by: `webhook ${hook.name}`, reason: `${type} webhook ${hook.name} did not confirm in ${poll} polls (last answer ${a.status || 'nothing'})` });
        }
        if (!waiting) {
          this.record(hook, a, 'waiting');
          this.r.setPhase(this.r.status.phase, `waiting for ${type} webhook ${hook.name} (answered ${a.status || 'nothing'}; asking every ${hook.intervalMs / 1000}s)`);
          waiting = true;
        }
        await wf.sleep(hook.intervalMs);
      }
    }
  }

  /** pre-rollout, rollout: each hook must answer 2xx within `retries` more tries; returns why not. */
  async check(type: 'pre-rollout' | 'rollout', quiet = false): Promise<string | undefined> {
    for (const hook of this.of(type)) {
      for (let failures = 0; ; ) {
        const a = await this.ask(hook);
        if (ok(a)) {
          if (!quiet || failures > 0) this.record(hook, a, 'passed');
          break;
        }
        failures++;
        this.record(hook, a, `failed ${failures} of ${hook.retries + 1} allowed`);
        if (failures > hook.retries) return `${type} webhook ${hook.name} answered ${a.status || 'nothing'}${a.body ? `: ${clip(a.body)}` : ''}`;
        await wf.sleep(hook.intervalMs);
      }
    }
    return undefined;
  }

  /** pre-rollout: before the first step; failure rolls back. */
  async preRollout(): Promise<void> {
    const why = await this.check('pre-rollout');
    if (why) this.r.halt({ kind: 'rollback', by: 'glidepath', reason: why });
  }

  /** rollout hooks for the length of `analysis`: asked at its start and every interval; a failure rolls back. */
  async during<T>(analysis: () => Promise<T>): Promise<T> {
    const hooks = this.of('rollout');
    if (hooks.length === 0) return analysis();
    const interval = Math.min(...hooks.map((h) => h.intervalMs));
    const scope = new wf.CancellationScope();
    let first = true;
    const loop = scope
      .run(async () => {
        for (;;) {
          const why = await this.check('rollout', !first);
          first = false;
          if (why) return this.r.requestStop({ kind: 'rollback', by: 'glidepath', reason: why });
          await wf.sleep(interval);
        }
      })
      .catch((err: unknown) => {
        if (!wf.isCancellation(err)) throw err;
      });
    try {
      return await analysis();
    } finally {
      scope.cancel();
      await loop;
    }
  }

  /** rollback hooks, polled while the attempt runs: a 2xx answer aborts. Returns the function that stops the polling. */
  watchRollback(): () => Promise<void> {
    const hooks = this.of('rollback');
    if (hooks.length === 0) return async () => {};
    const interval = Math.min(...hooks.map((h) => h.intervalMs));
    const scope = new wf.CancellationScope();
    const loop = scope
      .run(async () => {
        for (;;) {
          for (const hook of hooks) {
            const a = await this.ask(hook);
            if (ok(a)) {
              this.record(hook, a, 'abort');
              return this.r.requestStop({ kind: 'abort', by: `webhook ${hook.name}`, reason: `rollback webhook ${hook.name} answered ${a.status}${a.body ? `: ${clip(a.body)}` : ''}` });
            }
          }
          await wf.sleep(interval);
        }
      })
      .catch((err: unknown) => {
        if (!wf.isCancellation(err)) throw err;
      });
    return async () => {
      scope.cancel();
      await loop;
    };
  }

  /** post-rollout: once the attempt has an outcome; answers are recorded only. */
  async postRollout(): Promise<void> {
    for (const hook of this.of('post-rollout')) this.record(hook, await this.ask(hook), 'recorded');
  }
}

/** The release's gates: undefined (and no patch marker) when the plan has no gate webhooks. */
export function gatesFor(r: ReleaseState): Gates | undefined {
  const hooks = (r.plan.webhooks ?? []).filter((h) => h.type !== 'event');
  if (hooks.length === 0 || !releasePatched(WEBHOOK_GATES_PATCH)) return undefined;
  return new Gates(r, hooks);
}
