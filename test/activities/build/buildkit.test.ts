/**
 * The BuildKit builders against real parts: a buildkitd (test/support/buildkitd.ts: root, loopback TCP,
 * OCI worker with the native snapshotter and Debian's runc) driven by `buildctl` and by the standalone
 * `buildx` with its `remote` driver, building `FROM scratch` contexts and pushing to Debian's
 * docker-registry on 127.0.0.1, open or behind htpasswd. Needs root,
 * `eval "$(bash scripts/provision-buildkit.sh)"` and `bash scripts/provision-build.sh`.
 */
import assert from 'node:assert/strict';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { CancelledFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { BuildctlBuilder } from '../../../activities/build/buildctl.ts';
import { BuilderConfigError, buildersFromEnv } from '../../../activities/build/builders.ts';
import { BuildxBuilder } from '../../../activities/build/buildx.ts';
import { createBuildActivities, SOURCE_DIGEST_LABEL, type BuildSpec } from '../../../activities/build/index.ts';
import { RegistryClient } from '../../../activities/build/registry.ts';
import type { ActivityDeps } from '../../../activities/contract.ts';
import { buildctlBinary, buildxBinary, startBuildkitd, type BuildkitdInstance } from '../../support/buildkitd.ts';
import { freePort } from '../../support/daemon.ts';
import { startRegistry, type RegistryInstance } from '../../support/registry.ts';
import { dockerConfig, headDigest as headDigestOf, inEnv, MANIFEST_TYPES, processesMatching, rejection, scratchContext, slowContext, target } from './fixtures.ts';

const PASSWORD = 'pw-Buildkit-4c1e8a';
const WRONG = 'wrong-Buildkit-77d2';
const timings: Record<string, number[]> = {};
const time = (k: string, ms: number): void => void (timings[k] ??= []).push(Math.round(ms));

let bk: BuildkitdInstance;
before(async () => {
  const t0 = performance.now();
  bk = await startBuildkitd();
  time('buildkitd start → a worker listed', performance.now() - t0);
});
after(async () => {
  await bk?.stop();
  console.log(`# buildkit timings (ms): ${JSON.stringify(timings)}`);
});

const backends: { name: 'buildctl' | 'buildx'; bin: () => string; make(address: string): BuildctlBuilder | BuildxBuilder }[] = [
  { name: 'buildctl', bin: buildctlBinary, make: (address) => new BuildctlBuilder({ address, bin: buildctlBinary(), killGraceMs: 1_000 }) },
  { name: 'buildx', bin: buildxBinary, make: (address) => new BuildxBuilder({ address, bin: buildxBinary(), killGraceMs: 1_000 }) },
];

/** BuildKit may push an OCI index, so the HEAD accepts one too. */
const headDigest = (reg: RegistryInstance, repo: string, ref: string, auth?: string): Promise<string | null> =>
  headDigestOf(reg, repo, ref, auth, `${MANIFEST_TYPES}, application/vnd.oci.image.index.v1+json`);

/** Temp dirs a builder of this name made and did not remove. */
const leftovers = (name: string): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith(`glidepath-${name}-`));

for (const backend of backends) {
  describe(`${backend.name} on an open loopback registry`, () => {
    let reg: RegistryInstance;
    let deps: ActivityDeps;
    before(async () => {
      reg = await startRegistry();
      deps = { workload: {} as ActivityDeps['workload'], builders: { [backend.name]: backend.make(bk.address) } } as ActivityDeps;
    });
    after(async () => {
      await reg.stop();
    });

    test('builds, pushes, and pins the digest the registry reports', async () => {
      const ctx = scratchContext(`hello from ${backend.name}\n`);
      const acts = createBuildActivities(deps, {});
      const env = new MockActivityEnvironment();
      const beats: unknown[] = [];
      env.on('heartbeat', (d: unknown) => beats.push(d));
      const spec: BuildSpec = { context: ctx, builder: backend.name, tags: ['v1', `${reg.host}/team/app:extra`], buildArgs: { NOTE: 'first' }, platform: 'linux/amd64', registry: { insecure: true } };
      const t0 = performance.now();
      const res = await inEnv(env, () => acts.buildImage(target(`${reg.host}/team/app:v0`), spec));
      time(`${backend.name}: build+push (2 tags), cold cache`, performance.now() - t0);
      assert.equal(res.skipped, false);
      assert.match(res.digest, /^sha256:[a-f0-9]{64}$/);
      assert.equal(res.image, `${reg.host}/team/app@${res.digest}`);
      assert.equal(await headDigest(reg, 'team/app', 'v1'), res.digest, 'pinned digest = registry Docker-Content-Digest of the tag');
      assert.equal(await headDigest(reg, 'team/app', 'extra'), res.digest);
      assert.ok(beats.some((b) => (b as { phase?: string; builder?: string }).phase === 'pushed' && (b as { builder?: string }).builder === backend.name), JSON.stringify(beats));
      const labels = await new RegistryClient(reg.host, { insecure: true }).imageLabels('team/app', res.digest);
      assert.equal(labels?.[SOURCE_DIGEST_LABEL], res.sourceDigest, 'the source digest label is in the image config');
      assert.equal(labels?.['note'], 'first', 'build arg reached the Dockerfile');

      const t1 = performance.now();
      const again = await inEnv(env, () => acts.buildImage(target(`${reg.host}/team/app:v0`), spec));
      time(`${backend.name}: same source again (skip check)`, performance.now() - t1);
      assert.equal(again.skipped, true);
      assert.equal(again.digest, res.digest);

      const t2 = performance.now();
      const changed = await inEnv(env, () => acts.buildImage(target(`${reg.host}/team/app:v0`), { ...spec, buildArgs: { NOTE: 'second' } }));
      time(`${backend.name}: build+push (2 tags), changed build arg`, performance.now() - t2);
      assert.equal(changed.skipped, false);
      assert.notEqual(changed.digest, res.digest);
      assert.equal(await headDigest(reg, 'team/app', 'v1'), changed.digest);
      assert.equal(await headDigest(reg, 'team/app', 'extra'), changed.digest);
      assert.deepEqual(leftovers(backend.name), [], 'temp dirs removed');
      rmSync(ctx, { recursive: true, force: true });
    });

    test('a Dockerfile error is a non-retryable InvalidSpec', async () => {
      const ctx = scratchContext('bad\n');
      writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY missing.txt /missing.txt\n');
      const err = await rejection(backend.make(bk.address).build({ context: ctx, tags: [`${reg.host}/team/bad:v1`], signal: new AbortController().signal, insecure: true }));
      assert.ok(err instanceof ApplicationFailure && err.type === 'InvalidSpec' && err.nonRetryable, String(err));
      assert.match(err.message, /missing\.txt/);
      assert.equal(await headDigest(reg, 'team/bad', 'v1'), null, 'nothing pushed');
      rmSync(ctx, { recursive: true, force: true });
    });

    test('cancellation mid-build leaves no client process behind, and buildkitd drops the RUN step', async () => {
      const seconds = backend.name === 'buildctl' ? 619 : 623;
      const ctx = slowContext(seconds);
      const acts = createBuildActivities(deps, {});
      const env = new MockActivityEnvironment();
      const running = inEnv(env, () => acts.buildImage(target(`${reg.host}/team/slow:v0`), { context: ctx, builder: backend.name, tags: ['v1'], registry: { insecure: true } }));
      const deadline = Date.now() + 60_000;
      while (processesMatching(`/bin/sleep ${seconds}`).length === 0) {
        assert.ok(Date.now() < deadline, 'the RUN step never started');
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(processesMatching(backend.bin()).length > 0, `${backend.name} runs`);
      const t0 = performance.now();
      env.cancel();
      const err = await rejection(running);
      time(`${backend.name}: cancel → activity settled, client tree gone`, performance.now() - t0);
      assert.ok(err instanceof CancelledFailure, String(err));
      assert.deepEqual(processesMatching(backend.bin()), [], `no ${backend.name} process left`);
      // The RUN container belongs to buildkitd, which cancels the solve when its client goes away.
      const gone = Date.now() + 10_000;
      while (processesMatching(`/bin/sleep ${seconds}`).length > 0) {
        assert.ok(Date.now() < gone, `buildkitd kept the RUN step: ${processesMatching(`/bin/sleep ${seconds}`).join('; ')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      time(`${backend.name}: cancel → RUN process gone`, performance.now() - t0);
      assert.equal(await headDigest(reg, 'team/slow', 'v1'), null, 'nothing pushed');
      assert.deepEqual(leftovers(backend.name), [], 'temp dirs removed');
      rmSync(ctx, { recursive: true, force: true });
    });
  });

  describe(`${backend.name} on a registry with htpasswd auth`, () => {
    let reg: RegistryInstance;
    before(async () => {
      reg = await startRegistry({ users: { ci: PASSWORD } });
    });
    after(async () => {
      await reg.stop();
    });

    test('the worker auth file pushes; wrong credentials fail as Unauthorized naming the registry, never the password', async () => {
      const ctx = scratchContext(`auth ${backend.name}\n`);
      const deps = { workload: {} as ActivityDeps['workload'], builders: { [backend.name]: backend.make(bk.address) } } as ActivityDeps;
      const good = createBuildActivities(deps, { authFile: dockerConfig(reg.host, 'ci', PASSWORD), defaultBuilder: backend.name });
      const env = new MockActivityEnvironment();
      const beats: unknown[] = [];
      env.on('heartbeat', (d: unknown) => beats.push(d));
      const res = await inEnv(env, () => good.buildImage(target(`${reg.host}/secure/app:v0`), { context: ctx, tags: ['v1'], registry: { insecure: true } }));
      const basic = `Basic ${Buffer.from(`ci:${PASSWORD}`).toString('base64')}`;
      assert.equal(await headDigest(reg, 'secure/app', 'v1', basic), res.digest);
      assert.ok(beats.some((b) => (b as { builder?: string }).builder === backend.name), 'the worker default builder was used');

      // The builder's own push with the wrong credentials (no registry pre-check in front of it).
      const pushErr = await rejection(backend.make(bk.address).build({ context: ctx, tags: [`${reg.host}/secure/app:v2`], signal: new AbortController().signal, insecure: true, authFile: dockerConfig(reg.host, 'ci', WRONG) }));
      assert.ok(pushErr instanceof ApplicationFailure && pushErr.type === 'Unauthorized' && pushErr.nonRetryable, String(pushErr));
      assert.ok(pushErr.message.includes(reg.host), pushErr.message);
      assert.match(pushErr.message, /failed to push .*401 Unauthorized/, 'the message quotes BuildKit\'s error line');
      assert.ok(!pushErr.message.includes('#1 [internal]'), `progress lines are not quoted: ${pushErr.message}`);
      assert.ok(!pushErr.message.includes(WRONG) && !pushErr.message.includes(PASSWORD), pushErr.message);
      assert.equal(await headDigest(reg, 'secure/app', 'v2', basic), null, 'nothing pushed');

      // No credentials at all: Unauthorized too (the worker user's ~/.docker/config.json is never read).
      const noneErr = await rejection(backend.make(bk.address).build({ context: ctx, tags: [`${reg.host}/secure/app:v3`], signal: new AbortController().signal, insecure: true }));
      assert.ok(noneErr instanceof ApplicationFailure && noneErr.type === 'Unauthorized' && noneErr.nonRetryable, String(noneErr));
      assert.deepEqual(leftovers(backend.name), [], 'temp DOCKER_CONFIG dirs removed');
      rmSync(ctx, { recursive: true, force: true });
    });
  });
}

describe('builder selection and daemon faults', () => {
  test('a builder the worker has not configured is a named non-retryable error before anything is built', async () => {
    const reg = await startRegistry();
    const ctx = scratchContext('unconfigured\n');
    try {
      const deps = { workload: {} as ActivityDeps['workload'], builders: buildersFromEnv({ GLIDEPATH_BUILD_ROOT: join(tmpdir(), 'glidepath-buildah-unused') }) } as ActivityDeps;
      const acts = createBuildActivities(deps, {});
      for (const builder of ['buildctl', 'kaniko']) {
        const err = await rejection(inEnv(new MockActivityEnvironment(), () => acts.buildImage(target(`${reg.host}/team/none:v0`), { context: ctx, builder, tags: ['v1'], registry: { insecure: true } })));
        assert.ok(err instanceof ApplicationFailure && err.type === 'UnsupportedProvider' && err.nonRetryable, String(err));
        assert.match(err.message, new RegExp(`image builder "${builder}" is not available on this worker \\(configured: buildah`));
        if (builder === 'buildctl') assert.match(err.message, /GLIDEPATH_BUILDKIT_ADDR/);
      }
      const defaulted = createBuildActivities(deps, { defaultBuilder: 'buildx' });
      const err = await rejection(inEnv(new MockActivityEnvironment(), () => defaulted.buildImage(target(`${reg.host}/team/none:v0`), { context: ctx, tags: ['v1'], registry: { insecure: true } })));
      assert.ok(err instanceof ApplicationFailure && err.type === 'UnsupportedProvider', String(err));
      assert.equal(await headDigest(reg, 'team/none', 'v1'), null, 'nothing pushed');
    } finally {
      await reg.stop();
      rmSync(ctx, { recursive: true, force: true });
    }
  });

  test('worker configuration: buildctl and buildx only with GLIDEPATH_BUILDKIT_ADDR; GLIDEPATH_BUILDER must name a configured one', () => {
    assert.deepEqual(Object.keys(buildersFromEnv({})), ['buildah']);
    const all = buildersFromEnv({ GLIDEPATH_BUILDKIT_ADDR: bk.address, GLIDEPATH_BUILDER: 'buildx' });
    assert.deepEqual(Object.keys(all).sort(), ['buildah', 'buildctl', 'buildx']);
    assert.ok(all.buildctl instanceof BuildctlBuilder && all.buildx instanceof BuildxBuilder);
    assert.throws(() => buildersFromEnv({ GLIDEPATH_BUILDER: 'buildctl' }), (e: unknown) => e instanceof BuilderConfigError && /GLIDEPATH_BUILDER=buildctl: not a configured builder; configured: buildah \(set GLIDEPATH_BUILDKIT_ADDR/.test(e.message));
    assert.throws(() => buildersFromEnv({ GLIDEPATH_BUILDKIT_ADDR: '127.0.0.1:1234' }), (e: unknown) => e instanceof BuilderConfigError && /expected tcp:\/\/host:port/.test(e.message));
  });

  for (const backend of backends) {
    test(`${backend.name}: buildkitd unreachable is a retryable error`, async () => {
      const reg = await startRegistry();
      const ctx = scratchContext('no daemon\n');
      try {
        const nobody = `tcp://127.0.0.1:${await freePort()}`;
        const t0 = performance.now();
        const err = await rejection(backend.make(nobody).build({ context: ctx, tags: [`${reg.host}/team/nodaemon:v1`], signal: AbortSignal.timeout(60_000), insecure: true }));
        time(`${backend.name}: daemon down → error`, performance.now() - t0);
        assert.ok(err instanceof Error && !(err instanceof ApplicationFailure && err.nonRetryable), `retryable: ${String(err)}`);
        assert.ok(err.message.includes(`${backend.name} build on ${nobody} failed`), err.message);
        // buildctl fails at once; buildx's remote driver waits for the connection (20 s) first.
        assert.match(err.message, backend.name === 'buildctl' ? /connection refused/ : /waiting for connection[\s\S]*context deadline exceeded/);
      } finally {
        await reg.stop();
        rmSync(ctx, { recursive: true, force: true });
      }
    });
  }
});
