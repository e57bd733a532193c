/**
 * Where a release's time goes, from its workflow history: each activity (scheduled → closed, and of
 * that the time in the task queue, scheduled → started), each durable timer (started → fired, named
 * by its duration: the pauses, the scale-down delays), and the rest (workflow tasks, dispatch, the
 * gaps between commands: the wall time outside every activity and timer).
 */
import type { temporal } from '@temporalio/proto';
import { tsToMs } from '@temporalio/common/lib/time.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface Phases {
  /** From the first event to `until` (ms). */
  wall: number;
  /** How many history events were written up to `until`: each one a write to Temporal's persistence. */
  events: number;
  /** Per activity type or timer: the summed time (ms) and how many. */
  parts: Map<string, { ms: number; count: number }>;
  /** Summed scheduled → started of every activity (ms): waiting in the task queue for a worker slot. */
  activityQueue: number;
  /** Wall time outside every activity and timer (ms): workflow tasks and the gaps between them. */
  rest: number;
  /** Summed scheduled → started of every workflow task (ms): waiting for a worker's workflow task slot or poller. */
  workflowTaskQueue: number;
  /** Summed started → completed (or failed, timed out) of every workflow task (ms): the worker running the workflow code. */
  workflowTaskRun: number;
  /** When each activity type was first scheduled and last closed (epoch ms, the server's clock). */
  spans: Map<string, { scheduled: number; closed: number }>;
}

const id = (x: unknown): string => String(x);

/** The GlidepathPhase search attribute an event sets, if any. */
export function phaseOf(e: HistoryEvent): string | undefined {
  const payload = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.GlidepathPhase;
  return payload?.data ? (JSON.parse(Buffer.from(payload.data).toString('utf8')) as string) : undefined;
}

/** The time of the first event that sets GlidepathPhase to `phase` (epoch ms), if any. */
export function phaseAt(events: HistoryEvent[], phase: string): number | undefined {
  const e = events.find((x) => phaseOf(x) === phase);
  return e ? tsToMs(e.eventTime) : undefined;
}

/** The phases of a history up to `until` (epoch ms, e.g. when it set Promoted). */
export function releasePhases(events: HistoryEvent[], until: number): Phases {
  const start = tsToMs(events[0]?.eventTime);
  const open = new Map<string, { name: string; at: number; startedAt?: number }>();
  const intervals: [number, number][] = [];
  const parts = new Map<string, { ms: number; count: number }>();
  const spans = new Map<string, { scheduled: number; closed: number }>();
  let activityQueue = 0;
  let workflowTaskQueue = 0;
  let workflowTaskRun = 0;
  let taskScheduledAt: number | undefined;
  let taskStartedAt: number | undefined;
  const close = (key: string, at: number) => {
    const o = open.get(key);
    if (!o) return;
    open.delete(key);
    const end = Math.min(at, until);
    if (end <= o.at) return;
    intervals.push([o.at, end]);
    const p = parts.get(o.name) ?? { ms: 0, count: 0 };
    parts.set(o.name, { ms: p.ms + end - o.at, count: p.count + 1 });
    if (o.startedAt !== undefined) activityQueue += o.startedAt - o.at;
    if (!o.name.startsWith('timer')) {
      const s = spans.get(o.name);
      spans.set(o.name, { scheduled: Math.min(s?.scheduled ?? Infinity, o.at), closed: Math.max(s?.closed ?? 0, end) });
    }
  };
  let written = 0;
  for (const e of events) {
    const at = tsToMs(e.eventTime);
    if (at > until) break;
    written++;
    const a = e.activityTaskScheduledEventAttributes;
    if (a) open.set(`a${id(e.eventId)}`, { name: a.activityType?.name ?? 'activity', at });
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const o = open.get(`a${id(started.scheduledEventId)}`);
      if (o) o.startedAt = at;
    }
    const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? e.activityTaskCanceledEventAttributes;
    if (done) close(`a${id(done.scheduledEventId)}`, at);
    if (e.workflowTaskScheduledEventAttributes) taskScheduledAt = at;
    if (e.workflowTaskStartedEventAttributes && taskScheduledAt !== undefined) {
      workflowTaskQueue += at - taskScheduledAt;
      taskStartedAt = at;
    }
    if ((e.workflowTaskCompletedEventAttributes ?? e.workflowTaskFailedEventAttributes ?? e.workflowTaskTimedOutEventAttributes) && taskStartedAt !== undefined) {
      workflowTaskRun += at - taskStartedAt;
      taskStartedAt = undefined;
    }
    const t = e.timerStartedEventAttributes;
    if (t) open.set(`t${id(e.eventId)}`, { name: `timer ${(tsToMs(t.startToFireTimeout) / 1000).toFixed(0)} s`, at });
    const fired = e.timerFiredEventAttributes ?? e.timerCanceledEventAttributes;
    if (fired) close(`t${id(fired.startedEventId)}`, at);
  }
  for (const key of [...open.keys()]) close(key, until);
  return { wall: until - start, events: written, parts, activityQueue, rest: until - start - unionLength(intervals), workflowTaskQueue, workflowTaskRun, spans };
}

/** The length of the union of intervals. */
function unionLength(intervals: [number, number][]): number {
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of [...intervals].sort((x, y) => x[0] - y[0])) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}
