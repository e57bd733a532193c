/** The drift watch's status and its bounded audit. Workflow-safe. */
import { parseDuration } from '../../model/duration.ts';
import type { DriftFinding } from '../../model/drift.ts';
import type { DriftCondition, DriftStatus, DriftWatchInput } from './messages.ts';
import { MAX_DRIFT_AUDIT, MAX_FINDINGS } from './messages.ts';

export function now(): string {
  return new Date().toISOString(); // the workflow clock (deterministic)
}

export class DriftState {
  readonly status: DriftStatus;

  constructor(input: DriftWatchInput, watchId: string) {
    this.status = input.state ?? {
      watchId,
      namespace: input.baseline.target.namespace,
      workload: input.baseline.target.workload.name,
      policy: input.policy,
      intervalMs: parseDuration(input.interval),
      releaseId: input.baseline.releaseId,
      image: input.baseline.image,
      condition: 'Pending',
      message: 'waiting for the first check',
      drift: [],
      checks: 0,
      drifted: 0,
      reverted: 0,
      continuedAsNew: 0,
      audit: [],
    };
  }

  audit(action: string, detail: string): void {
    const list = this.status.audit;
    list.push({ at: now(), action, detail: detail.slice(0, 1000) });
    if (list.length > MAX_DRIFT_AUDIT) list.splice(0, list.length - MAX_DRIFT_AUDIT);
  }

  /** Sets the condition; a change of condition is audited, a repeat is not. */
  condition(type: DriftCondition, message: string): void {
    const changed = this.status.condition !== type;
    this.status.condition = type;
    this.status.message = message.slice(0, 1000);
    if (changed && type !== 'Pending') this.audit(type, message);
  }

  setDrift(findings: DriftFinding[]): void {
    this.status.drift = findings.slice(0, MAX_FINDINGS);
  }
}

export function describeFindings(findings: DriftFinding[]): string {
  return findings.map((f) => `${f.field}: ${f.live} (expected ${f.desired})`).join('; ');
}
