/** The blue/green runner: preview, optional pre-promotion analysis, promotion, switch, post-promotion analysis, scale-down. */
import * as wf from '@temporalio/workflow';
import { formatDuration } from '../../model/duration.ts';
import type { BlueGreenStrategy } from '../../model/types.ts';
import { gate } from './analysis.ts';
import { blueGreenStages, type ReleaseState } from './state.ts';

export async function runBlueGreen(r: ReleaseState, s: BlueGreenStrategy): Promise<void> {
  const { rollout, quick, target, status } = r;
  const stages = blueGreenStages(s);
  const at = (name: string): number => stages.indexOf(name);

  r.enterStep(at('preview'), 'preview');
  r.setPhase('Progressing', 'bringing up the preview');
  await rollout.deployPreview(target, s.previewReplicaCount);
  const previewReadyAt = Date.now(); // Argo counts autoPromotionSeconds from here (its pause starts when the preview is ready)

  if (s.prePromotionAnalysis) {
    r.enterStep(at('prePromotionAnalysis'), 'prePromotionAnalysis');
    await gate(r, s.prePromotionAnalysis, 'prePromotion');
  }

  r.enterStep(at('promotion'), 'promotion');
  if (!r.promoteFull) {
    if (!s.autoPromotionEnabled) await r.waitForPromote('preview ready: awaiting promote');
    else if (s.autoPromotionSeconds !== undefined && s.autoPromotionSeconds > 0) {
      const left = r.v2 ? s.autoPromotionSeconds * 1000 - (Date.now() - previewReadyAt) : s.autoPromotionSeconds * 1000;
      if (left > 0) await r.waitForPromote(`preview ready: auto-promotion in ${formatDuration(left)} unless promoted sooner`, left);
    }
  }

  if (r.freeze?.mayHold('promotion')) await r.freeze.hold('promotion');
  await r.gates?.confirm('confirm-promotion');
  r.enterStep(at('switch'), 'switch');
  r.setPhase('Progressing', 'switching the active service to the new version');
  if (s.previewReplicaCount !== undefined) await rollout.deployPreview(target, undefined);
  r.switched = true;
  await quick.switchActive(target, 'preview');
  status.canaryWeight = 100;

  if (s.postPromotionAnalysis) {
    r.enterStep(at('postPromotionAnalysis'), 'postPromotionAnalysis');
    await gate(r, s.postPromotionAnalysis, 'postPromotion');
  }

  r.enterStep(at('scaleDown'), 'scaleDown');
  r.setPhase('Promoting', `promoted; the previous version scales down in ${formatDuration(s.scaleDownDelaySeconds * 1000)}`);
  await wf.CancellationScope.nonCancellable(async () => {
    if (s.scaleDownDelaySeconds > 0) await wf.sleep(s.scaleDownDelaySeconds * 1000);
    await rollout.finalizeBlueGreen(target);
  });
}
