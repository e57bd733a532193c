/**
 * Webhook gates with Flagger's types and semantics (`spec.webhooks`): outside systems asked for a
 * go/no-go at fixed points of a release. Workflow-safe; the same schema checks the Release at lint
 * and the plan at the workflow's start.
 *
 * - confirm-rollout: before anything is touched; polled every `interval` until it answers 2xx.
 * - pre-rollout: after preflight, before the first step; a non-2xx answer (after `retries`) rolls back.
 * - rollout: during each analysis, every `interval` (a load generator, a smoke test); a non-2xx
 *   answer after `retries` rolls back.
 * - confirm-traffic-increase: before each step that raises the canary weight; polled until 2xx.
 * - confirm-promotion: before promotion (canary) or the switch (blue/green); polled until 2xx.
 * - post-rollout: once the release is promoted or put back; its answer is only recorded.
 * - rollback: polled every `interval` while the release runs; a 2xx answer aborts the release.
 * - event: every release event (the notification triggers), as a signed-or-not JSON webhook.
 */
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { receiverUrlProblem, type SecretKeyRef } from './notifications.ts';

z.config({ jitless: true });

export const WEBHOOK_TYPES = ['confirm-rollout', 'pre-rollout', 'rollout', 'confirm-traffic-increase', 'confirm-promotion', 'post-rollout', 'rollback', 'event'] as const;
export type WebhookType = (typeof WEBHOOK_TYPES)[number];

export const MAX_WEBHOOKS = 20;
/** Flagger's default request timeout. */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 60_000;
export const MAX_WEBHOOK_TIMEOUT_MS = 10 * 60_000;
export const DEFAULT_WEBHOOK_INTERVAL_MS = 15_000;
export const DEFAULT_WEBHOOK_RETRIES = 3;

export interface WebhookSpec {
  name: string;
  type: WebhookType;
  url?: string | undefined;
  urlFrom?: { secretKeyRef: SecretKeyRef } | undefined;
  /** Per request. */
  timeoutMs: number;
  /** Between polls (confirm-*, rollback, rollout) and between retries. */
  intervalMs: number;
  /** pre-rollout and rollout: answers tolerated before the release rolls back. */
  retries: number;
  /** Flagger's `metadata`: sent as is in the payload. */
  metadata?: Record<string, string> | undefined;
}

const msField = (min: number, max: number) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    let ms: number;
    try {
      ms = parseDuration(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
    if (ms < min || ms > max) ctx.addIssue({ code: 'custom', message: `must be between ${min / 1000}s and ${max / 1000}s` });
    return ms;
  });

const secretRef = z.strictObject({ secretKeyRef: z.strictObject({ name: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a Secret name').max(253), key: z.string().min(1).max(253) }) });

const hookCommon = {
  name: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a lowercase name such as load-test').max(63),
  type: z.enum(WEBHOOK_TYPES, `must be one of ${WEBHOOK_TYPES.join(', ')}`),
  url: z.string().optional(),
  urlFrom: secretRef.optional(),
  metadata: z.record(z.string(), z.string().max(1024)).refine((m) => Object.keys(m).length <= 32, 'at most 32 entries').optional(),
};

function hookProblems(v: { url?: string | undefined; urlFrom?: unknown }, ctx: z.RefinementCtx): void {
  if ((v.url === undefined) === (v.urlFrom === undefined)) ctx.addIssue({ code: 'custom', path: ['url'], message: 'set url or urlFrom (a Secret holding the URL), exactly one' });
  if (v.url !== undefined) {
    const problem = receiverUrlProblem(v.url);
    if (problem) ctx.addIssue({ code: 'custom', path: ['url'], message: problem });
  }
}

function duplicateNames(hooks: { name: string }[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  hooks.forEach((h, i) => {
    if (seen.has(h.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `another webhook is named "${h.name}"` });
    seen.add(h.name);
  });
}

/** `spec.webhooks` of a Release (durations as text, Flagger's `timeout`). */
export const webhooksDocSchema = z
  .array(
    z
      .strictObject({
        ...hookCommon,
        timeout: msField(1000, MAX_WEBHOOK_TIMEOUT_MS).optional(),
        interval: msField(1000, 3_600_000).optional(),
        retries: z.number().int().min(0).max(100).optional(),
      })
      .superRefine(hookProblems),
  )
  .max(MAX_WEBHOOKS, `at most ${MAX_WEBHOOKS} webhooks`)
  .superRefine(duplicateNames);

/** `webhooks` of a plan (milliseconds, defaults applied). */
export const webhooksPlanSchema = z
  .array(
    z
      .strictObject({
        ...hookCommon,
        timeoutMs: z.number().int().min(1000).max(MAX_WEBHOOK_TIMEOUT_MS),
        intervalMs: z.number().int().min(1000).max(3_600_000),
        retries: z.number().int().min(0).max(100),
      })
      .superRefine(hookProblems),
  )
  .max(MAX_WEBHOOKS)
  .superRefine(duplicateNames);

/** The plan's webhooks from the document's, defaults applied. */
export function webhooksOfDoc(doc: z.infer<typeof webhooksDocSchema>): WebhookSpec[] {
  return doc.map((h) => ({
    name: h.name,
    type: h.type,
    ...(h.url !== undefined ? { url: h.url } : {}),
    ...(h.urlFrom ? { urlFrom: h.urlFrom } : {}),
    timeoutMs: h.timeout ?? DEFAULT_WEBHOOK_TIMEOUT_MS,
    intervalMs: h.interval ?? DEFAULT_WEBHOOK_INTERVAL_MS,
    retries: h.retries ?? DEFAULT_WEBHOOK_RETRIES,
    ...(h.metadata ? { metadata: h.metadata } : {}),
  }));
}

/** What a webhook receives (Flagger's payload fields, and the release's). */
export interface WebhookPayload {
  name: string;
  namespace: string;
  type: WebhookType;
  hook: string;
  releaseId: string;
  phase: string;
  step: number;
  weight: number;
  image: string;
  metadata: Record<string, string>;
}
