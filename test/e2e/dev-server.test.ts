/**
 * Against the real Temporal dev server (scripts/dev-server.sh; the test script starts it): our CLI
 * starts and steers releases, the real `temporal` CLI signals and queries them, the worker is a
 * separate process that gets SIGKILLed, and the server itself is restarted on its SQLite file.
 */
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { statusQuery, type ReleaseStatus } from '../../workflows/messages.ts';
import { cli as runCli, killWorker, startWorker as startSuiteWorker, untilStatus, writeRelease } from './support.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const temporalCli = process.env.TEMPORAL_CLI;
const suffix = Math.random().toString(36).slice(2, 7);
const taskQueue = `e2e-${suffix}`;
const env = { ...process.env, TEMPORAL_ADDRESS: address, GLIDEPATH_TASK_QUEUE: taskQueue, GLIDEPATH_USER: 'ci-bot' };

let dir: string;
let client: Client;
let worker: ChildProcess | undefined;

const startWorker = (): Promise<ChildProcess> => startSuiteWorker({ ...env, STUB_DELAY_MS: '300' }, 'test/e2e/stub-worker.ts', 'worker ready');

const spec = (name: string, steps: string): Promise<string> =>
  writeRelease(dir, 'e2e', `  policy: { promoters: [alice, bob], aborters: [alice, bob, oncall] }\n  strategy:\n    canary:\n      steps:\n${steps}`, name);

const APPROVAL = `        - setWeight: 20
        - approval: { approvers: [alice, bob], minApprovals: 1 }
        - setWeight: 100
`;

const cli = (args: string[], extra: Record<string, string> = {}) => runCli({ ...env, ...extra }, args);

async function temporal(args: string[]): Promise<string> {
  assert.ok(temporalCli, 'TEMPORAL_CLI must name the Temporal CLI binary (scripts/test.sh sets it)');
  const { stdout } = await run(temporalCli, [...args, '--address', address]);
  return stdout;
}

async function status(id: string): Promise<ReleaseStatus> {
  return client.workflow.getHandle(id).query(statusQuery);
}

const until = (id: string, pred: (s: ReleaseStatus) => boolean, what: string, timeoutMs = 30_000) => untilStatus(client, id, pred, what, timeoutMs);

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'glidepath-e2e-'));
  try {
    client = new Client({ connection: await Connection.connect({ address, connectTimeout: '5s' }) });
  } catch (err) {
    throw new Error(`the Temporal dev server is not reachable at ${address} (TEMPORAL_ADDRESS); run through npm test: ${(err as Error).message}`, { cause: err });
  }
  worker = await startWorker();
});

after(async () => {
  worker?.kill('SIGTERM');
  await client?.connection.close();
});

describe('the glidepath CLI and the temporal CLI on the dev server', () => {
  test('start with our CLI → approve with `temporal workflow signal` → status both ways → exit 0', async () => {
    const name = `signal-${suffix}`;
    const file = await spec(name, APPROVAL);
    const id = `release_e2e_${name}`;
    const started = await cli(['release', 'start', '-f', file]);
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, new RegExp(`started ${id}\\nhttp://127.0.0.1:${process.env.TEMPORAL_UI_PORT ?? 8233}/namespaces/default/workflows/${id}`), 'the UI link names the dev server\'s UI port');
    await until(id, (s) => s.phase === 'AwaitingApproval', 'awaiting approval');

    const ours = await cli(['-o', 'json', 'release', 'status', id]);
    assert.equal(JSON.parse(ours.stdout).phase, 'AwaitingApproval');
    assert.match((await cli(['release', 'status', id])).stdout, /^ {2}step 2 of 3 approval /m, 'steps are numbered from 1');
    const theirs = JSON.parse(await temporal(['workflow', 'query', '-w', id, '--type', 'status', '-o', 'json']));
    assert.equal((theirs.queryResult?.[0] ?? theirs.result?.[0] ?? theirs[0])?.phase ?? JSON.stringify(theirs).match(/"phase":"(\w+)"/)?.[1], 'AwaitingApproval');

    await temporal(['workflow', 'signal', '-w', id, '--name', 'approve', '--input', '{"by":"alice","reason":"looked at the dashboards"}']);
    const waited = await cli(['release', 'watch', id, '--timeout', '60s']);
    assert.equal(waited.code, 0, `${waited.stdout}\n${waited.stderr}`);
    const history = await cli(['release', 'history', id]);
    assert.match(history.stdout, /alice {2}approve {2}"looked at the dashboards"/);
  });

  test('release start --wait exits with the outcome: 4 when aborted', async () => {
    const name = `abort-${suffix}`;
    const file = await spec(name, `        - setWeight: 20\n        - pause: {}\n`);
    const id = `release_e2e_${name}`;
    const waiting = cli(['release', 'start', '-f', file, '--wait', '--timeout', '60s']);
    await until(id, (s) => s.phase === 'Paused', 'paused');
    const aborted = await cli(['release', 'abort', id, '--as', 'oncall', '--reason', 'error budget']);
    assert.equal(aborted.code, 0, aborted.stderr);
    assert.equal((await waiting).code, 4);
    await cli(['release', 'abort', id, '--as', 'oncall']); // close it
  });

  test('--wait --timeout exits 6 while the release goes on', async () => {
    const name = `timeout-${suffix}`;
    const file = await spec(name, `        - pause: {}\n`);
    const r = await cli(['release', 'start', '-f', file, '--wait', '--timeout', '3s']);
    assert.equal(r.code, 6);
    assert.match(r.stderr, /still Paused after 3s; it goes on/);
    assert.equal((await status(`release_e2e_${name}`)).phase, 'Paused');
    await cli(['release', 'abort', '-f', file, '--as', 'oncall']);
  });

  test('an unauthorised approve through our CLI exits 1 with the validator message, adds no update event, and is counted in status', async () => {
    const name = `unauth-${suffix}`;
    const file = await spec(name, APPROVAL);
    const id = `release_e2e_${name}`;
    assert.equal((await cli(['release', 'start', '-f', file])).code, 0);
    await until(id, (s) => s.phase === 'AwaitingApproval', 'awaiting approval');
    const before = (await client.workflow.getHandle(id).fetchHistory()).events?.length;
    const denied = await cli(['release', 'approve', id, '--as', 'mallory']);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /approve rejected: mallory is not an approver of step 2 \(approvers: alice, bob\)/);
    const self = await cli(['release', 'approve', id]); // GLIDEPATH_USER=ci-bot started it
    assert.match(self.stderr, /not an approver|cannot approve it/);
    const added = ((await client.workflow.getHandle(id).fetchHistory()).events ?? []).slice(before);
    assert.ok(!added.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes), 'a refused update writes no update event on a real server');
    const reports = added.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'refusedUpdate');
    assert.equal(reports.length, 2, 'the CLI reports each refusal as one signal');
    const { rejectedSignals } = await client.workflow.getHandle(id).query(statusQuery);
    assert.match(rejectedSignals?.last.find((e) => e.by === 'mallory')?.detail ?? '', /^update refused \(reported by the client\): mallory is not an approver of step 2/);
    assert.equal(rejectedSignals?.byAction.approve, 2);
    assert.equal((await cli(['release', 'approve', '-f', file, '--as', 'bob'])).code, 0);
    assert.equal((await cli(['release', 'watch', id, '--timeout', '60s'])).code, 0);
  });

  test('a duplicate start is rejected, naming the release in flight', async () => {
    const name = `dup-${suffix}`;
    const file = await spec(name, `        - pause: {}\n`);
    assert.equal((await cli(['release', 'start', '-f', file])).code, 0);
    const second = await cli(['release', 'start', '-f', file]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`a release of e2e/${name} is already in flight: release_e2e_${name}`));
    await cli(['release', 'abort', '-f', file, '--as', 'oncall']);
  });

  test('invalid input exits 2 and starts nothing', async () => {
    const bad = path.join(dir, 'bad.yaml');
    await writeFile(bad, 'apiVersion: glidepath.dev/v1alpha1\nkind: Release\nmetadata: { name: Bad }\n');
    const r = await cli(['release', 'start', '-f', bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad.yaml: metadata.name: must be a DNS-1123 label/);
    assert.equal((await cli(['release', 'start', '-f', bad, '--timeout', 'soon'])).code, 2);
  });

  test('release list --phase Paused finds exactly the paused releases', async () => {
    const names = [`lp-a-${suffix}`, `lp-b-${suffix}`, `lp-c-${suffix}`];
    const files = await Promise.all(names.map((n, i) => spec(n, i < 2 ? `        - setWeight: 10\n        - pause: {}\n` : APPROVAL)));
    for (const f of files) assert.equal((await cli(['release', 'start', '-f', f])).code, 0);
    await until(`release_e2e_${names[0]}`, (s) => s.phase === 'Paused', 'a paused');
    await until(`release_e2e_${names[1]}`, (s) => s.phase === 'Paused', 'b paused');
    await until(`release_e2e_${names[2]}`, (s) => s.phase === 'AwaitingApproval', 'c awaiting');
    let listed: string[] = [];
    for (let i = 0; i < 30; i++) {
      // visibility is eventually consistent
      const r = await cli(['-o', 'json', 'release', 'list', '--phase', 'Paused']);
      listed = (JSON.parse(r.stdout) as { workflowId: string }[]).map((x) => x.workflowId).filter((w) => w.includes(suffix));
      if (listed.length === 2) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    assert.deepEqual(listed.sort(), [`release_e2e_${names[0]}`, `release_e2e_${names[1]}`].sort());
    const one = await cli(['-o', 'json', 'release', 'list', '--service', `e2e/${names[2]}`]);
    assert.deepEqual((JSON.parse(one.stdout) as { phase: string }[]).map((x) => x.phase), ['AwaitingApproval']);
    for (const f of files) await cli(['release', 'abort', '-f', f, '--as', 'oncall']);
  });
});

describe('durability', () => {
  test('the worker SIGKILLed mid-release and restarted: the release completes', async () => {
    const name = `kill-${suffix}`;
    const file = await spec(name, `        - setWeight: 10\n        - setWeight: 20\n        - setWeight: 30\n        - setWeight: 40\n        - setWeight: 100\n`);
    const id = `release_e2e_${name}`;
    assert.equal((await cli(['release', 'start', '-f', file])).code, 0);
    await until(id, (s) => s.canaryWeight >= 10, 'first step done');
    await killWorker(worker);
    worker = await startWorker();
    const done = await cli(['release', 'watch', id, '--timeout', '90s']);
    assert.equal(done.code, 0, done.stdout + done.stderr);
    const history = (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
    const weights = history.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'setWeight').length;
    assert.equal(weights, 5, 'each step scheduled once: the release resumed, it did not restart');
  });

  test('the dev server restarted on its SQLite file mid-release: the release resumes', async () => {
    const name = `restart-${suffix}`;
    const file = await spec(name, `        - setWeight: 10\n        - pause: {}\n        - setWeight: 100\n`);
    const id = `release_e2e_${name}`;
    assert.equal((await cli(['release', 'start', '-f', file])).code, 0);
    await until(id, (s) => s.phase === 'Paused', 'paused');
    await run('bash', [path.join(root, 'scripts/dev-server.sh'), 'stop']);
    await run('bash', [path.join(root, 'scripts/dev-server.sh'), 'start']);
    await client.connection.close();
    client = new Client({ connection: await Connection.connect({ address, connectTimeout: '10s' }) });
    await until(id, (s) => s.phase === 'Paused', 'paused after the restart', 60_000);
    assert.equal((await cli(['release', 'promote', id, '--as', 'alice'])).code, 0);
    assert.equal((await cli(['release', 'watch', id, '--timeout', '90s'])).code, 0);
  });
});
