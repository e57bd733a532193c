/**
 * A wave: its clusters, at most `maxParallel` at once; in each cluster the members in dependency
 * order (independent ones in parallel, a dependant once its dependencies promoted there), while a
 * watcher reports a cluster whose task queue has no worker polling it.
 */
import * as wf from '@temporalio/workflow';
import { POLLER_SEEN_WITHIN_MS, clusterTaskQueue, type GroupMember, type GroupWave } from '../../model/group-plan.ts';
import { runCell } from './cells.ts';
import type { GroupActivities, GroupState } from './state.ts';

const WATCH_FIRST_MS = 10_000;
const WATCH_MAX_MS = 300_000;

const local = wf.proxyLocalActivities<GroupActivities>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 3 } });

/** Checks the cluster's task queue for pollers until `done`, backing off (bounded history while a cluster waits). */
async function watchWorker(g: GroupState, cluster: string, done: () => boolean): Promise<void> {
  const queue = clusterTaskQueue(cluster);
  let delay = WATCH_FIRST_MS;
  while (!done()) {
    try {
      const { pollers } = await local.taskQueuePollers(queue, POLLER_SEEN_WITHIN_MS);
      const before = g.status.clusters.find((c) => c.name === cluster)?.worker;
      g.setWorker(cluster, pollers === 0 ? `no worker polling ${queue}` : undefined);
      if (before !== g.status.clusters.find((c) => c.name === cluster)?.worker) delay = WATCH_FIRST_MS;
    } catch {
      // the check is advisory: the cluster's work waits for a worker either way
    }
    await wf.condition(done, delay);
    delay = Math.min(delay * 2, WATCH_MAX_MS);
  }
  g.setWorker(cluster, undefined);
}

/** Runs every member in one cluster, in dependency order; true when all promoted. */
export async function runCluster(g: GroupState, cluster: string): Promise<boolean> {
  let finished = false;
  const watcher = watchWorker(g, cluster, () => finished);
  const runs = new Map<string, Promise<boolean>>();
  for (const m of g.group.members) {
    // Members are in dependency order: the runs of m's dependencies exist already.
    const deps = m.dependsOn.map((d) => runs.get(d) as Promise<boolean>);
    runs.set(m.name, startAfter(g, m, cluster, deps));
  }
  const results = await Promise.all(runs.values());
  finished = true;
  await watcher;
  return results.every(Boolean);
}

async function startAfter(g: GroupState, m: GroupMember, cluster: string, deps: Promise<boolean>[]): Promise<boolean> {
  const cell = g.cell(m.name, cluster);
  if (deps.length > 0 && cell.phase === 'Pending') g.setCell(cell, 'Pending', `after ${m.dependsOn.join(', ')}`);
  const ok = (await Promise.all(deps)).every(Boolean);
  if (!ok) {
    if (cell.phase !== 'Promoted') g.setCell(cell, 'Skipped', `a dependency (${m.dependsOn.join(', ')}) did not promote in ${cluster}`);
    return cell.phase === 'Promoted';
  }
  return runCell(g, m, cluster);
}

/** Runs a wave's clusters, at most maxParallel at once; true when every member promoted in every cluster. */
export async function runWave(g: GroupState, wave: GroupWave): Promise<boolean> {
  let next = 0;
  let ok = true;
  const lane = async (): Promise<void> => {
    while (next < wave.clusters.length) {
      const cluster = wave.clusters[next++] as string;
      if (g.halted) {
        for (const m of g.group.members) {
          const cell = g.cell(m.name, cluster);
          if (cell.phase === 'Pending') g.setCell(cell, 'Skipped', g.abort ? 'group aborted' : `not started: ${g.failure?.reason ?? ''}`);
        }
        ok = false;
        continue;
      }
      if (!(await runCluster(g, cluster))) ok = false;
    }
  };
  await Promise.all(Array.from({ length: Math.min(wave.maxParallel, wave.clusters.length) }, lane));
  return ok && !g.halted;
}
