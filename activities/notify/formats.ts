/**
 * The bodies each receiver type gets for one event. Pure functions of the event (and the worker's
 * UI link): every retry of a delivery sends the same bytes, so a signature and an Idempotency-Key
 * identify the same event across attempts.
 */
import { DEFAULT_TEMPLATE, idempotencyKey, renderTemplate, type NotificationEvent, type NotificationSpec } from '../../model/notifications.ts';

export interface Rendered {
  contentType: string;
  body: string;
}

/** Generic webhook: the event as JSON, with its Idempotency-Key as `id`, the rendered text and the UI link. */
function webhook(event: NotificationEvent, text: string, link: string | undefined): Rendered {
  return { contentType: 'application/json', body: JSON.stringify({ id: idempotencyKey(event), ...event, text, ...(link ? { link } : {}) }) };
}

/** Slack incoming webhook: `text` (mrkdwn), with the link when the worker knows the UI. */
function slack(text: string, link: string | undefined): Rendered {
  return { contentType: 'application/json', body: JSON.stringify({ text: link ? `${text} <${link}|Temporal UI>` : text }) };
}

/** Microsoft Teams incoming webhook: a MessageCard with the text and, when known, a button to the UI. */
function teams(event: NotificationEvent, text: string, link: string | undefined): Rendered {
  const card = {
    '@type': 'MessageCard',
    '@context': 'https://schema.org/extensions',
    summary: `${event.release.namespace}/${event.release.name}: ${event.trigger}`,
    themeColor: event.trigger === 'on-rollout-completed' ? '2EB886' : /aborted|failed|error/.test(event.trigger) ? 'D40E0D' : '0076D7',
    title: `${event.release.namespace}/${event.release.name}: ${event.trigger}`,
    text,
    ...(link ? { potentialAction: [{ '@type': 'OpenUri', name: 'Temporal UI', targets: [{ os: 'default', uri: link }] }] } : {}),
  };
  return { contentType: 'application/json', body: JSON.stringify(card) };
}

/** CloudEvents 1.0, structured content mode over HTTP: `id` is the Idempotency-Key, so source + id is unique per event. */
function cloudevent(event: NotificationEvent, text: string, link: string | undefined): Rendered {
  const ce = {
    specversion: '1.0',
    id: idempotencyKey(event),
    source: `glidepath/${event.release.namespace}/${event.release.workload}`,
    type: `dev.glidepath.release.${event.trigger.replace(/^on-/, '').replace(/-/g, '.')}`,
    subject: event.release.id,
    time: event.at,
    datacontenttype: 'application/json',
    data: { ...event, text, ...(link ? { link } : {}) },
  };
  return { contentType: 'application/cloudevents+json; charset=utf-8', body: JSON.stringify(ce) };
}

export function render(sub: Pick<NotificationSpec, 'type' | 'template'>, event: NotificationEvent, link: string | undefined): Rendered {
  const text = renderTemplate(sub.template ?? DEFAULT_TEMPLATE, event, link);
  switch (sub.type) {
    case 'webhook':
      return webhook(event, text, link);
    case 'slack':
      return slack(text, link);
    case 'teams':
      return teams(event, text, link);
    case 'cloudevents':
      return cloudevent(event, text, link);
  }
}

/** The Temporal UI page of the release run, when the worker knows the UI's address. */
export function uiLink(base: string | undefined, temporalNamespace: string, event: NotificationEvent): string | undefined {
  if (!base) return undefined;
  return `${base.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(temporalNamespace)}/workflows/${encodeURIComponent(event.release.id)}/${encodeURIComponent(event.release.runId)}/history`;
}
