/**
 * Proven identity for a group's gate approvals, by the rules of release approvals
 * (workflows/release/actions.ts): the parent's worker's identity policy, read once at the start (a
 * local activity, recorded); under `required` only a valid proof from the identity server counts, as
 * its subject; under `optional` a proof, when sent, must be valid; without a policy the claimed `by`
 * counts. A proof binds `approve` on this group (its workflow ID as `releaseId`, its namespace) at
 * this wave (`step`: the wave's index), for a few minutes, once (nonces remembered, bounded).
 *
 * Groups started before GROUP_IDENTITY_PATCH judge the claimed `by` only.
 */
import * as wf from '@temporalio/workflow';
import type { createIdentityActivities } from '../../activities/identity.ts';
import { actionIdentity, rememberNonce, type ActionClaims, type IdentityPolicy, type RememberedNonce } from '../../model/identity.ts';
import type { GroupActionInput } from './messages.ts';

export const GROUP_IDENTITY_PATCH = 'glidepath-group-identity';

const identityActivities = wf.proxyLocalActivities<ReturnType<typeof createIdentityActivities>>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 3 } });

export type GroupActor = { ok: true; by: string; proven: boolean; claims?: ActionClaims | undefined } | { ok: false; why: string };

export class GroupIdentity {
  /** undefined: not read yet (approvals are refused); null: no policy (the claimed identity). */
  policy: IdentityPolicy | null | undefined;
  usedNonces: RememberedNonce[] = [];

  /** Decided before any handler runs. */
  constructor() {
    this.policy = wf.patched(GROUP_IDENTITY_PATCH) ? undefined : null;
  }

  async read(): Promise<void> {
    if (this.policy === null) return;
    this.policy = await identityActivities.identityPolicy();
  }

  /** Who sends `input` for approving the gate of wave `wave` (its index), or why it does not count. */
  approver(input: GroupActionInput, group: { id: string; namespace: string }, wave: number): GroupActor {
    if (this.policy === undefined) return { ok: false, why: "approve: the group has not read the worker's identity policy yet; try again in a moment" };
    if (this.policy === null && input.proof === undefined) return { ok: true, by: input.by, proven: false };
    const id = actionIdentity(this.policy ?? undefined, input, { action: 'approve', releaseId: group.id, namespace: group.namespace, step: wave, nowMs: Date.now(), usedNonces: this.usedNonces });
    if (!id.accepted) return { ok: false, why: id.why.replace('this release requires', 'this group requires').replace('glidepath release approve', 'glidepath group approve') };
    return { ok: true, by: id.by, proven: id.proven, claims: id.claims };
  }

  /** An accepted proof is spent. */
  spend(actor: GroupActor): void {
    if (actor.ok && actor.claims) this.usedNonces = rememberNonce(this.usedNonces, actor.claims, Date.now());
  }
}
