/**
 * The release workflow with `plan.build`, under time skipping: the real buildImage activity (buildah
 * and docker-registry on 127.0.0.1) runs before preflight, and every later activity gets the pinned
 * `repo@sha256:` image; the rollout activities are stubs. Credentials come from a Secret reference
 * resolved in the activity: the recorded history is scanned for them. Needs root,
 * `bash scripts/provision-build.sh` and GLIDEPATH_TEST_SERVER (scripts/test.sh exports it).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import proto from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { BuildahBuilder } from '../../activities/build/buildah.ts';
import { createBuildActivities } from '../../activities/build/index.ts';
import type { ActivityDeps, ReleaseTarget } from '../../activities/contract.ts';
import { statusQuery } from '../../workflows/messages.ts';
import type { release } from '../../workflows/release.ts';
import { startProblems } from '../../model/plan.ts';
import { releaseWorkflowId, type ReleasePlan } from '../../model/types.ts';
import { holdSharedTimeSkippingEnv, releaseSharedTimeSkippingEnv } from '../support/time-skipping.ts';
import { startRegistry, type RegistryInstance } from '../support/registry.ts';
import { registerSearchAttributes } from '../../workers/search-attributes.ts';
import { dockerConfig, scratchContext } from '../activities/build/fixtures.ts';
import { Harness, canary, releaseResult } from './harness.ts';
import { createFreezeActivities } from '../../activities/freeze.ts';

const PASSWORD = 'pw-workflow-build-8c41e0';
const TASK_QUEUE = 'release-build-tests';
const root = mkdtempSync(join(tmpdir(), 'glidepath-buildah-root-'));
const calls = new Map<string, { name: string; image: string }[]>();
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let reg: RegistryInstance;
let secretJson = '';

function stubs(): Record<string, (...args: unknown[]) => Promise<unknown>> {
  const deps = {
    workload: {} as ActivityDeps['workload'],
    builders: { buildah: new BuildahBuilder({ root, killGraceMs: 1_000 }) },
    secrets: async () => secretJson,
  } as ActivityDeps;
  const build = createBuildActivities(deps, {});
  const impl: Record<string, (...args: unknown[]) => Promise<unknown>> = {
    buildImage: (t, b) => build.buildImage(t as ReleaseTarget, b as never),
    verifyImage: (t, i) => build.verifyImage(t as ReleaseTarget, i as string),
    preflight: async () => ({ stableImage: `${reg.host}/team/app:v1`, replicas: 4, warnings: [] }),
    ensureCanary: async () => undefined,
    setWeight: async () => ({ canaryReplicas: 1 }),
    setCanaryScale: async () => ({ canaryReplicas: 1 }),
    promoteCanary: async () => undefined,
    abortCanary: async () => undefined,
    deployPreview: async () => undefined,
    switchActive: async () => undefined,
    finalizeBlueGreen: async () => undefined,
    abortBlueGreen: async () => undefined,
    runAnalysis: async () => ({ metrics: [], terminated: true }),
  };
  const recorded: Record<string, (...args: unknown[]) => Promise<unknown>> = Object.fromEntries(
    Object.entries(impl).map(([name, fn]) => [
      name,
      async (...args: unknown[]) => {
        const id = Context.current().info.workflowExecution?.workflowId ?? '';
        const list = calls.get(id) ?? [];
        list.push({ name, image: (args[0] as ReleaseTarget).image });
        calls.set(id, list);
        return fn(...args);
      },
    ]),
  );
  // The start-time validation (a local activity) is real and not traced.
  return { ...recorded, validatePlan: async (plan, initiator) => startProblems(plan, initiator as string), identityPolicy: async () => null, freezeWindows: createFreezeActivities(undefined).freezeWindows as (...args: unknown[]) => Promise<unknown> };
}

async function begin(p: ReleasePlan): Promise<WorkflowHandle<typeof release>> {
  return env.client.workflow.start('release', { taskQueue: TASK_QUEUE, workflowId: releaseWorkflowId(p), args: [{ plan: p, initiator: 'ci-bot' }] }) as Promise<
    WorkflowHandle<typeof release>
  >;
}

async function headDigest(repo: string, tag: string): Promise<string | null> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json', authorization: `Basic ${Buffer.from(`ci:${PASSWORD}`).toString('base64')}` },
  });
  return res.headers.get('docker-content-digest');
}

before(async () => {
  reg = await startRegistry({ users: { ci: PASSWORD } });
  secretJson = readFileSync(dockerConfig(reg.host, 'ci', PASSWORD), 'utf8');
  const [e, bundle] = await Promise.all([holdSharedTimeSkippingEnv(), Harness.workflowBundle()]);
  env = e;
  await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  worker = await Worker.create({ connection: env.nativeConnection, taskQueue: TASK_QUEUE, workflowBundle: bundle, activities: stubs(), shutdownGraceTime: '2s', shutdownForceTime: '5s' });
  running = worker.run();
});

after(async () => {
  worker?.shutdown();
  await running;
  if (env) await releaseSharedTimeSkippingEnv();
  await reg?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('release with build', () => {
  test('builds before preflight; every later activity and the status carry the pinned digest; no credential in history', async () => {
    const ctx = scratchContext('workflow build\n');
    const p = canary('built', [{ kind: 'setWeight', weight: 25 }, { kind: 'pause', durationMs: 600_000 }], {
      image: `${reg.host}/team/app:v1`,
      build: { context: ctx, tags: ['v2'], registry: { insecure: true, authSecret: 'regcred' } },
      imagePolicy: { requireDigest: true },
    });
    const handle = await begin(p);
    const result = await releaseResult(handle);
    const pushed = await headDigest('team/app', 'v2');
    assert.ok(pushed, 'the tag was pushed');
    const pinned = `${reg.host}/team/app@${pushed}`;
    assert.equal(result.outcome, 'Promoted', result.reason);
    assert.equal(result.image, pinned);
    const trace = calls.get(releaseWorkflowId(p)) ?? [];
    assert.deepEqual(
      trace.map((c) => c.name),
      ['buildImage', 'preflight', 'ensureCanary', 'setWeight', 'promoteCanary'],
    );
    assert.equal(trace[0]?.image, `${reg.host}/team/app:v1`, 'buildImage gets the plan image (its repository takes the bare tags)');
    for (const c of trace.slice(1)) assert.equal(c.image, pinned, `${c.name} runs the pinned image`);
    const status = await handle.query(statusQuery);
    assert.equal(status.canaryImage, pinned);
    assert.equal(status.stableImage, pinned);
    assert.ok(status.audit.some((a) => a.action === 'build' && a.detail?.includes(pinned)));

    const history = proto.temporal.api.history.v1.History.encode(await handle.fetchHistory()).finish();
    const text = Buffer.from(history).toString('latin1');
    assert.ok(text.includes(pushed), 'the history does hold the digest (the scan reads real content)');
    for (const needle of [PASSWORD, Buffer.from(`ci:${PASSWORD}`).toString('base64'), '"auths"']) assert.ok(!text.includes(needle), `history contains ${needle}`);
    rmSync(ctx, { recursive: true, force: true });
  });

  test('wrong credentials: the release fails at the build with a named, non-retried failure', async () => {
    const ctx = scratchContext('wrong creds\n');
    const good = secretJson;
    secretJson = readFileSync(dockerConfig(reg.host, 'ci', 'not-the-password-77'), 'utf8');
    try {
      const p = canary('badcreds', [{ kind: 'setWeight', weight: 25 }], { image: `${reg.host}/team/bad:v1`, build: { context: ctx, tags: ['v2'], registry: { insecure: true, authSecret: 'regcred' } } });
      const result = await releaseResult(await begin(p));
      assert.equal(result.outcome, 'Failed');
      assert.match(result.reason, new RegExp(`^buildImage: Unauthorized: registry ${reg.host.replaceAll('.', '\\.')}`));
      assert.ok(!result.reason.includes('not-the-password-77'));
      assert.deepEqual((calls.get(releaseWorkflowId(p)) ?? []).map((c) => c.name), ['buildImage'], 'one attempt, nothing else touched');
    } finally {
      secretJson = good;
      rmSync(ctx, { recursive: true, force: true });
    }
  });

  test('registry down: retried, then the release fails naming the registry', async () => {
    const down = await startRegistry();
    const host = down.host;
    await down.stop();
    const ctx = scratchContext('down\n');
    const p = canary('regdown', [{ kind: 'setWeight', weight: 25 }], { image: `${host}/team/down:v1`, build: { context: ctx, tags: ['v2'], registry: { insecure: true } } });
    const result = await releaseResult(await begin(p));
    assert.equal(result.outcome, 'Failed');
    assert.match(result.reason, new RegExp(`^buildImage: Error: registry ${host.replaceAll('.', '\\.')} unreachable \\(ECONNREFUSED\\)`));
    assert.deepEqual((calls.get(releaseWorkflowId(p)) ?? []).map((c) => c.name), ['buildImage', 'buildImage', 'buildImage', 'buildImage'], 'retried up to maximumAttempts (4)');
    rmSync(ctx, { recursive: true, force: true });
  });

  test('imagePolicy.requireDigest refuses a mutable tag before anything runs', async () => {
    const p = canary('mutable', [{ kind: 'setWeight', weight: 25 }], { image: `${reg.host}/team/app:v1`, imagePolicy: { requireDigest: true } });
    const handle = await begin(p);
    await assert.rejects(handle.result(), (err: unknown) => String((err as { cause?: Error }).cause?.message).includes('requireDigest'));
    assert.deepEqual(calls.get(releaseWorkflowId(p)) ?? [], []);
  });
});
