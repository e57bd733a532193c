/** Field schemas shared by the spec's documents. Workflow-safe (no I/O). */
import { z } from 'zod';
import { DNS1123 } from './names.ts';
import { buildTagProblem, referenceProblem } from './reference.ts';

z.config({ jitless: true });

export { DNS1123 };

export const dns1123 = z.string().max(63).regex(DNS1123, 'must be a DNS-1123 label (lowercase letters, digits, "-")');

// Image references by the distribution/reference grammar (model/reference.ts).
export const imageRef = z.string().superRefine((v, ctx) => {
  const problem = referenceProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: `must be an image reference such as registry.example.com/team/app:v2 or app@sha256:<64 hex> (${problem})` });
});

/** A build tag: a bare tag, or a full reference without a digest. */
export const buildTag = z.string().superRefine((v, ctx) => {
  const problem = buildTagProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** A Dockerfile path: relative to the build context and inside it (no absolute path, no ".."). */
export const dockerfilePath = z.string().min(1).superRefine((v, ctx) => {
  if (v.startsWith('/') || /^[A-Za-z]:/.test(v) || v.split(/[\\/]/).includes('..') || v.includes('\0')) {
    ctx.addIssue({ code: 'custom', message: 'must be a path inside build.context, relative to it and without ".." (e.g. docker/Dockerfile)' });
  }
});

/** System directories that are never a build context (the activity checks the real path too). */
export const REFUSED_CONTEXT_DIRS = ['/proc', '/sys', '/dev', '/etc', '/run', '/var/run', '/root', '/boot'];

/** A build context: not the root and not a system directory (checked as written; the worker checks its real path). */
export const buildContextPath = z.string().min(1).superRefine((v, ctx) => {
  if (!v.startsWith('/')) return;
  const parts: string[] = [];
  for (const seg of v.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  const abs = `/${parts.join('/')}`;
  if (abs === '/' || REFUSED_CONTEXT_DIRS.some((d) => abs === d || abs.startsWith(`${d}/`))) {
    ctx.addIssue({ code: 'custom', message: `${abs} is the root or a system directory, never a build context` });
  }
});

/** Copies another schema's issues into a refinement, under `prefix`. */
export function forwardIssues(result: { success: boolean; error?: z.ZodError }, ctx: z.RefinementCtx, prefix: PropertyKey[]): void {
  for (const issue of result.error?.issues ?? []) {
    ctx.addIssue({ code: 'custom', path: [...prefix, ...issue.path], message: issue.message });
  }
}

/** A replica limit of a basic canary (model/basic-canary.ts): a count or a percentage. */
export const intOrPercentSchema = z.union([z.number().int().min(0), z.string().regex(/^(\d|[1-9]\d|100)%$/, 'must be a whole number ≥ 0 or a percentage 0–100% such as "25%"')]);
