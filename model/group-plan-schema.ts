/**
 * The start-time check of a release group (model/group-plan.ts): its schema, then the rules across
 * members, waves and clusters, then each member's plan in each cluster. Edge and activities only
 * (the parent workflow runs it once as a local activity): zod never runs in workflow code.
 */
import { z } from 'zod';
import { DNS1123 } from './names.ts';
import { desiredReplicas, planProblems } from './plan.ts';
import { notificationsSchema } from './notifications-schema.ts';
import { MAX_CLUSTERS, MAX_MEMBERS, MAX_WAVES, ON_FAILURE, groupRuleProblems, type GroupPlan } from './group-plan.ts';

z.config({ jitless: true });

const name = z.string().max(63).regex(DNS1123);
const groupPlanSchema = z.strictObject({
  name,
  namespace: name,
  members: z.array(z.strictObject({ name, plan: z.unknown(), dependsOn: z.array(name) })).min(1).max(MAX_MEMBERS),
  waves: z
    .array(
      z.strictObject({
        name,
        clusters: z.array(name).min(1).max(MAX_CLUSTERS),
        maxParallel: z.number().int().min(1),
        gate: z
          .strictObject({
            soakMs: z.number().int().min(0).optional(),
            analysis: z.unknown().optional(),
            approval: z
              .strictObject({ approvers: z.array(z.string().min(1)).min(1), minApprovals: z.number().int().min(1), timeoutMs: z.number().int().min(0).optional(), onTimeout: z.enum(['abort', 'rollback']) })
              .optional(),
          })
          .optional(),
      }),
    )
    .min(1)
    .max(MAX_WAVES),
  onFailure: z.enum(ON_FAILURE),
  clusters: z.record(name, z.strictObject({ imageRegistry: z.string().min(1).optional(), analysisAddress: z.string().url().optional(), replicas: z.record(name, desiredReplicas).optional() })),
  notifications: notificationsSchema.optional(),
  source: z.string().optional(),
});

/** Problems with a group plan as `path: reason` lines (the parent's start-time check); empty when valid. */
export function groupPlanProblems(group: unknown): string[] {
  const parsed = groupPlanSchema.safeParse(group);
  if (!parsed.success) return parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  return groupRuleProblems(group as GroupPlan, planProblems);
}
