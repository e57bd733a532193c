/**
 * The API-versions workflow's public contract: update, signal and query names, payloads and the
 * status shape. Imported by the workflow and every client (the CLI, tests, and
 * `temporal workflow signal -w api-shop-orders --name approveRetirement --input '{"version":"v1","by":"alice"}'`).
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ApiVersionPlan } from '../model/api-version.ts';
import type { RememberedNonce } from '../model/identity.ts';
import type { AuditEntry } from './messages.ts';

export const API_WORKFLOW_TYPE = 'apiVersions';

/**
 * Introducing → Serving → Deprecated (headers set, waiting for the sunset) →
 * AwaitingRetirementApproval → Retiring → Retired; Failed when an activity fails for good.
 * An aborted retirement goes from Deprecated or AwaitingRetirementApproval back to Serving.
 */
export const VERSION_PHASES = ['Introducing', 'Serving', 'Deprecated', 'AwaitingRetirementApproval', 'Retiring', 'Retired', 'Failed'] as const;
export type VersionPhase = (typeof VERSION_PHASES)[number];

export interface IntroduceInput {
  plan: ApiVersionPlan;
  by: string;
  reason?: string;
}

export interface RetireInput {
  version: string;
  /** The sunset instant, RFC 3339 (the CLI turns `--sunset 21d` into one). */
  sunset: string;
  by: string;
  reason?: string;
  /** Overrides the version's `retirement.deprecationLink` for the Link header. */
  link?: string;
}

/** Approve or abort a version's retirement. */
export interface VersionActionInput {
  version: string;
  /** Who acts: claimed, or (with a proof) it must equal the proof's subject and may be left out. */
  by: string;
  reason?: string;
  /** The identity server's assertion (model/identity.ts) for this action on this API version. */
  proof?: string;
}

export interface RetirementStatus {
  requestedBy: string;
  requestedAt: string;
  reason?: string | undefined;
  /** When the version was deprecated (the Deprecation header's date). */
  deprecatedAt: string;
  /** RFC 3339; the durable timer fires then. */
  sunset: string;
  link?: string | undefined;
  /** `pending` until the router was asked; `unsupported` on routers that cannot set response headers (Ingress). */
  headers: 'pending' | 'set' | 'unsupported';
  /** The header values written (or that would have been), for status and audit. */
  headerValues: Record<string, string>;
  headersNote?: string | undefined;
  /** Who may approve; empty: anyone but the requester. */
  approvers: string[];
  approvedBy?: { by: string; at: string; reason?: string | undefined } | undefined;
  /** Set by abortRetirement; the version goes back to Serving once its headers are removed. */
  abortedBy?: { by: string; at: string; reason?: string | undefined } | undefined;
}

export interface VersionStatus {
  version: string;
  phase: VersionPhase;
  message: string;
  plan: ApiVersionPlan;
  introducedBy: string;
  introducedAt: string;
  servingSince?: string | undefined;
  retirement?: RetirementStatus | undefined;
  retiredAt?: string | undefined;
  /** Replicas the Deployment had before retirement scaled it to 0. */
  retiredReplicas?: number | undefined;
}

export interface ApiStatus {
  workflowId: string;
  /** `namespace/api`. */
  service: string;
  namespace: string;
  api: string;
  /** The most pressing version phase (what the GlidepathPhase search attribute holds). */
  phase: VersionPhase | 'Empty';
  versions: VersionStatus[];
  /** Who did what, when (newest last; the oldest are dropped past {@link AUDIT_LIMIT} entries). */
  audit: AuditEntry[];
  startedAt: string;
  /** How many times the workflow continued as new (state carried each time). */
  continuedAsNew: number;
}

export const AUDIT_LIMIT = 500;

export interface ApiVersionsInput {
  namespace: string;
  api: string;
  /** State carried across continue-as-new. */
  state?: ApiStatus;
  /** Continue as new once history has this many events (default: when the server suggests it). */
  historyLimit?: number;
  /** Nonces of accepted proofs that have not expired yet, carried across continue-as-new. */
  usedNonces?: RememberedNonce[];
}

export const introduceVersionUpdate = defineUpdate<ApiStatus, [IntroduceInput]>('introduceVersion');
export const retireVersionUpdate = defineUpdate<ApiStatus, [RetireInput]>('retireVersion');
export const approveRetirementUpdate = defineUpdate<ApiStatus, [VersionActionInput]>('approveRetirementUpdate');
export const abortRetirementUpdate = defineUpdate<ApiStatus, [VersionActionInput]>('abortRetirementUpdate');

/** Signals for humans with the Temporal CLI or UI: an unauthorised one is ignored and audited. */
export const approveRetirementSignal = defineSignal<[VersionActionInput]>('approveRetirement');
export const abortRetirementSignal = defineSignal<[VersionActionInput]>('abortRetirement');

export const apiStatusQuery = defineQuery<ApiStatus>('status');
