/**
 * The canary runner: the steps in order (weights, routes, scale, pauses, analyses, approvals), a
 * background analysis beside them, then promotion. Stops by `halt` (from inside) or by the run
 * scope being cancelled (abort, background failure).
 */
import * as wf from '@temporalio/workflow';
import { formatDuration } from '../../model/duration.ts';
import type { CanaryStep, CanaryStrategy } from '../../model/types.ts';
import type { AnalysisRunStatus } from '../messages.ts';
import { analyze, gate } from './analysis.ts';
import { describeError, describeHeaderMatch, describeRouteMatch } from './describe.ts';
import { runExperiment } from './experiment.ts';
import { stepNumber, type ReleaseState } from './state.ts';
import { releasePatched } from './patch-epoch.ts';

/** The background analysis: started once its starting step is reached, measured until promotion. */
class Background {
  private running: Promise<void> | undefined;
  private hold: AnalysisRunStatus | undefined;
  private readonly scope = new wf.CancellationScope();

  private readonly r: ReleaseState;
  private readonly s: CanaryStrategy;

  constructor(r: ReleaseState, s: CanaryStrategy) {
    this.r = r;
    this.s = s;
  }

  start(): void {
    const r = this.r;
    if (!this.s.background || this.running) return;
    const run = this.s.background.analysis;
    this.running = this.scope
      .run(() => analyze(r, run, 'background', true))
      .then((record) => {
        if (record.phase === 'Failed' || record.phase === 'Error') {
          r.requestStop({ kind: 'rollback', by: 'glidepath', reason: `background analysis ${run.name} ${record.phase} at step ${stepNumber(r.status.step.index)}: ${record.message ?? ''}`.trim(), analysis: record });
        } else if (record.phase === 'Inconclusive') {
          this.hold = record; // paused for a human at the next step boundary, as Argo does
        }
      })
      .catch((err: unknown) => {
        if (wf.isCancellation(err)) return;
        r.requestStop({ kind: 'rollback', by: 'glidepath', reason: `background analysis ${run.name} could not run: ${describeError(err)}` });
      });
  }

  /**
   * Pauses for a human when the background run ended Inconclusive; once promoted past the hold, a
   * new run starts (`restart`), so the rest of the canary is measured too (Argo creates a new run).
   */
  async holdIfInconclusive(restart: boolean): Promise<void> {
    if (!this.hold) return;
    const held = this.hold;
    this.hold = undefined;
    await this.r.waitForPromote(`background analysis ${held.name} inconclusive: ${held.message ?? ''}; promote to continue or abort`);
    if (restart && this.r.v2) {
      this.running = undefined;
      this.start();
    }
  }

  /** Ends the run (before promotion) and waits for it to be recorded. */
  async finish(): Promise<void> {
    this.scope.cancel();
    await this.running;
  }
}

/** Runs one canary step. */
async function runStep(r: ReleaseState, i: number, step: CanaryStep): Promise<void> {
  const { rollout, target, status } = r;
  switch (step.kind) {
    case 'setWeight': {
      if (step.weight > status.canaryWeight) await r.gates?.confirm('confirm-traffic-increase');
      r.setPhase('Progressing', `step ${stepNumber(i)}: setting canary weight ${step.weight}%`);
      if (step.weight > 0) r.canaryServed = true;
      // After setCanaryScale with replicas or weight, the canary keeps its size until one with matchTrafficWeight (Argo).
      if (r.v2 && r.canaryScalePinned && target.trafficRouting) await rollout.routeWeight(target, step.weight);
      else await rollout.setWeight(target, step.weight);
      status.canaryWeight = step.weight;
      break;
    }
    case 'setHeaderRoute': {
      r.setPhase('Progressing', `step ${stepNumber(i)}: ${step.match.length ? 'setting' : 'removing'} header route ${step.name}`);
      if (step.match.length) r.canaryServed = true;
      await rollout.setHeaderRoute(target, { name: step.name, match: step.match });
      r.trackRoute(step.name, step.match.length ? { name: step.name, kind: 'header', match: describeHeaderMatch(step.match), step: i } : undefined);
      break;
    }
    case 'setMirrorRoute': {
      r.setPhase('Progressing', `step ${stepNumber(i)}: ${step.match.length ? 'setting' : 'removing'} mirror route ${step.name}`);
      if (step.match.length) r.canaryServed = true;
      await rollout.setMirrorRoute(target, { name: step.name, percentage: step.percentage, match: step.match });
      r.trackRoute(step.name, step.match.length ? { name: step.name, kind: 'mirror', match: `${step.percentage}% of ${describeRouteMatch(step.match)}`, step: i } : undefined);
      break;
    }
    case 'setCanaryScale': {
      r.setPhase('Progressing', `step ${stepNumber(i)}: scaling canary`);
      const scale = step.replicas !== undefined ? { replicas: step.replicas } : step.weight !== undefined ? { weight: step.weight } : { matchTrafficWeight: true as const };
      await rollout.setCanaryScale(target, scale, status.canaryWeight);
      r.canaryScalePinned = !('matchTrafficWeight' in scale);
      break;
    }
    case 'pause': {
      if (step.durationMs === 0) break;
      await r.waitForPromote(step.durationMs === undefined ? `step ${stepNumber(i)}: paused until promoted` : `step ${stepNumber(i)}: paused for ${formatDuration(step.durationMs)}`, step.durationMs);
      break;
    }
    case 'analysis':
      await gate(r, step.analysis, `step ${stepNumber(i)}`);
      break;
    case 'approval':
      await awaitApproval(r, i, step);
      break;
    case 'experiment':
      await runExperiment(r, i, step);
      break;
  }
}

/** An approval gate: enough distinct approvers, or the timeout's outcome. */
export async function awaitApproval(r: ReleaseState, i: number, step: Extract<CanaryStep, { kind: 'approval' }>): Promise<void> {
  const deadline = step.timeoutMs !== undefined ? new Date(Date.now() + step.timeoutMs).toISOString() : undefined;
  const eligible = step.approvers.filter((a) => a !== r.initiator);
  r.status.approvals = { step: i, approvers: step.approvers, ...(r.v2 ? { eligible } : {}), required: step.minApprovals, granted: [], ...(deadline ? { deadline } : {}), onTimeout: step.onTimeout };
  r.setPhase('AwaitingApproval', `step ${stepNumber(i)}: awaiting ${step.minApprovals} approval(s) from ${(r.v2 ? eligible : step.approvers).join(', ')}`);
  const enough = (): boolean => (r.status.approvals?.granted.length ?? 0) >= step.minApprovals;
  const approved = step.timeoutMs === undefined ? (await wf.condition(enough), true) : await wf.condition(enough, step.timeoutMs);
  r.status.approvals = undefined;
  if (!approved) {
    r.halt({ kind: step.onTimeout === 'abort' ? 'abort' : 'rollback', by: 'glidepath', reason: `approval of step ${stepNumber(i)} timed out after ${formatDuration(step.timeoutMs ?? 0)}` });
  }
  r.audit('glidepath', 'approved', true, undefined, `step ${stepNumber(i)}`);
}

export async function runCanary(r: ReleaseState, s: CanaryStrategy): Promise<void> {
  r.setPhase('Progressing', 'creating canary');
  await r.rollout.ensureCanary(r.target);

  const background = new Background(r, s);
  for (let i = 0; i < s.steps.length; i++) {
    const step = s.steps[i] as CanaryStep;
    if (s.background && i >= s.background.startingStep) background.start();
    await background.holdIfInconclusive(true);
    if (r.freeze?.mayHold(`step-${stepNumber(i)}`)) await r.freeze.hold(`step-${stepNumber(i)}`);
    r.enterStep(i, step.kind);
    if (r.promoteFull && step.kind !== 'approval') continue;
    await runStep(r, i, step);
    if (r.stop) r.halt(r.stop);
  }
  background.start(); // a startingStep equal to the step count still measures until promotion

  await background.finish();
  if (r.stop) r.halt(r.stop);
  await background.holdIfInconclusive(false);

  if (r.freeze?.mayHold('promotion')) await r.freeze.hold('promotion');
  await r.gates?.confirm('confirm-promotion');
  r.enterStep(s.steps.length, 'promote');
  const delay = r.v2 ? canaryDelays(s).scaleDown : 0;
  if (r.v2 && s.trafficRouting && releasePatched(PROMOTION_OFF_STABLE)) {
    await wf.CancellationScope.nonCancellable(() => promoteOffStable(r, delay));
  } else if (delay === 0) {
    r.setPhase('Promoting', 'promoting: stable takes the new image, then the canary goes');
    await wf.CancellationScope.nonCancellable(() => r.rollout.promoteCanary(r.target));
  } else {
    r.setPhase('Promoting', 'promoting: stable takes the new image, then the canary goes');
    // Traffic leaves the canary, the proxies converge during scaleDownDelaySeconds, then the canary goes (Argo).
    await wf.CancellationScope.nonCancellable(async () => {
      await r.rollout.promoteCanary(r.target, { keepCanary: true });
      r.status.canaryWeight = 0;
      if (r.status.managedRoutes) r.status.managedRoutes = [];
      r.setPhase('Promoting', `all traffic on the new stable; the canary is removed in ${formatDuration(delay * 1000)} (scaleDownDelaySeconds)`);
      await r.scaleDownDelay(delay);
      await r.rollout.removeCanary(r.target);
    });
  }
  r.status.canaryWeight = 0;
  if (r.status.managedRoutes) r.status.managedRoutes = [];
}

/**
 * Promotions with a traffic router that start under this patch (asked at promotion) remove no pod that carries
 * traffic: the canary at full size takes all traffic, and the stable's old pods are replaced only after
 * scaleDownDelaySeconds; traffic comes back to the new stable's pods, and the canary goes after the
 * delay again (docs/spec.md, Scale-down delays). Earlier promotions rolled the stable under its share of traffic.
 */
export const PROMOTION_OFF_STABLE = 'glidepath-promotion-off-stable';

/**
 * Promotion with a traffic router, no pod removed while traffic reaches it: (1) the canary scaled to the
 * stable's size and given weight 100 (verified); (2) scaleDownDelaySeconds, while the proxies stop sending
 * requests to the stable's pods; (3) the stable takes the new image, its Service is pinned to the new
 * pods, and traffic goes back to it (weight 0, managed routes removed); (4) scaleDownDelaySeconds again,
 * then the canary goes. Argo needs one delay (its canary becomes the stable); the stable Deployment here
 * is the user's own, so its old pods are replaced in place and need traffic off them first.
 */
async function promoteOffStable(r: ReleaseState, delay: number): Promise<void> {
  const { rollout, target, status } = r;
  r.promotingOffStable = true;
  r.setPhase('Promoting', 'promoting: the canary at full size takes all traffic');
  await rollout.setWeight(target, 100);
  status.canaryWeight = 100;
  r.setPhase('Promoting', `all traffic on the canary; the stable takes the new image in ${formatDuration(delay * 1000)} (scaleDownDelaySeconds)`);
  await r.scaleDownDelay(delay);
  r.setPhase('Promoting', 'the stable takes the new image while the canary carries all traffic');
  await rollout.promoteCanary(target, { keepCanary: true, pinStable: true });
  status.canaryWeight = 0;
  if (status.managedRoutes) status.managedRoutes = [];
  r.setPhase('Promoting', `all traffic on the new stable; the canary is removed in ${formatDuration(delay * 1000)} (scaleDownDelaySeconds)`);
  await r.scaleDownDelay(delay);
  await rollout.removeCanary(target);
}

/** Argo's canary delays (seconds) before canary pods go once traffic has left them: 30 with a traffic router, else none. */
export function canaryDelays(s: CanaryStrategy): { abort: number; scaleDown: number } {
  const routed = s.trafficRouting !== undefined;
  return { abort: s.abortScaleDownDelaySeconds ?? (routed ? 30 : 0), scaleDown: s.scaleDownDelaySeconds ?? (routed ? 30 : 0) };
}
