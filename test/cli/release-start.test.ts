/**
 * `glidepath release start` (the real CLI process) against Temporal's test server and the real
 * workflow, with preflight stubbed as Temporal's convention has it for workflow tests: the command
 * waits for preflight and exits with its failure and remedy, `readinessProbePolicy` reaches the
 * activity's target, a release waiting for a retry blocks the next start with how to close it,
 * `--replace` closes it (and refuses a release in progress), and with no worker the command gives up
 * after `--preflight-timeout` with exit 6. The same paths on real parts: test/e2e/release-start.test.ts.
 * Needs GLIDEPATH_TEST_SERVER (npm test sets it).
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { ReleaseTarget } from '../../activities/contract.ts';
import { createTimeSkippingEnv } from '../support/time-skipping.ts';
import { succeedingActivities } from '../workflows/harness.ts';
import { WORKFLOWS_PATH } from '../../workers/bundle.ts';
import { registerSearchAttributes } from '../../workers/search-attributes.ts';
import { runCli, type CliRun } from './support.ts';
import { createFreezeActivities } from '../../activities/freeze.ts';

const taskQueue = 'cli-start';
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let dir: string;
const targets: ReleaseTarget[] = [];

const cli = (args: string[], queue = taskQueue): Promise<CliRun> => runCli(env.address, queue, args);

async function spec(name: string, extra = ''): Promise<string> {
  const file = path.join(dir, `${name}-${Math.random().toString(36).slice(2, 6)}.yaml`);
  await writeFile(file, `apiVersion: glidepath.dev/v1alpha1
kind: Release
metadata: { name: ${name}, namespace: shop }
spec:
  workloadRef: { kind: Deployment, name: ${name} }
  image: registry.local/${name}:v2
  policy: { aborters: [ci-bot, oncall] }
${extra}  strategy: { canary: { steps: [{ setWeight: 50 }, { pause: {} }] } }
`);
  return file;
}

const status = async (id: string) => (await cli(['-o', 'json', 'release', 'status', id])).stdout;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'glidepath-cli-start-'));
  env = await createTimeSkippingEnv();
  await registerSearchAttributes(env.client.connection, 'default');
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    activities: {
      ...succeedingActivities(),
      identityPolicy: async () => null, // the worker's identity policy: none (claimed identity)
      driftFollowPromotion: async () => ({ skipped: 'off' }), // the worker's drift setting: off
      ...createFreezeActivities(undefined), // no worker freeze policy
      // As activities/kubernetes does: Deployment "noprobe" has no readiness probe.
      preflight: async (t: ReleaseTarget) => {
        targets.push(t);
        const msg = `container noprobe of Deployment shop/noprobe has no readinessProbe: pods count as ready as soon as they start`;
        if (t.workload.name === 'noprobe' && t.readinessProbePolicy !== 'warn') throw ApplicationFailure.nonRetryable(msg, 'PreflightFailed');
        return { stableImage: `registry.local/${t.workload.name}:v1`, replicas: 4, warnings: t.workload.name === 'noprobe' ? [msg] : [] };
      },
    },
  });
  running = worker.run();
});

after(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

test('a failed preflight fails start with exit 5, the reason and the remedy; the next start is not blocked', async () => {
  const file = await spec('noprobe');
  const r = await cli(['release', 'start', '-f', file]);
  assert.equal(r.code, 5, r.stderr);
  assert.match(r.stdout, /^started release_shop_noprobe\nhttp:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\/release_shop_noprobe\n$/);
  assert.match(r.stderr, /release_shop_noprobe Failed before it changed anything: preflight: PreflightFailed: container noprobe .* has no readinessProbe/);
  assert.match(r.stderr, /remedy: add a readinessProbe to the container, or .*`readinessProbePolicy: warn` in the Release spec/);
  assert.equal((await cli(['release', 'start', '-f', file])).code, 5);
});

test('readinessProbePolicy: warn reaches preflight; start exits 0 and prints the warning', async () => {
  const r = await cli(['release', 'start', '-f', await spec('noprobe', '  readinessProbePolicy: warn\n')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^warning: container noprobe of Deployment shop\/noprobe has no readinessProbe/m);
  assert.equal(targets.at(-1)?.readinessProbePolicy, 'warn');
  assert.equal(targets.find((t) => t.workload.name === 'noprobe')?.readinessProbePolicy, undefined, 'absent from the spec, absent from the target: the worker decides');
  assert.equal((await cli(['release', 'abort', 'release_shop_noprobe', '--as', 'oncall'])).code, 0);
});

test('an aborted release blocks start with how to close it; --replace closes it and starts; in progress it is refused', async () => {
  const file = await spec('web');
  const id = 'release_shop_web';
  assert.equal((await cli(['release', 'start', '-f', file])).code, 0);
  assert.equal((await cli(['release', 'abort', id, '--as', 'oncall'])).code, 0);
  for (let i = 0; i < 40 && !(await status(id)).includes('"phase": "Aborted"'); i++) await new Promise((r) => setTimeout(r, 250));

  const blocked = await cli(['release', 'start', '-f', file]);
  assert.equal(blocked.code, 1);
  assert.match(blocked.stderr, /release_shop_web \(http:[^)]*\) is Aborted and waits for a retry until its retry window ends; close it with `glidepath release abort release_shop_web`, or start with --replace/);

  const replaced = await cli(['release', 'start', '--replace', '-f', file]);
  assert.equal(replaced.code, 0, replaced.stderr);
  assert.match(replaced.stderr, /^closed release_shop_web \(Aborted\)$/m);
  const fresh = JSON.parse(await status(id)) as { phase: string; audit: { action: string }[] };
  assert.notEqual(fresh.phase, 'Aborted');
  assert.deepEqual(fresh.audit.map((a) => a.action).slice(0, 1), ['start'], 'a new workflow, not a retry');

  for (let i = 0; i < 40 && !(await status(id)).includes('"phase": "Paused"'); i++) await new Promise((r) => setTimeout(r, 250));
  const refused = await cli(['release', 'start', '--replace', '-f', file]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /--replace closes only a release that has finished \(Aborted or RolledBack\) and waits for a retry; release_shop_web is Paused \(step 2 of 2 pause\): abort it first/);
  assert.match(await status(id), /"phase": "Paused"/, 'the release in progress goes on');
  await cli(['release', 'abort', id, '--as', 'oncall']);
});

test('with no worker, start gives up after --preflight-timeout with exit 6 and says so', async () => {
  const r = await cli(['release', 'start', '-f', await spec('lonely'), '--preflight-timeout', '3s'], 'no-worker-here');
  assert.equal(r.code, 6, r.stderr);
  assert.match(r.stderr, /release_shop_lonely started but is not past preflight after 3s; .*it goes on/);
});
