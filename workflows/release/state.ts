/**
 * The state one release workflow keeps: its status (what the query returns), the audit trail, the
 * search attributes and metrics that follow the phase, and the flags human actions set. Every room
 * of the workflow (message handlers, canary and blue/green runners, analysis gating) works on one
 * `ReleaseState`.
 */
import * as wf from '@temporalio/workflow';
import type { createActivities } from '../../activities/index.ts';
import type { ReleaseTarget } from '../../activities/contract.ts';
import { serviceKey, type BlueGreenStrategy, type Phase, type ReleasePlan } from '../../model/types.ts';
import { AUDIT_KEPT, IMAGE_ATTRIBUTE, PHASE_ATTRIBUTE, REJECTED_KEPT, RUNS_KEPT, type Action, type AnalysisRunStatus, type ManagedRouteStatus, type ReleaseStatus } from '../messages.ts';
import * as profiles from '../profiles.ts';
import type { ReleaseConfig } from './config.ts';
import type { FreezeGate } from './freeze.ts';
import type { Gates } from './gates.ts';
import { targetOf } from './target.ts';

export type Activities = ReturnType<typeof createActivities>;

/** What the release tells its notifier (release/notify.ts). */
export interface ReleaseEvents {
  phaseChanged(from: Phase, to: Phase): void;
  stepEntered(prev: { index: number; kind: string }, index: number): void;
  analysisStarted(record: AnalysisRunStatus): void;
  analysisEnded(record: AnalysisRunStatus): void;
}

/** Why the current attempt stopped early: set first, then the run scope is cancelled or unwound. */
export interface Stop {
  kind: 'abort' | 'rollback' | 'fail';
  by: string;
  reason: string;
  analysis?: AnalysisRunStatus | undefined;
}

/** Thrown inside the run scope once `stop` is set, to unwind it. */
export const UNWIND = 'GlidepathUnwind';

export function blueGreenStages(s: BlueGreenStrategy): string[] {
  return ['preview', ...(s.prePromotionAnalysis ? ['prePromotionAnalysis'] : []), 'promotion', 'switch', ...(s.postPromotionAnalysis ? ['postPromotionAnalysis'] : []), 'scaleDown'];
}

const stepsTotal = (plan: ReleasePlan): number => (plan.strategy.type === 'blueGreen' ? blueGreenStages(plan.strategy).length : plan.strategy.steps.length);

export const now = (): string => new Date().toISOString();

/**
 * The patch that marks releases started by this version of the workflow (validation recorded once,
 * cancellations awaited, scale-down delays, bound approvals, restarted background analysis…).
 * Releases started before it keep the earlier behaviour to their end; see docs/spec.md.
 */
export const RELEASE_V2 = 'glidepath-release-2';

/**
 * The patch that marks releases whose workflow ends the way Temporal shows status: Promoted
 * completes; RolledBack, Aborted and Failed fail with a non-retryable ApplicationFailure whose type
 * is the outcome, whose message is the reason and whose details hold the ReleaseResult. Releases
 * started before it complete with every outcome; see docs/spec.md.
 */
export const RELEASE_OUTCOME_FAILS = 'glidepath-release-outcome-fails';
/** Releases started with it accept one promote per pause: a second promote while the first is taking effect is refused, not merged into it. */
export const PROMOTE_ONCE_PATCH = 'glidepath-promote-once-per-pause';

/** A user-visible step number: 1-based, like the CLI's "step N of M" (`status.step.index` stays 0-based). */
export const stepNumber = (index: number): number => index + 1;

export class ReleaseState {
  readonly status: ReleaseStatus;
  /** Set once the current attempt must stop; see `requestStop` and `halt`. */
  stop: Stop | undefined;
  runScope: wf.CancellationScope | undefined;
  promoteRequested = false;
  promoteFull = false;
  retryRequested = false;
  closeRequested = false;
  /** Blue/green: the active service points at the new version (cleanup switches it back). */
  switched = false;
  /** Started with RELEASE_V2 (decided once, at the start). */
  v2 = false;
  /** Started with PROMOTE_ONCE_PATCH (decided once, at the start, so update validators can read it). */
  promoteOncePerPause = false;
  /** The gating analysis running now; promote --full cancels it. */
  gateScope: wf.CancellationScope | undefined;
  /** abort --immediate: skip the scale-down delay before pods are removed. */
  skipDelay = false;
  /** A setCanaryScale with replicas or weight holds the canary's size until one with matchTrafficWeight (Argo). */
  canaryScalePinned = false;
  /** Some traffic (weight or route) has reached the canary in this attempt. */
  canaryServed = false;
  /** The promotion sends all traffic to the canary while the stable rolls (PROMOTION_OFF_STABLE): a failure in it puts stable back before the canary goes. */
  promotingOffStable = false;
  /** An experiment step started workloads that are not yet verified gone (release/experiment.ts). */
  experimentStarted = false;
  /** An experiment step's templates have a share of the router's traffic that is not yet taken back (release/experiment.ts). */
  experimentRouted = false;
  /** Told of phase changes and steps entered when the plan has notification subscriptions (release/notify.ts). */
  notifier: ReleaseEvents | undefined;
  /** Webhook gates when the plan has them (release/gates.ts). */
  gates: Gates | undefined;
  /** Freeze windows, for releases started with FREEZE_PATCH (release/freeze.ts). */
  freeze: FreezeGate | undefined;
  /** spec.config's copies, for plans with config started with CONFIG_PATCH (release/config.ts). */
  config: ReleaseConfig | undefined;

  /** Set by `prepare` once the plan is valid. */
  target!: ReleaseTarget;
  quick!: Activities;
  rollout!: Activities;
  cleanup!: Activities;
  builds!: Activities;
  /** The image every activity runs: the plan's, or once built (or verified), its pinned `repo@sha256:` reference. */
  image = '';
  imageReady = false;

  private lastAttributes = { phase: '', image: '' };
  private readonly stepTransitions = wf.metricMeter.createCounter('glidepath_step_transitions', 'transitions', 'Release step transitions, by step kind');
  private readonly phaseChanges = wf.metricMeter.createCounter('glidepath_release_phase_changes', 'transitions', 'Release phase changes, by phase entered');
  readonly verdicts = wf.metricMeter.createCounter('glidepath_analysis_verdicts', 'verdicts', 'Analysis run verdicts, by phase');

  readonly plan: ReleasePlan;
  readonly initiator: string;

  constructor(plan: ReleasePlan, initiator: string, releaseId: string) {
    this.plan = plan;
    this.initiator = initiator;
    this.status = {
      releaseId,
      service: plan && plan.namespace && plan.name ? serviceKey(plan) : '',
      phase: 'Progressing',
      strategy: plan?.strategy?.type === 'blueGreen' || plan?.strategy?.type === 'rolling' ? plan.strategy.type : 'canary',
      step: { index: 0, total: 0, kind: '' },
      canaryWeight: 0,
      canaryImage: plan?.image ?? '',
      analysisRuns: [],
      audit: [],
      message: 'starting',
      initiator,
      attempt: 1,
      startedAt: now(),
    };
  }

  /** Once the plan is valid: the target every activity receives, and the activity proxies. */
  prepare(v2: boolean): void {
    const plan = this.plan;
    this.v2 = v2;
    this.status.step.total = stepsTotal(plan);
    this.image = plan.image;
    this.imageReady = !plan.build && !plan.imagePolicy?.requireDigest;
    // A cancelled activity is awaited until it has stopped, so nothing it does lands after cleanup.
    const cancel = this.cancellation();
    this.quick = wf.proxyActivities<Activities>({ ...profiles.quick, ...cancel });
    this.rollout = wf.proxyActivities<Activities>({ ...profiles.rollout(plan.progressDeadlineSeconds), ...cancel });
    this.cleanup = wf.proxyActivities<Activities>(profiles.cleanup);
    this.builds = wf.proxyActivities<Activities>({ ...profiles.build, ...cancel });
    this.target = targetOf(plan, this.status.releaseId, wf.workflowInfo().runId);
  }

  /** Activity options for proxies whose calls an abort cancels. */
  cancellation(): { cancellationType?: wf.ActivityCancellationType } {
    return this.v2 ? { cancellationType: wf.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED } : {};
  }

  /** A durable delay before pods are removed; abort --immediate ends it early. */
  async scaleDownDelay(seconds: number): Promise<void> {
    if (seconds <= 0 || this.skipDelay) return;
    await wf.condition(() => this.skipDelay, seconds * 1000);
  }

  audit(by: string, action: string, accepted: boolean, reason?: string, detail?: string): void {
    const audit = this.status.audit;
    audit.push({ at: now(), by, action, accepted, ...(reason ? { reason } : {}), ...(detail ? { detail } : {}) });
    if (audit.length > AUDIT_KEPT) {
      audit.splice(0, audit.length - AUDIT_KEPT);
      this.status.auditDropped = (this.status.auditDropped ?? 0) + 1;
    }
  }

  /** An ignored signal: counted and the last few kept, apart from the audit trail so that no flood can push it out. */
  rejectSignal(action: Action, by: string, reason: string | undefined, why: string, how = 'ignored'): void {
    const r = (this.status.rejectedSignals ??= { total: 0, byAction: {}, last: [] });
    r.total++;
    r.byAction[action] = (r.byAction[action] ?? 0) + 1;
    r.last.push({ at: now(), by: by.slice(0, 256), action, accepted: false, ...(reason ? { reason: reason.slice(0, 1024) } : {}), detail: `${how}: ${why.slice(0, 1024)}` });
    if (r.last.length > REJECTED_KEPT) r.last.splice(0, r.last.length - REJECTED_KEPT);
  }

  /** Adds an analysis run to the status, dropping the oldest finished ones past RUNS_KEPT. */
  addRun(run: AnalysisRunStatus): void {
    const runs = this.status.analysisRuns;
    runs.push(run);
    while (runs.length > RUNS_KEPT) {
      const i = runs.findIndex((x) => x.phase !== 'Running' && x.phase !== 'Pending');
      if (i < 0) break;
      runs.splice(i, 1);
      this.status.analysisRunsDropped = (this.status.analysisRunsDropped ?? 0) + 1;
    }
  }

  syncAttributes(): void {
    const { phase, canaryImage } = this.status;
    if (this.lastAttributes.phase === phase && this.lastAttributes.image === canaryImage) return;
    this.lastAttributes = { phase, image: canaryImage };
    wf.upsertSearchAttributes([
      { key: PHASE_ATTRIBUTE, value: phase },
      { key: IMAGE_ATTRIBUTE, value: canaryImage },
    ]);
  }

  setPhase(phase: Phase, message: string): void {
    const from = this.status.phase;
    if (phase !== from) this.phaseChanges.add(1, { phase });
    this.status.phase = phase;
    this.status.message = message;
    this.syncAttributes();
    this.showDetails();
    this.notifier?.phaseChanged(from, phase);
  }

  /** The Temporal UI's current details: one short line of phase, step and message (not history). */
  showDetails(): void {
    const { phase, step, message } = this.status;
    const at = step.total > 0 && step.index < step.total ? ` · step ${stepNumber(step.index)} of ${step.total} ${step.kind}` : '';
    wf.setCurrentDetails(`${phase}${at} · ${message}`.slice(0, 300));
  }

  enterStep(index: number, kind: string): void {
    const prev = this.status.step;
    this.status.step = { index, total: this.status.step.total, kind };
    this.stepTransitions.add(1, { kind });
    this.showDetails();
    this.notifier?.stepEntered(prev, index);
  }

  /** Pins the image every later activity runs (a built or verified digest reference). */
  pin(pinned: string): void {
    this.image = pinned;
    this.target.image = pinned;
    this.status.canaryImage = pinned;
    this.syncAttributes();
  }

  /** Records a header or mirror route in the status (undefined: the route was removed). */
  trackRoute(name: string, route: ManagedRouteStatus | undefined): void {
    const kept = (this.status.managedRoutes ?? []).filter((r) => r.name !== name);
    this.status.managedRoutes = route ? [...kept, route] : kept;
    this.audit('glidepath', route ? 'route-set' : 'route-removed', true, undefined, route ? `${route.kind} route ${name}: ${route.match}` : `route ${name}`);
  }

  /** Stops the attempt from outside its flow (a handler, a background run): cancels the run scope. */
  requestStop(s: Stop): void {
    this.stop ??= s;
    this.runScope?.cancel();
  }

  /** Stops the attempt from inside its flow; the attempt turns it into an abort or a rollback. */
  halt(s: Stop): never {
    this.stop ??= s;
    throw wf.ApplicationFailure.nonRetryable(s.reason, UNWIND);
  }

  /** Waits for a human promote (or abort, which cancels the scope). */
  async waitForPromote(message: string, timeoutMs?: number): Promise<boolean> {
    this.promoteRequested = false;
    this.setPhase('Paused', message);
    if (timeoutMs === undefined) {
      await wf.condition(() => this.promoteRequested || this.promoteFull);
      return true;
    }
    return wf.condition(() => this.promoteRequested || this.promoteFull, timeoutMs);
  }
}
