/**
 * The drift watch: one per workload, ID `drift_<namespace>_<workload>` (model/drift.ts). It holds the
 * reference the last promoted release left (image, replicas where no HPA owns them, no canary or
 * preview at rest, the router at weight 0, the Services' selectors), compares the live objects with
 * it on a durable timer through a read-only activity, and records what drifted in its status and
 * audit (the activity exports it as the metric `glidepath_drift`). Under policy `revert` it puts the
 * drifted fields back through the normal activities and checks again. While a release of the workload
 * runs nothing is compared; a later promotion of another image is the new reference (so is
 * `driftConfigure`, which may also change the policy, interval and target). A deleted stable Deployment
 * ends the watch (condition WorkloadGone; the workflow completes, and a later promotion of a re-created
 * workload starts a new one). Bounded lists; continue-as-new when Temporal suggests it.
 * Deterministic: activities are imported as types only.
 */
import * as wf from '@temporalio/workflow';
import type { DriftActivities } from '../activities/drift.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../activities/errors.ts';
import { parseDuration } from '../model/duration.ts';
import { WORKLOAD_GONE, driftProblems, driftWorkflowId, type DriftFinding } from '../model/drift.ts';
import { driftConfigureSignal, driftPromotedSignal, driftStatusQuery, type DriftConfigure, type DriftReleaseState, type DriftWatchInput } from './drift/messages.ts';
import { DriftState, describeFindings } from './drift/state.ts';

const reads = wf.proxyActivities<DriftActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});
const writes = wf.proxyActivities<DriftActivities>({
  startToCloseTimeout: '3m',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});

function failureMessage(err: unknown): string {
  const cause = err instanceof wf.ActivityFailure ? err.cause : err;
  return (cause instanceof Error ? cause.message : String(cause)).slice(0, 500);
}

/**
 * Whether a read failed because the stable Deployment was deleted: the watch ends (condition
 * WorkloadGone, audited). Histories from before this rule keep reporting it as Unreadable.
 */
function endsTheWatch(s: DriftState, err: unknown): boolean {
  const cause = err instanceof wf.ActivityFailure ? err.cause : err;
  if (!(cause instanceof wf.ApplicationFailure && cause.type === WORKLOAD_GONE)) return false;
  if (!wf.patched('glidepath-drift-workload-gone')) return false;
  s.setDrift([]);
  s.condition('WorkloadGone', `${failureMessage(err)}; a later promotion of the workload starts a new watch`);
  return true;
}

export async function driftWatch(input: DriftWatchInput): Promise<void> {
  const problems = driftProblems(input);
  if (problems.length > 0) throw wf.ApplicationFailure.nonRetryable(`invalid drift watch: ${problems.join('; ')}`, 'InvalidSpec');
  const info = wf.workflowInfo();
  const expected = driftWorkflowId({ namespace: input.baseline.target.namespace, workload: input.baseline.target.workload.name });
  if (info.workflowId !== expected) throw wf.ApplicationFailure.nonRetryable(`workflow ID must be ${expected} (one drift watch per workload), got ${info.workflowId}`, 'InvalidSpec');

  const s = new DriftState(input, info.workflowId);
  const st = s.status;
  let current: DriftConfigure = { baseline: input.baseline, policy: input.policy, interval: input.interval };
  let rebase = st.desired === undefined;
  let wake = false;
  wf.setHandler(driftStatusQuery, () => st);
  wf.setHandler(driftConfigureSignal, (c) => {
    const refused = driftProblems(c);
    const t = c?.baseline?.target;
    if (refused.length === 0 && (t.namespace !== st.namespace || t.workload.name !== st.workload)) refused.push(`baseline.target: ${t.namespace}/${t.workload.name} is not this watch's workload ${st.namespace}/${st.workload}`);
    if (refused.length > 0) {
      s.audit('configure-refused', refused.join('; '));
      return;
    }
    if (c.baseline.releaseId !== current.baseline.releaseId || c.baseline.image !== current.baseline.image) {
      rebase = true;
      s.audit('new-reference', `${c.baseline.releaseId} promoted ${c.baseline.image}`);
    }
    if (c.policy !== st.policy || parseDuration(c.interval) !== st.intervalMs) s.audit('configured', `policy ${c.policy}, every ${c.interval}`);
    current = c;
    st.policy = c.policy;
    st.intervalMs = parseDuration(c.interval);
    wake = true;
  });
  // A promotion is always a new reference (the same image may come with other replicas or Services); policy and interval stay.
  wf.setHandler(driftPromotedSignal, (b) => {
    const refused = driftProblems({ policy: st.policy, interval: current.interval, baseline: b });
    const t = b?.target;
    if (refused.length === 0 && (t.namespace !== st.namespace || t.workload.name !== st.workload)) refused.push(`baseline.target: ${t.namespace}/${t.workload.name} is not this watch's workload ${st.namespace}/${st.workload}`);
    if (refused.length > 0) {
      s.audit('promotion-refused', refused.join('; '));
      return;
    }
    const same = st.desired === undefined && b.releaseId === current.baseline.releaseId && b.image === current.baseline.image; // the start's own signal
    current = { ...current, baseline: b };
    rebase = true;
    if (!same) s.audit('new-reference', `${b.releaseId} promoted ${b.image}`);
    wake = true;
  });

  let checks = 0;
  for (;;) {
    wake = false;
    if (await releaseSettled()) {
      let ended = false;
      if (rebase) ended = await takeReference(s, current);
      if (!rebase && !ended) ended = await checkOnce(s, current);
      if (ended) {
        await wf.condition(wf.allHandlersFinished);
        return;
      }
    }
    checks++;
    const full = input.checksPerRun !== undefined ? checks >= input.checksPerRun : wf.workflowInfo().continueAsNewSuggested;
    if (full) break;
    await wf.condition(() => wake, st.intervalMs);
  }
  st.continuedAsNew++;
  s.audit('continue-as-new', `after ${checks} check(s), history at ${wf.workflowInfo().historyLength} events`);
  await wf.condition(wf.allHandlersFinished);
  await wf.continueAsNew<typeof driftWatch>({ ...current, state: st, ...(input.checksPerRun !== undefined ? { checksPerRun: input.checksPerRun } : {}) });

  /**
   * Whether the workload's release has settled (nothing to compare while one runs: its canary is not
   * drift). A promotion of another image since the reference was taken is the new reference.
   */
  async function releaseSettled(): Promise<boolean> {
    const b = current.baseline;
    let r: DriftReleaseState;
    try {
      r = await reads.driftReleaseState(b.releaseId);
    } catch (err) {
      s.condition('Unreadable', `asking for ${b.releaseId}: ${failureMessage(err)}; retried at the next check`);
      return false;
    }
    if (r.state === 'in-flight') {
      s.condition('ReleaseInFlight', `${b.releaseId} is ${r.phase}: nothing is compared until it settles`);
      return false;
    }
    if (r.state === 'settled' && r.promotedImage !== undefined && r.promotedImage !== b.image) {
      current = { ...current, baseline: { ...b, image: r.promotedImage, target: { ...b.target, image: r.promotedImage } } };
      rebase = true;
      s.audit('new-reference', `${b.releaseId} promoted ${r.promotedImage}`);
    }
    return true;
  }

  /** Reads the reference for a (new) baseline from the cluster; on failure it stays pending and is tried at the next interval. True: the workload is gone, the watch ends. */
  async function takeReference(state: DriftState, c: DriftConfigure): Promise<boolean> {
    try {
      const desired = await reads.driftDesired(c.baseline);
      state.status.desired = desired;
      state.status.releaseId = c.baseline.releaseId;
      state.status.image = c.baseline.image;
      rebase = false;
      const replicas = desired.replicas === undefined ? 'replicas owned by an HPA' : `${desired.replicas} replica(s)`;
      state.audit('reference', `${c.baseline.releaseId}: ${desired.container}=${desired.image}, ${replicas}${desired.role ? `, no ${desired.role}` : ''}${desired.router ? `, ${desired.router} at weight 0` : ''}${desired.services.map((x) => `, Service ${x.name}`).join('')}${desired.apiRoute ? `, route ${desired.apiRoute.path} (${desired.apiRoute.kind} ${desired.apiRoute.namespace}/${desired.apiRoute.name})` : ''}`);
    } catch (err) {
      if (endsTheWatch(state, err)) return true;
      state.condition('Unreadable', `reading the reference of ${c.baseline.releaseId}: ${failureMessage(err)}; retried at the next check`);
    }
    return false;
  }
}

/** One comparison; under `revert`, the drifted fields put back and compared again. True: the workload is gone, the watch ends. */
async function checkOnce(s: DriftState, c: DriftConfigure): Promise<boolean> {
  const st = s.status;
  const desired = st.desired;
  if (!desired) return false;
  const req = { watchId: st.watchId, baseline: c.baseline, desired };
  let findings: DriftFinding[];
  try {
    findings = await reads.driftCheck(req);
  } catch (err) {
    if (endsTheWatch(s, err)) return true;
    s.condition('Unreadable', `${failureMessage(err)}; retried at the next check`);
    return false;
  } finally {
    st.checks++;
    st.lastCheckedAt = new Date().toISOString();
  }
  if (findings.length === 0) {
    s.setDrift([]);
    s.condition('InSync', `as ${st.releaseId} left it`);
    return false;
  }
  const text = describeFindings(findings);
  const previous = describeFindings(st.drift);
  st.drifted++;
  s.setDrift(findings);
  if (st.condition === 'Drifted' && previous !== text) s.audit('Drifted', text); // a different drift while drifted is audited too
  s.condition('Drifted', text);
  if (st.policy !== 'revert') return false;
  try {
    await writes.driftRevert({ ...req, findings });
    const after = await reads.driftCheck(req);
    s.setDrift(after);
    if (after.length > 0) {
      s.condition('RevertFailed', `still drifted after the revert: ${describeFindings(after)}; tried again at the next check`);
      return false;
    }
    st.reverted++;
    s.condition('Reverted', `put back and verified: ${text}`);
  } catch (err) {
    if (endsTheWatch(s, err)) return true;
    s.condition('RevertFailed', `${failureMessage(err)}; tried again at the next check`);
  }
  return false;
}
