/**
 * Human actions (approve, promote, abort, retry) as signals and updates: one check decides whether
 * an action is allowed now and by whom; a rejected update fails in its validator (nothing in
 * history), a rejected signal is ignored and audited.
 */
import * as wf from '@temporalio/workflow';
import type { Phase } from '../../spec/types.ts';
import { SIGNALS, UPDATES, statusQuery, type Action, type ActionInput } from '../messages.ts';
import { now, type ReleaseState } from './state.ts';

const ACTIONABLE: Record<Action, readonly Phase[]> = {
  approve: ['AwaitingApproval'],
  promote: ['Paused', 'Progressing', 'Analyzing'],
  abort: ['Progressing', 'Paused', 'AwaitingApproval', 'Analyzing', 'Aborted', 'RolledBack'],
  retry: ['Aborted', 'RolledBack'],
};

/** Why `req` may not `action` now, or undefined when it may. */
export function rejectAction(r: ReleaseState, action: Action, req: unknown): string | undefined {
  const { status, plan, initiator } = r;
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
}

/** Applies an allowed action: records it and sets the flag the running attempt waits on. */
export function applyAction(r: ReleaseState, action: Action, req: ActionInput): void {
  r.audit(req.by, action, true, req.reason, req.full ? 'full' : undefined);
  switch (action) {
    case 'approve':
      r.status.approvals?.granted.push({ by: req.by, at: now(), ...(req.reason ? { reason: req.reason } : {}) });
      break;
    case 'promote':
      r.promoteRequested = true;
      if (req.full) r.promoteFull = true;
      break;
    case 'abort':
      if (r.status.phase === 'Aborted' || r.status.phase === 'RolledBack') {
        r.closeRequested = true;
      } else {
        r.requestStop({ kind: 'abort', by: req.by, reason: req.reason ? `aborted by ${req.by}: ${req.reason}` : `aborted by ${req.by}` });
      }
      break;
    case 'retry':
      r.retryRequested = true;
      break;
  }
}

/** Registers the signal, update and query handlers (before the workflow's first await). */
export function registerHandlers(r: ReleaseState): void {
  for (const action of ['approve', 'promote', 'abort', 'retry'] as const) {
    wf.setHandler(SIGNALS[action], (req) => {
      const why = rejectAction(r, action, req);
      if (why !== undefined) {
        const by = req !== null && typeof req === 'object' && typeof req.by === 'string' ? req.by : 'unknown';
        r.audit(by, action, false, typeof req?.reason === 'string' ? req.reason : undefined, `ignored: ${why}`);
        return;
      }
      applyAction(r, action, req);
    });
    wf.setHandler(
      UPDATES[action],
      (req) => {
        applyAction(r, action, req);
        return r.status;
      },
      {
        validator: (req) => {
          const why = rejectAction(r, action, req);
          if (why !== undefined) throw new Error(why);
        },
      },
    );
  }
  wf.setHandler(statusQuery, () => r.status);
}
