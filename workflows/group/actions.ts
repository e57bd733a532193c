/**
 * The group's handlers: the status query, and approve, abort and retry as updates whose validators
 * refuse what cannot apply (nothing is written to history for a refused update).
 */
import * as wf from '@temporalio/workflow';
import { signalAbort } from './cells.ts';
import { SETTLED_GROUP_PHASES, abortGroupUpdate, approveGroupUpdate, groupStatusQuery, retryGroupUpdate, type GroupActionInput } from './messages.ts';
import { now, type GroupState } from './state.ts';

function who(input: GroupActionInput): void {
  if (typeof input?.by !== 'string' || input.by.trim() === '') throw new Error('by: required (who acts)');
  if (input.reason !== undefined && typeof input.reason !== 'string') throw new Error('reason: must be a string');
}

export function registerGroupHandlers(g: GroupState): void {
  wf.setHandler(groupStatusQuery, () => g.status);

  wf.setHandler(
    approveGroupUpdate,
    (input) => {
      const gate = g.awaitingApproval;
      const a = gate?.approval;
      if (!gate || !a) return g.status;
      a.granted.push({ by: input.by, at: now(), ...(input.reason ? { reason: input.reason } : {}) });
      g.audit(input.by, 'approve', true, input.reason, `wave ${gate.wave} (${a.granted.length}/${a.required})`);
      return g.status;
    },
    {
      validator: (input) => {
        who(input);
        const gate = g.awaitingApproval;
        const a = gate?.approval;
        if (!gate || !a) throw new Error(`no gate is awaiting approval (group is ${g.status.phase}: ${g.status.message})`);
        if (input.wave !== undefined && input.wave !== gate.wave) throw new Error(`the gate awaiting approval is wave ${gate.wave}'s, not ${input.wave}'s`);
        if (input.by === g.status.initiator) throw new Error(`${input.by} started this group and may not approve its gates (four-eyes rule)`);
        if (!a.approvers.includes(input.by)) throw new Error(`${input.by} is not an approver of wave ${gate.wave} (approvers: ${a.approvers.join(', ')})`);
        if (a.granted.some((x) => x.by === input.by)) throw new Error(`${input.by} has already approved wave ${gate.wave}`);
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
