/** The schema of `spec.config` (and the plan's `config`). Edge and activities only: zod never runs in workflow code. */
import { z } from 'zod';
import { CONFIG_HASH_LENGTH, CONFIG_KINDS, MAX_CONFIG_REFS, isCopyName } from './config.ts';

z.config({ jitless: true });

/** A source name leaves room for `-<hash>` within the 63 characters a volume name reference allows comfortably. */
const sourceName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label (lowercase letters, digits, -)')
  .max(63 - CONFIG_HASH_LENGTH - 1, `must be at most ${63 - CONFIG_HASH_LENGTH - 1} characters (the copy adds -<${CONFIG_HASH_LENGTH} hex>)`);

/** `spec.config` (and the plan's `config`): strict, each source once, no source named like another's copy. */
export const configRefsSchema = z
  .array(z.strictObject({ kind: z.enum(CONFIG_KINDS, `must be one of ${CONFIG_KINDS.join(', ')}`), name: sourceName }))
  .max(MAX_CONFIG_REFS, `at most ${MAX_CONFIG_REFS} entries`)
  .superRefine((refs, ctx) => {
    refs.forEach((r, i) => {
      if (refs.findIndex((o) => o.kind === r.kind && o.name === r.name) !== i) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `${r.kind} ${r.name} is listed twice` });
      const shadowed = refs.find((o) => o.kind === r.kind && isCopyName(o.name, r.name));
      if (shadowed) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `${r.kind} ${r.name} is named like a copy of ${shadowed.name} (<name>-<${CONFIG_HASH_LENGTH} hex>)` });
    });
  });
