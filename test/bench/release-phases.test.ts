/**
 * The benchmarks' reading of a workflow history (bench/support/release-phases.ts): activity and
 * workflow task queue and run times, the rest outside activities and timers, and the events written.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { msNumberToTs } from '@temporalio/common/lib/time.js';
import type { temporal } from '@temporalio/proto';
import { releasePhases } from '../../bench/support/release-phases.ts';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Long = NonNullable<HistoryEvent['eventId']>;

const at = (ms: number) => msNumberToTs(ms);
/** An event ID as the client gives it (a Long: the Long class the protos use, taken from a timestamp's seconds). */
const long = (n: number): Long => msNumberToTs(n * 1000).seconds as Long;

/** A release's start to its first pause: a workflow task, one activity, a second workflow task. */
function history(): HistoryEvent[] {
  const events: [number, Omit<HistoryEvent, 'eventId' | 'eventTime'>][] = [
    [0, { workflowExecutionStartedEventAttributes: {} }],
    [0, { workflowTaskScheduledEventAttributes: {} }],
    [3000, { workflowTaskStartedEventAttributes: {} }], // queued 3 s
    [3200, { workflowTaskCompletedEventAttributes: {} }], // ran 0.2 s
    [3200, { activityTaskScheduledEventAttributes: { activityType: { name: 'ensureCanary' } } }], // event 5
    [3700, { activityTaskStartedEventAttributes: { scheduledEventId: long(5) } }], // queued 0.5 s
    [5200, { activityTaskCompletedEventAttributes: { scheduledEventId: long(5) } }],
    [5200, { workflowTaskScheduledEventAttributes: {} }],
    [6200, { workflowTaskStartedEventAttributes: {} }], // queued 1 s
    [6500, { workflowTaskCompletedEventAttributes: {} }], // ran 0.3 s
    [9000, { workflowTaskScheduledEventAttributes: {} }], // after the end: not counted
  ];
  return events.map(([ms, e], i) => ({ ...e, eventId: long(i + 1), eventTime: at(1_700_000_000_000 + ms) }));
}

describe('releasePhases', () => {
  test('splits the time outside activities into workflow tasks queued and run, and counts the events written', () => {
    const p = releasePhases(history(), 1_700_000_000_000 + 6500);
    assert.equal(p.wall, 6500);
    assert.equal(p.events, 10, 'events up to the end only');
    assert.deepEqual(p.parts.get('ensureCanary'), { ms: 2000, count: 1 });
    assert.equal(p.activityQueue, 500);
    assert.equal(p.rest, 4500, 'the wall time outside the activity');
    assert.equal(p.workflowTaskQueue, 4000);
    assert.equal(p.workflowTaskRun, 500);
  });
});
