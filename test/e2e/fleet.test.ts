/**
 * Release groups end to end on a fleet: three control planes at once (the harness's KUBECONFIG and
 * two more this file starts in parallel on free ports, each with its own state dir, stopped at the
 * end), a worker process per cluster polling `glidepath@<cluster>` with that cluster's kubeconfig
 * only, a parent worker with none, one dev server. Three services (payments and checkout depend on
 * ledger), waves staging → eu + us. Object state is read from every apiserver.
 * Needs KUBECONFIG and TEMPORAL_ADDRESS (npm test provides both) and the control-plane binaries
 * (scripts/provision-kube.sh); skips, naming them, when those are missing. GLIDEPATH_FLEET_KUBECONFIGS
 * (`eu:us`, two kubeconfig paths) uses running control planes instead of starting two.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { msToNumber, tsToMs } from '@temporalio/common/lib/time.js';
import { WORKFLOW_TASK_TIMEOUT } from '../../workflows/start-options.ts';
import { groupStatusQuery, type GroupStatus } from '../../workflows/group/messages.ts';
import { cachedWorkflowBundle } from '../support/workflow-bundle.ts';
import { untilQuery } from '../support/poll.ts';
import { cli, connectClient, imageOf, killWorker, randomSuffix, suiteEnv, tempDir } from './support.ts';
import { REPLICAS, SERVICES, fleetNamespace, harnessCluster, missingControlPlane, serviceImage, startCluster, startClusterWorker, startParentWorker, writeGroupFile, type Cluster } from './fleet-support.ts';

const skip = !process.env.KUBECONFIG ? 'needs KUBECONFIG (a local control plane: scripts/kube.sh)' : !process.env.TEMPORAL_ADDRESS ? 'needs TEMPORAL_ADDRESS (a dev server: scripts/dev-server.sh)' : (missingControlPlane() ?? false);

const suffix = randomSuffix();
const PARENT_QUEUE = `e2e-fleet-${suffix}`;
const env = suiteEnv(PARENT_QUEUE);
const image = serviceImage;

let clusters: Cluster[] = [];
const workers = new Map<string, ChildProcess>();
let parent: ChildProcess | undefined;
let bundle: string;
let client: Client;
let dir: string;
let health: Server;
/** What the `health` web metric answers: 1 passes, 0 fails. */
let healthy = 1;
const namespaces: string[] = [];

before(async () => {
  if (skip) return;
  const [staging, eu, us] = [`staging-${suffix}`, `eu-${suffix}`, `us-${suffix}`];
  health = createServer((_req, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ ok: healthy })));
  await new Promise<void>((r) => health.listen(0, '127.0.0.1', r));
  const given = process.env.GLIDEPATH_FLEET_KUBECONFIGS?.split(':');
  const started = await Promise.allSettled([startCluster(eu, given?.[0]), startCluster(us, given?.[1])]);
  clusters = [harnessCluster(staging), ...started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))];
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  [bundle, client, dir] = [(await cachedWorkflowBundle()).codePath, await connectClient(), await tempDir('fleet')];
  const all = await Promise.allSettled([startParentWorker(PARENT_QUEUE, bundle, dir), ...clusters.map((c) => startClusterWorker(c, bundle))]);
  const got = all.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
  parent = got[0];
  clusters.forEach((c, i) => got[i + 1] && workers.set(c.name, got[i + 1] as ChildProcess));
  const down = all.find((r) => r.status === 'rejected');
  if (down) throw (down as PromiseRejectedResult).reason;
});

after(async () => {
  await Promise.all([killWorker(parent, 'SIGTERM'), ...[...workers.values()].map((w) => killWorker(w, 'SIGTERM'))]);
  await client?.connection.close();
  health?.close();
  const harness = clusters[0];
  for (const ns of namespaces) await harness?.core.deleteNamespace({ name: ns }).catch(() => {});
  await Promise.all(clusters.slice(1).map((c) => c.stop()));
});

const byName = (name: string) => clusters.find((c) => c.name.startsWith(`${name}-`)) as Cluster;

const fleetNs = (ns: string) => (namespaces.push(ns), fleetNamespace(clusters, ns));
const healthUrl = () => `http://127.0.0.1:${(health.address() as AddressInfo).port}/health`;
const groupFile = (ns: string, name: string, version: string) =>
  writeGroupFile(dir, { ns, name, version, healthUrl: healthUrl(), waves: [{ name: 'staging', clusters: [byName('staging').name] }, { name: 'prod', clusters: [byName('eu').name, byName('us').name] }] });

async function startGroup(file: string): Promise<void> {
  const r = await cli(env, ['group', 'start', '-f', file]);
  assert.equal(r.code, 0, `group start: ${r.stdout}${r.stderr}`);
}

const untilGroup = (id: string, pred: (s: GroupStatus) => boolean, what: string, timeoutMs = 180_000) =>
  untilQuery(client.workflow.getHandle(id), groupStatusQuery, pred, what, { timeoutMs, intervalMs: 250, show: (s) => `${s?.phase} ${s?.message} ${JSON.stringify(s?.cells.map((c) => `${c.member}@${c.cluster.split('-')[0]}:${c.phase}`))}` });

const settled = (s: GroupStatus) => ['Promoted', 'RolledBack', 'Aborted', 'Failed'].includes(s.phase);

/** The image every service runs in every cluster, read from each apiserver. */
async function images(ns: string): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const c of clusters) for (const svc of SERVICES) out[`${svc}@${c.name}`] = imageOf(await c.apps.readNamespacedDeployment({ name: svc, namespace: ns }));
  return out;
}

const expected = (version: string) => Object.fromEntries(clusters.flatMap((c) => SERVICES.map((svc) => [`${svc}@${c.name}`, image(svc, version)])));

/** Child release workflows the group started, from its history: one per (service, cluster), plus compensations. */
async function childStarts(id: string): Promise<string[]> {
  const history = await client.workflow.getHandle(id).fetchHistory();
  return (history.events ?? []).flatMap((e) => (e.startChildWorkflowExecutionInitiatedEventAttributes ? [String(e.startChildWorkflowExecutionInitiatedEventAttributes.workflowId)] : []));
}

/** The Deployments of `ns` in every cluster: exactly the three services, no canary or other copy left. */
async function assertNoStrays(ns: string): Promise<void> {
  for (const c of clusters) {
    const names = (await c.apps.listNamespacedDeployment({ namespace: ns })).items.map((d) => d.metadata?.name).sort();
    assert.deepEqual(names, [...SERVICES].sort(), `Deployments in ${c.name}/${ns}`);
    const pods = (await c.core.listNamespacedPod({ namespace: ns })).items.filter((p) => !p.metadata?.deletionTimestamp);
    assert.equal(pods.length, SERVICES.length * REPLICAS, `pods in ${c.name}/${ns}: ${pods.map((p) => p.metadata?.name).join(', ')}`);
  }
}

test('three services, two waves over three clusters: all promoted, every cluster runs the new images', { skip }, async () => {
  const ns = `fleet-ok-${suffix}`;
  await fleetNs(ns);
  const id = `group_${ns}_shop`;
  await startGroup(await groupFile(ns, 'shop', 'v2'));
  const s = await untilGroup(id, settled, 'the group settles');
  assert.equal(s.phase, 'Promoted', s.message);
  assert.deepEqual(await images(ns), expected('v2'));
  // The CLI starts the group, and the group its members, with room for a long workflow task (workflows/start-options.ts).
  for (const wid of [id, ...s.cells.map((c) => c.workflowId)]) {
    const config = (await client.workflow.getHandle(wid).describe()).raw.executionConfig;
    assert.equal(tsToMs(config?.defaultWorkflowTaskTimeout), msToNumber(WORKFLOW_TASK_TIMEOUT), `${wid}: its workflow task timeout`);
  }
  for (const c of s.cells) assert.equal(c.previousImage, image(c.member, 'v1'), `${c.member}@${c.cluster}: previous image pinned`);
  // In each cluster a dependant starts only after ledger promoted there; prod only after staging.
  const starts = s.audit.filter((a) => a.action === 'start-member').map((a) => a.detail?.split(':')[0] ?? '');
  for (const c of clusters) {
    for (const dep of ['payments', 'checkout']) assert.ok(starts.indexOf(`${dep}@${c.name}`) > starts.indexOf(`ledger@${c.name}`) && starts.includes(`ledger@${c.name}`), `${dep} after ledger in ${c.name}: ${starts.join(', ')}`);
  }
  const inStaging = starts.flatMap((x, i) => (x.endsWith(`@${byName('staging').name}`) ? [i] : []));
  const inProd = starts.flatMap((x, i) => (x.endsWith(`@${byName('staging').name}`) ? [] : [i]));
  assert.ok(inStaging.length === 3 && inProd.length === 6 && Math.max(...inStaging) < Math.min(...inProd), `staging before prod: ${starts.join(', ')}`);
  assert.equal((await childStarts(id)).length, 9, 'one child per service × cluster');
  await assertNoStrays(ns);
});

test('a failing analysis for payments in the second wave: the wave stops, compensation in reverse dependency order, every cluster back on v1 at full stable capacity', { skip }, async () => {
  const ns = `fleet-saga-${suffix}`;
  await fleetNs(ns);
  const id = `group_${ns}_shop`;
  healthy = 1;
  // Stable capacity, sampled from every apiserver while the group runs.
  let sampling = true;
  const low: string[] = [];
  let samples = 0;
  const sampler = (async () => {
    while (sampling) {
      for (const c of clusters) {
        for (const svc of SERVICES) {
          const d = await c.apps.readNamespacedDeployment({ name: svc, namespace: ns });
          samples++;
          if ((d.status?.availableReplicas ?? 0) < REPLICAS) low.push(`${svc}@${c.name}: ${d.status?.availableReplicas ?? 0} available`);
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    await startGroup(await groupFile(ns, 'shop', 'v2'));
    // The analysis fails once wave prod is running (staging passed it).
    await untilGroup(id, (s) => s.wave === 1, 'wave prod');
    healthy = 0;
    const s = await untilGroup(id, settled, 'the group settles');
    assert.equal(s.phase, 'RolledBack', s.message);
    assert.match(s.message, /payments in (eu|us)-/);
    assert.deepEqual(await images(ns), expected('v1'), 'every cluster on its previous images (digests)');
    // Compensation: payments and checkout (the dependants) before ledger, in every cluster.
    const comp = s.audit.filter((a) => a.action === 'compensate').map((a) => a.detail?.split(':')[0] ?? '');
    const pos = (m: string) => comp.flatMap((x, i) => (x.startsWith(`${m}@`) ? [i] : []));
    assert.ok(pos('ledger').length > 0 && pos('payments').length > 0, `compensations: ${comp.join(', ')}`);
    assert.ok(Math.max(...pos('payments'), ...pos('checkout')) < Math.min(...pos('ledger')), `dependants before ledger: ${comp.join(', ')}`);
    assert.ok(s.cells.every((c) => c.phase !== 'Promoted' && c.phase !== 'Running'), JSON.stringify(s.cells.map((c) => [c.member, c.cluster, c.phase])));
  } finally {
    sampling = false;
    await sampler;
    healthy = 1;
  }
  assert.ok(samples > 50, `sampled ${samples} times`);
  assert.deepEqual(low, [], 'stable capacity never reduced');
  await assertNoStrays(ns);
});

test('the worker of one cluster SIGKILLed mid-wave and restarted: the group converges, no duplicate objects', { skip }, async () => {
  const ns = `fleet-kill-${suffix}`;
  await fleetNs(ns);
  const id = `group_${ns}_shop`;
  const us = byName('us');
  await startGroup(await groupFile(ns, 'shop', 'v2'));
  await untilGroup(id, (s) => s.cells.some((c) => c.cluster === us.name && c.phase === 'Running'), `a release running in ${us.name}`);
  await killWorker(workers.get(us.name), 'SIGKILL');
  await new Promise((r) => setTimeout(r, 1500));
  workers.set(us.name, await startClusterWorker(us, bundle));
  const s = await untilGroup(id, settled, 'the group settles');
  assert.equal(s.phase, 'Promoted', s.message);
  assert.deepEqual(await images(ns), expected('v2'));
  const children = await childStarts(id);
  assert.equal(new Set(children).size, 9, 'one child per service × cluster');
  assert.equal(children.length, 9, `no child started twice: ${children.join(', ')}`);
  await assertNoStrays(ns);
});
