/**
 * The release group's state: the status (cells, gates, clusters, audit), the requests that actions
 * leave for the runner (abort, retry), and the activity proxies, per cluster task queue.
 */
import * as wf from '@temporalio/workflow';
import type { createActivities } from '../../activities/index.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../../activities/errors.ts';
import { clusterTaskQueue, groupClusters, memberPlan, type GroupPlan } from '../../model/group-plan.ts';
import { releaseWorkflowId } from '../../model/types.ts';
import { GROUP_AUDIT_KEPT, type CellPhase, type GateStatus, type GroupCell, type GroupPhase, type GroupStatus } from './messages.ts';
import type { GroupNotifier } from './notify.ts';
import { GroupIdentity } from './identity.ts';

/** The parent's own activity (on its own task queue): who polls a cluster's task queue. */
export interface GroupActivities {
  /** Pollers of the task queue seen in the last `withinMs` (workflow or activity tasks). */
  taskQueuePollers(taskQueue: string, withinMs: number): Promise<{ pollers: number }>;
  /** The start-time check of the group (model/group-plan-schema.ts `groupPlanProblems`), run once. */
  validateGroup(group: unknown): Promise<string[]>;
}

export type ClusterActivities = Pick<ReturnType<typeof createActivities>, 'preflight' | 'verifyImage' | 'runAnalysis'>;

export function now(): string {
  return new Date().toISOString();
}

export class GroupState {
  readonly group: GroupPlan;
  readonly status: GroupStatus;
  readonly groupKey: string;
  /** Set by abort: no new member starts; in-flight children are aborted; compensation per the policy. */
  abort: { by: string; reason?: string | undefined } | undefined;
  /** Set by retry while the group is paused after a failure. */
  retryRequested = false;
  /** The first failure of the current run (a member that did not promote, a gate that failed). */
  failure: { what: string; reason: string } | undefined;
  /** Child releases running now, by workflow ID: abort reaches them. */
  readonly inFlight = new Set<string>();
  /** The gate waiting for approvals, if one is. */
  awaitingApproval: GateStatus | undefined;
  /** Who may approve a gate: the worker's identity policy and the proofs spent (group/identity.ts). */
  readonly identity = new GroupIdentity();
  /** Told of the group's events when it has subscriptions (group/notify.ts). */
  notifier: GroupNotifier | undefined;
  private readonly cells = new Map<string, GroupCell>();
  private readonly proxies = new Map<string, ClusterActivities>();
  private readonly pinning = new Map<string, Pick<ClusterActivities, 'verifyImage'>>();

  constructor(group: GroupPlan, initiator: string, groupId: string) {
    this.group = group;
    this.groupKey = `${group.namespace}/${group.name}`;
    const cells: GroupCell[] = [];
    for (const w of group.waves) {
      for (const cluster of w.clusters) {
        for (const m of group.members) {
          const cell: GroupCell = { member: m.name, cluster, wave: w.name, phase: 'Pending', workflowId: releaseWorkflowId(memberPlan(group, m, cluster)) };
          cells.push(cell);
          this.cells.set(`${m.name}@${cluster}`, cell);
        }
      }
    }
    this.status = {
      groupId,
      name: this.groupKey,
      phase: 'Running',
      onFailure: group.onFailure,
      wave: 0,
      waves: group.waves.map((w) => ({ name: w.name, clusters: [...w.clusters] })),
      members: group.members.map((m) => ({ name: m.name, dependsOn: [...m.dependsOn] })),
      clusters: groupClusters(group).map((name) => ({ name, taskQueue: clusterTaskQueue(name) })),
      cells,
      gates: [],
      audit: [],
      message: 'starting',
      initiator,
      startedAt: now(),
    };
  }

  cell(member: string, cluster: string): GroupCell {
    const c = this.cells.get(`${member}@${cluster}`);
    if (!c) throw new Error(`no cell ${member}@${cluster}`);
    return c;
  }

  setCell(cell: GroupCell, phase: CellPhase, message?: string): void {
    cell.phase = phase;
    cell.message = message;
  }

  setPhase(phase: GroupPhase, message: string): void {
    const from = this.status.phase;
    this.status.phase = phase;
    this.status.message = message;
    this.notifier?.phaseChanged(from, phase);
  }

  audit(by: string, action: string, accepted: boolean, reason?: string, detail?: string): void {
    const a = this.status.audit;
    a.push({ at: now(), by, action, accepted, ...(reason ? { reason } : {}), ...(detail ? { detail } : {}) });
    if (a.length > GROUP_AUDIT_KEPT) {
      a.splice(0, a.length - GROUP_AUDIT_KEPT);
      this.status.auditDropped = (this.status.auditDropped ?? 0) + 1;
    }
  }

  /** The release activities of one cluster, run by that cluster's worker (its credentials). */
  clusterActivities(cluster: string): ClusterActivities {
    let p = this.proxies.get(cluster);
    if (!p) {
      // No schedule-to-close bound: with no worker polling the cluster's queue, the call waits (the status says so).
      p = wf.proxyActivities<ClusterActivities>({
        taskQueue: clusterTaskQueue(cluster),
        startToCloseTimeout: '1m',
        retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
      });
      this.proxies.set(cluster, p);
    }
    return p;
  }

  /** verifyImage of the image a cluster runs now: a few attempts, then the group goes on with the reference as written. */
  clusterPinning(cluster: string): Pick<ClusterActivities, 'verifyImage'> {
    let p = this.pinning.get(cluster);
    if (!p) {
      p = wf.proxyActivities<ClusterActivities>({
        taskQueue: clusterTaskQueue(cluster),
        startToCloseTimeout: '1m',
        retry: { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
      });
      this.pinning.set(cluster, p);
    }
    return p;
  }

  setWorker(cluster: string, worker: string | undefined): void {
    const c = this.status.clusters.find((x) => x.name === cluster);
    if (c && c.worker !== worker) {
      c.worker = worker;
      if (worker) this.audit('glidepath', 'worker', true, undefined, `${cluster}: ${worker}`);
    }
  }

  /** No new member starts: the group is aborted, or a failure stops it. */
  get halted(): boolean {
    return this.abort !== undefined || this.failure !== undefined;
  }

  fail(what: string, reason: string): void {
    if (this.failure) return;
    this.failure = { what, reason };
    this.audit('glidepath', 'failure', true, reason, what);
  }
}
