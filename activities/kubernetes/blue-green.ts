/**
 * The blue/green operations: the preview Deployment, the active Service switched between the
 * stable and the preview (the preview re-sized to the stable's live desired count at the switch),
 * finalize (stable takes the new image, then the preview goes) and abort (the healthy side keeps
 * serving until the stable is ready).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ReleaseTarget } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import type { Capacity } from './capacity.ts';
import { canServe } from './canary.ts';
import { CleanupParts, type CleanupReport } from './cleanup.ts';
import { desiredReplicas, stableReplicas, type Deployments } from './deployments.ts';
import { roleName } from './objects.ts';
import { rolloutState } from './rollout.ts';
import { stableMatchLabels, type Services } from './services.ts';

export function createBlueGreenOps(d: Deployments, svc: Services, cap: Capacity) {
  const requireActive = (target: ReleaseTarget): string => {
    if (!target.activeService) throw ApplicationFailure.nonRetryable(`blue/green release of ${target.namespace}/${target.workload.name} has no activeService`, ErrorType.InvalidSpec);
    return target.activeService;
  };

  /** Whether the active Service sends traffic to the preview now. */
  const activeOnPreview = async (target: ReleaseTarget): Promise<boolean> => {
    const preview = await d.findRole(target, 'preview');
    return svc.pointsAt(target, target.activeService, preview?.spec?.selector?.matchLabels);
  };

  /** The active Service on the stable pods only: pinned while a preview exists (its pods carry the stable's labels), else its own selector. */
  const activeToStable = async (target: ReleaseTarget): Promise<void> => {
    const stable = await d.findStable(target);
    if (await d.findRole(target, 'preview')) await svc.keepOnStable(target, target.activeService, 'activeService', stable, 'preview');
    else await svc.restoreService(target, target.activeService, stableMatchLabels(stable));
  };

  /**
   * Before traffic leaves a serving preview, the stable must be ready: a stable that a failed
   * finalize left half-updated is put back (only what this release wrote) and waited for.
   */
  const readyStableBeforeLeavingPreview = async (target: ReleaseTarget, stableImage: string | undefined): Promise<string[]> => {
    const stable = await d.findStable(target);
    if (!stable || rolloutState(stable).done) return [];
    if (!canServe(await d.findRole(target, 'preview')) || !(await activeOnPreview(target))) return [];
    const drift = await d.restoreStable(target, stableImage);
    await d.waitRolledOut(target, target.workload.name);
    return drift;
  };

  return {
    async deployPreview(target: ReleaseTarget, replicas: number | undefined): Promise<void> {
      const stable = await d.getStable(target);
      const floor = await cap.holdFloor(target, stable);
      const n = replicas ?? desiredReplicas(target, stable, Math.max(stableReplicas(stable), floor ?? 0));
      if (!Number.isInteger(n) || n < 0) throw ApplicationFailure.nonRetryable(`preview replicas must be a whole number ≥ 0, got ${n}`, ErrorType.InvalidSpec);
      await svc.keepOnStable(target, target.activeService, 'activeService', stable, 'preview'); // before any preview pod exists
      const preview = await d.applyRole(target, stable, 'preview', n);
      await cap.ensureRolePdb(target, stable, 'preview', preview);
      await d.waitRolledOut(target, roleName(target.workload.name, 'preview'));
      if (target.previewService) await svc.pointService(target, target.previewService, 'previewService', preview.spec?.selector?.matchLabels ?? {});
    },

    /**
     * To the preview: re-sized first to the release's desired count, else the stable's live desired count (a user or an HPA may have
     * scaled the stable since the preview came up), and only once it is ready (retryable until then).
     * To the stable: once the stable is ready, when the preview serves now.
     */
    async switchActive(target: ReleaseTarget, to: 'preview' | 'stable'): Promise<void> {
      const active = requireActive(target);
      if (to === 'stable') {
        await readyStableBeforeLeavingPreview(target, undefined);
        await activeToStable({ ...target, activeService: active });
        return;
      }
      const stable = await d.getStable(target);
      const previewName = roleName(target.workload.name, 'preview');
      let preview = await d.findRole(target, 'preview');
      if (!preview) throw ApplicationFailure.nonRetryable(`Deployment ${target.namespace}/${previewName} not found: deployPreview must run before switching to it`, ErrorType.NotFound);
      const desired = target.replicas ?? (await cap.liveDesired(target, stable));
      if ((preview.spec?.replicas ?? 0) < desired) {
        preview = await d.applyRole(target, stable, 'preview', desired);
        await cap.ensureRolePdb(target, stable, 'preview', preview);
      }
      const state = rolloutState(preview);
      if (!state.done) throw new Error(`preview not ready (sized for ${desired} replicas), not switching traffic to it: ${state.message}`); // retried
      await svc.pointService(target, active, 'activeService', preview.spec?.selector?.matchLabels ?? {});
    },

    /** After the scale-down delay: the stable takes the new image and is ready while the preview serves; then the preview goes. */
    async finalizeBlueGreen(target: ReleaseTarget): Promise<void> {
      let stable;
      try {
        stable = await d.rollStableForward(target);
      } catch (err) {
        if (err instanceof ApplicationFailure && err.type === ErrorType.ProgressDeadlineExceeded) {
          throw ApplicationFailure.nonRetryable(`${err.message}; the active Service stays on the preview, which keeps serving`, ErrorType.ProgressDeadlineExceeded);
        }
        throw err;
      }
      await svc.keepOnStable(target, target.activeService, 'activeService', stable, 'preview');
      await d.deleteRole(target, 'preview');
      await cap.removeRolePdb(target, 'preview');
      await svc.restoreService(target, target.activeService, stableMatchLabels(stable));
      await svc.restoreService(target, target.previewService, stableMatchLabels(stable));
      await cap.releaseFloor(target);
    },

    /** Traffic back on a ready stable, the preview gone, Services and the stable put back; every part runs, failures come out together. */
    async abortBlueGreen(target: ReleaseTarget, stableImage: string | undefined): Promise<CleanupReport> {
      const parts = new CleanupParts();
      const what = `abort of ${target.namespace}/${target.workload.name}`;
      if (!(await parts.run('stable ready before traffic leaves the preview', () => readyStableBeforeLeavingPreview(target, stableImage)))) {
        parts.skip('preview removed', 'the stable is not ready and the preview serves');
        return parts.finish(what);
      }
      const stable = await d.findStable(target);
      const routed = await parts.run('active Service to stable', () => activeToStable(target));
      if (routed) {
        const removed = await parts.run('preview removed', async () => {
          await d.deleteRole(target, 'preview');
          await cap.removeRolePdb(target, 'preview');
        });
        // The active Service's own selector may be broad enough to reach preview pods: only once they are gone.
        if (removed) await parts.run('active Service restored', () => svc.restoreService(target, target.activeService, stableMatchLabels(stable)));
      } else {
        parts.skip('preview removed', 'the active Service may still send traffic to it');
      }
      await parts.run('preview Service restored', () => svc.restoreService(target, target.previewService, stableMatchLabels(stable)));
      await parts.run('stable Deployment put back', () => d.restoreStable(target, stableImage));
      await parts.run('HorizontalPodAutoscaler floor released', () => cap.releaseFloor(target));
      return parts.finish(what);
    },
  };
}
