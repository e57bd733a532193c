/**
 * Release notifications, emitted by the workflow and delivered by activities. Each subscription has
 * its own queue, delivered one event at a time in sequence order, in a scope no abort cancels: a
 * slow or down receiver delays only its own later events, never the release. A delivery has bounded
 * retries; one that still fails is counted and audited as undelivered, and the subscription's next
 * events get a single attempt until one is delivered again (a receiver down for the whole release
 * costs each event one attempt). The queues are bounded; at its end the release waits a bounded time
 * for them to drain.
 *
 * Only releases whose plan has subscriptions call anything here (behind NOTIFICATIONS_PATCH), so
 * releases without notifications issue the same commands as before.
 */
import * as wf from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../../activities/errors.ts';
import type { createNotifyActivities } from '../../activities/notify/index.ts';
import { TRIGGERS, type NotificationEvent, type NotificationSpec, type Trigger } from '../../model/notifications.ts';
import type { Phase } from '../../model/types.ts';
import type { AnalysisRunStatus, NotificationStatus, ReleaseStatus } from '../messages.ts';
import { describeError } from './describe.ts';
import { now, stepNumber, type ReleaseState } from './state.ts';
import { releasePatched } from './patch-epoch.ts';

type NotifyActivities = ReturnType<typeof createNotifyActivities>;

/** What the notifier reads and writes: a release's state, or a release group's view of itself (workflows/group/notify.ts). */
export interface NotifierHost {
  readonly status: Pick<ReleaseStatus, 'releaseId' | 'message' | 'attempt' | 'step' | 'canaryWeight' | 'stableImage' | 'notifications'> & { readonly phase: string };
  readonly plan: { readonly namespace: string; readonly name: string; readonly workload: { readonly name: string } };
  readonly image: string;
  audit(by: string, action: string, accepted: boolean, reason?: string, detail?: string): void;
}

/** Marks releases that emit notifications. */
export const NOTIFICATIONS_PATCH = 'glidepath-notifications';
/** Events waiting per subscription; beyond it the oldest waiting one is dropped (and counted undelivered). */
export const QUEUE_KEPT = 100;
/** Undelivered events kept in the status (all are counted and audited). */
export const UNDELIVERED_KEPT = 20;
/** How long a finished release waits for its queues to drain. */
export const DRAIN_MS = 5 * 60_000;
/** Attempts per delivery while the receiver answers (then one attempt until it answers again). */
export const DELIVERY_ATTEMPTS = 5;

const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES };
const timeouts = { startToCloseTimeout: '15s', scheduleToCloseTimeout: '2m' };

interface Queue {
  sub: NotificationSpec;
  events: NotificationEvent[];
  running: boolean;
  /** The last delivery failed: one attempt per event until one succeeds. */
  degraded: boolean;
}

export class Notifier {
  private sequence = 0;
  private readonly queues: Queue[];
  private readonly status: NotificationStatus;
  private lastPause = '';
  private readonly full = wf.proxyActivities<NotifyActivities>({ ...timeouts, retry: { ...retry, maximumAttempts: DELIVERY_ATTEMPTS } });
  private readonly once = wf.proxyActivities<NotifyActivities>({ ...timeouts, retry: { ...retry, maximumAttempts: 1 } });
  private readonly r: NotifierHost;

  constructor(r: NotifierHost, subs: NotificationSpec[]) {
    this.r = r;
    this.queues = subs.map((sub) => ({ sub, events: [], running: false, degraded: false }));
    this.status = r.status.notifications = { emitted: 0, delivered: 0, undelivered: 0, pending: 0, lastUndelivered: [] };
  }

  /** Queues `trigger` for every subscription to it. */
  emit(trigger: Trigger, extra: { step?: NotificationEvent['step']; analysis?: AnalysisRunStatus } = {}): void {
    const subscribed = this.queues.filter((q) => q.sub.triggers.includes(trigger));
    if (subscribed.length === 0) return;
    const event = this.event(++this.sequence, trigger, extra);
    this.status.emitted++;
    for (const q of subscribed) {
      q.events.push(event);
      this.status.pending++;
      if (q.events.length > QUEUE_KEPT) {
        const dropped = q.events.splice(q.running ? 1 : 0, 1)[0] as NotificationEvent;
        this.undelivered(q, dropped, `more than ${QUEUE_KEPT} events waiting; dropped`);
      }
      if (!q.running) {
        q.running = true;
        void wf.CancellationScope.nonCancellable(() => this.pump(q));
      }
    }
  }

  /** Phase hooks (ReleaseState.setPhase): paused, completed, aborted. */
  phaseChanged(from: Phase, to: Phase): void {
    const s = this.r.status;
    if (to === 'Paused' || to === 'AwaitingApproval') {
      const at = `${s.attempt}:${s.step.index}:${to}`;
      if (from !== to || at !== this.lastPause) this.emit('on-rollout-paused');
      this.lastPause = at;
    } else if (from !== to && to === 'Promoted') this.emit('on-rollout-completed');
    else if (from !== to && (to === 'Aborted' || to === 'RolledBack' || to === 'Failed')) this.emit('on-rollout-aborted');
  }

  /** Step hook (ReleaseState.enterStep): entering a later step completes the one before it. */
  stepEntered(prev: { index: number; kind: string }, index: number): void {
    if (index <= prev.index || prev.kind === '') return;
    const step = { number: stepNumber(prev.index), total: this.r.status.step.total, kind: prev.kind };
    this.emit('on-rollout-step-completed', { step });
    if (prev.kind === 'setWeight' || prev.kind === 'setCanaryScale') this.emit('on-scaling-replica-set', { step });
  }

  /** Analysis hooks (release/analysis.ts): a run started, or ended Failed or Error. */
  analysisStarted(record: AnalysisRunStatus): void {
    this.emit('on-analysis-run-running', { analysis: record });
  }

  analysisEnded(record: AnalysisRunStatus): void {
    if (record.phase === 'Failed') this.emit('on-analysis-run-failed', { analysis: record });
    else if (record.phase === 'Error') this.emit('on-analysis-run-error', { analysis: record });
  }

  /** At the release's end: waits (bounded) for the queues; what is still waiting is recorded undelivered. */
  async drain(): Promise<void> {
    await wf.condition(() => this.status.pending === 0, DRAIN_MS);
    for (const q of this.queues) {
      for (const e of q.events.splice(q.running ? 1 : 0)) this.undelivered(q, e, 'the release ended before it was delivered');
    }
  }

  private async pump(q: Queue): Promise<void> {
    const ns = this.r.plan.namespace;
    while (q.events.length > 0) {
      const e = q.events[0] as NotificationEvent;
      try {
        await (q.degraded ? this.once : this.full).deliverNotification(ns, q.sub, e);
        this.status.delivered++;
        this.status.pending--;
        q.degraded = false;
      } catch (err) {
        q.degraded = true;
        this.undelivered(q, e, describeError(err));
      }
      q.events.shift();
    }
    q.running = false;
  }

  private undelivered(q: Queue, e: NotificationEvent, reason: string): void {
    const s = this.status;
    s.pending--;
    s.undelivered++;
    s.lastUndelivered.push({ subscription: q.sub.name, sequence: e.sequence, trigger: e.trigger, reason: reason.slice(0, 500), at: now() });
    if (s.lastUndelivered.length > UNDELIVERED_KEPT) s.lastUndelivered.splice(0, s.lastUndelivered.length - UNDELIVERED_KEPT);
    this.r.audit('glidepath', 'notification-undelivered', true, undefined, `${q.sub.name}: ${e.trigger} #${e.sequence}: ${reason}`.slice(0, 1000));
  }

  private event(sequence: number, trigger: Trigger, extra: { step?: NotificationEvent['step']; analysis?: AnalysisRunStatus }): NotificationEvent {
    const { status, plan } = this.r;
    const info = wf.workflowInfo();
    const a = extra.analysis;
    return {
      sequence,
      trigger,
      at: now(),
      release: { id: status.releaseId, runId: info.runId, namespace: plan.namespace, name: plan.name, workload: plan.workload.name, attempt: status.attempt },
      phase: status.phase,
      message: status.message.slice(0, 500),
      step: extra.step ?? { number: stepNumber(status.step.index), total: status.step.total, kind: status.step.kind },
      weight: status.canaryWeight,
      image: this.r.image,
      ...(status.stableImage ? { stableImage: status.stableImage } : {}),
      ...(a
        ? {
            analysis: {
              name: a.name,
              phase: a.phase,
              ...(a.message ? { message: a.message.slice(0, 500) } : {}),
              metrics: a.metrics.slice(0, 20).map((m) => {
                const last = m.measurements[m.measurements.length - 1];
                return { name: m.name, phase: m.phase, ...(last?.value !== undefined ? { value: JSON.stringify(last.value).slice(0, 100) } : {}) };
              }),
            },
          }
        : {}),
    };
  }
}

/** The release's notifier: undefined (and no patch marker) when the plan subscribes nobody. */
export function notifierFor(r: ReleaseState): Notifier | undefined {
  // Flagger's `event` webhooks hear every event, as JSON webhooks.
  const events = (r.plan.webhooks ?? []).filter((h) => h.type === 'event').map((h): NotificationSpec => ({ name: h.name, type: 'webhook', triggers: [...TRIGGERS], url: h.url, urlFrom: h.urlFrom }));
  const subs = [...(r.plan.notifications ?? []), ...events];
  if (subs.length === 0 || !releasePatched(NOTIFICATIONS_PATCH)) return undefined;
  return new Notifier(r, subs);
}
