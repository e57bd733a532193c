/**
 * Cleanup that does every part it can: each part runs even when an earlier one failed, every
 * failure is kept, and the end is one error listing each part that failed. That error is retryable
 * (the cleanup activity profile retries it, and its own non-retryable list decides what stops it):
 * a missing routing object or a refused request in one part never leaves the others undone.
 */
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../errors.ts';
import { isNotFound } from './errors.ts';

export type { CleanupReport };

import type { CleanupReport } from '../contract.ts';

/** The type of the aggregate failure when the parts failed for different (or retryable) reasons. */
export const CLEANUP_INCOMPLETE = 'CleanupIncomplete';

/** Types that retrying cannot fix: when every failed part failed with one of these (the same one), the aggregate carries it. */
const PERMANENT = new Set<string>([ErrorType.Forbidden, ErrorType.Unauthorized, ErrorType.InvalidSpec]);

export class CleanupParts {
  readonly failures: { part: string; error: unknown }[] = [];
  readonly drift: string[] = [];

  /** Runs one part; a failure is recorded, not thrown. Returns whether it succeeded. */
  async run(part: string, fn: () => Promise<void | string[] | CleanupReport>): Promise<boolean> {
    try {
      const out = await fn();
      if (Array.isArray(out)) this.drift.push(...out);
      else if (out && typeof out === 'object') this.drift.push(...out.drift);
      return true;
    } catch (err) {
      this.failures.push({ part, error: err });
      return false;
    }
  }

  /** Records a part not attempted because running it now would be unsafe. */
  skip(part: string, why: string): void {
    this.failures.push({ part, error: new Error(`not done: ${why}`) });
  }

  /** Whether `part` failed only because its object is gone (nothing left to clean there). */
  failedNotFound(part: string): boolean {
    const f = this.failures.filter((x) => x.part === part);
    return f.length > 0 && f.every((x) => isNotFound(x.error) || (x.error instanceof ApplicationFailure && x.error.type === ErrorType.NotFound));
  }

  /** The report, or one retryable error naming every part that failed. */
  finish(what: string): CleanupReport {
    const drift = [...new Set(this.drift)];
    if (this.failures.length === 0) return { drift };
    const types = new Set(this.failures.map((f) => (f.error instanceof ApplicationFailure ? f.error.type : undefined) ?? 'Error'));
    const [only] = [...types];
    const type = types.size === 1 && only && PERMANENT.has(only) ? only : CLEANUP_INCOMPLETE;
    const list = this.failures.map((f) => `${f.part}: ${describe(f.error)}`).join('; ');
    return failWith(`${what}: ${this.failures.length} part${this.failures.length === 1 ? '' : 's'} failed (${list})${drift.length ? `; drift: ${drift.join('; ')}` : ''}`, type);
  }
}

function describe(err: unknown): string {
  if (err instanceof ApplicationFailure) return `${err.type ?? 'Error'}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

function failWith(message: string, type: string): never {
  throw ApplicationFailure.create({ message, type, nonRetryable: false });
}
