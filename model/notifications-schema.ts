/** The schema of `spec.notifications` (and the plan's `notifications`). Edge and activities only: zod never runs in workflow code. */
import { z } from 'zod';
import { MAX_SUBSCRIPTIONS, MAX_TEMPLATE_CHARS, RECEIVER_TYPES, TRIGGERS, httpUrlProblem, templateFieldProblems } from './notifications.ts';

z.config({ jitless: true });

const secretKeyRef = z.strictObject({
  secretKeyRef: z.strictObject({ name: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a Secret name').max(253), key: z.string().min(1).max(253) }),
});

const subscription = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a lowercase name such as ops-webhook').max(63),
    type: z.enum(RECEIVER_TYPES, `must be one of ${RECEIVER_TYPES.join(', ')}`),
    triggers: z.array(z.string()).min(1, 'needs at least one trigger'),
    url: z.string().optional(),
    urlFrom: secretKeyRef.optional(),
    signingKeyFrom: secretKeyRef.optional(),
    template: z.string().min(1).max(MAX_TEMPLATE_CHARS).optional(),
  })
  .superRefine((v, ctx) => {
    v.triggers.forEach((t, i) => {
      if (!(TRIGGERS as readonly string[]).includes(t)) ctx.addIssue({ code: 'custom', path: ['triggers', i], message: `unknown trigger "${t}"; triggers are ${TRIGGERS.join(', ')}` });
    });
    if (new Set(v.triggers).size !== v.triggers.length) ctx.addIssue({ code: 'custom', path: ['triggers'], message: 'lists a trigger twice' });
    if ((v.url === undefined) === (v.urlFrom === undefined)) ctx.addIssue({ code: 'custom', path: ['url'], message: 'set url or urlFrom (a Secret holding the URL), exactly one' });
    if (v.url !== undefined) {
      const problem = httpUrlProblem(v.url);
      if (problem) ctx.addIssue({ code: 'custom', path: ['url'], message: problem });
    }
    if (v.signingKeyFrom && (v.type === 'slack' || v.type === 'teams')) {
      ctx.addIssue({ code: 'custom', path: ['signingKeyFrom'], message: `${v.type} incoming webhooks are not signed; signingKeyFrom is for webhook and cloudevents` });
    }
    if (v.template !== undefined) for (const message of templateFieldProblems(v.template)) ctx.addIssue({ code: 'custom', path: ['template'], message });
  });

/** `spec.notifications` of a Release, and `notifications` of a plan (the same shape). */
export const notificationsSchema = z
  .array(subscription)
  .max(MAX_SUBSCRIPTIONS, `at most ${MAX_SUBSCRIPTIONS} subscriptions`)
  .superRefine((subs, ctx) => {
    const seen = new Set<string>();
    subs.forEach((s, i) => {
      if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `another subscription is named "${s.name}"` });
      seen.add(s.name);
    });
  });
