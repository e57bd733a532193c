/**
 * Freeze windows (model/freeze.ts) in the release: at start the release's and the worker's windows
 * are resolved by a local activity (recorded) into absolute intervals; at each point a window can
 * hold (start, step-N, promotion) the release compares them with workflow time and, inside one,
 * sleeps on a durable timer until the window ends ("frozen until …" in status), unless a permitted
 * person overrides that occurrence (`override-freeze`, proven like any other action, audited).
 *
 * Releases started before FREEZE_PATCH issue no freeze commands.
 */
import * as wf from '@temporalio/workflow';
import type { createFreezeActivities } from '../../activities/freeze.ts';
import { freezeAt, intervalKey, type FreezeInterval, type ResolvedFreeze } from '../../model/freeze.ts';
import type { ReleaseState } from './state.ts';

type FreezeActivities = ReturnType<typeof createFreezeActivities>;

/** Marks releases that read freeze windows at start and hold at them. */
export const FREEZE_PATCH = 'glidepath-freeze-windows';
/** Overridden occurrences remembered (each lifts one occurrence of one window). */
export const OVERRIDES_KEPT = 50;

const freezeActivities = wf.proxyLocalActivities<FreezeActivities>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 3 } });

const describePoint = (point: string): string => (point === 'start' ? 'the start' : point === 'promotion' ? 'promotion' : point.replace('step-', 'step '));

export class FreezeGate {
  private readonly r: ReleaseState;
  private resolved: ResolvedFreeze;
  /** Keys of overridden occurrences (bounded). */
  private readonly overridden: string[] = [];
  /** The occurrence holding the release now. */
  private holding: FreezeInterval | undefined;

  constructor(r: ReleaseState, resolved: ResolvedFreeze) {
    this.r = r;
    this.resolved = resolved;
  }

  private async refresh(nowMs: number): Promise<void> {
    if (nowMs < this.resolved.untilMs) return;
    const { plan } = this.r;
    this.resolved = await freezeActivities.freezeWindows(plan.freeze ?? null, { namespace: plan.namespace, workload: plan.workload.name }, nowMs);
  }

  /** Whether a window could hold `point` from now on (checked without an await, so releases without windows run as before). */
  mayHold(point: string): boolean {
    const nowMs = Date.now();
    return nowMs >= this.resolved.untilMs || this.resolved.intervals.some((i) => i.before === point && i.endMs > nowMs);
  }

  /** Waits while a window holds `point` (start, step-N, promotion); returns at once when none does. */
  async hold(point: string): Promise<void> {
    const { r } = this;
    const before = { phase: r.status.phase, message: r.status.message };
    let held = false;
    try {
      for (;;) {
        const nowMs = Date.now();
        await this.refresh(nowMs);
        const i = freezeAt(this.resolved.intervals, point, nowMs, (x) => this.overridden.includes(intervalKey(x)));
        if (!i) break;
        held = true;
        this.holding = i;
        const until = new Date(i.endMs).toISOString();
        r.status.freeze = { window: i.window, before: point, until, overriders: i.overriders };
        r.audit('glidepath', 'freeze', true, undefined, `freeze window ${i.window} holds ${describePoint(point)} until ${until}`);
        r.setPhase('Paused', `frozen until ${until}: freeze window ${i.window} holds ${describePoint(point)}${i.overriders.length ? ` (override-freeze: ${i.overriders.join(', ')})` : ''}`);
        const lifted = await wf.condition(() => this.overridden.includes(intervalKey(i)), Math.max(1, i.endMs - nowMs));
        if (!lifted) r.audit('glidepath', 'freeze-ended', true, undefined, `freeze window ${i.window} ended at ${until}`);
      }
    } finally {
      // An abort during the wait cancels it: the status no longer shows a freeze either way.
      this.holding = undefined;
      r.status.freeze = undefined;
    }
    if (!held) return;
    r.setPhase(before.phase === 'Paused' ? 'Progressing' : before.phase, `freeze over: continuing to ${describePoint(point)}`);
  }

  /** An allowed override (actions.ts checked who): lifts the occurrence holding the release now. */
  override(by: string, reason: string | undefined): void {
    const i = this.holding;
    if (!i) return;
    this.overridden.push(intervalKey(i));
    if (this.overridden.length > OVERRIDES_KEPT) this.overridden.splice(0, this.overridden.length - OVERRIDES_KEPT);
    this.r.audit(by, 'freeze-overridden', true, reason, `freeze window ${i.window} (until ${new Date(i.endMs).toISOString()}) lifted for this release`);
  }
}

/** The release's freeze gate, for releases started with FREEZE_PATCH (asked by the caller): the windows resolved at start, recorded. */
export async function freezeFor(r: ReleaseState): Promise<FreezeGate> {
  const { plan } = r;
  const resolved = await freezeActivities.freezeWindows(plan.freeze ?? null, { namespace: plan.namespace, workload: plan.workload.name }, Date.now());
  return new FreezeGate(r, resolved);
}
