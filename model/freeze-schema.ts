/**
 * The schemas of `spec.freeze` (and the plan's `freeze`) and of the worker's freeze policy file
 * (model/freeze.ts holds the rules they share with the workflow). Edge and activities only: zod never
 * runs in workflow code (the worker shares the model frozen, and zod cannot run on frozen schemas).
 */
import { z } from 'zod';
import { MAX_FREEZE_WINDOWS, MAX_OVERRIDERS, RFC3339, WEEKLY_TIME, timeZoneProblem, weeklyMinute, type WeeklySpec } from './freeze.ts';

z.config({ jitless: true });

const windowName = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a lowercase name such as year-end').max(63);
const instant = z.string().regex(RFC3339, 'must be an RFC 3339 time with an offset, such as 2026-12-24T00:00:00Z').refine((s) => !Number.isNaN(Date.parse(s)), 'not a valid date');
const weeklyTime = z.string().regex(WEEKLY_TIME, 'must be a weekday and a 24-hour time, such as "Fri 18:00"');
const weekly = z.strictObject({
  start: weeklyTime,
  end: weeklyTime,
  timeZone: z.string().min(1).superRefine((zone, ctx) => {
    const p = timeZoneProblem(zone);
    if (p) ctx.addIssue({ code: 'custom', message: p });
  }),
});
const overriders = z.array(z.string().min(1).max(256)).max(MAX_OVERRIDERS, `at most ${MAX_OVERRIDERS} overriders`);

const windowFields = {
  name: windowName,
  before: z.string().min(1).optional(),
  start: instant.optional(),
  end: instant.optional(),
  weekly: weekly.optional(),
};

/** Absolute or weekly, exactly one, and a window that opens. */
function windowShape(w: { start?: string | undefined; end?: string | undefined; weekly?: WeeklySpec | undefined }, ctx: z.RefinementCtx): void {
  const absolute = w.start !== undefined || w.end !== undefined;
  if (absolute === (w.weekly !== undefined)) {
    ctx.addIssue({ code: 'custom', path: ['start'], message: 'set start and end (absolute) or weekly, exactly one' });
    return;
  }
  if (absolute) {
    if (w.start === undefined || w.end === undefined) {
      ctx.addIssue({ code: 'custom', path: [w.start === undefined ? 'start' : 'end'], message: 'required with an absolute window (start and end)' });
      return;
    }
    const [s, e] = [Date.parse(w.start), Date.parse(w.end)];
    if (e < s) ctx.addIssue({ code: 'custom', path: ['end'], message: `${w.end} is before start ${w.start}` });
    else if (e === s) ctx.addIssue({ code: 'custom', path: ['end'], message: 'equals start: the window never opens' });
  } else if (w.weekly && weeklyMinute(w.weekly.start) !== undefined && weeklyMinute(w.weekly.start) === weeklyMinute(w.weekly.end)) {
    ctx.addIssue({ code: 'custom', path: ['weekly', 'end'], message: 'equals weekly.start: the window never opens' });
  }
}

function uniqueNames(ws: { name: string }[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  ws.forEach((w, i) => {
    if (seen.has(w.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `another freeze window is named "${w.name}"` });
    seen.add(w.name);
  });
}

/** `spec.freeze` (and the plan's `freeze`): `before` is checked against the strategy by freezePointProblems. */
export const freezeSchema = z.strictObject({
  windows: z.array(z.strictObject(windowFields).superRefine(windowShape)).min(1).max(MAX_FREEZE_WINDOWS, `at most ${MAX_FREEZE_WINDOWS} windows`).superRefine(uniqueNames),
  overriders: overriders.optional(),
});

const scopeName = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a namespace name').max(63);
/** The worker's policy file: windows hold `start` or `promotion` only (it knows no strategy's steps). */
export const freezePolicyFileSchema = z.strictObject({
  windows: z
    .array(
      z
        .strictObject({
          ...windowFields,
          before: z.enum(['start', 'promotion'], 'must be start or promotion (a worker-wide window cannot name a step)').optional(),
          namespaces: z.array(scopeName).max(100).optional(),
          workloads: z.array(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be namespace/name')).max(100).optional(),
        })
        .superRefine(windowShape),
    )
    .max(MAX_FREEZE_WINDOWS, `at most ${MAX_FREEZE_WINDOWS} windows`)
    .superRefine(uniqueNames),
  overriders: overriders.optional(),
});
