/**
 * The release group workflow's public contract: input, status (the member × cluster matrix), the
 * updates and the query, and the search attribute that lists a group's workflows. Imported by the
 * workflow and every client.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { AnalysisRunStatus, AuditEntry, NotificationStatus } from '../messages.ts';
import type { GroupPlan, OnFailure } from '../../model/group-plan.ts';

export interface GroupInput {
  group: GroupPlan;
  /** Who started the group (the four-eyes rule keeps them from approving its gates). */
  initiator: string;
}

export interface GroupActionInput {
  /** Who acts: claimed, or (with a proof) it must equal the proof's subject and may be left out. */
  by: string;
  /** approve only: the identity server's assertion for `approve` on this group at this wave (workflows/group/identity.ts). */
  proof?: string;
  reason?: string;
  /** approve only: the wave whose gate this approval is for; another gate rejects it. */
  wave?: string;
}

export type CellPhase = 'Pending' | 'Waiting' | 'Running' | 'Promoted' | 'RolledBack' | 'Aborted' | 'Failed' | 'Skipped' | 'Compensating' | 'Compensated';
export type GroupPhase = 'Running' | 'Gate' | 'Paused' | 'Compensating' | 'Promoted' | 'RolledBack' | 'Aborted' | 'Failed';
export const SETTLED_GROUP_PHASES: readonly GroupPhase[] = ['Promoted', 'RolledBack', 'Aborted', 'Failed'];

/** One member in one cluster: one child release (and, when compensated, a second one). */
export interface GroupCell {
  member: string;
  cluster: string;
  wave: string;
  phase: CellPhase;
  /** The child release's workflow ID (`release_<ns>_<workload>@<cluster>`); its own status has step and weight. */
  workflowId: string;
  /** The image the cluster ran before the group (pinned to its digest when the registry resolves it). */
  previousImage?: string | undefined;
  /** The Deployment's replica count before the group, when the member's release sets one in this cluster (spec.clusters.<cluster>.replicas). */
  previousReplicas?: number | undefined;
  /** The image the cell runs now, as far as the group knows. */
  image?: string | undefined;
  message?: string | undefined;
}

export interface GateStatus {
  wave: string;
  phase: 'Soaking' | 'Analyzing' | 'AwaitingApproval' | 'Passed' | 'Failed';
  soakUntil?: string | undefined;
  analysisRuns: (AnalysisRunStatus & { cluster: string })[];
  approval?: { approvers: string[]; eligible: string[]; required: number; granted: { by: string; at: string; reason?: string | undefined }[]; deadline?: string | undefined } | undefined;
}

export interface ClusterStatus {
  name: string;
  taskQueue: string;
  /** `no worker polling glidepath@<cluster>` while none is seen, else absent. */
  worker?: string | undefined;
}

export interface GroupResult {
  outcome: 'Promoted' | 'RolledBack' | 'Aborted' | 'Failed';
  reason: string;
  cells: { member: string; cluster: string; phase: CellPhase; image?: string | undefined }[];
}

export interface GroupStatus {
  groupId: string;
  name: string;
  phase: GroupPhase;
  onFailure: OnFailure;
  /** The wave running now (index into waves), or the last one that ran. */
  wave: number;
  waves: { name: string; clusters: string[] }[];
  /** Members in dependency order. */
  members: { name: string; dependsOn: string[] }[];
  clusters: ClusterStatus[];
  cells: GroupCell[];
  gates: GateStatus[];
  audit: AuditEntry[];
  auditDropped?: number | undefined;
  message: string;
  initiator: string;
  startedAt: string;
  result?: GroupResult | undefined;
  /** Notification deliveries, when the group has subscriptions (workflows/group/notify.ts). */
  notifications?: NotificationStatus | undefined;
}

export const groupStatusQuery = defineQuery<GroupStatus>('groupStatus');
export const approveGroupUpdate = defineUpdate<GroupStatus, [GroupActionInput]>('approveGroup');
export const abortGroupUpdate = defineUpdate<GroupStatus, [GroupActionInput]>('abortGroup');
export const retryGroupUpdate = defineUpdate<GroupStatus, [GroupActionInput]>('retryGroup');
export const GROUP_UPDATES = { approve: approveGroupUpdate, abort: abortGroupUpdate, retry: retryGroupUpdate } as const;

/** `namespace/name` of the group, on the group's workflow and on every child it starts. */
export const GROUP_ATTRIBUTE = defineSearchAttributeKey('GlidepathGroup', SearchAttributeType.KEYWORD);

/** The most audit entries a group keeps. */
export const GROUP_AUDIT_KEPT = 500;
