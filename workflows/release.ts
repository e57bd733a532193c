/**
 * The release workflow: one progressive delivery of one workload, canary or blue/green, with
 * pauses, analyses and approvals as durable waits; abort, rollback and retry; and a status query
 * that is true in every phase. Deterministic: activities are imported as types only, time comes
 * from the workflow clock, and every side effect is an activity.
 */
import * as wf from '@temporalio/workflow';
import { RetryState, TimeoutType } from '@temporalio/common';
import type { createActivities } from '../activities/index.ts';
import type { ReleaseTarget } from '../activities/contract.ts';
import { expectedRunMs, verdictOf } from '../spec/analysis.ts';
import { formatDuration } from '../spec/duration.ts';
import { planProblems } from '../spec/plan.ts';
import { releaseWorkflowId, serviceKey, type AnalysisRunSpec, type CanaryStrategy, type HeaderRoutingMatch, type RouteMatch, type StringMatch, type BlueGreenStrategy, type Phase, type ReleasePlan } from '../spec/types.ts';
import {
  IMAGE_ATTRIBUTE,
  PHASE_ATTRIBUTE,
  SERVICE_ATTRIBUTE,
  SIGNALS,
  UPDATES,
  statusQuery,
  type Action,
  type ActionInput,
  type AnalysisRunStatus,
  type Outcome,
  type ReleaseInput,
  type ReleaseResult,
  type ManagedRouteStatus,
  type ReleaseStatus,
} from './messages.ts';
import * as profiles from './profiles.ts';

type Activities = ReturnType<typeof createActivities>;

/** Why the current attempt stopped early: set first, then the run scope is cancelled or unwound. */
interface Stop {
  kind: 'abort' | 'rollback' | 'fail';
  by: string;
  reason: string;
  analysis?: AnalysisRunStatus | undefined;
}

/** Thrown inside the run scope once `stop` is set, to unwind it. */
const UNWIND = 'GlidepathUnwind';

const ACTIONABLE: Record<Action, readonly Phase[]> = {
  approve: ['AwaitingApproval'],
  promote: ['Paused', 'Progressing', 'Analyzing'],
  abort: ['Progressing', 'Paused', 'AwaitingApproval', 'Analyzing', 'Aborted', 'RolledBack'],
  retry: ['Aborted', 'RolledBack'],
};

const stepsTotal = (plan: ReleasePlan): number =>
  plan.strategy.type === 'canary' ? plan.strategy.steps.length : blueGreenStages(plan.strategy).length;

function blueGreenStages(s: BlueGreenStrategy): string[] {
  return ['preview', ...(s.prePromotionAnalysis ? ['prePromotionAnalysis'] : []), 'promotion', 'switch', ...(s.postPromotionAnalysis ? ['postPromotionAnalysis'] : []), 'scaleDown'];
}

export async function release(input: ReleaseInput): Promise<ReleaseResult> {
  const { plan, initiator } = input;
  const now = (): string => new Date().toISOString();
  const info = wf.workflowInfo();

  const status: ReleaseStatus = {
    releaseId: info.workflowId,
    service: plan && plan.namespace && plan.name ? serviceKey(plan) : '',
    phase: 'Progressing',
    strategy: plan?.strategy?.type === 'blueGreen' ? 'blueGreen' : 'canary',
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

  let stop: Stop | undefined;
  let runScope: wf.CancellationScope | undefined;
  let promoteRequested = false;
  let promoteFull = false;
  let retryRequested = false;
  let closeRequested = false;
  let lastAttributes = { phase: '', image: '' };

  const audit = (by: string, action: string, accepted: boolean, reason?: string, detail?: string): void => {
    status.audit.push({ at: now(), by, action, accepted, ...(reason ? { reason } : {}), ...(detail ? { detail } : {}) });
  };

  const stepTransitions = wf.metricMeter.createCounter('glidepath_step_transitions', 'transitions', 'Release step transitions, by step kind');
  const phaseChanges = wf.metricMeter.createCounter('glidepath_release_phase_changes', 'transitions', 'Release phase changes, by phase entered');
  const verdicts = wf.metricMeter.createCounter('glidepath_analysis_verdicts', 'verdicts', 'Analysis run verdicts, by phase');

  const syncAttributes = (): void => {
    if (lastAttributes.phase === status.phase && lastAttributes.image === status.canaryImage) return;
    lastAttributes = { phase: status.phase, image: status.canaryImage };
    wf.upsertSearchAttributes([
      { key: PHASE_ATTRIBUTE, value: status.phase },
      { key: IMAGE_ATTRIBUTE, value: status.canaryImage },
    ]);
  };

  const setPhase = (phase: Phase, message: string): void => {
    if (phase !== status.phase) phaseChanges.add(1, { phase });
    status.phase = phase;
    status.message = message;
    syncAttributes();
  };

  // ---- human actions: one check for signals (ignored and audited) and updates (rejected) ----------

  const reject = (action: Action, req: unknown): string | undefined => {
    if (req === null || typeof req !== 'object' || typeof (req as ActionInput).by !== 'string' || (req as ActionInput).by.trim() === '') {
      return `${action}: payload must be {"by": "<identity>", "reason": "<text>"}`;
    }
    const { by, reason, full } = req as ActionInput;
    if (reason !== undefined && typeof reason !== 'string') return `${action}: reason must be a string`;
    if (full !== undefined && typeof full !== 'boolean') return `${action}: full must be true or false`;
    if (full && action !== 'promote') return `${action}: only promote takes "full"`;
    if (!ACTIONABLE[action].includes(status.phase)) {
      return `cannot ${action} ${status.releaseId}: release is ${status.phase}${action === 'approve' ? ' (no approval pending)' : ''}`;
    }
    if (action === 'promote' && status.phase === 'Progressing' && !full) {
      return `cannot promote ${status.releaseId}: a step is in progress; use promote --full to skip the remaining steps`;
    }
    if (action === 'promote' && status.phase === 'Analyzing' && !full) {
      return `cannot promote ${status.releaseId}: an analysis is running; wait for its verdict, or promote --full`;
    }
    const policy = plan.policy;
    if ((action === 'promote' || action === 'retry') && policy.promoters && !policy.promoters.includes(by)) {
      return `${by} may not ${action} this release (promoters: ${policy.promoters.join(', ')})`;
    }
    if (action === 'abort' && policy.aborters && !policy.aborters.includes(by)) {
      return `${by} may not abort this release (aborters: ${policy.aborters.join(', ')})`;
    }
    if (action === 'approve') {
      const pending = status.approvals;
      if (!pending) return `cannot approve ${status.releaseId}: no approval pending`;
      if (!pending.approvers.includes(by)) return `${by} is not an approver of step ${pending.step} (approvers: ${pending.approvers.join(', ')})`;
      if (by === initiator) return `${by} started this release and cannot approve it (four-eyes rule)`;
      if (pending.granted.some((g) => g.by === by)) return `${by} has already approved step ${pending.step}`;
    }
    return undefined;
  };

  const apply = (action: Action, req: ActionInput): void => {
    audit(req.by, action, true, req.reason, req.full ? 'full' : undefined);
    switch (action) {
      case 'approve':
        status.approvals?.granted.push({ by: req.by, at: now(), ...(req.reason ? { reason: req.reason } : {}) });
        break;
      case 'promote':
        promoteRequested = true;
        if (req.full) promoteFull = true;
        break;
      case 'abort':
        if (status.phase === 'Aborted' || status.phase === 'RolledBack') {
          closeRequested = true;
        } else {
          stop ??= { kind: 'abort', by: req.by, reason: req.reason ? `aborted by ${req.by}: ${req.reason}` : `aborted by ${req.by}` };
          runScope?.cancel();
        }
        break;
      case 'retry':
        retryRequested = true;
        break;
    }
  };

  for (const action of ['approve', 'promote', 'abort', 'retry'] as const) {
    wf.setHandler(SIGNALS[action], (req) => {
      const why = reject(action, req);
      if (why !== undefined) {
        const by = req !== null && typeof req === 'object' && typeof req.by === 'string' ? req.by : 'unknown';
        audit(by, action, false, typeof req?.reason === 'string' ? req.reason : undefined, `ignored: ${why}`);
        return;
      }
      apply(action, req);
    });
    wf.setHandler(
      UPDATES[action],
      (req) => {
        apply(action, req);
        return status;
      },
      {
        validator: (req) => {
          const why = reject(action, req);
          if (why !== undefined) throw new Error(why);
        },
      },
    );
  }
  wf.setHandler(statusQuery, () => status);

  // ---- validate again at the start: a workflow can be started by any client ----------------------

  const problems = planProblems(plan);
  if (problems.length > 0) {
    status.phase = 'Failed';
    status.message = `invalid release plan: ${problems.join('; ')}`;
    throw wf.ApplicationFailure.nonRetryable(status.message, 'InvalidSpec');
  }
  if (info.workflowId !== releaseWorkflowId(plan)) {
    status.phase = 'Failed';
    status.message = `workflow ID must be ${releaseWorkflowId(plan)} (one release in flight per workload), got ${info.workflowId}`;
    throw wf.ApplicationFailure.nonRetryable(status.message, 'InvalidSpec');
  }
  status.step.total = stepsTotal(plan);
  wf.upsertSearchAttributes([{ key: SERVICE_ATTRIBUTE, value: status.service }]);
  syncAttributes();
  audit(initiator, 'start', true, undefined, `image ${plan.image}${plan.source ? ` from ${plan.source}` : ''}`);

  // ---- activities ------------------------------------------------------------------------------

  const quick = wf.proxyActivities<Activities>(profiles.quick);
  const rollout = wf.proxyActivities<Activities>(profiles.rollout(plan.progressDeadlineSeconds));
  const cleanup = wf.proxyActivities<Activities>(profiles.cleanup);
  const builds = wf.proxyActivities<Activities>(profiles.build);

  const target: ReleaseTarget = {
    releaseId: info.workflowId,
    namespace: plan.namespace,
    workload: plan.workload,
    image: plan.image,
    strategy: plan.strategy.type,
    progressDeadlineSeconds: plan.progressDeadlineSeconds,
    ...(plan.readinessProbePolicy ? { readinessProbePolicy: plan.readinessProbePolicy } : {}),
    ...(plan.strategy.type === 'canary'
      ? { stableService: plan.strategy.stableService, canaryService: plan.strategy.canaryService, trafficRouting: plan.strategy.trafficRouting }
      : { activeService: plan.strategy.activeService, previewService: plan.strategy.previewService }),
  };

  /** The image every activity runs: the plan's, or once built (or verified), its pinned `repo@sha256:` reference. */
  let image = plan.image;
  let imageReady = !plan.build && !plan.imagePolicy?.requireDigest;
  const pin = (pinned: string): void => {
    image = pinned;
    target.image = pinned;
    status.canaryImage = pinned;
    syncAttributes();
  };

  /** Records a header or mirror route in the status (undefined: the route was removed). */
  const trackRoute = (name: string, route: ManagedRouteStatus | undefined): void => {
    const kept = (status.managedRoutes ?? []).filter((r) => r.name !== name);
    status.managedRoutes = route ? [...kept, route] : kept;
    audit('glidepath', route ? 'route-set' : 'route-removed', true, undefined, route ? `${route.kind} route ${name}: ${route.match}` : `route ${name}`);
  };

  const enterStep = (index: number, kind: string): void => {
    status.step = { index, total: status.step.total, kind };
    stepTransitions.add(1, { kind });
  };

  /** Stops the attempt with a reason; the catch below turns it into an abort or a rollback. */
  const halt = (s: Stop): never => {
    stop ??= s;
    throw wf.ApplicationFailure.nonRetryable(s.reason, UNWIND);
  };

  /** Waits for a human promote (or abort, which cancels the scope). */
  const waitForPromote = async (message: string, timeoutMs?: number): Promise<boolean> => {
    promoteRequested = false;
    setPhase('Paused', message);
    if (timeoutMs === undefined) {
      await wf.condition(() => promoteRequested || promoteFull);
      return true;
    }
    return wf.condition(() => promoteRequested || promoteFull, timeoutMs);
  };

  /** Runs one analysis and records it; returns its verdict, re-derived here from the measurements. */
  const analyze = async (run: AnalysisRunSpec, at: string, background: boolean): Promise<AnalysisRunStatus> => {
    const record: AnalysisRunStatus = { name: run.name, at, attempt: status.attempt, phase: 'Running', startedAt: now(), metrics: [] };
    status.analysisRuns.push(record);
    const acts = wf.proxyActivities<Activities>(profiles.analysis(background ? undefined : expectedRunMs(run)));
    const result = await acts.runAnalysis(target, run, { background });
    const verdict = verdictOf(run.metrics, result);
    record.phase = verdict.phase;
    record.message = verdict.message;
    record.metrics = verdict.metrics;
    record.finishedAt = now();
    verdicts.add(1, { phase: verdict.phase });
    audit('glidepath', 'analysis', true, undefined, `${at}: ${run.name} ${verdict.phase}${verdict.message ? ` (${verdict.message})` : ''}`);
    return record;
  };

  /** An analysis that gates progress: failure rolls back, inconclusive waits for a human. */
  const gate = async (run: AnalysisRunSpec, at: string): Promise<void> => {
    setPhase('Analyzing', `${at}: analysis ${run.name} running`);
    const record = await analyze(run, at, false);
    if (record.phase === 'Failed' || record.phase === 'Error') {
      halt({ kind: 'rollback', by: 'glidepath', reason: `analysis ${run.name} (${at}) ${record.phase}: ${record.message ?? ''}`.trim(), analysis: record });
    }
    if (record.phase === 'Inconclusive') {
      await waitForPromote(`analysis ${run.name} (${at}) inconclusive: ${record.message ?? ''}; promote to continue or abort`);
    }
  };

  // ---- canary ------------------------------------------------------------------------------------

  const runCanary = async (s: CanaryStrategy): Promise<void> => {
    setPhase('Progressing', 'creating canary');
    await rollout.ensureCanary(target);

    let background: Promise<void> | undefined;
    let backgroundHold: AnalysisRunStatus | undefined;
    const holdIfInconclusive = async (): Promise<void> => {
      if (!backgroundHold) return;
      const held = backgroundHold;
      backgroundHold = undefined;
      await waitForPromote(`background analysis ${held.name} inconclusive: ${held.message ?? ''}; promote to continue or abort`);
    };
    const backgroundScope = new wf.CancellationScope();
    const startBackground = (): void => {
      if (!s.background || background) return;
      const run = s.background.analysis;
      background = backgroundScope
        .run(() => analyze(run, 'background', true))
        .then((record) => {
          if (record.phase === 'Failed' || record.phase === 'Error') {
            stop ??= { kind: 'rollback', by: 'glidepath', reason: `background analysis ${run.name} ${record.phase} at step ${status.step.index}: ${record.message ?? ''}`.trim(), analysis: record };
            runScope?.cancel();
          } else if (record.phase === 'Inconclusive') {
            backgroundHold = record; // paused for a human at the next step boundary, as Argo does
          }
        })
        .catch((err: unknown) => {
          if (wf.isCancellation(err)) return;
          stop ??= { kind: 'rollback', by: 'glidepath', reason: `background analysis ${run.name} could not run: ${describeError(err)}` };
          runScope?.cancel();
        });
    };

    for (let i = 0; i < s.steps.length; i++) {
      const step = s.steps[i] as (typeof s.steps)[number];
      if (s.background && i >= s.background.startingStep) startBackground();
      await holdIfInconclusive();
      enterStep(i, step.kind);
      if (promoteFull && step.kind !== 'approval') continue;
      switch (step.kind) {
        case 'setWeight': {
          setPhase('Progressing', `step ${i}: setting canary weight ${step.weight}%`);
          await rollout.setWeight(target, step.weight);
          status.canaryWeight = step.weight;
          break;
        }
        case 'setHeaderRoute': {
          setPhase('Progressing', `step ${i}: ${step.match.length ? 'setting' : 'removing'} header route ${step.name}`);
          await rollout.setHeaderRoute(target, { name: step.name, match: step.match });
          trackRoute(step.name, step.match.length ? { name: step.name, kind: 'header', match: describeHeaderMatch(step.match), step: i } : undefined);
          break;
        }
        case 'setMirrorRoute': {
          setPhase('Progressing', `step ${i}: ${step.match.length ? 'setting' : 'removing'} mirror route ${step.name}`);
          await rollout.setMirrorRoute(target, { name: step.name, percentage: step.percentage, match: step.match });
          trackRoute(step.name, step.match.length ? { name: step.name, kind: 'mirror', match: `${step.percentage}% of ${describeRouteMatch(step.match)}`, step: i } : undefined);
          break;
        }
        case 'setCanaryScale': {
          setPhase('Progressing', `step ${i}: scaling canary`);
          const scale = step.replicas !== undefined ? { replicas: step.replicas } : step.weight !== undefined ? { weight: step.weight } : { matchTrafficWeight: true as const };
          await rollout.setCanaryScale(target, scale, status.canaryWeight);
          break;
        }
        case 'pause': {
          if (step.durationMs === 0) break;
          await waitForPromote(step.durationMs === undefined ? `step ${i}: paused until promoted` : `step ${i}: paused for ${formatDuration(step.durationMs)}`, step.durationMs);
          break;
        }
        case 'analysis':
          await gate(step.analysis, `step ${i}`);
          break;
        case 'approval': {
          const deadline = step.timeoutMs !== undefined ? new Date(Date.now() + step.timeoutMs).toISOString() : undefined;
          status.approvals = { step: i, approvers: step.approvers, required: step.minApprovals, granted: [], ...(deadline ? { deadline } : {}), onTimeout: step.onTimeout };
          setPhase('AwaitingApproval', `step ${i}: awaiting ${step.minApprovals} approval(s) from ${step.approvers.join(', ')}`);
          const enough = (): boolean => (status.approvals?.granted.length ?? 0) >= step.minApprovals;
          const approved = step.timeoutMs === undefined ? (await wf.condition(enough), true) : await wf.condition(enough, step.timeoutMs);
          status.approvals = undefined;
          if (!approved) {
            halt({ kind: step.onTimeout === 'abort' ? 'abort' : 'rollback', by: 'glidepath', reason: `approval of step ${i} timed out after ${formatDuration(step.timeoutMs ?? 0)}` });
          }
          audit('glidepath', 'approved', true, undefined, `step ${i}`);
          break;
        }
      }
      if (stop) halt(stop);
    }
    startBackground(); // a startingStep equal to the step count still measures until promotion

    backgroundScope.cancel();
    await background;
    if (stop) halt(stop);
    await holdIfInconclusive();

    enterStep(s.steps.length, 'promote');
    setPhase('Promoting', 'promoting: stable takes the new image, then the canary goes');
    await wf.CancellationScope.nonCancellable(() => rollout.promoteCanary(target));
    status.canaryWeight = 0;
    if (status.managedRoutes) status.managedRoutes = [];
  };

  // ---- blue/green --------------------------------------------------------------------------------

  let switched = false;

  const runBlueGreen = async (s: BlueGreenStrategy): Promise<void> => {
    const stages = blueGreenStages(s);
    const at = (name: string): number => stages.indexOf(name);

    enterStep(at('preview'), 'preview');
    setPhase('Progressing', 'bringing up the preview');
    await rollout.deployPreview(target, s.previewReplicaCount);

    if (s.prePromotionAnalysis) {
      enterStep(at('prePromotionAnalysis'), 'prePromotionAnalysis');
      await gate(s.prePromotionAnalysis, 'prePromotion');
    }

    enterStep(at('promotion'), 'promotion');
    if (!promoteFull) {
      if (!s.autoPromotionEnabled) await waitForPromote('preview ready: awaiting promote');
      else if (s.autoPromotionSeconds !== undefined && s.autoPromotionSeconds > 0) {
        await waitForPromote(`preview ready: auto-promotion in ${formatDuration(s.autoPromotionSeconds * 1000)} unless promoted sooner`, s.autoPromotionSeconds * 1000);
      }
    }

    enterStep(at('switch'), 'switch');
    setPhase('Progressing', 'switching the active service to the new version');
    if (s.previewReplicaCount !== undefined) await rollout.deployPreview(target, undefined);
    switched = true;
    await quick.switchActive(target, 'preview');
    status.canaryWeight = 100;

    if (s.postPromotionAnalysis) {
      enterStep(at('postPromotionAnalysis'), 'postPromotionAnalysis');
      await gate(s.postPromotionAnalysis, 'postPromotion');
    }

    enterStep(at('scaleDown'), 'scaleDown');
    setPhase('Promoting', `promoted; the previous version scales down in ${formatDuration(s.scaleDownDelaySeconds * 1000)}`);
    await wf.CancellationScope.nonCancellable(async () => {
      if (s.scaleDownDelaySeconds > 0) await wf.sleep(s.scaleDownDelaySeconds * 1000);
      await rollout.finalizeBlueGreen(target);
    });
  };

  // ---- one attempt: run, then promote or clean up ------------------------------------------------

  const attempt = async (): Promise<ReleaseResult> => {
    stop = undefined;
    switched = false;
    promoteRequested = false;
    promoteFull = false;
    status.canaryWeight = 0;
    status.approvals = undefined;
    status.result = undefined;
    let touched = false;
    runScope = new wf.CancellationScope();
    try {
      await runScope.run(async () => {
        // Only plans with build or imagePolicy add these commands: recorded histories replay unchanged.
        if (!imageReady && plan.build) {
          setPhase('Progressing', `building ${plan.build.tags.join(', ')}`);
          const built = await builds.buildImage(target, plan.build);
          audit('glidepath', 'build', true, undefined, `${built.skipped ? 'already pushed' : 'built and pushed'}: ${built.image}`);
          pin(built.image);
          imageReady = true;
        } else if (!imageReady) {
          setPhase('Progressing', `verifying ${plan.image}`);
          pin((await quick.verifyImage(target, plan.image)).image);
          imageReady = true;
        }
        setPhase('Progressing', 'preflight checks');
        const pre = await quick.preflight(target);
        status.stableImage = pre.stableImage;
        for (const w of pre.warnings) audit('glidepath', 'preflight-warning', true, undefined, w);
        if (stop) halt(stop);
        touched = true;
        if (plan.strategy.type === 'canary') await runCanary(plan.strategy);
        else await runBlueGreen(plan.strategy);
      });
    } catch (err) {
      if (stop === undefined) {
        // An activity failed for good (non-retryable, or out of time): name it.
        stop = { kind: touched ? 'rollback' : 'fail', by: 'glidepath', reason: describeError(err) };
      }
    }

    if (stop === undefined) {
      setPhase('Promoted', `promoted ${image}`);
      status.stableImage = image;
      audit('glidepath', 'promoted', true, undefined, image);
      return { outcome: 'Promoted', reason: `promoted ${image}`, image, stableImage: image, attempts: status.attempt };
    }

    const s = stop as Stop;
    status.approvals = undefined; // an approval interrupted by abort or rollback is no longer pending
    let outcome: Outcome = s.kind === 'abort' ? 'Aborted' : s.kind === 'rollback' ? 'RolledBack' : 'Failed';
    let reason = s.reason;
    if (touched) {
      setPhase(s.kind === 'abort' ? 'Aborting' : 'RollingBack', `${s.kind === 'abort' ? 'aborting' : 'rolling back'}: ${s.reason}`);
      try {
        await wf.CancellationScope.nonCancellable(async () => {
          if (plan.strategy.type === 'canary') {
            await cleanup.abortCanary(target, status.stableImage);
            if (status.managedRoutes) status.managedRoutes = [];
          } else {
            if (switched) await cleanup.switchActive(target, 'stable');
            await cleanup.abortBlueGreen(target, status.stableImage);
          }
        });
        status.canaryWeight = 0;
      } catch (err) {
        outcome = 'Failed';
        reason = `${s.reason}; then putting stable back failed: ${describeError(err)}`;
      }
    }
    setPhase(outcome, reason);
    audit(s.by, outcome === 'Failed' ? 'failed' : outcome === 'Aborted' ? 'aborted' : 'rolled-back', true, undefined, reason);
    return { outcome, reason, image, stableImage: status.stableImage, attempts: status.attempt, ...(s.analysis ? { analysis: s.analysis } : {}) };
  };

  let result: ReleaseResult;
  for (;;) {
    result = await attempt();
    status.result = result;
    if (result.outcome === 'Promoted' || result.outcome === 'Failed') break;
    // Aborted or rolled back: a retry starts again from step 0, within the retry window.
    retryRequested = false;
    closeRequested = false;
    const woke = await wf.condition(() => retryRequested || closeRequested, plan.retryWindowSeconds * 1000);
    if (!woke || closeRequested || !retryRequested) break;
    status.attempt++;
    audit('glidepath', 'retry', true, undefined, `attempt ${status.attempt} starts from step 0`);
  }
  await wf.condition(wf.allHandlersFinished);
  return result;
}

/** Activities bounded by the progress deadline (profiles.rollout). */
const ROLLOUT_ACTIVITIES = new Set(['ensureCanary', 'setWeight', 'setCanaryScale', 'setHeaderRoute', 'setMirrorRoute', 'promoteCanary', 'deployPreview', 'finalizeBlueGreen']);

function describeStringMatch(m: StringMatch): string {
  if (m.exact !== undefined) return `"${m.exact}"`;
  if (m.prefix !== undefined) return `prefix "${m.prefix}"`;
  return `regex "${m.regex ?? ''}"`;
}

function describeHeaderMatch(match: HeaderRoutingMatch[]): string {
  return match.map((m) => `${m.headerName} ${describeStringMatch(m.headerValue)}`).join(' and ');
}

function describeRouteMatch(match: RouteMatch[]): string {
  return match
    .map((m) =>
      [
        m.method ? `method ${describeStringMatch(m.method)}` : '',
        m.path ? `path ${describeStringMatch(m.path)}` : '',
        ...Object.entries(m.headers ?? {}).map(([h, v]) => `${h} ${describeStringMatch(v)}`),
      ]
        .filter(Boolean)
        .join(' and '),
    )
    .join(' or ');
}

function describeError(err: unknown): string {
  if (err instanceof wf.ActivityFailure) {
    const cause = err.cause;
    const last = cause instanceof wf.ApplicationFailure ? `${cause.type ?? 'Error'}: ${cause.message}` : (cause?.message ?? err.message);
    const outOfTime = err.retryState === RetryState.TIMEOUT || (cause instanceof wf.TimeoutFailure && cause.timeoutType === TimeoutType.SCHEDULE_TO_CLOSE);
    if (outOfTime) {
      const kind = ROLLOUT_ACTIVITIES.has(err.activityType) ? 'ProgressDeadlineExceeded' : 'TimedOut';
      return `${err.activityType}: ${kind}: did not complete in time${cause instanceof wf.TimeoutFailure ? '' : ` (last error: ${last})`}`;
    }
    return `${err.activityType}: ${last}`;
  }
  if (err instanceof wf.ApplicationFailure) return `${err.type ?? 'Error'}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
