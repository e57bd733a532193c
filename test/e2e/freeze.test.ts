/**
 * Freeze windows on the real Temporal dev server, in real time (seconds): a release's window before
 * step 2 holds it until the window ends and it then advances; a worker-wide window (the worker's
 * GLIDEPATH_FREEZE_POLICY_FILE, scoped to one workload) holds another at its start until the
 * worker's overrider lifts it with `glidepath release override-freeze`; a release whose window never
 * opens is refused by `release start` naming the field, and nothing starts.
 *
 * Env: TEMPORAL_ADDRESS (dev server).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { parse } from 'yaml';
import { normalize } from '../../model/normalize.ts';
import { releaseWorkflowId } from '../../model/types.ts';
import { statusQuery } from '../../workflows/messages.ts';
import { releaseResult } from '../workflows/harness.ts';
import { cli, connectClient, killWorker, randomSuffix, startWorker, suiteEnv, tempDir, untilStatus, writeRelease } from './support.ts';

const suffix = randomSuffix();
const ns = `freeze-${suffix}`;
let env: NodeJS.ProcessEnv;
let client: Client;
let worker: ChildProcess | undefined;
let dir = '';
const iso = (ms: number): string => new Date(ms).toISOString();
const id = (name: string): string => releaseWorkflowId({ namespace: ns, workload: { kind: 'Deployment', name } });
const steps = `  strategy:
    canary:
      steps:
        - setWeight: 10
        - setWeight: 50
`;

before(async () => {
  client = await connectClient();
  dir = await tempDir('freeze');
  const policy = path.join(dir, 'freeze-policy.yaml');
  await writeFile(
    policy,
    `overriders: [release-manager]
windows:
  - name: change-board
    workloads: [${ns}/held]
    start: ${iso(Date.now() - 60_000)}
    end: ${iso(Date.now() + 3_600_000)}
`,
  );
  env = suiteEnv(`freeze-${suffix}`, { STUB_DELAY_MS: '50', GLIDEPATH_FREEZE_POLICY_FILE: policy });
  worker = await startWorker(env, 'test/e2e/stub-worker.ts', 'worker ready');
});

after(async () => {
  await killWorker(worker, 'SIGTERM');
  await client?.connection.close();
});

test('a short window before step 2 is waited out in real time, then the release advances', async () => {
  // Started by the client, not the CLI, so that the window (seconds) is not spent starting a process.
  const file = await writeRelease(dir, ns, steps, 'brief');
  const plan = normalize([{ source: file, doc: parse(await readFile(file, 'utf8')) }]);
  const end = Date.now() + 8_000;
  plan.freeze = { windows: [{ name: 'brief', before: 'step-2', start: iso(Date.now() - 1000), end: iso(end) }] };
  await client.workflow.start('release', { taskQueue: env.GLIDEPATH_TASK_QUEUE as string, workflowId: id('brief'), args: [{ plan, initiator: 'ci-bot' }] });
  const frozen = await untilStatus(client, id('brief'), (s) => s.freeze !== undefined, 'frozen before step 2', 30_000);
  assert.equal(frozen.phase, 'Paused');
  assert.match(frozen.message, new RegExp(`^frozen until ${iso(end).replace(/\./g, '\\.')}: freeze window release/brief holds step 2$`));
  assert.equal(frozen.canaryWeight, 10);

  const result = await releaseResult(client.workflow.getHandle(id('brief')));
  assert.equal(result.outcome, 'Promoted');
  const audit = (await client.workflow.getHandle(id('brief')).query(statusQuery)).audit;
  const ended = audit.find((a) => a.action === 'freeze-ended');
  assert.ok(ended && Date.parse(ended.at) >= end, `the window ended at ${iso(end)}; audit: ${JSON.stringify(ended)}`);
  assert.ok(audit.findIndex((a) => a.action === 'freeze-ended') < audit.findIndex((a) => a.action === 'promoted'));
});

test("a worker-wide window holds a release at its start; the worker's overrider lifts it with the CLI, audited", async () => {
  const file = await writeRelease(dir, ns, steps, 'held');
  const other = await writeRelease(dir, ns, steps, 'free');
  const held = await cli(env, ['release', 'start', '-f', file]);
  assert.equal(held.code, 0, held.stderr);
  assert.match(held.stderr, /^frozen until .*: freeze window worker\/change-board holds the start \(override-freeze: release-manager\); preflight runs when the window ends/);
  assert.equal((await cli(env, ['release', 'start', '-f', other])).code, 0);
  const frozen = await untilStatus(client, id('held'), (s) => s.freeze !== undefined, 'frozen at start', 30_000);
  assert.deepEqual(frozen.freeze?.overriders, ['release-manager']);
  assert.equal(frozen.freeze?.window, 'worker/change-board');
  // Out of scope: the other workload is not frozen.
  assert.equal((await releaseResult(client.workflow.getHandle(id('free')))).outcome, 'Promoted');

  const refused = await cli(env, ['release', 'override-freeze', id('held'), '--as', 'ci-bot', '--reason', 'please']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /override-freeze rejected: ci-bot may not override freeze window worker\/change-board \(overriders: release-manager\)/);
  const lifted = await cli(env, ['release', 'override-freeze', id('held'), '--as', 'release-manager', '--reason', 'board approved hotfix']);
  assert.equal(lifted.code, 0, lifted.stderr);
  assert.equal((await releaseResult(client.workflow.getHandle(id('held')))).outcome, 'Promoted');
  const audit = (await client.workflow.getHandle(id('held')).query(statusQuery)).audit;
  assert.ok(audit.some((a) => a.by === 'release-manager' && a.action === 'freeze-overridden' && a.reason === 'board approved hotfix'));
});

test('a window that never opens is refused at start naming the field; nothing starts', async () => {
  const at = iso(Date.now() + 60_000);
  const file = await writeRelease(dir, ns, `  freeze:\n    windows:\n      - { name: empty, start: "${at}", end: "${at}" }\n${steps}`, 'never');
  const refused = await cli(env, ['release', 'start', '-f', file]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /spec\.freeze\.windows\[0\]\.end: equals start: the window never opens/);
  await assert.rejects(client.workflow.getHandle(id('never')).describe(), WorkflowNotFoundError);
});
