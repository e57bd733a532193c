/**
 * The test Git server (test/support/git-server.ts): git-http-backend behind basic auth on loopback.
 * A push with the right password lands; a push without one, or with a wrong one, is refused with 401
 * and changes nothing; an anonymous clone reads what was pushed; with authForRead it needs auth too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { GIT_BIN, GitPusher, basicAuthEnv, gitMissing, startGitServer, type GitServer } from '../support/git-server.ts';

const run = promisify(execFile);
const skip = gitMissing();
const auth = { user: 'deployer', password: 'correct-horse-battery' };
let server: GitServer;

before(async () => {
  if (skip) return;
  server = await startGitServer({ users: { [auth.user]: auth.password } });
});
after(async () => server?.stop());

async function lsRemote(url: string, env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(GIT_BIN, ['ls-remote', url], { env: { ...process.env, GIT_TERMINAL_PROMPT: '0', ...env } });
  return stdout;
}

test('a push needs the password; an anonymous clone reads what was pushed', { skip }, async () => {
  const url = await server.createRepo('app');
  const pusher = await GitPusher.create(url, 'main', auth);
  const wrong = await GitPusher.create(url, 'main', { user: auth.user, password: 'wrong-password-here' });
  try {
    const id = await pusher.commit({ 'deploy/a.txt': 'one\n' }, 'first');
    assert.match(id, /^[0-9a-f]{40}$/);
    assert.match(await lsRemote(url), new RegExp(`^${id}\\trefs/heads/main$`, 'm'));

    await assert.rejects(wrong.commit({ 'deploy/a.txt': 'evil\n' }, 'not allowed'), /401|Authentication failed|could not read Username/);
    assert.ok(server.requests.some((r) => r.status === 401));
    assert.match(await lsRemote(url), new RegExp(`^${id}\\trefs/heads/main$`, 'm'), 'the refused push changed nothing');

    const clone = mkdtempSync(join(tmpdir(), 'glidepath-clone-'));
    try {
      await run(GIT_BIN, ['clone', '--quiet', url, clone]);
      assert.equal(readFileSync(join(clone, 'deploy/a.txt'), 'utf8'), 'one\n');
    } finally {
      rmSync(clone, { recursive: true, force: true });
    }
  } finally {
    pusher.stop();
    wrong.stop();
  }
});

test('with authForRead a fetch without credentials is refused and one with them reads', { skip }, async () => {
  const closed = await startGitServer({ users: { [auth.user]: auth.password }, authForRead: true });
  try {
    const url = await closed.createRepo('private');
    const pusher = await GitPusher.create(url, 'main', auth);
    const id = await pusher.commit({ 'x.txt': 'x\n' }, 'x');
    pusher.stop();
    await assert.rejects(lsRemote(url), /401|Authentication failed|could not read Username/);
    assert.match(await lsRemote(url, basicAuthEnv(auth.user, auth.password)), new RegExp(id));
  } finally {
    await closed.stop();
  }
});
