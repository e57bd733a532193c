/**
 * The gate after a wave: a soak (a durable timer), an analysis run in every cluster of the wave (by
 * that cluster's worker, with its metrics credentials), and an approval with the release rules
 * (listed approvers, distinct, never the initiator, optional timeout). A failed gate stops the group.
 */
import * as wf from '@temporalio/workflow';
import { expectedRunMs, verdictOf } from '../../model/analysis.ts';
import { clusterTaskQueue, gateAnalysis, type GroupGate, type GroupWave } from '../../model/group-plan.ts';
import type { AnalysisRunSpec } from '../../model/types.ts';
import * as profiles from '../profiles.ts';
import { describeError } from '../release/describe.ts';
import { unlessAborted } from './cells.ts';
import type { GateStatus } from './messages.ts';
import { now, type ClusterActivities, type GroupState } from './state.ts';

async function analyzeIn(g: GroupState, gate: GateStatus, run: AnalysisRunSpec, cluster: string): Promise<boolean> {
  const spec = gateAnalysis(g.group, run, cluster);
  const record = { name: spec.name, at: `gate ${gate.wave}`, attempt: 1, phase: 'Running' as const, startedAt: now(), metrics: [], cluster };
  const entry: GateStatus['analysisRuns'][number] = { ...record };
  gate.analysisRuns.push(entry);
  const acts = wf.proxyActivities<ClusterActivities>({ ...profiles.analysis(expectedRunMs(spec)), taskQueue: clusterTaskQueue(cluster) });
  const target = {
    releaseId: `${g.status.groupId}/${gate.wave}/${cluster}`,
    namespace: g.group.namespace,
    workload: { kind: 'Deployment' as const, name: g.group.name },
    image: '',
    strategy: 'canary' as const,
    progressDeadlineSeconds: 600,
  };
  try {
    const result = await acts.runAnalysis(target, spec, { background: false });
    const verdict = verdictOf(spec.metrics, result);
    Object.assign(entry, { phase: verdict.phase, message: verdict.message, metrics: verdict.metrics, finishedAt: now() });
  } catch (err) {
    if (wf.isCancellation(err)) throw err;
    Object.assign(entry, { phase: 'Error', message: describeError(err), finishedAt: now() });
  }
  g.audit('glidepath', 'gate-analysis', true, undefined, `${gate.wave} in ${cluster}: ${spec.name} ${entry.phase}${entry.message ? ` (${entry.message})` : ''}`);
  return entry.phase === 'Successful';
}

async function approval(g: GroupState, gate: GateStatus, a: NonNullable<GroupGate['approval']>): Promise<string | undefined> {
  const deadline = a.timeoutMs === undefined ? undefined : new Date(Date.now() + a.timeoutMs).toISOString();
  gate.approval = { approvers: a.approvers, eligible: a.approvers.filter((x) => x !== g.status.initiator), required: a.minApprovals, granted: [], ...(deadline ? { deadline } : {}) };
  gate.phase = 'AwaitingApproval';
  g.setPhase('Gate', `wave ${gate.wave}: awaiting ${a.minApprovals} approval(s) from ${gate.approval.eligible.join(', ')}`);
  g.notifier?.emit('on-rollout-paused');
  g.awaitingApproval = gate;
  const granted = () => (gate.approval?.granted.length ?? 0) >= a.minApprovals;
  const until = () => granted() || g.abort !== undefined;
  const woke = a.timeoutMs === undefined ? (await wf.condition(until), true) : await wf.condition(until, a.timeoutMs);
  g.awaitingApproval = undefined;
  if (g.abort) return undefined;
  if (!woke) return `approval of wave ${gate.wave} timed out after ${(a.timeoutMs ?? 0) / 1000}s`;
  return undefined;
}

/** Runs the gate after `wave`; the failure, if it failed. */
export async function runGate(g: GroupState, wave: GroupWave): Promise<string | undefined> {
  const spec = wave.gate;
  if (!spec) return undefined;
  const gate: GateStatus = { wave: wave.name, phase: 'Soaking', analysisRuns: [] };
  g.status.gates.push(gate);
  g.audit('glidepath', 'gate', true, undefined, `wave ${wave.name}: gate opens`);
  let failure: string | undefined;
  if (spec.soakMs !== undefined && spec.soakMs > 0) {
    gate.soakUntil = new Date(Date.now() + spec.soakMs).toISOString();
    g.setPhase('Gate', `wave ${wave.name}: soaking until ${gate.soakUntil}`);
    await wf.condition(() => g.abort !== undefined, spec.soakMs);
  }
  const run = spec.analysis;
  if (!g.abort && run) {
    gate.phase = 'Analyzing';
    g.setPhase('Gate', `wave ${wave.name}: analysis ${run.name} in ${wave.clusters.join(', ')}`);
    const passed = await unlessAborted(g, async () => Promise.all(wave.clusters.map((c) => analyzeIn(g, gate, run, c))));
    if (passed && !passed.every(Boolean)) {
      const bad = gate.analysisRuns.filter((r) => r.phase !== 'Successful').map((r) => `${r.cluster}: ${r.phase}${r.message ? ` (${r.message})` : ''}`);
      failure = `gate analysis ${run.name} after wave ${wave.name} did not pass: ${bad.join('; ')}`;
    }
  }
  if (!g.abort && !failure && spec.approval) failure = await approval(g, gate, spec.approval);
  gate.phase = failure || g.abort ? 'Failed' : 'Passed';
  g.audit('glidepath', 'gate', !failure && !g.abort, failure, `wave ${wave.name}: gate ${gate.phase.toLowerCase()}`);
  return failure;
}
