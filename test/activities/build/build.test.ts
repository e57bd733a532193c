/**
 * The build activities against real parts: buildah (chroot, vfs) building `FROM scratch` contexts and
 * pushing to Debian's docker-registry on 127.0.0.1, open or behind htpasswd. Needs root and
 * `bash scripts/provision-build.sh`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { CancelledFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { BuildahBuilder } from '../../../activities/build/buildah.ts';
import { createBuildActivities, SOURCE_DIGEST_LABEL, type BuildSpec } from '../../../activities/build/index.ts';
import { RegistryClient } from '../../../activities/build/registry.ts';
import type { ActivityDeps } from '../../../activities/contract.ts';
import { startRegistry, type RegistryInstance } from '../../support/registry.ts';
import { dockerConfig, headDigest, inEnv, processesMatching, rejection, scratchContext, slowContext, target } from './fixtures.ts';

const PASSWORD = 'pw-Glidepath-7f3a9c';
const WRONG = 'wrong-Glidepath-19bd';
const root = mkdtempSync(join(tmpdir(), 'glidepath-buildah-root-'));
const builder = new BuildahBuilder({ root, killGraceMs: 1_000 });
const deps = { workload: {} as ActivityDeps['workload'], builders: { buildah: builder } } as ActivityDeps;
const timings: Record<string, number> = {};

describe('buildImage on an open loopback registry', () => {
  let reg: RegistryInstance;
  before(async () => {
    reg = await startRegistry();
  });
  after(async () => {
    await reg.stop();
  });

  test('builds, pushes, and pins the digest the registry reports', async () => {
    const ctx = scratchContext('hello v1\n');
    const acts = createBuildActivities(deps, {});
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const spec: BuildSpec = { context: ctx, tags: ['v1', `${reg.host}/team/app:extra`], buildArgs: { NOTE: 'first' }, platform: 'linux/amd64', registry: { insecure: true } };
    const t0 = performance.now();
    const res = await inEnv(env, () => acts.buildImage(target(`${reg.host}/team/app:v0`), spec));
    timings['build+push (2 tags), cold'] = performance.now() - t0;
    assert.equal(res.skipped, false);
    assert.match(res.digest, /^sha256:[a-f0-9]{64}$/);
    assert.equal(res.image, `${reg.host}/team/app@${res.digest}`);
    assert.equal(await headDigest(reg, 'team/app', 'v1'), res.digest, 'pinned digest = registry Docker-Content-Digest of the tag');
    assert.equal(await headDigest(reg, 'team/app', 'extra'), res.digest);
    assert.ok(beats.some((b) => (b as { phase?: string }).phase === 'pushed'), JSON.stringify(beats));
    const labels = await new RegistryClient(reg.host, { insecure: true }).imageLabels('team/app', res.digest);
    assert.equal(labels?.[SOURCE_DIGEST_LABEL], res.sourceDigest);
    assert.equal(labels?.['note'], 'first', 'build arg reached the Dockerfile');

    // Same source again: skipped, same digest, nothing rebuilt.
    const t1 = performance.now();
    const again = await inEnv(env, () => acts.buildImage(target(`${reg.host}/team/app:v0`), spec));
    timings['same source again (skip check)'] = performance.now() - t1;
    assert.equal(again.skipped, true);
    assert.equal(again.digest, res.digest);

    // Another build arg is another source: rebuilt, a new digest under the tag.
    const t2 = performance.now();
    const changed = await inEnv(env, () => acts.buildImage(target(`${reg.host}/team/app:v0`), { ...spec, buildArgs: { NOTE: 'second' } }));
    timings['build+push (2 tags), warm store'] = performance.now() - t2;
    assert.equal(changed.skipped, false);
    assert.notEqual(changed.digest, res.digest);
    assert.equal(await headDigest(reg, 'team/app', 'v1'), changed.digest);

    // verifyImage: the pinned image exists; a digest that was never pushed is NotFound naming the registry.
    const v = await inEnv(env, () => acts.verifyImage(target(changed.image), changed.image, { insecure: true }));
    assert.equal(v.digest, changed.digest);
    const missing = `${reg.host}/team/app@sha256:${'0'.repeat(64)}`;
    const err = await rejection(inEnv(env, () => acts.verifyImage(target(missing), missing, { insecure: true })));
    assert.ok(err instanceof ApplicationFailure && err.type === 'NotFound' && err.nonRetryable, String(err));
    assert.match(err.message, new RegExp(reg.host.replaceAll('.', '\\.')));
    rmSync(ctx, { recursive: true, force: true });
  });

  test('insecure is refused for a registry that is not loopback', async () => {
    const acts = createBuildActivities(deps, {});
    const err = await rejection(inEnv(new MockActivityEnvironment(), () => acts.buildImage(target('registry.example.com/app:v0'), { context: '.', tags: ['v1'], registry: { insecure: true } })));
    assert.ok(err instanceof ApplicationFailure && err.type === 'InvalidSpec' && err.nonRetryable, String(err));
  });

  test('cancellation mid-build leaves no buildah process behind', async () => {
    const ctx = slowContext(617);
    const acts = createBuildActivities(deps, {});
    const env = new MockActivityEnvironment();
    const beats: string[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(JSON.stringify(d)));
    const running = inEnv(env, () => acts.buildImage(target(`${reg.host}/team/slow:v0`), { context: ctx, tags: ['v1'], registry: { insecure: true } }));
    const deadline = Date.now() + 60_000;
    while (processesMatching('/bin/sleep 617').length === 0) {
      assert.ok(Date.now() < deadline, `the RUN step never started; beats: ${beats.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(processesMatching(root).length > 0, 'buildah runs under the test root');
    const t0 = performance.now();
    env.cancel();
    const err = await rejection(running);
    timings['cancel → promise settled, tree gone'] = performance.now() - t0;
    assert.ok(err instanceof CancelledFailure, String(err));
    assert.deepEqual(processesMatching(root), [], 'no buildah process left');
    assert.deepEqual(processesMatching('/bin/sleep 617'), [], 'no RUN child left');
    assert.equal(await headDigest(reg, 'team/slow', 'v1'), null, 'nothing pushed');
    rmSync(ctx, { recursive: true, force: true });
  });
});

describe('buildImage on a registry with htpasswd auth', () => {
  let reg: RegistryInstance;
  before(async () => {
    reg = await startRegistry({ users: { ci: PASSWORD } });
  });
  after(async () => {
    await reg.stop();
  });

  test('the worker auth file pushes; wrong credentials fail as Unauthorized naming the registry, never the password', async () => {
    const ctx = scratchContext('auth\n');
    const good = createBuildActivities(deps, { authFile: dockerConfig(reg.host, 'ci', PASSWORD) });
    const env = new MockActivityEnvironment();
    const res = await inEnv(env, () => good.buildImage(target(`${reg.host}/secure/app:v0`), { context: ctx, tags: ['v1'], registry: { insecure: true } }));
    const basic = `Basic ${Buffer.from(`ci:${PASSWORD}`).toString('base64')}`;
    assert.equal(await headDigest(reg, 'secure/app', 'v1', basic), res.digest);
    const verified = await inEnv(env, () => good.verifyImage(target(res.image), res.image, { insecure: true }));
    assert.equal(verified.digest, res.digest);

    const bad = createBuildActivities(deps, { authFile: dockerConfig(reg.host, 'ci', WRONG) });
    const err = await rejection(inEnv(env, () => bad.buildImage(target(`${reg.host}/secure/app:v0`), { context: ctx, tags: ['v2'], registry: { insecure: true } })));
    assert.ok(err instanceof ApplicationFailure && err.type === 'Unauthorized' && err.nonRetryable, String(err));
    assert.ok(err.message.includes(reg.host), err.message);
    assert.ok(!err.message.includes(WRONG) && !err.message.includes(PASSWORD), err.message);

    // buildah's own push with the wrong credentials (no pre-check): classified the same way.
    const wrongFile = dockerConfig(reg.host, 'ci', WRONG);
    const pushErr = await rejection(builder.build({ context: ctx, tags: [`${reg.host}/secure/app:v3`], signal: new AbortController().signal, insecure: true, authFile: wrongFile }));
    assert.ok(pushErr instanceof ApplicationFailure && pushErr.type === 'Unauthorized' && pushErr.nonRetryable, String(pushErr));
    assert.ok(!pushErr.message.includes(WRONG), pushErr.message);

    // No credentials at all: also Unauthorized.
    const none = createBuildActivities(deps, {});
    const noneErr = await rejection(inEnv(env, () => none.verifyImage(target(res.image), res.image, { insecure: true })));
    assert.ok(noneErr instanceof ApplicationFailure && noneErr.type === 'Unauthorized', String(noneErr));
    rmSync(ctx, { recursive: true, force: true });
  });

  test('credentials from a Kubernetes secret reference are resolved inside the activity', async () => {
    const ctx = scratchContext('secret\n');
    const cfg = readFileSync(dockerConfig(reg.host, 'ci', PASSWORD), 'utf8');
    const asked: unknown[] = [];
    const withSecrets = { ...deps, secrets: async (ns: string, ref: { name: string; key: string }) => (asked.push({ ns, ...ref }), cfg) } as ActivityDeps;
    const acts = createBuildActivities(withSecrets, {});
    const spec: BuildSpec = { context: ctx, tags: ['v1'], registry: { insecure: true, authSecret: 'regcred' } };
    const res = await inEnv(new MockActivityEnvironment(), () => acts.buildImage(target(`${reg.host}/secret/app:v0`), spec));
    assert.equal(res.skipped, false);
    assert.deepEqual(asked[0], { ns: 'default', name: 'regcred', key: '.dockerconfigjson' });
    assert.ok(!JSON.stringify(spec).includes(PASSWORD), 'the activity input carries a name, not the credential');
    assert.ok(!JSON.stringify(res).includes(PASSWORD));
    const leftovers = readdirSync(tmpdir()).filter((n) => n.startsWith('glidepath-auth-'));
    assert.deepEqual(leftovers, [], 'the temp auth file is removed');
    rmSync(ctx, { recursive: true, force: true });
  });
});

describe('registry down', () => {
  test('unreachable is a retryable error naming the registry; back up, the same call succeeds', async () => {
    const reg = await startRegistry();
    const ctx = scratchContext('down\n');
    const acts = createBuildActivities(deps, {});
    const env = new MockActivityEnvironment();
    const first = await inEnv(env, () => acts.buildImage(target(`${reg.host}/d/app:v0`), { context: ctx, tags: ['v1'], registry: { insecure: true } }));
    await reg.halt();
    const err = await rejection(inEnv(env, () => acts.verifyImage(target(first.image), first.image, { insecure: true })));
    assert.ok(err instanceof Error && !(err instanceof ApplicationFailure && err.nonRetryable), `retryable: ${String(err)}`);
    assert.match(err.message, new RegExp(`registry ${reg.host.replaceAll('.', '\\.')} unreachable \\(ECONNREFUSED\\)`));
    writeFileSync(join(ctx, 'hello.txt'), 'down, changed\n');
    const buildErr = await rejection(inEnv(env, () => acts.buildImage(target(`${reg.host}/d/app:v0`), { context: ctx, tags: ['v1'], registry: { insecure: true } })));
    assert.ok(buildErr instanceof Error && !(buildErr instanceof ApplicationFailure && buildErr.nonRetryable), `retryable: ${String(buildErr)}`);
    assert.match(buildErr.message, /unreachable/);

    const back = await startRegistry({ port: reg.port, storageDir: reg.storageDir });
    try {
      const v = await inEnv(env, () => acts.verifyImage(target(first.image), first.image, { insecure: true }));
      assert.equal(v.digest, first.digest);
    } finally {
      await back.stop();
      await reg.stop();
      rmSync(ctx, { recursive: true, force: true });
    }
  });
});

describe('recorded workflow histories', () => {
  test('carry no credential used by these tests', () => {
    const dir = join(import.meta.dirname, '../../replay/histories');
    const files = readdirSync(dir).filter((f) => f.endsWith('.binpb') || f.endsWith('.json'));
    assert.ok(files.length > 0);
    const needles = [PASSWORD, WRONG, Buffer.from(`ci:${PASSWORD}`).toString('base64'), Buffer.from(`ci:${WRONG}`).toString('base64')];
    for (const f of files) {
      const body = readFileSync(join(dir, f)).toString('latin1');
      for (const n of needles) assert.ok(!body.includes(n), `${f} contains a credential`);
      assert.ok(!/"auths"\s*:/.test(body), `${f} contains a docker config`);
    }
  });
});

after(() => {
  rmSync(root, { recursive: true, force: true });
  console.log(`# build timings (ms): ${JSON.stringify(Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])))}`);
});
