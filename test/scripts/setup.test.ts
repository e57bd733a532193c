/**
 * A fresh clone stays clean: `scripts/setup.sh` installs from package-lock.json with `npm ci` and
 * leaves every tracked file as cloned, and `scripts/unchanged.sh` (what .ci/run wraps setup in)
 * fails when a command changes a tracked file but not when it writes ignored state. The install
 * runs offline from npm's cache (npm test's own setup filled it), so no test traffic leaves loopback.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { root } from '../e2e/support.ts';

const run = promisify(execFile);
let clone: string;
// The clone's own root and state, not the ones npm test exported for this checkout; npm offline.
const env: NodeJS.ProcessEnv = { ...process.env, npm_config_offline: 'true', npm_config_audit: 'false' };
delete env.GLIDEPATH_ROOT;
delete env.GLIDEPATH_STATE;

async function sh(cwd: string, script: string, timeout = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('bash', ['-c', script], { cwd, env, timeout });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

before(async () => {
  clone = path.join(await mkdtemp(path.join(os.tmpdir(), 'glidepath-clone-')), 'repo');
  await run('git', ['clone', '--quiet', '--shared', root, clone]);
});

after(async () => {
  if (clone) await rm(path.dirname(clone), { recursive: true, force: true });
});

test('setup in a fresh clone installs with npm ci and leaves the checkout clean', { timeout: 300_000 }, async () => {
  const lock = await readFile(path.join(clone, 'package-lock.json'), 'utf8');
  const r = await sh(clone, 'bash scripts/setup.sh', 280_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /setup: npm ci from package-lock.json/);
  assert.equal((await sh(clone, 'git status --porcelain')).stdout, '', 'nothing tracked changed, nothing new outside .gitignore');
  assert.equal(await readFile(path.join(clone, 'package-lock.json'), 'utf8'), lock);
  const again = await sh(clone, 'bash scripts/setup.sh');
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /npm ci/, 'a second setup with the same lock installs nothing');
});

test('unchanged.sh fails when a command changes a tracked file, and names it', async () => {
  const r = await sh(clone, 'bash scripts/unchanged.sh bash -c "echo extra >> package-lock.json"');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /changed files of the checkout:[\s\S]*package-lock\.json/);
  await sh(clone, 'git checkout -- package-lock.json');
  const again = await sh(clone, 'bash scripts/unchanged.sh bash -c "echo more >> README.md"');
  assert.equal(again.code, 1, 'a file already modified before counts when the command changes it again');
  await sh(clone, 'git checkout -- README.md');
});

test('unchanged.sh passes a command that writes only ignored state, and keeps its exit code', async () => {
  const ok = await sh(clone, 'bash scripts/unchanged.sh bash -c "mkdir -p .state/x node_modules/.cache && date > .state/x/f && date > node_modules/.cache/f"');
  assert.equal(ok.code, 0, ok.stderr);
  const failed = await sh(clone, 'bash scripts/unchanged.sh bash -c "exit 7"');
  assert.equal(failed.code, 7);
});
