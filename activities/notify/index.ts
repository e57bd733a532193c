/**
 * The notification delivery activity: one event to one subscription. Reads the receiver URL and
 * signing key from Secrets in the release's namespace (never from workflow input), renders the
 * receiver's format (formats.ts), signs the body (HMAC-SHA256, `X-Glidepath-Signature: sha256=<hex>`)
 * and posts it with the event's Idempotency-Key. Every attempt sends the same bytes.
 *
 * Errors: 408, 429, 5xx and transport failures are retried (by the workflow's bounded retry policy);
 * other 4xx, a URL that is not http(s), a missing Secret or an egress refusal are non-retryable. The
 * workflow records what could not be delivered; a delivery never fails a release.
 */
import { createHmac } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { idempotencyKey, receiverUrlProblem, type NotificationEvent, type NotificationSpec, type SecretKeyRef } from '../../model/notifications.ts';
import type { SecretResolver } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { Egress, egressPolicyFromEnv, type EgressPolicy } from '../metrics/egress.ts';
import { render, uiLink } from './formats.ts';
import { post, type Answer } from './http.ts';
import type { WebhookPayload, WebhookSpec } from '../../model/webhooks.ts';

export const SIGNATURE_HEADER = 'X-Glidepath-Signature';
export const DELIVERY_TIMEOUT_MS = 10_000;
/** The worker's Temporal UI address, for links in notifications. */
export const UI_URL_ENV = 'GLIDEPATH_UI_URL';

export interface NotifyDeps {
  secrets?: SecretResolver | undefined;
  /** Where receivers may be (default: GLIDEPATH_WEB_ALLOW, as the web metric provider). */
  egress?: EgressPolicy | undefined;
  uiUrl?: string | undefined;
}

export interface Delivered {
  status: number;
  attempt: number;
}

export function signature(key: string, body: string): string {
  return `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
}

export function createNotifyActivities(deps: NotifyDeps = {}) {
  const egress = new Egress(deps.egress ?? egressPolicyFromEnv());
  const uiUrl = deps.uiUrl ?? process.env[UI_URL_ENV];

  const secret = async (who: string, namespace: string, field: string, ref: SecretKeyRef): Promise<string> => {
    if (!deps.secrets) throw ApplicationFailure.nonRetryable(`${who}: ${field} refers to a Secret but this worker has no secret resolver`, ErrorType.InvalidSpec);
    try {
      return await deps.secrets(namespace, ref);
    } catch (err) {
      const status = (err as { code?: unknown; statusCode?: unknown }).code ?? (err as { statusCode?: unknown }).statusCode;
      const why = `${who}: ${field}: Secret ${namespace}/${ref.name} key ${ref.key} cannot be read (${status ?? (err as Error).message})`;
      if (status === 404 || status === 403 || /has no key/.test((err as Error).message)) throw ApplicationFailure.nonRetryable(why, ErrorType.InvalidSpec);
      throw new Error(why, { cause: err });
    }
  };

  return {
    async deliverNotification(namespace: string, sub: NotificationSpec, event: NotificationEvent): Promise<Delivered> {
      const ctx = Context.current();
      const who = `notification ${sub.name}`;
      const url = sub.url ?? (sub.urlFrom ? (await secret(who, namespace, 'urlFrom', sub.urlFrom.secretKeyRef)).trim() : '');
      const problem = receiverUrlProblem(url);
      if (problem) throw ApplicationFailure.nonRetryable(`${who}: the receiver URL ${sub.urlFrom ? `in Secret ${sub.urlFrom.secretKeyRef.name} key ${sub.urlFrom.secretKeyRef.key} ` : ''}${problem}`, ErrorType.InvalidSpec);
      const key = sub.signingKeyFrom ? await secret(who, namespace, 'signingKeyFrom', sub.signingKeyFrom.secretKeyRef) : undefined;
      const rendered = render(sub, event, uiLink(uiUrl, ctx.info.workflowNamespace ?? 'default', event));
      const headers: Record<string, string> = {
        'Content-Type': rendered.contentType,
        'Idempotency-Key': idempotencyKey(event),
        'X-Glidepath-Event': event.trigger,
        'X-Glidepath-Delivery-Attempt': String(ctx.info.attempt),
        ...(key !== undefined ? { [SIGNATURE_HEADER]: signature(key, rendered.body) } : {}),
      };
      const answer = await post(egress, { who, url, body: rendered.body, headers, timeoutMs: DELIVERY_TIMEOUT_MS, signal: ctx.cancellationSignal });
      if (answer.status >= 200 && answer.status <= 299) return { status: answer.status, attempt: ctx.info.attempt };
      const message = `${who}: receiver answered ${answer.status}`;
      if (answer.status === 408 || answer.status === 429 || answer.status >= 500) throw new Error(message);
      throw ApplicationFailure.nonRetryable(message, ErrorType.BadRequest);
    },

    /**
     * One request to a webhook gate (model/webhooks.ts): its answer, whatever the status (the
     * workflow applies Flagger's semantics); the body clipped. Transport failures are retried.
     */
    async callWebhook(namespace: string, hook: WebhookSpec, payload: WebhookPayload): Promise<Answer> {
      const ctx = Context.current();
      const who = `webhook ${hook.name}`;
      const url = hook.url ?? (hook.urlFrom ? (await secret(who, namespace, 'urlFrom', hook.urlFrom.secretKeyRef)).trim() : '');
      const problem = receiverUrlProblem(url);
      if (problem) throw ApplicationFailure.nonRetryable(`${who}: the URL ${problem}`, ErrorType.InvalidSpec);
      const body = JSON.stringify(payload);
      return post(egress, { who, url, body, headers: { 'Content-Type': 'application/json', 'X-Glidepath-Webhook': hook.type }, timeoutMs: hook.timeoutMs, signal: ctx.cancellationSignal });
    },
  };
}
