/** The Git source's status and its bounded lists: audit, commits seen, tracked specs. Workflow-safe. */
import type { AuditEntry, CommitRecord, ConditionType, GitSourceInput, GitSourceStatus } from './messages.ts';
import { MAX_AUDIT, MAX_COMMITS } from './messages.ts';
import { parseDuration } from '../../model/duration.ts';
import { normalizePath, normalizeRepository } from './source.ts';

export class SourceState {
  readonly status: GitSourceStatus;

  constructor(input: GitSourceInput, sourceId: string) {
    this.status = input.state ?? {
      sourceId,
      repository: normalizeRepository(input.repository),
      branch: input.branch,
      path: normalizePath(input.path),
      pollIntervalMs: parseDuration(input.pollInterval),
      condition: { type: 'Watching', message: 'waiting for the first fetch', since: now() },
      polls: 0,
      wakes: 0,
      continuedAsNew: 0,
      tracked: [],
      pending: [],
      watching: [],
      commits: [],
      audit: [],
    };
  }

  audit(action: string, detail: string, commit?: string): void {
    const entry: AuditEntry = { at: now(), action, detail, ...(commit ? { commit } : {}) };
    this.status.audit.push(entry);
    if (this.status.audit.length > MAX_AUDIT) this.status.audit.splice(0, this.status.audit.length - MAX_AUDIT);
  }

  /** Sets the condition; a change of condition (or of its commit) is audited, a repeat is not. */
  condition(type: ConditionType, message: string, commit?: string): void {
    const c = this.status.condition;
    const changed = c.type !== type || c.commit !== commit;
    this.status.condition = { type, message, since: changed ? now() : c.since, ...(commit ? { commit } : {}) };
    if (changed && type !== 'Watching') this.audit(type, message, commit);
  }

  record(r: CommitRecord): void {
    const list = this.status.commits;
    const at = list.findIndex((c) => c.commit === r.commit);
    if (at >= 0) list.splice(at, 1);
    list.push(r);
    if (list.length > MAX_COMMITS) list.splice(0, list.length - MAX_COMMITS);
  }
}

export function now(): string {
  return new Date().toISOString(); // the workflow clock (deterministic)
}
