/**
 * A release group on the production workflow bundle (workers/bundle.ts: the model modules preloaded,
 * shared and frozen, as the worker runs them): the group must get past its start check and run. zod
 * cannot run on a frozen schema, so no model module the workflow imports may import zod: the bundle
 * must not carry it at all (the workflow suites bundle with the same preload, test/support/workflow-bundle.ts).
 * The workflow modules are concatenated into one module (bundleWebpackConfig): evaluated per cached
 * workflow, each separate module would cost its own record, exports and context.
 * Time skipping with stubbed activities; needs GLIDEPATH_TEST_SERVER.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import proto from '@temporalio/proto';
import { buildGroup, parseGroup } from '../../model/group.ts';
import { groupWorkflowId } from '../../model/group-plan.ts';
import { groupPlanProblems } from '../../model/group-plan-schema.ts';
import { bundleWebpackConfig, PRELOAD_MODULES, WORKFLOWS_PATH } from '../../workers/bundle.ts';
import { registerSearchAttributes } from '../../workers/search-attributes.ts';
import { groupStatusQuery } from '../../workflows/group/messages.ts';
import { untilQuery } from '../support/poll.ts';
import { createTimeSkippingEnv } from '../support/time-skipping.ts';

const taskQueue = 'production-bundle';
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let bundleCode: string;

before(async () => {
  const [e, bundle] = await Promise.all([createTimeSkippingEnv(), bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, preloadModules: PRELOAD_MODULES, webpackConfigHook: bundleWebpackConfig, logger: quiet })]);
  env = e;
  bundleCode = bundle.code;
  await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: { code: bundle.code },
    // The group's own activities; no cluster worker runs, so its members wait (as the status says).
    activities: { validateGroup: async (g: unknown) => groupPlanProblems(g), taskQueuePollers: async () => ({ pollers: 0 }), identityPolicy: async () => null },
    shutdownGraceTime: '2s',
    shutdownForceTime: '5s',
  });
  running = worker.run();
});

after(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

test('a release group passes its start check and runs on the frozen, preloaded model', async () => {
  const release = { apiVersion: 'glidepath.dev/v1alpha1', kind: 'Release', metadata: { name: 'ledger', namespace: 'shop' }, spec: { workloadRef: { kind: 'Deployment', name: 'ledger' }, image: 'registry.local/ledger:2', strategy: { canary: { steps: [{ setWeight: 50 }] } } } };
  const doc = { apiVersion: 'glidepath.dev/v1alpha1', kind: 'ReleaseGroup', metadata: { name: 'checkout', namespace: 'shop' }, spec: { members: [{ name: 'ledger', inline: [release] }], waves: [{ name: 'staging', clusters: ['staging'] }] } };
  const group = buildGroup('g.yaml', parseGroup('g.yaml', doc));
  const handle = await env.client.workflow.start('releaseGroup', { taskQueue, workflowId: groupWorkflowId(group), args: [{ group, initiator: 'ci-bot' }] });
  const status = await untilQuery(handle, groupStatusQuery, (s) => s.clusters.some((c) => c.worker === 'no worker polling glidepath@staging'), 'the group waiting for the staging worker', {
    timeoutMs: 30_000,
    intervalMs: 100,
    show: (last) => JSON.stringify(last && { phase: last.phase, message: last.message }),
  });
  assert.equal(status.phase, 'Running', status.message);
  const history = await handle.fetchHistory();
  const failed = (history.events ?? []).filter((e) => e.eventType === proto.temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED);
  assert.deepEqual(failed.map((e) => e.workflowTaskFailedEventAttributes?.failure?.message), [], 'no workflow task failed');
  await handle.terminate('test done');
});

test('the production bundle carries no validation library: zod stays at the edge and in activities', () => {
  const zodModules = [...new Set(bundleCode.match(/node_modules\/zod\/[\w/.-]+/g) ?? [])];
  assert.deepEqual(zodModules, [], `workflow code imports a model module that imports zod: ${zodModules.slice(0, 5).join(', ')}`);
});

test('the workflow modules are concatenated into one module of the bundle', () => {
  const workflowModules = [...new Set(bundleCode.match(/"\.\/workflows\/[\w/.-]+\.ts"/g) ?? [])];
  const sections = bundleCode.match(/;\/\/ \.\/workflows\/[\w/-]+\.ts/g) ?? [];
  assert.deepEqual(workflowModules, ['"./workflows/index.ts"'], 'one webpack module for the workflow code');
  assert.ok(sections.length >= 30, `the workflow files are sections of it (${sections.length} found)`);
});
