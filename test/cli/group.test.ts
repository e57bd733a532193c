/**
 * `glidepath group …` as a child process against the real dev server (TEMPORAL_ADDRESS): lint's exit
 * codes, start refused when a cluster has no worker (naming the field, nothing started), start --wait
 * to the outcome, status -o json with the matrix, a refused approve. The release children are the
 * stub `release` of the group workflow tests, on one in-process worker per cluster queue.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { createTaskQueueActivities } from '../../activities/task-queue.ts';
import { groupPlanProblems } from '../../model/group-plan-schema.ts';
import { createIdentityActivities } from '../../activities/identity.ts';
import { registerSearchAttributes } from '../../workers/search-attributes.ts';
import { runCli } from './support.ts';

const address = process.env.TEMPORAL_ADDRESS;
const skip = address ? false : 'needs TEMPORAL_ADDRESS (a dev server: scripts/dev-server.sh)';
const here = path.dirname(fileURLToPath(import.meta.url));
const suffix = Math.random().toString(36).slice(2, 7);
const queue = `group-cli-${suffix}`;
const clusters = [`a-${suffix}`, `b-${suffix}`];
let dir: string;
let native: NativeConnection;
let client: Client;
const workers: Worker[] = [];
const running: Promise<void>[] = [];

const release = (name: string) => `{ apiVersion: glidepath.dev/v1alpha1, kind: Release, metadata: { name: ${name}, namespace: cli${suffix} }, spec: { workloadRef: { kind: Deployment, name: ${name} }, image: "registry.local/${name}:2", strategy: { canary: { steps: [{ setWeight: 50 }] } } } }`;

function groupYaml(waves: string, extra = ''): string {
  return `apiVersion: glidepath.dev/v1alpha1
kind: ReleaseGroup
metadata: { name: shop, namespace: cli${suffix} }
spec:
  members:
    - { name: ledger, inline: [${release('ledger')}] }
    - { name: payments, file: payments.yaml, dependsOn: [ledger] }
  waves: ${waves}
${extra}`;
}

before(async () => {
  if (!address) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'group-cli-'));
  await writeFile(path.join(dir, 'payments.yaml'), release('payments'));
  client = new Client({ connection: await Connection.connect({ address }) });
  await registerSearchAttributes(client.connection, 'default');
  native = await NativeConnection.connect({ address });
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: path.join(here, '../workflows/group/stub-workflows.ts'), logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never });
  const start = async (taskQueue: string, activities: object) => {
    const w = await Worker.create({ connection: native, taskQueue, workflowBundle, activities });
    workers.push(w);
    running.push(w.run());
  };
  await start(queue, { ...createTaskQueueActivities(client), ...createIdentityActivities(undefined), validateGroup: async (g: unknown) => groupPlanProblems(g) });
  for (const c of clusters) {
    await start(`glidepath@${c}`, {
      preflight: async (t: { workload: { name: string } }) => ({ stableImage: `registry.local/${t.workload.name}:1`, replicas: 1, warnings: [] }),
      verifyImage: async (_t: unknown, image: string) => ({ image, digest: '' }),
      runAnalysis: async () => ({ metrics: [], terminated: false }),
      childStarted: async () => ({ outcome: 'Promoted', durationMs: 300 }),
      childEnded: async () => {},
    });
  }
});

after(async () => {
  for (const w of workers) w.shutdown();
  await Promise.all(running);
  await native?.close();
  await client?.connection.close();
});

const cli = (args: string[]) => runCli(address as string, queue, args);

test('group lint: valid, invalid (a cycle, named), unreadable member file', { skip }, async () => {
  const ok = path.join(dir, 'ok.yaml');
  await writeFile(ok, groupYaml(`[{ name: one, clusters: [${clusters[0]}] }]`));
  const valid = await cli(['group', 'lint', '-f', ok]);
  assert.equal(valid.code, 0, valid.stderr);
  assert.match(valid.stdout, /valid \(group cli\w+\/shop: ledger → payments over one/);
  const cyc = path.join(dir, 'cycle.yaml');
  await writeFile(cyc, groupYaml(`[{ name: one, clusters: [x] }]`).replace('name: ledger,', 'name: ledger, dependsOn: [payments],'));
  const bad = await cli(['-o', 'json', 'group', 'lint', '-f', cyc]);
  assert.equal(bad.code, 1);
  assert.deepEqual(JSON.parse(bad.stderr).problems.map((p: { path: string; message: string }) => `${p.path}: ${p.message}`), ['spec.members[0].dependsOn: dependency cycle ledger → payments → ledger']);
  const missing = path.join(dir, 'missing.yaml');
  await writeFile(missing, groupYaml(`[{ name: one, clusters: [x] }]`).replace('payments.yaml', 'nope.yaml'));
  assert.equal((await cli(['group', 'lint', '-f', missing])).code, 2);
});

test('group start: a cluster no worker serves is refused by field, nothing started; then --wait promotes; status shows the matrix', { skip }, async () => {
  const nobody = path.join(dir, 'nobody.yaml');
  await writeFile(nobody, groupYaml(`[{ name: one, clusters: [${clusters[0]}] }, { name: two, clusters: [nobody-${suffix}] }]`));
  const refused = await cli(['group', 'start', '-f', nobody]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`spec.waves\\[1\\].clusters\\[0\\]: no worker polls glidepath@nobody-${suffix}`));
  await assert.rejects(client.workflow.getHandle(`group_cli${suffix}_shop`).describe(), /not found/i);

  const good = path.join(dir, 'good.yaml');
  await writeFile(good, groupYaml(`[{ name: one, clusters: [${clusters[0]}] }, { name: two, clusters: [${clusters[1]}] }]`));
  const started = await cli(['group', 'start', '-f', good, '--wait', '--timeout', '50s']);
  assert.equal(started.code, 0, started.stderr + started.stdout);
  const status = await cli(['-o', 'json', 'group', 'status', '-f', good]);
  assert.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout);
  assert.equal(s.phase, 'Promoted');
  assert.deepEqual(s.cells.map((c: { member: string; cluster: string; phase: string }) => `${c.member}@${c.cluster} ${c.phase}`), [
    `ledger@${clusters[0]} Promoted`, `payments@${clusters[0]} Promoted`, `ledger@${clusters[1]} Promoted`, `payments@${clusters[1]} Promoted`,
  ]);
  const approve = await cli(['group', 'approve', `group_cli${suffix}_shop`, '--as', 'bob']);
  assert.equal(approve.code, 1);
  assert.match(approve.stderr, /approve refused: release group group_cli\w+_shop has ended \(COMPLETED\)/);
  const text = await cli(['group', 'status', `group_cli${suffix}_shop`]);
  assert.match(text.stdout, new RegExp(`${clusters[1]}\\s+payments\\s+Promoted\\s+registry.local/payments:2`));
});
