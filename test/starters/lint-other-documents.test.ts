/**
 * The CLI on files that hold more than the release: `lint` lists the other objects and where the
 * image comes from; `release start --help` documents --apply-others. Runs the real bin/glidepath.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'bin/glidepath');
const corpus = (f: string) => path.join(root, 'test/fixtures/argo-corpus', f);
const run = promisify(execFile);

test('lint lists the ignored objects and the workloadRef Deployment the image comes from', async () => {
  const one = await run(cli, ['lint', '-f', corpus('workload-ref.yaml')]);
  assert.match(one.stdout, /valid \(canary release of default\/rollout-ref-deployment to argoproj\/rollouts-demo:blue\)\nimage from apps\/v1\/Deployment rollout-ref-deployment \(.*workload-ref\.yaml#1\) \(named by workloadRef; the release changes it, it is never applied\)\n$/);
  const bg = await run(cli, ['lint', '-o', 'json', '-f', corpus('bluegreen.yaml'), corpus('analysis-templates.yaml')]);
  const out = JSON.parse(bg.stdout) as { valid: boolean; ignored: string[] };
  assert.equal(out.valid, true);
  assert.deepEqual(out.ignored.map((o) => o.replace(/ \(.*\)$/, '')), ['v1/Service rollout-bluegreen-active', 'v1/Service rollout-bluegreen-preview']);
  const text = await run(cli, ['lint', '-f', corpus('bluegreen.yaml'), corpus('analysis-templates.yaml')]);
  assert.match(text.stdout, /\nignored: v1\/Service rollout-bluegreen-preview \(.*bluegreen\.yaml#3\) \(release start --apply-others applies it first\)\n$/);
});

test('release start --help documents --apply-others', async () => {
  const { stdout } = await run(cli, ['release', 'start', '--help']);
  assert.match(stdout.replace(/\s+/g, ' '), /--apply-others first apply the files' other Kubernetes objects .* by server-side apply/);
});
