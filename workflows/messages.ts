/**
 * The release workflow's public contract: signal, update and query names, payloads, the status
 * shape and the search attributes. Defined once and imported by the workflow and every client
 * (CLI, tests, `temporal workflow signal --name approve --input '{"by":"alice"}'`).
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { AnalysisPhase, MetricResult, Phase, ReleasePlan } from '../model/types.ts';

/** Payload of every human action: who, why, and for promote whether to skip the remaining steps. */
export interface ActionInput {
  /** Who acts: the claimed identity; with a proof, the proof's `sub` (must match when both are sent). */
  by: string;
  /** A signed assertion from the identity server (model/identity.ts); needed when the worker's identity policy is `required`. */
  proof?: string;
  reason?: string;
  /** promote only: skip the remaining steps (approval gates are never skipped). */
  full?: boolean;
  /** approve only: the gate this approval is for (`approvals.step` of the status); another gate rejects it. */
  step?: number;
  /** approve only: the attempt this approval is for (`attempt` of the status); another attempt rejects it. */
  attempt?: number;
  /** abort only: remove the canary or preview pods at once, without the scale-down delay. */
  immediate?: boolean;
}

/** `override-freeze` is an update only (no signal): it lifts the freeze window holding the release now. */
export type Action = 'approve' | 'promote' | 'abort' | 'retry' | 'override-freeze';

export const approveSignal = defineSignal<[ActionInput]>('approve');
export const promoteSignal = defineSignal<[ActionInput]>('promote');
export const abortSignal = defineSignal<[ActionInput]>('abort');
export const retrySignal = defineSignal<[ActionInput]>('retry');

export const approveUpdate = defineUpdate<ReleaseStatus, [ActionInput]>('approveRelease');
export const promoteUpdate = defineUpdate<ReleaseStatus, [ActionInput]>('promoteRelease');
export const abortUpdate = defineUpdate<ReleaseStatus, [ActionInput]>('abortRelease');
export const retryUpdate = defineUpdate<ReleaseStatus, [ActionInput]>('retryRelease');
export const overrideFreezeUpdate = defineUpdate<ReleaseStatus, [ActionInput]>('overrideFreezeRelease');

export const statusQuery = defineQuery<ReleaseStatus>('status');

/**
 * What a client reports after its update was refused by the validator (which writes nothing to
 * history): counted with the ignored signals, bounded, marked as reported by the client.
 */
export interface RefusedUpdateReport {
  action: Action;
  by: string;
  reason?: string;
  /** The validator's reason. */
  why: string;
}
export const refusedUpdateSignal = defineSignal<[RefusedUpdateReport]>('refusedUpdate');

export const SIGNALS = { approve: approveSignal, promote: promoteSignal, abort: abortSignal, retry: retrySignal } as const;
export const UPDATES = { approve: approveUpdate, promote: promoteUpdate, abort: abortUpdate, retry: retryUpdate, 'override-freeze': overrideFreezeUpdate } as const;

export const SERVICE_ATTRIBUTE = defineSearchAttributeKey('GlidepathService', SearchAttributeType.KEYWORD);
export const PHASE_ATTRIBUTE = defineSearchAttributeKey('GlidepathPhase', SearchAttributeType.KEYWORD);
export const IMAGE_ATTRIBUTE = defineSearchAttributeKey('GlidepathImage', SearchAttributeType.KEYWORD);
export const SEARCH_ATTRIBUTES = [SERVICE_ATTRIBUTE, PHASE_ATTRIBUTE, IMAGE_ATTRIBUTE] as const;

export interface ReleaseInput {
  plan: ReleasePlan;
  /** Who started the release (the four-eyes rule keeps them from approving it). */
  initiator: string;
}

export type Outcome = 'Promoted' | 'Aborted' | 'RolledBack' | 'Failed';

export interface ReleaseResult {
  outcome: Outcome;
  /** Why, in one line: e.g. `analysis "success-rate" failed: metric "error-rate" assessed Failed …`. */
  reason: string;
  image: string;
  stableImage?: string | undefined;
  attempts: number;
  /** The analysis run that decided the outcome, when one did. */
  analysis?: AnalysisRunStatus | undefined;
}

export interface AuditEntry {
  at: string;
  by: string;
  action: string;
  accepted: boolean;
  reason?: string | undefined;
  detail?: string | undefined;
}

export interface AnalysisRunStatus {
  name: string;
  /** `step 3`, `background`, `prePromotion`, `postPromotion`. */
  at: string;
  attempt: number;
  phase: AnalysisPhase;
  message?: string | undefined;
  startedAt: string;
  finishedAt?: string | undefined;
  metrics: MetricResult[];
}

export interface ApprovalStatus {
  step: number;
  approvers: string[];
  /** Who can still approve: approvers who have not approved yet, without the initiator (four-eyes rule). */
  eligible?: string[] | undefined;
  required: number;
  granted: { by: string; at: string; reason?: string | undefined }[];
  /** When the approval times out, if it does. */
  deadline?: string | undefined;
  onTimeout: 'abort' | 'rollback';
}

/** Bounds on what the status keeps, so that no caller can grow the workflow's state without limit. */
export const AUDIT_KEPT = 500;
export const RUNS_KEPT = 50;
export const REJECTED_KEPT = 20;

export interface RejectedSignals {
  total: number;
  byAction: Partial<Record<Action, number>>;
  last: AuditEntry[];
}

export interface ManagedRouteStatus {
  name: string;
  kind: 'header' | 'mirror';
  /** e.g. `X-Canary exact "yes"`, `50% of GET /api*`. */
  match: string;
  step: number;
}

export interface ReleaseStatus {
  releaseId: string;
  service: string;
  phase: Phase;
  strategy: 'canary' | 'blueGreen' | 'rolling';
  /** strategy.rolling: replicas on the new revision and ready after the last batch, of the live replica count. */
  rolling?: { updated: number; replicas: number };
  step: { index: number; total: number; kind: string };
  canaryWeight: number;
  stableImage?: string | undefined;
  canaryImage: string;
  analysisRuns: AnalysisRunStatus[];
  approvals?: ApprovalStatus | undefined;
  /** Header and mirror routes the steps have set and that are in place now (removed on promotion and abort). */
  managedRoutes?: ManagedRouteStatus[] | undefined;
  /** The most recent audit entries (at most AUDIT_KEPT); `auditDropped` counts older ones no longer kept. */
  audit: AuditEntry[];
  auditDropped?: number | undefined;
  /** Analysis runs, the most recent at most RUNS_KEPT; `analysisRunsDropped` counts finished ones no longer kept. */
  analysisRunsDropped?: number | undefined;
  /** Signals that were ignored (not allowed, malformed): counted per action, the last REJECTED_KEPT kept. */
  rejectedSignals?: RejectedSignals | undefined;
  message: string;
  initiator: string;
  attempt: number;
  startedAt: string;
  /** Set once the release has an outcome (it may still wait for a retry). */
  result?: ReleaseResult | undefined;
  /** Notification deliveries, when the plan has subscriptions (workflows/release/notify.ts). */
  notifications?: NotificationStatus | undefined;
  /** Set while a freeze window holds the release (workflows/release/freeze.ts). */
  freeze?: FreezeStatus | undefined;
}

/** The freeze window holding the release now: which, at which point, until when, and who may override it. */
export interface FreezeStatus {
  window: string;
  before: string;
  until: string;
  overriders: string[];
}

/** Events emitted to subscriptions and what became of them; the most recent undelivered are kept. */
export interface NotificationStatus {
  emitted: number;
  delivered: number;
  undelivered: number;
  /** Deliveries queued or in flight. */
  pending: number;
  lastUndelivered: { subscription: string; sequence: number; trigger: string; reason: string; at: string }[];
}
