/**
 * `glidepath source start` checks its options with the function the Git source workflow runs at its
 * start (sourceProblems), before any server is asked: a bad value is exit 2 naming the option.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../support/daemon.ts';
import { sourceProblems } from '../../workflows/git-source/source.ts';
import { runCli } from './support.ts';

const spec = { repository: 'https://git.example.test/app.git', branch: 'main', path: 'deploy', pollInterval: '1m' };

test('revert: "commit" or "branch"; anything else is named', () => {
  assert.deepEqual(sourceProblems({ ...spec, revert: 'branch' }), []);
  assert.deepEqual(sourceProblems({ ...spec, revert: 'commit' }), []);
  assert.deepEqual(sourceProblems({ ...spec, revert: 'pull-request' as never }), ['revert: must be "commit" or "branch", got "pull-request"']);
});

test('source start --revert with a bad mode exits 2 naming --revert; nothing is started (no server answers)', async () => {
  const nobody = `127.0.0.1:${await freePort()}`;
  const r = await runCli(nobody, 'unused', ['source', 'start', '--repo', spec.repository, '--revert', 'pull-request']);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /--revert: must be "commit" or "branch", got "pull-request"/);
});
