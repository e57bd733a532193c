/**
 * The build activity against hostile build sections, refused before any builder runs: a Dockerfile
 * outside the context (absolute, `..`, or a symbolic link inside the context pointing out), tags that
 * would inject fields into BuildKit's `--output`, and prototype-key builder names. The builder here
 * records what it is asked (no build tool needed): the assertion is that it is never asked. The
 * failure text of a real BuildKit parse error (as buildctl prints it) never quotes the file it read.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { classifyBuildkitFailure, imageOutput } from '../../../activities/build/buildkit.ts';
import { buildOptionsFromEnv, createBuildActivities, type BuildSpec } from '../../../activities/build/index.ts';
import type { BuildRequest } from '../../../activities/build/process.ts';
import type { ActivityDeps, ImageBuilder } from '../../../activities/contract.ts';
import { inEnv, rejection, target } from './fixtures.ts';

const SECRET = 'eyJhbGciOiJSUzI1NiJ9.service-account-token-7c41';
const root = mkdtempSync(join(tmpdir(), 'glidepath-hostile-build-'));
const outside = join(root, 'var-run-secrets');
mkdirSync(outside);
writeFileSync(join(outside, 'token'), `${SECRET}\n`);
const context = join(root, 'ctx');
mkdirSync(join(context, 'docker'), { recursive: true });
writeFileSync(join(context, 'Dockerfile'), 'FROM scratch\nCOPY a /a\n');
writeFileSync(join(context, 'docker', 'Dockerfile.prod'), 'FROM scratch\n');
writeFileSync(join(context, 'a'), 'a\n');
symlinkSync(join(outside, 'token'), join(context, 'Dockerfile.link'));
symlinkSync(outside, join(context, 'linked-dir'));

after(() => rmSync(root, { recursive: true, force: true }));

/** A builder that records each request it gets and answers with a fixed digest. */
class RecordingBuilder implements ImageBuilder {
  readonly type = 'buildctl';
  readonly requests: BuildRequest[] = [];
  async build(input: BuildRequest): Promise<{ digest: string }> {
    this.requests.push(input);
    throw new Error(`builder reached with tags ${JSON.stringify(input.tags)} and dockerfile ${input.dockerfile}`);
  }
}

function activities(contextRoots?: string[]) {
  const builder = new RecordingBuilder();
  const deps = { workload: {} as ActivityDeps['workload'], builders: { buildctl: builder } } as ActivityDeps;
  return { builder, acts: createBuildActivities(deps, { defaultBuilder: 'buildctl', ...(contextRoots ? { contextRoots } : {}) }) };
}

async function refusedBeforeBuilder(spec: Partial<BuildSpec>, message: RegExp, type = 'InvalidSpec', contextRoots?: string[]): Promise<void> {
  const { builder, acts } = activities(contextRoots);
  const err = await rejection(inEnv(new MockActivityEnvironment(), () => acts.buildImage(target('127.0.0.1:5000/team/app:v0'), { context, tags: ['v1'], ...spec })));
  assert.equal(builder.requests.length, 0, `the builder was asked: ${JSON.stringify(builder.requests.map((r) => ({ tags: r.tags, dockerfile: r.dockerfile })))}`);
  assert.ok(err instanceof ApplicationFailure, String(err));
  assert.equal(err.type, type, err.message);
  assert.equal(err.nonRetryable, true);
  assert.match(err.message, message);
  assert.ok(!err.message.includes(SECRET), 'no file contents in the message');
}

test('a Dockerfile outside the context never reaches the builder: absolute, .., symlinked file or directory', async () => {
  await refusedBeforeBuilder({ dockerfile: join(outside, 'token') }, /build\.dockerfile .* must be a path inside build\.context/);
  await refusedBeforeBuilder({ dockerfile: '../var-run-secrets/token' }, /build\.dockerfile .* must be a path inside build\.context/);
  await refusedBeforeBuilder({ dockerfile: 'Dockerfile.link' }, /build\.dockerfile Dockerfile\.link resolves outside build\.context \(symbolic links are followed\)/);
  await refusedBeforeBuilder({ dockerfile: 'linked-dir/token' }, /build\.dockerfile linked-dir\/token resolves outside build\.context/);
  await refusedBeforeBuilder({ dockerfile: 'missing/Dockerfile' }, /build\.dockerfile missing\/Dockerfile cannot be read in build\.context: ENOENT/);
  // No build.dockerfile: the default Dockerfile is held to the same rule.
  const linkedDefault = join(root, 'ctx-default');
  mkdirSync(linkedDefault);
  symlinkSync(join(outside, 'token'), join(linkedDefault, 'Dockerfile'));
  await refusedBeforeBuilder({ context: linkedDefault }, /build\.dockerfile Dockerfile resolves outside build\.context/);
});

test('the context itself: never the root or a system directory; under GLIDEPATH_BUILD_CONTEXT_ROOTS when set', async () => {
  // A context of "/" would make any file the worker can read "inside the context".
  await refusedBeforeBuilder({ context: '/', dockerfile: 'var/run/secrets/kubernetes.io/serviceaccount/token' }, /build\.context \/ is \/: a system directory is never a build context/);
  await refusedBeforeBuilder({ context: '/etc', dockerfile: 'hostname' }, /build\.context \/etc is \/etc: a system directory/);
  await refusedBeforeBuilder({ context: '/proc/self', dockerfile: 'environ' }, /a system directory is never a build context/);
  await refusedBeforeBuilder({}, /build\.context .* is outside the worker's GLIDEPATH_BUILD_CONTEXT_ROOTS \(\/srv\/builds\)/, 'InvalidSpec', ['/srv/builds']);
  assert.deepEqual(buildOptionsFromEnv({ GLIDEPATH_BUILD_CONTEXT_ROOTS: '/srv/builds, /var/lib/glidepath/src' }).contextRoots, ['/srv/builds', '/var/lib/glidepath/src']);
  assert.throws(() => buildOptionsFromEnv({ GLIDEPATH_BUILD_CONTEXT_ROOTS: 'relative/dir' }), /not an absolute path/);
});

test('a Dockerfile inside the context reaches the builder as its real path', async () => {
  // An empty registry on loopback (every manifest 404), so the skip check finds nothing and the build proceeds.
  const empty = createServer((req, res) => res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'));
  await new Promise<void>((r) => empty.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(empty.address() as AddressInfo).port}`;
  try {
    const { builder, acts } = activities([root]);
    await rejection(inEnv(new MockActivityEnvironment(), () => acts.buildImage(target(`${host}/team/app:v0`), { context, tags: ['v1'], dockerfile: 'docker/Dockerfile.prod', registry: { insecure: true } })));
    assert.equal(builder.requests.length, 1);
    assert.equal(builder.requests[0]?.dockerfile, join(context, 'docker', 'Dockerfile.prod'));
    assert.deepEqual(builder.requests[0]?.tags, [`${host}/team/app:v1`]);
  } finally {
    empty.close();
  }
});

test('tags that would inject --output fields never reach the builder', async () => {
  for (const tag of [
    'a",type=local,dest=..,"b.c/app:v1', // accepted before: a local export next to the worker's working directory
    'a",registry.insecure=true,"b.example.com/app:v1', // accepted before: TLS verification off for the push
    '127.0.0.1:5000/x",type=local,dest=/tmp/pwn,"y:v1',
    '127.0.0.1:5000/app:v1,registry.insecure=true',
    'v1",push=false,"x',
    'evil.example.com,dest=/tmp/x/app:v1',
    '127.0.0.1:5000/app:v1\nX',
  ]) {
    await refusedBeforeBuilder({ tags: [tag] }, /build\.tags\[0\] .*is not an image reference|build\.tags\[0\] .*control characters/);
  }
  await refusedBeforeBuilder({ tags: ['127.0.0.1:5000/app@sha256:' + 'a'.repeat(64)] }, /build\.tags\[0\] .*has a digest/);
  // The exporter value itself refuses anything but references (a second line of defence).
  assert.throws(() => imageOutput({ context, tags: ['127.0.0.1:5000/x",type=local,dest=/tmp/pwn,"y:v1'], signal: new AbortController().signal }), /is not an image reference/);
  assert.equal(imageOutput({ context, tags: ['127.0.0.1:5000/a:v1', '127.0.0.1:5000/a:v2'], signal: new AbortController().signal }), 'type=image,"name=127.0.0.1:5000/a:v1,127.0.0.1:5000/a:v2",push=true');
});

test('builder names are not prototype keys: "constructor" is not a builder', async () => {
  for (const name of ['constructor', 'toString', '__proto__']) {
    await refusedBeforeBuilder({ builder: name as BuildSpec['builder'] }, new RegExp(`image builder "${name}" is not available on this worker \\(configured: buildctl`), 'UnsupportedProvider');
  }
});

test("a BuildKit parse error of a file that is not a Dockerfile does not quote the file's contents", () => {
  // What buildctl prints when the "Dockerfile" is a service-account token (BuildKit v0.12+ format).
  const output = [
    '#1 [internal] load build definition from token',
    '#1 transferring dockerfile: 1.2kB done',
    '#1 DONE 0.0s',
    'token:1',
    '--------------------',
    `   1 | >>> ${SECRET}`,
    '--------------------',
    `error: failed to solve: failed to solve with frontend dockerfile.v0: failed to create LLB definition: dockerfile parse error on line 1: unknown instruction: ${SECRET}`,
  ].join('\n');
  const err = classifyBuildkitFailure('buildctl', 'tcp://127.0.0.1:1234', 1, null, output);
  assert.ok(err instanceof ApplicationFailure && err.type === 'InvalidSpec', String(err));
  assert.ok(!err.message.includes(SECRET.slice(0, 20)), err.message);
  assert.match(err.message, /dockerfile parse error on line 1: \(file contents not shown\)/);
});
