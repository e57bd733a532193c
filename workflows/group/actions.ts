/**
 * The group's handlers: the status query, and approve, abort and retry as updates whose validators
 * refuse what cannot apply (nothing is written to history for a refused update).
 */
import * as wf from '@temporalio/workflow';
import { signalAbort } from './cells.ts';
import { SETTLED_GROUP_PHASES, abortGroupUpdate, approveGroupUpdate, groupStatusQuery, retryGroupUpdate, type GroupActionInput } from './messages.ts';
import type { GroupActor } from './identity.ts';
import { now, type GroupState } from './state.ts';

function who(input: GroupActionInput, proofAllowed = false): void {
  if (input === null || typeof input !== 'object') throw new Error('payload must be {"by": "<identity>", "reason": "<text>"}');
  const proven = proofAllowed && input.proof !== undefined;
  if (!proven && (typeof input.by !== 'string' || input.by.trim() === '')) throw new Error('by: required (who acts)');
  if (input.by !== undefined && typeof input.by !== 'string') throw new Error('by: must be a string');
  if (input.reason !== undefined && typeof input.reason !== 'string') throw new Error('reason: must be a string');
  if (input.proof !== undefined && !proofAllowed) throw new Error('proof: only approve takes a proof');
}

/** Who approves: the claimed `by`, or under the worker's identity policy the proof's subject. */
function approver(g: GroupState, input: GroupActionInput): GroupActor {
  return g.identity.approver(input, { id: g.status.groupId, namespace: g.group.namespace }, g.status.wave);
}

export function registerGroupHandlers(g: GroupState): void {
  wf.setHandler(groupStatusQuery, () => g.status);

  wf.setHandler(
    approveGroupUpdate,
    (input) => {
      const gate = g.awaitingApproval;
      const a = gate?.approval;
      const actor = approver(g, input);
      if (!gate || !a || !actor.ok) return g.status;
      g.identity.spend(actor);
      a.granted.push({ by: actor.by, at: now(), ...(input.reason ? { reason: input.reason } : {}) });
      const unproven = g.identity.policy && !actor.proven ? ', unproven identity' : '';
      g.audit(actor.by, 'approve', true, input.reason, `wave ${gate.wave} (${a.granted.length}/${a.required})${unproven}`);
      return g.status;
    },
    {
      validator: (input) => {
        who(input, true);
        const gate = g.awaitingApproval;
        const a = gate?.approval;
        if (!gate || !a) throw new Error(`no gate is awaiting approval (group is ${g.status.phase}: ${g.status.message})`);
        if (input.wave !== undefined && input.wave !== gate.wave) throw new Error(`the gate awaiting approval is wave ${gate.wave}'s, not ${input.wave}'s`);
        const actor = approver(g, input);
        if (!actor.ok) throw new Error(actor.why);
        const by = actor.by;
        if (by === g.status.initiator) throw new Error(`${by} started this group and may not approve its gates (four-eyes rule)`);
        if (!a.approvers.includes(by)) throw new Error(`${by} is not an approver of wave ${gate.wave} (approvers: ${a.approvers.join(', ')})`);
        if (a.granted.some((x) => x.by === by)) throw new Error(`${by} has already approved wave ${gate.wave}`);
      },
    },
  );

  wf.setHandler(
    abortGroupUpdate,
    async (input) => {
      g.abort = { by: input.by, ...(input.reason ? { reason: input.reason } : {}) };
      g.audit(input.by, 'abort', true, input.reason);
      await Promise.all([...g.inFlight].map((id) => signalAbort(g, id)));
      return g.status;
    },
    {
      validator: (input) => {
        who(input);
        if (SETTLED_GROUP_PHASES.includes(g.status.phase)) throw new Error(`the group has ended (${g.status.phase})`);
        if (g.abort) throw new Error(`the group is being aborted already (by ${g.abort.by})`);
      },
    },
  );

  wf.setHandler(
    retryGroupUpdate,
    (input) => {
      g.retryRequested = true;
      g.audit(input.by, 'retry', true, input.reason);
      return g.status;
    },
    {
      validator: (input) => {
        who(input);
        if (g.status.phase !== 'Paused') throw new Error(`only a group paused after a failure can be retried (it is ${g.status.phase})`);
      },
    },
  );
}
