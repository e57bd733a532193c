/** Field schemas shared by the spec's documents. Workflow-safe (no I/O). */
import { z } from 'zod';

z.config({ jitless: true });

export const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const dns1123 = z.string().max(63).regex(DNS1123, 'must be a DNS-1123 label (lowercase letters, digits, "-")');

// Image references: [registry[:port]/]path[:tag][@sha256:digest]
export const imageRef = z
  .string()
  .regex(
    /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/,
    'must be an image reference such as registry.example.com/team/app:v2 or app@sha256:<64 hex>',
  );

/** Copies another schema's issues into a refinement, under `prefix`. */
export function forwardIssues(result: { success: boolean; error?: z.ZodError }, ctx: z.RefinementCtx, prefix: PropertyKey[]): void {
  for (const issue of result.error?.issues ?? []) {
    ctx.addIssue({ code: 'custom', path: [...prefix, ...issue.path], message: issue.message });
  }
}
