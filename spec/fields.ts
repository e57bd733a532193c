/** Field schemas shared by the spec's documents. Workflow-safe (no I/O). */
import { z } from 'zod';

z.config({ jitless: true });

export const dns1123 = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label (lowercase letters, digits, "-")');

/** Copies another schema's issues into a refinement, under `prefix`. */
export function forwardIssues(result: { success: boolean; error?: z.ZodError }, ctx: z.RefinementCtx, prefix: PropertyKey[]): void {
  for (const issue of result.error?.issues ?? []) {
    ctx.addIssue({ code: 'custom', path: [...prefix, ...issue.path], message: issue.message });
  }
}
