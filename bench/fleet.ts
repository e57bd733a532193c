/**
 * A release group end to end on three control planes (KUBECONFIG's and two started here in
 * parallel, as test/e2e/fleet.test.ts does), a worker process per cluster, one dev server: three
 * services (payments and checkout after ledger) over waves staging → eu + us, a 3 × 3 group.
 * Prints: the wall time of the scenario (`group start` → Promoted seen), the parent's history events,
 * and the parent's overhead per child: the parent starting the child (StartChildWorkflowExecutionInitiated,
 * parent's history) → the child's first activity started (child's history), on server timestamps.
 * Env: TEMPORAL_ADDRESS, KUBECONFIG; GLIDEPATH_FLEET_KUBECONFIGS (`eu:us`) reuses two running control planes.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { temporal } from '@temporalio/proto';
import { groupStatusQuery } from '../workflows/group/messages.ts';
import { cachedWorkflowBundle } from '../test/support/workflow-bundle.ts';
import { untilQuery } from '../test/support/poll.ts';
import { cli, connectClient, killWorker, randomSuffix, suiteEnv, tempDir } from '../test/e2e/support.ts';
import { fleetNamespace, harnessCluster, missingControlPlane, startCluster, startClusterWorker, startParentWorker, writeGroupFile, type Cluster } from '../test/e2e/fleet-support.ts';

const missing = missingControlPlane();
if (missing || !process.env.KUBECONFIG) {
  console.log(`fleet: skipped (${missing ?? 'needs KUBECONFIG'})`);
  process.exit(0);
}

const suffix = randomSuffix();
const queue = `bench-fleet-${suffix}`;
const names = [`staging-${suffix}`, `eu-${suffix}`, `us-${suffix}`] as const;
const given = process.env.GLIDEPATH_FLEET_KUBECONFIGS?.split(':');
const health = createServer((_req, res) => res.setHeader('content-type', 'application/json').end('{"ok": 1}'));
await new Promise<void>((r) => health.listen(0, '127.0.0.1', r));
const workers: (ChildProcess | undefined)[] = [];
let clusters: Cluster[] = [];
const client = await connectClient();
const ns = `bench-fleet-${suffix}`;
const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)] as number;

try {
  const t0 = performance.now();
  const started = await Promise.allSettled([startCluster(names[1], given?.[0]), startCluster(names[2], given?.[1])]);
  clusters = [harnessCluster(names[0]), ...started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))];
  for (const s of started) if (s.status === 'rejected') throw s.reason;
  const setup = performance.now() - t0;
  const dir = await tempDir('bench-fleet');
  const bundle = (await cachedWorkflowBundle()).codePath;
  const all = await Promise.allSettled([startParentWorker(queue, bundle, dir), ...clusters.map((c) => startClusterWorker(c, bundle))]);
  for (const r of all) workers.push(r.status === 'fulfilled' ? r.value : undefined);
  for (const r of all) if (r.status === 'rejected') throw r.reason;
  await fleetNamespace(clusters, ns);
  const file = await writeGroupFile(dir, {
    ns,
    name: 'shop',
    version: 'v2',
    healthUrl: `http://127.0.0.1:${(health.address() as AddressInfo).port}/health`,
    waves: [{ name: 'staging', clusters: [names[0]] }, { name: 'prod', clusters: [names[1], names[2]] }],
  });
  const id = `group_${ns}_shop`;
  const begin = performance.now();
  const r = await cli(suiteEnv(queue), ['group', 'start', '-f', file]);
  if (r.code !== 0) throw new Error(`group start: ${r.stdout}${r.stderr}`);
  const end = await untilQuery(client.workflow.getHandle(id), groupStatusQuery, (s) => ['Promoted', 'RolledBack', 'Aborted', 'Failed'].includes(s.phase), 'the group settles', { timeoutMs: 600_000, intervalMs: 200, show: (s) => `${s?.phase} ${s?.message}` });
  const wall = performance.now() - begin;
  if (end.phase !== 'Promoted') throw new Error(`the group ended ${end.phase}: ${end.message}`);
  const events = (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
  const parentEvents = events.filter((e) => e.eventType !== undefined);
  const overheads: number[] = [];
  for (const e of events) {
    const a = e.startChildWorkflowExecutionInitiatedEventAttributes;
    if (!a?.workflowId) continue;
    const child = (await client.workflow.getHandle(a.workflowId).fetchHistory()).events ?? [];
    const first = child.find((c: temporal.api.history.v1.IHistoryEvent) => c.activityTaskStartedEventAttributes);
    if (first) overheads.push(ms(first.eventTime) - ms(e.eventTime));
  }
  const load = (await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  console.log(`fleet: 3 services × 3 clusters (waves staging → eu + us), control planes ${given ? 'reused' : `started in ${(setup / 1000).toFixed(1)} s`}, load average ${load}`);
  console.log(`fleet: end-to-end group scenario ${(wall / 1000).toFixed(1)} s wall time (group start → Promoted seen), 9 child releases`);
  console.log(`fleet: parent history ${parentEvents.length} events for the 3×3 group`);
  console.log(`fleet: parent overhead per child (parent starts the child → child's first activity started): p50 ${pct(overheads, 50).toFixed(0)} ms, max ${Math.max(...overheads).toFixed(0)} ms over ${overheads.length} children`);
} finally {
  await Promise.all(workers.map((w) => killWorker(w, 'SIGTERM')));
  await client.connection.close();
  health.close();
  await clusters[0]?.core.deleteNamespace({ name: ns }).catch(() => {});
  await Promise.all(clusters.slice(1).map((c) => c.stop()));
}
