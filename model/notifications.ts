/**
 * Release notifications: who is told what, on which of Argo Rollouts' trigger names, in which
 * receiver format. The same schema checks the Release document at lint and the plan at the
 * workflow's start (the plan keeps the document's shape). Receiver URLs and signing keys may come
 * from Secret references, resolved by the delivery activity only: they never enter history.
 *
 * Templates render `{{field}}` from the event (see TEMPLATE_FIELDS); a field that does not exist is
 * a lint error naming the template. Workflow-safe: no I/O, no clock. The schema is in
 * model/notifications-schema.ts (edge and activities only).
 */
/** Argo Rollouts' notification trigger names, in the order a release usually emits them. */
export const TRIGGERS = [
  'on-rollout-updated',
  'on-rollout-step-completed',
  'on-scaling-replica-set',
  'on-rollout-paused',
  'on-analysis-run-running',
  'on-analysis-run-failed',
  'on-analysis-run-error',
  'on-rollout-aborted',
  'on-rollout-completed',
] as const;
export type Trigger = (typeof TRIGGERS)[number];

/** Receiver formats: a generic JSON webhook (HMAC-signed), Slack and Teams incoming webhooks, CloudEvents 1.0 over HTTP (structured). */
export const RECEIVER_TYPES = ['webhook', 'slack', 'teams', 'cloudevents'] as const;
export type ReceiverType = (typeof RECEIVER_TYPES)[number];

/** The most subscriptions a release may have, and the longest template (both travel in every event's history). */
export const MAX_SUBSCRIPTIONS = 10;
export const MAX_TEMPLATE_CHARS = 2000;

/** What a template may refer to, as `{{name}}`. Fields without a value for an event render empty. */
export const TEMPLATE_FIELDS = [
  'trigger',
  'sequence',
  'at',
  'phase',
  'message',
  'release.id',
  'release.namespace',
  'release.name',
  'release.workload',
  'release.attempt',
  'step.number',
  'step.total',
  'step.kind',
  'weight',
  'image',
  'stableImage',
  'analysis.name',
  'analysis.phase',
  'analysis.message',
  'analysis.metrics',
  'link',
] as const;

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

export interface SecretKeyRef {
  name: string;
  key: string;
}

export interface NotificationSpec {
  /** Names the subscription in status, audit and the Idempotency-Key's receiver. */
  name: string;
  type: ReceiverType;
  triggers: Trigger[];
  /** A literal http(s) URL (enters history: only for URLs that are not secret)… */
  url?: string | undefined;
  /** …or a Secret in the release's namespace holding it. */
  urlFrom?: { secretKeyRef: SecretKeyRef } | undefined;
  /** webhook, cloudevents: HMAC-SHA256 key for the X-Glidepath-Signature header. */
  signingKeyFrom?: { secretKeyRef: SecretKeyRef } | undefined;
  /** The message text (slack, teams; webhook and cloudevents carry it as `text`). */
  template?: string | undefined;
}

/** Problems of a template: placeholders that name no field, or an unclosed one. */
export function templateFieldProblems(template: string): string[] {
  const out: string[] = [];
  for (const m of template.matchAll(PLACEHOLDER)) {
    const name = m[1] ?? '';
    if (!(TEMPLATE_FIELDS as readonly string[]).includes(name)) out.push(`{{${name}}} is not a field of a notification; fields are ${TEMPLATE_FIELDS.join(', ')}`);
  }
  if (/\{\{(?![^{}]*\}\})/.test(template)) out.push('has "{{" without a closing "}}"');
  return out;
}

export function httpUrlProblem(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return 'must be an http(s) URL such as https://hooks.example/releases';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `must be an http(s) URL, not ${u.protocol.replace(/:$/, '')}:`;
  if (u.username || u.password) return 'must not carry credentials (put the URL in a Secret and use urlFrom)';
  return undefined;
}

/**
 * The triggers a ReleaseGroup emits (workflows/group/notify.ts), Argo's names for the group's own
 * events: the group started or was retried (updated), a wave completed (step-completed), the group
 * paused for a retry or waits for a gate's approval (paused), ended aborted, rolled back or failed
 * (aborted), or promoted every member everywhere (completed).
 */
export const GROUP_TRIGGERS = ['on-rollout-updated', 'on-rollout-step-completed', 'on-rollout-paused', 'on-rollout-aborted', 'on-rollout-completed'] as const satisfies readonly Trigger[];

/** Triggers a group never emits, as [subscription index, trigger index, message]. */
export function groupTriggerProblems(subs: readonly { triggers: readonly string[] }[]): { sub: number; trigger: number; message: string }[] {
  return subs.flatMap((s, i) =>
    s.triggers.flatMap((t, j) => ((GROUP_TRIGGERS as readonly string[]).includes(t) ? [] : [{ sub: i, trigger: j, message: `"${t}" is not a release group event; a ReleaseGroup's triggers are ${GROUP_TRIGGERS.join(', ')}` }])),
  );
}

/** A URL a Secret held, checked when it is read (the same rule as `url` at lint). */
export function receiverUrlProblem(url: string): string | undefined {
  return httpUrlProblem(url);
}

// ---- events ------------------------------------------------------------------------------------

/** What happened, as the workflow saw it: the body of every receiver format is made from this. */
export interface NotificationEvent {
  /** 1-based, per release run: the order of events. */
  sequence: number;
  trigger: Trigger;
  /** The workflow's time. */
  at: string;
  release: { id: string; runId: string; namespace: string; name: string; workload: string; attempt: number };
  phase: string;
  message: string;
  step: { number: number; total: number; kind: string };
  weight: number;
  image: string;
  stableImage?: string | undefined;
  analysis?: { name: string; phase: string; message?: string | undefined; metrics: { name: string; phase: string; value?: string | undefined }[] } | undefined;
}

/**
 * The Idempotency-Key of an event: the release (workflow ID and run ID: a later release of the same
 * workload has the same workflow ID) and the event's sequence. Every delivery attempt of an event
 * carries the same key, so a receiver recognises a retried delivery as the same event.
 */
export function idempotencyKey(e: Pick<NotificationEvent, 'release' | 'sequence'>): string {
  return `${e.release.id}/${e.release.runId}/${e.sequence}`;
}

/** Default text per trigger when a subscription has no template. */
export const DEFAULT_TEMPLATE = '{{release.namespace}}/{{release.name}}: {{trigger}} ({{phase}}, step {{step.number}} of {{step.total}}, weight {{weight}}%): {{message}}';

/** The value of a template field for `event` (empty when the event has none). */
export function fieldValue(event: NotificationEvent, field: string, link: string | undefined): string {
  const a = event.analysis;
  const values: Record<string, string | number | undefined> = {
    trigger: event.trigger,
    sequence: event.sequence,
    at: event.at,
    phase: event.phase,
    message: event.message,
    'release.id': event.release.id,
    'release.namespace': event.release.namespace,
    'release.name': event.release.name,
    'release.workload': event.release.workload,
    'release.attempt': event.release.attempt,
    'step.number': event.step.number,
    'step.total': event.step.total,
    'step.kind': event.step.kind,
    weight: event.weight,
    image: event.image,
    stableImage: event.stableImage,
    'analysis.name': a?.name,
    'analysis.phase': a?.phase,
    'analysis.message': a?.message,
    'analysis.metrics': a?.metrics.map((m) => `${m.name} ${m.phase}${m.value !== undefined ? ` (${m.value})` : ''}`).join(', '),
    link,
  };
  const v = values[field];
  return v === undefined ? '' : String(v);
}

/** Renders `template` for `event`; fields the event lacks render empty (lint has refused unknown ones). */
export function renderTemplate(template: string, event: NotificationEvent, link: string | undefined): string {
  return template.replace(PLACEHOLDER, (_all, name: string) => fieldValue(event, name, link));
}
