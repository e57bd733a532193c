/** The Git source's input, status, messages and search attribute (shared by the workflow, its activities and the CLI). */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { GitSourceSpec } from './source.ts';

/** The commit a release was started from (on the release's workflow): "which commit runs where" is one query. */
export const COMMIT_ATTRIBUTE = defineSearchAttributeKey('GlidepathCommit', SearchAttributeType.KEYWORD);

/** Audit entries kept (the oldest go first). */
export const MAX_AUDIT = 50;
/** Commits kept in the status (the newest last). */
export const MAX_COMMITS = 20;
/** Release files tracked per source (the documents' reader refuses more); also the most releases watched. */
export const MAX_TRACKED_FILES = 100;
/** How often releases the source started are checked while some have not settled (at most the poll interval). */
export const WATCH_INTERVAL_MS = 10_000;

/** Named conditions of a source. `Watching` is the healthy one. */
export type ConditionType = 'Watching' | 'LintFailed' | 'SignatureRefused' | 'Unreachable' | 'AuthFailed' | 'NotFound' | 'ForcePushed' | 'ReleaseInFlight' | 'StartFailed' | 'RevertConflict' | 'RevertFailed';

export interface SourceCondition {
  type: ConditionType;
  message: string;
  commit?: string;
  since: string;
}

export interface AuditEntry {
  at: string;
  action: string;
  commit?: string;
  detail: string;
}

export type ReleaseOutcome = 'started' | 'already-started' | 'in-flight' | 'failed';

/**
 * What a tracked document starts: a release (absent, as before the other kinds), a `releaseGroup`
 * workflow for a ReleaseGroup document, or an introduction on the API's workflow for an ApiVersion one.
 */
export type DocumentKind = 'group' | 'apiVersion';

export interface CommitRecord {
  commit: string;
  at: string;
  subject: string;
  /** What the source did with the commit. */
  result: 'baseline' | 'unchanged' | 'released' | 'lint-failed' | 'signature-refused' | 'glidepath-revert' | 'pending';
  releases: { file: string; workflowId: string; outcome: ReleaseOutcome; detail?: string; kind?: DocumentKind }[];
  problems?: string[];
  forcePushed?: boolean;
}

export interface TrackedSpec {
  kind?: DocumentKind;
  file: string;
  specHash: string;
  workflowId: string;
  /** The commit the spec was last released (or baselined) from. */
  commit: string;
  /**
   * The last commit whose content of this file the source saw deployed: taken as running (baseline),
   * promoted or serving, or restored by Glidepath's own revert. Absent on entries from before it was
   * kept: `commit` stands for it. A group's or API version's revert restores its files to it.
   */
  lastGood?: string;
}

export interface PendingStart {
  kind?: DocumentKind;
  file: string;
  specHash: string;
  workflowId: string;
  commit: string;
}

/**
 * A release, group or API version the source started, watched until it settles: a rollback or abort
 * (for an API version: a failed introduction) is written back to Git.
 */
export interface ReleaseWatch {
  sourceId: string;
  workflowId: string;
  file: string;
  commit: string;
  /** A group or API version; absent for a release. */
  kind?: DocumentKind;
  /** Groups and API versions: the commit whose content of their files a revert restores (the file's last good commit); absent: `commit`'s parent. */
  baseCommit?: string;
}

export type WatchedOutcome = { state: 'gone' } | { state: 'known'; phase: string; canaryImage: string; stableImage?: string; message: string };

/**
 * Where a group or API version the source started stands. `settled` says what the source does:
 * `revert` writes it back, `kept` leaves Git as it is (`detail` says why, audited as revert-skipped),
 * `succeeded` makes its commit the file's last good one.
 */
export type DocumentOutcome =
  | { state: 'gone' }
  | { state: 'running'; phase: string }
  | { state: 'settled'; phase: string; message: string; writeBack: 'revert' | 'kept' | 'succeeded'; detail?: string; revertOf: string; what: string };

export interface GitSourceStatus {
  sourceId: string;
  repository: string;
  branch: string;
  path: string;
  pollIntervalMs: number;
  condition: SourceCondition;
  lastCommit?: string;
  /**
   * The last commit accepted under the repository's signing policy (or with no policy): its
   * `.glidepath/allowed_signers` decides the next head. A Glidepath revert, unsigned, never becomes it.
   */
  trustedCommit?: string;
  lastPolledAt?: string;
  polls: number;
  wakes: number;
  continuedAsNew: number;
  tracked: TrackedSpec[];
  /**
   * Whether ReleaseGroup and ApiVersion documents are tracked (set at the first commit); absent on
   * sources from before they were started from Git, whose first commit holding them takes them as running.
   */
  groupsAndApisTracked?: boolean;
  /** Spec changes not started yet (a release of the workload was in flight): retried at every poll. */
  pending: PendingStart[];
  /** Releases started from this source that have not settled yet. */
  watching: ReleaseWatch[];
  commits: CommitRecord[];
  audit: AuditEntry[];
}

export interface GitSourceInput extends GitSourceSpec {
  /** Carried over continue-as-new. */
  state?: GitSourceStatus;
  /** A wake that arrived before continue-as-new and is not served yet. */
  woken?: boolean;
  /** Tests: continue-as-new after this many polls (default: when Temporal suggests it). */
  pollsPerRun?: number;
}

export interface WakeRequest {
  /** Who woke it (e.g. "webhook"). */
  by: string;
  /** The commit the forge reported, for the audit only: the source fetches the head itself. */
  commit?: string;
}

export const wakeSignal = defineSignal<[WakeRequest]>('wake');
export const gitSourceStatusQuery = defineQuery<GitSourceStatus>('gitSourceStatus');

/** What the fetch activity answers. */
export interface FetchedHead {
  commit: string;
  /** Whether `commit` descends from the last commit seen; absent when there was none or it is the same. */
  descends?: boolean;
  subject: string;
  authorEmail: string;
  /** The release a Glidepath revert commit reverts (its `Glidepath-Revert-Of` trailer). */
  revertOf?: string;
  /** Present when the repository has a signing policy (activities/git/signatures.ts). */
  signature?: SignatureCheck;
}

/** A head checked against the signing policy of `policyCommit`. */
export interface SignatureCheck {
  verified: boolean;
  policyCommit: string;
  /** git's own words: the signer and key when good, why not otherwise. */
  detail: string;
}

/** A ReleaseGroup or ApiVersion document at a commit: what it starts and the hash "its spec changed" compares. */
export interface OtherDocument {
  kind: DocumentKind;
  file: string;
  /** The `releaseGroup` workflow (`group_<namespace>_<name>`) or the API's workflow (`api-<namespace>-<api>`). */
  workflowId: string;
  /** `namespace/name` of the group, or `namespace/api version` of the API version. */
  name: string;
  specHash: string;
}

export interface ReadResult {
  releases: { file: string; workflowId: string; service: string; image: string; specHash: string }[];
  /** ReleaseGroup and ApiVersion documents (absent from readers before they were started from Git). */
  others?: OtherDocument[];
  notStarted: { file: string; reason: string }[];
  problems: string[];
  moreProblems: number;
}

/** Which source an activity works for. */
export interface SourceRef {
  sourceId: string;
  repository: string;
  branch: string;
  path: string;
  credentials?: GitSourceSpec['credentials'];
}

export interface StartRequest extends SourceRef {
  commit: string;
  file: string;
  specHash: string;
  initiator: string;
}

export interface StartResult {
  outcome: ReleaseOutcome;
  workflowId: string;
  detail?: string;
}
