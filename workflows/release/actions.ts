/**
 * Human actions (approve, promote, abort, retry as signals and updates; override-freeze as an update only): one check decides whether
 * an action is allowed now and by whom (proven by the identity server's assertion when the worker
 * has an identity policy); a rejected update fails in its validator (nothing in history), a
 * rejected signal is ignored and audited. Only updates carry proofs: a signal handler never
 * verifies one (SIGNAL_PROOF), so that a flood of signals costs a constant amount each.
 */
import * as wf from '@temporalio/workflow';
import type { createIdentityActivities } from '../../activities/identity.ts';
import { actionIdentity, rememberNonce, signalRefusal, type ActionClaims, type IdentityPolicy, type RememberedNonce } from '../../model/identity.ts';
import type { Phase } from '../../model/types.ts';
import { SIGNALS, UPDATES, refusedUpdateSignal, statusQuery, type Action, type ActionInput } from '../messages.ts';
import { now, type ReleaseState } from './state.ts';
import { releasePatched } from './patch-epoch.ts';
import { settled } from './reply-turns.ts';

/** Releases started with this patch read the worker's identity policy at start and check proofs. */
export const RELEASE_IDENTITY = 'glidepath-release-identity';

/**
 * Signals handled under this patch never verify a proof: under `required` a signal is refused,
 * under `optional` it is an unproven claim (its proof ignored). Asked per signal, so that releases
 * already running are covered from their next signal on.
 */
export const SIGNAL_PROOF = 'glidepath-signal-proof';

const identityActivities = wf.proxyLocalActivities<ReturnType<typeof createIdentityActivities>>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 3 } });

/**
 * Who may act, as far as the release knows: the worker's identity policy (read once, recorded) and
 * the nonces of the proofs it accepted (bounded by rememberNonce).
 */
export class IdentityGate {
  /** undefined: not read yet (actions are refused); null: no policy (claimed identity, as before the patch). */
  policy: IdentityPolicy | null | undefined;
  usedNonces: RememberedNonce[] = [];

  /** Decided before any handler runs, so that an action buffered before the start meets the gate. */
  constructor() {
    this.policy = releasePatched(RELEASE_IDENTITY) ? undefined : null;
  }

  /** Reads the policy (a local activity, recorded) at the start of a release started with RELEASE_IDENTITY. */
  async read(): Promise<void> {
    if (this.policy === null) return;
    this.policy = await identityActivities.identityPolicy();
  }
}

/** Who an allowed action counts as. */
export interface Actor {
  by: string;
  proven: boolean;
  claims?: ActionClaims | undefined;
}

export type ActionCheck = { ok: true; actor: Actor } | { ok: false; why: string; auditAs: string };

const ACTIONS = ['approve', 'promote', 'abort', 'retry'] as const;

const ACTIONABLE: Record<Action, readonly Phase[]> = {
  approve: ['AwaitingApproval'],
  promote: ['Paused', 'Progressing', 'Analyzing'],
  abort: ['Progressing', 'Paused', 'AwaitingApproval', 'Analyzing', 'Aborted', 'RolledBack'],
  retry: ['Aborted', 'RolledBack'],
  'override-freeze': ['Paused'], // and only while a freeze window holds the release (freezeProblem)
};

/**
 * Whether `req` may `action` now, and as whom. The identity comes first: under a policy, a proof
 * (or, under `optional`, none) decides who acts; the rules below judge that identity.
 */
export function checkAction(r: ReleaseState, gate: IdentityGate, action: Action, req: unknown): ActionCheck {
  if (gate.policy === undefined) return { ok: false, why: `${action}: the release has not read the worker's identity policy yet; try again in a moment`, auditAs: 'unauthenticated' };
  const hasProof = req !== null && typeof req === 'object' && (req as ActionInput).proof !== undefined;
  if (gate.policy === null && !hasProof) {
    // No identity policy, no proof: the claimed identity, as before.
    const why = rejectAction(r, action, req);
    const auditAs = req !== null && typeof req === 'object' && typeof (req as ActionInput).by === 'string' ? (req as ActionInput).by : 'unknown';
    return why === undefined ? { ok: true, actor: { by: (req as ActionInput).by, proven: false } } : { ok: false, why, auditAs };
  }
  if (req === null || typeof req !== 'object') return { ok: false, why: `${action}: payload must be {"by": "<identity>", "reason": "<text>", "proof": "<assertion>"}`, auditAs: 'unauthenticated' };
  const { status } = r;
  const id = actionIdentity(gate.policy ?? undefined, req as ActionInput, {
    action,
    releaseId: status.releaseId,
    namespace: r.plan.namespace,
    step: action === 'approve' ? status.approvals?.step : status.step.index,
    attempt: status.attempt,
    nowMs: Date.now(), // workflow time
    usedNonces: gate.usedNonces,
  });
  if (!id.accepted) return { ok: false, why: id.why, auditAs: id.auditAs };
  const why = rejectAction(r, action, { ...(req as ActionInput), by: id.by });
  const auditAs = id.proven ? id.by : 'unauthenticated'; // a refused action's claimed name is not evidence
  return why === undefined ? { ok: true, actor: { by: id.by, proven: id.proven, claims: id.claims } } : { ok: false, why, auditAs };
}

/**
 * checkAction for a signal: the same rules, but no proof is verified (SIGNAL_PROOF). Under
 * `required` the signal is refused before anything else; under `optional` its proof is dropped and
 * its `by` judged as a claim; without a policy (or before the policy is read), as checkAction.
 */
export function checkSignal(r: ReleaseState, gate: IdentityGate, action: Action, req: unknown): ActionCheck {
  if (!releasePatched(SIGNAL_PROOF)) return checkAction(r, gate, action, req);
  if (gate.policy?.mode === 'required') return { ok: false, why: signalRefusal(action), auditAs: 'unauthenticated' };
  if (gate.policy?.mode === 'optional' && req !== null && typeof req === 'object') return checkAction(r, gate, action, { ...req, proof: undefined });
  return checkAction(r, gate, action, req);
}

/** Why `req` (its `by` already the identity it acts under) may not `action` now, or undefined when it may. */
export function rejectAction(r: ReleaseState, action: Action, req: unknown): string | undefined {
  const { status, initiator } = r;
  if (req === null || typeof req !== 'object' || typeof (req as ActionInput).by !== 'string' || (req as ActionInput).by.trim() === '') {
    return `${action}: payload must be {"by": "<identity>", "reason": "<text>"}`;
  }
  const { by, reason, full, step, attempt, immediate } = req as ActionInput;
  if (reason !== undefined && typeof reason !== 'string') return `${action}: reason must be a string`;
  if (full !== undefined && typeof full !== 'boolean') return `${action}: full must be true or false`;
  if (full && action !== 'promote') return `${action}: only promote takes "full"`;
  if (r.v2) {
    if (step !== undefined && (!Number.isInteger(step) || step < 0)) return `${action}: step must be a whole number ≥ 0`;
    if (attempt !== undefined && (!Number.isInteger(attempt) || attempt < 1)) return `${action}: attempt must be a whole number ≥ 1`;
    if ((step !== undefined || attempt !== undefined) && action !== 'approve') return `${action}: only approve takes "step" and "attempt"`;
    if (immediate !== undefined && typeof immediate !== 'boolean') return `${action}: immediate must be true or false`;
    if (immediate && action !== 'abort') return `${action}: only abort takes "immediate"`;
    // abort --immediate also cuts short the scale-down delay of an abort or rollback in progress.
    if (action === 'abort' && immediate && (status.phase === 'Aborting' || status.phase === 'RollingBack')) return policyProblem(r, action, by);
  }
  if (action === 'override-freeze' || (action === 'promote' && status.freeze)) return freezeProblem(r, action, by, reason);
  if (!ACTIONABLE[action].includes(status.phase)) {
    return `cannot ${action} ${status.releaseId}: release is ${status.phase}${action === 'approve' ? ' (no approval pending)' : ''}`;
  }
  if (action === 'promote' && status.phase === 'Progressing' && !full) {
    return `cannot promote ${status.releaseId}: a step is in progress; use promote --full to skip the remaining steps`;
  }
  if (action === 'promote' && status.phase === 'Paused' && !full && r.promoteOncePerPause && r.promoteRequested) {
    return `cannot promote ${status.releaseId}: a promote accepted for this pause is already taking effect; promote again once the release pauses again`;
  }
  if (action === 'promote' && status.phase === 'Analyzing' && !full) {
    return `cannot promote ${status.releaseId}: an analysis is running; wait for its verdict, or promote --full`;
  }
  const denied = policyProblem(r, action, by);
  if (denied !== undefined) return denied;
  if (action === 'approve') {
    const pending = status.approvals;
    if (!pending) return `cannot approve ${status.releaseId}: no approval pending`;
    if (r.v2 && attempt !== undefined && attempt !== status.attempt) {
      return `approval for attempt ${attempt} does not count: ${status.releaseId} is on attempt ${status.attempt} (approve again for the gate pending now)`;
    }
    if (r.v2 && step !== undefined && step !== pending.step) {
      return `approval for step ${step + 1} does not count: the pending approval gate is step ${pending.step + 1} (approve again for it)`;
    }
    if (!pending.approvers.includes(by)) return `${by} is not an approver of step ${pending.step + 1} (approvers: ${pending.approvers.join(', ')})`;
    if (by === initiator) return `${by} started this release and cannot approve it (four-eyes rule)`;
    if (pending.granted.some((g) => g.by === by)) return `${by} has already approved step ${pending.step + 1}`;
  }
  return undefined;
}

/** override-freeze: only while a window holds, only by its overriders, with a reason. promote: not while frozen. */
function freezeProblem(r: ReleaseState, action: Action, by: string, reason: string | undefined): string | undefined {
  const { status } = r;
  const f = status.freeze;
  if (!f) return `cannot override-freeze ${status.releaseId}: no freeze window holds it now (release is ${status.phase})`;
  if (action === 'promote') return `cannot promote ${status.releaseId}: frozen until ${f.until} by freeze window ${f.window}; a permitted person may override-freeze`;
  if (!f.overriders.includes(by)) return `${by} may not override freeze window ${f.window} (overriders: ${f.overriders.length ? f.overriders.join(', ') : 'none'})`;
  if (reason === undefined || reason.trim() === '') return 'override-freeze: a reason is required (--reason), for the audit trail';
  return undefined;
}

/** Why `by` may not take `action` under the release policy, or undefined. */
function policyProblem(r: ReleaseState, action: Action, by: string): string | undefined {
  const policy = r.plan.policy;
  if ((action === 'promote' || action === 'retry') && policy.promoters && !policy.promoters.includes(by)) {
    return `${by} may not ${action} this release (promoters: ${policy.promoters.join(', ')})`;
  }
  if (action === 'abort' && policy.aborters && !policy.aborters.includes(by)) {
    return `${by} may not abort this release (aborters: ${policy.aborters.join(', ')})`;
  }
  return undefined;
}

/**
 * Applies an allowed action as `actor`: remembers its proof's nonce, records it and sets the flag
 * the running attempt waits on.
 */
export function applyAction(r: ReleaseState, gate: IdentityGate, action: Action, req: ActionInput, actor: Actor): void {
  const { by } = actor;
  if (actor.claims) gate.usedNonces = rememberNonce(gate.usedNonces, actor.claims, Date.now());
  const marks = [req.full ? 'full' : req.immediate ? 'immediate' : undefined, gate.policy && !actor.proven ? 'unproven identity' : undefined].filter(Boolean);
  r.audit(by, action, true, req.reason, marks.length > 0 ? marks.join(', ') : undefined);
  switch (action) {
    case 'approve': {
      const pending = r.status.approvals;
      if (!pending) break;
      pending.granted.push({ by, at: now(), ...(req.reason ? { reason: req.reason } : {}) });
      if (pending.eligible) pending.eligible = pending.eligible.filter((a) => a !== by);
      break;
    }
    case 'promote':
      r.promoteRequested = true;
      if (req.full) {
        r.promoteFull = true;
        if (r.v2) r.gateScope?.cancel(); // a running step or blue/green analysis ends; the release goes on
      }
      break;
    case 'abort':
      if (r.v2 && req.immediate) r.skipDelay = true;
      if (r.status.phase === 'Aborting' || r.status.phase === 'RollingBack') break;
      if (r.status.phase === 'Aborted' || r.status.phase === 'RolledBack') {
        r.closeRequested = true;
      } else {
        r.requestStop({ kind: 'abort', by, reason: req.reason ? `aborted by ${by}: ${req.reason}` : `aborted by ${by}` });
      }
      break;
    case 'retry':
      r.retryRequested = true;
      break;
    case 'override-freeze':
      r.freeze?.override(by, req.reason);
      break;
  }
}

/**
 * Registers the signal, update and query handlers (before the workflow's first await). The gate it
 * returns reads the identity policy (`read`, at the start).
 */
export function registerHandlers(r: ReleaseState): IdentityGate {
  const gate = new IdentityGate();
  wf.setHandler(refusedUpdateSignal, (rep) => {
    const text = (v: unknown, fallback: string): string => (typeof v === 'string' && v.trim() !== '' ? v : fallback);
    const action = ACTIONS.find((a) => a === rep?.action);
    if (!r.v2 || action === undefined) return;
    r.rejectSignal(action, text(rep.by, 'unknown'), typeof rep.reason === 'string' ? rep.reason : undefined, text(rep.why, 'no reason given'), 'update refused (reported by the client)');
  });
  for (const action of ACTIONS) {
    wf.setHandler(SIGNALS[action], (req) => {
      const check = checkSignal(r, gate, action, req);
      if (!check.ok) {
        const reason = typeof req?.reason === 'string' ? req.reason : undefined;
        if (r.v2) r.rejectSignal(action, check.auditAs, reason, check.why);
        else r.audit(check.auditAs, action, false, reason, `ignored: ${check.why}`);
        return;
      }
      applyAction(r, gate, action, req, check.actor);
    });
    wf.setHandler(
      UPDATES[action],
      async (req) => {
        // The validator ran just before, in the same activation: the same check, the same answer.
        const check = checkAction(r, gate, action, req);
        if (!check.ok) throw wf.ApplicationFailure.nonRetryable(check.why, 'ActionRefused');
        applyAction(r, gate, action, req, check.actor);
        if (r.v2) await settled();
        return r.status;
      },
      {
        validator: (req) => {
          const check = checkAction(r, gate, action, req);
          if (!check.ok) throw new Error(check.why);
        },
      },
    );
  }
  // override-freeze is an update only: a permitted person's explicit act, proven when the worker has an identity policy.
  wf.setHandler(
    UPDATES['override-freeze'],
    async (req) => {
      const check = checkAction(r, gate, 'override-freeze', req);
      if (!check.ok) throw wf.ApplicationFailure.nonRetryable(check.why, 'ActionRefused');
      applyAction(r, gate, 'override-freeze', req, check.actor);
      await settled();
      return r.status;
    },
    {
      validator: (req) => {
        const check = checkAction(r, gate, 'override-freeze', req);
        if (!check.ok) throw new Error(check.why);
      },
    },
  );
  wf.setHandler(statusQuery, () => r.status);
  return gate;
}
