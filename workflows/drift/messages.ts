/** The drift watch's input, status and messages (shared by the workflow, its activities and the CLI). */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { DriftBaseline, DriftDesired, DriftFinding, DriftPolicy, DriftSettings } from '../../model/drift.ts';

/** Audit entries kept (the oldest go first). */
export const MAX_DRIFT_AUDIT = 50;
/** Drifted fields kept in the status (a workload has a handful: image, replicas, canary, router, two Services). */
export const MAX_FINDINGS = 20;

/**
 * `InSync`: nothing drifted. `Drifted`: reported (policy report, or a revert pending). `Unreadable`: the
 * check failed, retried at the next interval. `ReleaseInFlight`: a release of the workload runs, nothing
 * is compared (its canary is not drift) until it settles. `WorkloadGone`: the stable Deployment was
 * deleted; the watch has ended (completed).
 */
export type DriftCondition = 'Pending' | 'InSync' | 'Drifted' | 'Reverted' | 'RevertFailed' | 'Unreadable' | 'ReleaseInFlight' | 'WorkloadGone';

/** Where the workload's release (its workflow ID is the reference's `releaseId`) stands: a promotion of another image is the new reference. */
export type DriftReleaseState = { state: 'none' } | { state: 'in-flight'; phase: string } | { state: 'settled'; phase: string; promotedImage?: string };

export interface DriftAuditEntry {
  at: string;
  action: string;
  detail: string;
}

export interface DriftStatus {
  watchId: string;
  namespace: string;
  workload: string;
  policy: DriftPolicy;
  intervalMs: number;
  /** The release whose promotion is the reference, and its image. */
  releaseId: string;
  image: string;
  /** The reference read from the cluster when the baseline was taken. */
  desired?: DriftDesired;
  condition: DriftCondition;
  message: string;
  /** What drifted at the last check (empty when in sync). */
  drift: DriftFinding[];
  lastCheckedAt?: string;
  checks: number;
  /** Checks that found drift, and reverts that were verified. */
  drifted: number;
  reverted: number;
  continuedAsNew: number;
  audit: DriftAuditEntry[];
}

export interface DriftWatchInput extends DriftSettings {
  baseline: DriftBaseline;
  /** Carried over continue-as-new. */
  state?: DriftStatus;
  /** Tests: continue-as-new after this many checks (default: when Temporal suggests it). */
  checksPerRun?: number;
}

/** A new reference (a later promotion of the workload), a new policy or interval: applied at once and checked. */
export interface DriftConfigure extends DriftSettings {
  baseline: DriftBaseline;
}

export interface DriftCheckRequest {
  watchId: string;
  baseline: DriftBaseline;
  desired: DriftDesired;
}

export interface DriftRevertRequest extends DriftCheckRequest {
  findings: DriftFinding[];
}

export const driftConfigureSignal = defineSignal<[DriftConfigure]>('driftConfigure');
/**
 * A release of the workload promoted (sent by the release itself, through `driftFollowPromotion`):
 * its promotion is the new reference, read again from the cluster; the watch keeps its policy and interval.
 */
export const driftPromotedSignal = defineSignal<[DriftBaseline]>('driftPromoted');

/** What `driftFollowPromotion` did: the watch it started or gave the new reference, or why none. */
export type DriftFollowResult = { watchId: string; policy: DriftPolicy; interval: string } | { skipped: string };
export const driftStatusQuery = defineQuery<DriftStatus>('driftStatus');
