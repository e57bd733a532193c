/**
 * Notifications of a release group (`spec.notifications` of the ReleaseGroup): the group's own
 * events under Argo's trigger names (model/notifications.ts GROUP_TRIGGERS), delivered by the same
 * queues, retries and activity as a release's (workflows/release/notify.ts). The event's `release`
 * is the group (its workflow ID, namespace and name), `step` the wave, `weight` the share of
 * (member, cluster) cells promoted. Members' releases notify by their own specs.
 *
 * Only groups with subscriptions call anything here (behind GROUP_NOTIFICATIONS_PATCH).
 */
import * as wf from '@temporalio/workflow';
import type { Trigger } from '../../model/notifications.ts';
import { Notifier, type NotifierHost } from '../release/notify.ts';
import type { GroupPhase } from './messages.ts';
import type { GroupState } from './state.ts';

/** Marks groups that emit notifications. */
export const GROUP_NOTIFICATIONS_PATCH = 'glidepath-group-notifications';

export class GroupNotifier {
  private readonly notifier: Notifier;
  private readonly g: GroupState;
  /** 1, then +1 per retry of the group (an object: the host's getter reads it). */
  private readonly attempt = { n: 1 };

  constructor(g: GroupState) {
    this.g = g;
    const attempt = this.attempt;
    const host: NotifierHost = {
      status: {
        get releaseId() {
          return g.status.groupId;
        },
        get message() {
          return g.status.message;
        },
        get phase() {
          return g.status.phase;
        },
        get attempt() {
          return attempt.n;
        },
        get step() {
          return { index: g.status.wave, total: g.group.waves.length, kind: 'wave' };
        },
        get canaryWeight() {
          const cells = g.status.cells;
          return cells.length === 0 ? 0 : Math.round((100 * cells.filter((c) => c.phase === 'Promoted').length) / cells.length);
        },
        get notifications() {
          return g.status.notifications;
        },
        set notifications(v) {
          g.status.notifications = v;
        },
      },
      plan: { namespace: g.group.namespace, name: g.group.name, workload: { name: g.group.name } },
      image: '',
      audit: (...args) => g.audit(...args),
    };
    this.notifier = new Notifier(host, g.group.notifications ?? []);
  }

  emit(trigger: Trigger, extra: Parameters<Notifier['emit']>[1] = {}): void {
    this.notifier.emit(trigger, extra);
  }

  /** The group started (again, after a retry). */
  started(retry: boolean): void {
    if (retry) this.attempt.n++;
    this.emit('on-rollout-updated');
  }

  /** A wave and its gate completed. */
  waveCompleted(index: number): void {
    const wave = this.g.group.waves[index];
    this.emit('on-rollout-step-completed', { step: { number: index + 1, total: this.g.group.waves.length, kind: `wave ${wave?.name ?? index + 1}` } });
  }

  /** Phase hook (GroupState.setPhase): paused for a retry, or ended. */
  phaseChanged(from: GroupPhase, to: GroupPhase): void {
    if (from === to) return;
    if (to === 'Paused') this.emit('on-rollout-paused');
    else if (to === 'Promoted') this.emit('on-rollout-completed');
    else if (to === 'Aborted' || to === 'RolledBack' || to === 'Failed') this.emit('on-rollout-aborted');
  }

  drain(): Promise<void> {
    return this.notifier.drain();
  }
}

/** The group's notifier: undefined (and no patch marker) when the group subscribes nobody. */
export function groupNotifierFor(g: GroupState): GroupNotifier | undefined {
  if (!g.group.notifications?.length || !wf.patched(GROUP_NOTIFICATIONS_PATCH)) return undefined;
  return new GroupNotifier(g);
}
