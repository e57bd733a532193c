/**
 * The release group's own activity: who polls a cluster's task queue (DescribeTaskQueue), so that a
 * group whose cluster has no worker says so in its status instead of waiting silently.
 */
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';

const { TaskQueueType, TaskQueueKind } = proto.temporal.api.enums.v1;

function millisOf(ts: proto.google.protobuf.ITimestamp | null | undefined): number | undefined {
  if (!ts) return undefined;
  return Number(ts.seconds ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6);
}

export function createTaskQueueActivities(client: Pick<Client, 'workflowService' | 'options'>, now: () => number = Date.now) {
  return {
    /** Pollers of the queue (workflow or activity tasks) seen within the last `withinMs`. */
    async taskQueuePollers(taskQueue: string, withinMs: number): Promise<{ pollers: number }> {
      const seen = new Set<string>();
      for (const type of [TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY]) {
        const answer = await client.workflowService.describeTaskQueue({
          namespace: client.options.namespace,
          taskQueue: { name: taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
          taskQueueType: type,
        });
        for (const p of answer.pollers ?? []) {
          const at = millisOf(p.lastAccessTime);
          if (at === undefined || now() - at <= withinMs) seen.add(p.identity ?? '');
        }
      }
      return { pollers: seen.size };
    },
  };
}
