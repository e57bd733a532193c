/**
 * Rewrites a recorded history as if its worker had ended a workflow task right after a given
 * local-activity marker, the shape a real worker wrote once (test/replay/split-task/): the task's
 * completion carries the local activities' markers, and the code that ran after them lands in a
 * new task scheduled at once. Temporal's replay decides `patched()` per workflow task, so this is
 * the shape that tells whether a workflow's patch decisions survive where the task boundaries fall.
 */
import proto from '@temporalio/proto';

type History = proto.temporal.api.history.v1.IHistory;
type Event = proto.temporal.api.history.v1.IHistoryEvent;
const { EventType } = proto.temporal.api.enums.v1;
const HistoryMessage = proto.temporal.api.history.v1.History;
const INSERTED = 3; // scheduled, started, completed

/** Event IDs of the local-activity markers that are followed by more commands of the same task. */
export function splitPoints(history: History): number[] {
  const events = history.events ?? [];
  const points: number[] = [];
  for (let i = 0; i + 1 < events.length; i++) {
    const e = events[i]!;
    const next = events[i + 1]!;
    const isLocalActivityMarker = e.eventType === EventType.EVENT_TYPE_MARKER_RECORDED && e.markerRecordedEventAttributes?.markerName === 'core_local_activity';
    if (isLocalActivityMarker && next.eventType !== EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED && commandOfTask(next)) points.push(Number(e.eventId));
  }
  return points;
}

/** Whether the event is one a workflow task's completion writes (a command's event). */
function commandOfTask(e: Event): boolean {
  const name = EventType[e.eventType as number] ?? '';
  return /MARKER_RECORDED|UPSERT_WORKFLOW_SEARCH_ATTRIBUTES|_SCHEDULED$|TIMER_STARTED|_INITIATED$|WORKFLOW_PROPERTIES_MODIFIED|WORKFLOW_EXECUTION_(COMPLETED|FAILED|CONTINUED_AS_NEW)/.test(name) && name !== 'EVENT_TYPE_WORKFLOW_TASK_SCHEDULED';
}

/** The history with a workflow task inserted after event `afterId` (a local-activity marker), every later event ID and reference moved on. */
export function splitAfter(history: History, afterId: number): proto.temporal.api.history.v1.History {
  const plain = HistoryMessage.toObject(HistoryMessage.fromObject(history as Record<string, unknown>), { longs: String, enums: Number, bytes: Array }) as { events: Record<string, unknown>[] };
  const at = plain.events.findIndex((e) => Number(e.eventId) === afterId);
  if (at < 0) throw new Error(`no event ${afterId} in the history`);
  const marker = plain.events[at]!;
  const moved = plain.events.map((e) => shiftIds(e, afterId)) as Record<string, unknown>[];
  const time = marker.eventTime;
  const firstStarted = plain.events.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)!.workflowTaskStartedEventAttributes as Record<string, unknown>;
  const inserted = [
    { eventId: String(afterId + 1), eventTime: time, eventType: EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, workflowTaskScheduledEventAttributes: scheduledLike(plain.events), taskId: marker.taskId },
    { eventId: String(afterId + 2), eventTime: time, eventType: EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, workflowTaskStartedEventAttributes: { scheduledEventId: String(afterId + 1), identity: firstStarted.identity, requestId: 'split', historySizeBytes: firstStarted.historySizeBytes }, taskId: marker.taskId },
    { eventId: String(afterId + 3), eventTime: time, eventType: EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, workflowTaskCompletedEventAttributes: { scheduledEventId: String(afterId + 1), startedEventId: String(afterId + 2), identity: firstStarted.identity }, taskId: marker.taskId },
  ];
  const rest = moved.slice(at + 1);
  const nextTask = rest.findIndex((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED);
  const ofNewTask = nextTask < 0 ? rest.length : nextTask; // the commands after the split belong to the inserted task
  const retasked = rest.map((e, i) => (i < ofNewTask ? retask(e, afterId + INSERTED) : e));
  return HistoryMessage.fromObject({ events: [...moved.slice(0, at + 1), ...inserted, ...retasked] });
}

/** The attributes of the history's first workflow task's scheduling, for the inserted one. */
function scheduledLike(events: Record<string, unknown>[]): Record<string, unknown> {
  const first = events.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)!;
  return { ...(first.workflowTaskScheduledEventAttributes as Record<string, unknown>), attempt: 1 };
}

/** Moves every event ID and event reference after `afterId` on by the inserted task's three events. */
function shiftIds(value: unknown, afterId: number): unknown {
  if (Array.isArray(value)) return value.map((v) => shiftIds(v, afterId));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, /EventId$|^eventId$/i.test(k) && typeof v === 'string' && Number(v) > afterId ? String(Number(v) + INSERTED) : shiftIds(v, afterId)]),
  );
}

/** Points a command's event at the inserted task's completion. */
function retask(event: Record<string, unknown>, completedId: number): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(event).map(([k, v]) => {
      if (!k.endsWith('EventAttributes') || v === null || typeof v !== 'object' || !('workflowTaskCompletedEventId' in v)) return [k, v];
      return [k, { ...(v as Record<string, unknown>), workflowTaskCompletedEventId: String(completedId) }];
    }),
  );
}
