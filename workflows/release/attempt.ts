/**
 * One attempt of a release: build or verify the image, preflight, run the strategy inside a
 * cancellable scope, then record the promotion, or put stable back (abort, rollback) in a
 * non-cancellable scope.
 */
import * as wf from '@temporalio/workflow';
import { formatDuration } from '../../model/duration.ts';
import type { Outcome, ReleaseResult } from '../messages.ts';
import { runBlueGreen } from './blue-green.ts';
import { canaryDelays, runCanary } from './canary.ts';
import { describeError } from './describe.ts';
import { removeWorkloads } from './experiment.ts';
import { runRolling } from './rolling.ts';
import { stepNumber, type ReleaseState, type Stop } from './state.ts';

/** Build or verify the image, once per release (a retry keeps the pinned reference). */
async function readyImage(r: ReleaseState): Promise<void> {
  const plan = r.plan;
  // Only plans with build or imagePolicy add these commands: recorded histories replay unchanged.
  if (!r.imageReady && plan.build) {
    r.setPhase('Progressing', `building ${plan.build.tags.join(', ')}`);
    const built = await r.builds.buildImage(r.target, plan.build);
    r.audit('glidepath', 'build', true, undefined, `${built.skipped ? 'already pushed' : 'built and pushed'}: ${built.image}`);
    r.pin(built.image);
    r.imageReady = true;
  } else if (!r.imageReady) {
    r.setPhase('Progressing', `verifying ${plan.image}`);
    r.pin((await r.quick.verifyImage(r.target, plan.image)).image);
    r.imageReady = true;
  }
}

/** Objects someone else changed during the release: left as they are, in the audit (and the message). */
function recordDrift(r: ReleaseState, report: { drift: string[] } | void): void {
  for (const d of report?.drift ?? []) r.audit('glidepath', 'drift', true, undefined, d);
}

/** Puts stable back after an abort or rollback; returns the failure to report, if it failed. */
async function putStableBack(r: ReleaseState): Promise<string | undefined> {
  const { cleanup, target, status } = r;
  const strategy = r.plan.strategy;
  try {
    await wf.CancellationScope.nonCancellable(async () => {
      if (strategy.type === 'canary') {
        // A promotion may have left the stable half-updated: then abortCanary itself puts the stable
        // back and waits for it before traffic leaves the serving canary, so no early routeToStable.
        const promoting = status.step.kind === 'promote';
        const delay = r.v2 && r.canaryServed && !promoting ? canaryDelays(strategy).abort : 0;
        if (promoting && r.promotingOffStable) {
          // The canary may carry all traffic and the stable be half-rolled: the stable back and ready
          // while the canary serves, traffic to it, then abortScaleDownDelaySeconds before the canary goes.
          await cleanup.abortCanary(target, status.stableImage, { keepCanary: true });
          status.canaryWeight = 0;
          if (status.managedRoutes) status.managedRoutes = [];
          r.setPhase(status.phase, `${status.message}; all traffic on stable, canary pods go in ${formatDuration(canaryDelays(strategy).abort * 1000)} (abort --immediate: now)`);
          await r.scaleDownDelay(canaryDelays(strategy).abort);
        } else if (delay > 0 && !r.skipDelay) {
          // Traffic to stable first; the canary pods stay while the proxies converge (abortScaleDownDelaySeconds).
          await cleanup.routeToStable(target);
          status.canaryWeight = 0;
          if (status.managedRoutes) status.managedRoutes = [];
          r.setPhase(status.phase, `${status.message}; all traffic on stable, canary pods go in ${formatDuration(delay * 1000)} (abort --immediate: now)`);
          await r.scaleDownDelay(delay);
        }
        if (r.experimentStarted) await removeWorkloads(r, `step ${stepNumber(status.step.index)}`); // its own removal failed
        recordDrift(r, await cleanup.abortCanary(target, status.stableImage));
        if (status.managedRoutes) status.managedRoutes = [];
      } else if (strategy.type === 'rolling') {
        // The old template back; the controller rolls the updated pods back (no traffic to move first).
        recordDrift(r, await cleanup.abortRolling(target, status.stableImage));
      } else {
        if (r.switched) {
          await cleanup.switchActive(target, 'stable');
          const delay = r.v2 ? (strategy.abortScaleDownDelaySeconds ?? 30) : 0;
          if (delay > 0 && !r.skipDelay) {
            status.canaryWeight = 0;
            r.setPhase(status.phase, `${status.message}; active service back on stable, preview pods go in ${formatDuration(delay * 1000)} (abort --immediate: now)`);
            await r.scaleDownDelay(delay);
          }
        }
        recordDrift(r, await cleanup.abortBlueGreen(target, status.stableImage));
      }
    });
    status.canaryWeight = 0;
    return undefined;
  } catch (err) {
    return describeError(err);
  }
}

export async function attempt(r: ReleaseState): Promise<ReleaseResult> {
  const { status, plan } = r;
  r.stop = undefined;
  r.switched = false;
  r.skipDelay = false;
  r.canaryScalePinned = false;
  r.canaryServed = false;
  r.promotingOffStable = false;
  r.promoteRequested = false;
  r.promoteFull = false;
  status.canaryWeight = 0;
  status.approvals = undefined;
  status.result = undefined;
  let touched = false;
  r.runScope = new wf.CancellationScope();
  try {
    await r.runScope.run(async () => {
      if (r.freeze?.mayHold('start')) await r.freeze.hold('start');
      await readyImage(r);
      await r.gates?.confirm('confirm-rollout');
      r.setPhase('Progressing', 'preflight checks');
      const pre = await r.quick.preflight(r.target);
      await r.config?.prepare(); // before the stable image is shown: `start` waits for that, so a bad reference reaches it
      status.stableImage = pre.stableImage;
      for (const w of pre.warnings) r.audit('glidepath', 'preflight-warning', true, undefined, w);
      if (r.stop) r.halt(r.stop);
      await r.gates?.preRollout();
      touched = true;
      const stopRollbackHooks = r.gates?.watchRollback();
      try {
        if (plan.strategy.type === 'canary') await runCanary(r, plan.strategy);
        else if (plan.strategy.type === 'rolling') await runRolling(r, plan.strategy);
        else await runBlueGreen(r, plan.strategy);
      } finally {
        await stopRollbackHooks?.();
      }
    });
  } catch (err) {
    // An activity failed for good (non-retryable, or out of time): name it.
    r.stop ??= { kind: touched ? 'rollback' : 'fail', by: 'glidepath', reason: describeError(err) };
  }

  if (r.stop === undefined) {
    r.setPhase('Promoted', `promoted ${r.image}`);
    status.stableImage = r.image;
    r.audit('glidepath', 'promoted', true, undefined, r.image);
    return { outcome: 'Promoted', reason: `promoted ${r.image}`, image: r.image, stableImage: r.image, attempts: status.attempt };
  }

  const s: Stop = r.stop;
  status.approvals = undefined; // an approval interrupted by abort or rollback is no longer pending
  let outcome: Outcome = s.kind === 'abort' ? 'Aborted' : s.kind === 'rollback' ? 'RolledBack' : 'Failed';
  let reason = s.reason;
  if (touched) {
    r.setPhase(s.kind === 'abort' ? 'Aborting' : 'RollingBack', `${s.kind === 'abort' ? 'aborting' : 'rolling back'}: ${s.reason}`);
    const failed = await putStableBack(r);
    if (failed !== undefined) {
      outcome = 'Failed';
      reason = `${s.reason}; then putting stable back failed: ${failed}`;
    }
  }
  r.setPhase(outcome, reason);
  r.audit(s.by, outcome === 'Failed' ? 'failed' : outcome === 'Aborted' ? 'aborted' : 'rolled-back', true, undefined, reason);
  return { outcome, reason, image: r.image, stableImage: status.stableImage, attempts: status.attempt, ...(s.analysis ? { analysis: s.analysis } : {}) };
}
