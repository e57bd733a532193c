/**
 * The Git source's activities against a real Git server (git http-backend on loopback): fetching the
 * branch head (ancestry, a force push, the revert trailer), reading and linting the documents at a
 * commit with the CLI's own functions (releases, release groups, API versions), and the named failures: authentication refused, a repository
 * that is not there, a server that does not answer.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createGitActivities } from '../../activities/git/index.ts';
import { GIT_CACHE_ENV } from '../../activities/git/git-cli.ts';
import { freePort } from '../support/daemon.ts';
import { GitPusher, gitMissing, startGitServer, type GitServer } from '../support/git-server.ts';
import { releaseYaml } from './fixtures.ts';
import { reviewBranchOf } from '../../workflows/git-source/source.ts';

const skip = gitMissing();
const auth = { user: 'deployer', password: 'correct-horse-battery' };
let server: GitServer;
let cache: string;
let credsFile: string;
// Reading and fetching need no Temporal client; starting releases is the e2e's.
const acts = createGitActivities({ client: {} as never, taskQueue: 'unused' });

before(async () => {
  if (skip) return;
  cache = mkdtempSync(join(tmpdir(), 'glidepath-git-cache-test-'));
  process.env[GIT_CACHE_ENV] = cache;
  process.env.GLIDEPATH_GIT_CREDENTIALS_DIR = cache;
  credsFile = join(cache, 'creds');
  writeFileSync(credsFile, `${auth.user}:${auth.password}\n`);
  server = await startGitServer({ users: { [auth.user]: auth.password } });
});
after(async () => {
  await server?.stop();
  if (cache) rmSync(cache, { recursive: true, force: true });
});

const source = (repository: string, path = 'deploy') => ({ sourceId: `test:${repository}:${path}`, repository, branch: 'main', path });

test('fetch answers the head, whether it descends from the last commit, and the Glidepath revert trailer', { skip }, async () => {
  const url = await server.createRepo('fetch');
  const pusher = await GitPusher.create(url, 'main', auth);
  try {
    const first = await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v1') }, 'first');
    const h1 = await acts.gitFetchHead(source(url));
    assert.equal(h1.commit, first);
    assert.equal(h1.descends, undefined);
    assert.equal(h1.subject, 'first');
    assert.equal(h1.authorEmail, 'author@example.test');

    const second = await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v2') }, 'second');
    const h2 = await acts.gitFetchHead({ ...source(url), lastCommit: first });
    assert.deepEqual([h2.commit, h2.descends], [second, true]);

    await pusher.rewind(1);
    const rewritten = await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v3') }, 'rewritten', { force: true });
    const h3 = await acts.gitFetchHead({ ...source(url), lastCommit: second });
    assert.deepEqual([h3.commit, h3.descends], [rewritten, false], 'the head no longer descends from the last commit seen');

    await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v1') }, 'Revert web to v1\n\nGlidepath-Revert-Of: release_payments_web\n');
    const h4 = await acts.gitFetchHead({ ...source(url), lastCommit: rewritten });
    assert.equal(h4.revertOf, 'release_payments_web');
    assert.equal(h4.descends, true);
  } finally {
    pusher.stop();
  }
});

test('documents at a commit: each release file linted as the CLI does, its spec hash following the image', { skip }, async () => {
  const url = await server.createRepo('docs');
  const pusher = await GitPusher.create(url, 'main', auth);
  try {
    const v1 = await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v1'), 'deploy/notes.yaml': 'kind: ConfigMap\napiVersion: v1\nmetadata: { name: x }\n', 'other/api.yaml': releaseYaml('api', 'v1') }, 'v1');
    const v2 = await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v2') }, 'v2');
    const bad = await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v3').replace('setWeight: 20', 'setWeight: 120') }, 'bad');
    await acts.gitFetchHead(source(url));

    const r1 = await acts.gitReadCommit({ ...source(url), commit: v1, initiator: 'git:author@example.test' });
    assert.deepEqual(r1.problems, []);
    assert.deepEqual(r1.releases.map((r) => [r.file, r.workflowId, r.image]), [['deploy/web.yaml', 'release_payments_web', 'registry.local:5000/web:v1']]);
    assert.deepEqual(r1.notStarted.map((n) => n.file), ['deploy/notes.yaml'], 'files outside the path are not read');

    const r2 = await acts.gitReadCommit({ ...source(url), commit: v2, initiator: 'git:author@example.test' });
    assert.notEqual(r2.releases[0]?.specHash, r1.releases[0]?.specHash, 'a new image is a changed spec');
    const again = await acts.gitReadCommit({ ...source(url), commit: v1, initiator: 'git:author@example.test' });
    assert.equal(again.releases[0]?.specHash, r1.releases[0]?.specHash, 'the same commit reads the same');

    const r3 = await acts.gitReadCommit({ ...source(url), commit: bad, initiator: 'git:author@example.test' });
    assert.equal(r3.releases.length, 0);
    assert.ok(r3.problems.length > 0);
    assert.match(r3.problems.join('\n'), /^deploy\/web\.yaml/m, 'the problem names the file as it is in the repository');
    assert.doesNotMatch(r3.problems.join('\n'), /glidepath-git-docs/, 'never the temp dir');
  } finally {
    pusher.stop();
  }
});

const GROUP = `apiVersion: glidepath.dev/v1alpha1
kind: ReleaseGroup
metadata: { name: shop, namespace: payments }
spec:
  members:
    - { name: ledger, file: ledger.yaml }
  waves:
    - { name: prod, clusters: [prod-eu] }
`;
const apiVersion = (image: string): string => `apiVersion: glidepath.dev/v1alpha1
kind: ApiVersion
metadata: { name: orders-v2, namespace: shop }
spec:
  api: orders
  version: v2
  image: ${image}
  templateFrom: { deployment: orders-v1 }
  route: { pathPrefix: /v2, httpRoute: { name: orders } }
`;

test('documents at a commit: a ReleaseGroup file is one group (its member files are not releases of their own), an ApiVersion file one API version; their hashes follow the spec', { skip }, async () => {
  const url = await server.createRepo('groups-apis');
  const pusher = await GitPusher.create(url, 'main', auth);
  const read = (commit: string) => acts.gitReadCommit({ ...source(url), commit, initiator: 'git:author@example.test' });
  try {
    const c1 = await pusher.commit({ 'deploy/group.yaml': GROUP, 'deploy/ledger.yaml': releaseYaml('ledger', 'v1'), 'deploy/orders-v2.yaml': apiVersion('registry.local:5000/orders:2.0'), 'deploy/web.yaml': releaseYaml('web', 'v1') }, 'c1');
    const c2 = await pusher.commit({ 'deploy/ledger.yaml': releaseYaml('ledger', 'v2') }, 'the member changes');
    const c3 = await pusher.commit({ 'deploy/orders-v2.yaml': apiVersion('registry.local:5000/orders:2.1') }, 'the API version changes');
    const dup = await pusher.commit({ 'deploy/orders-v2-again.yaml': apiVersion('registry.local:5000/orders:2.1') }, 'two files, one API version');
    await acts.gitFetchHead(source(url));

    const r1 = await read(c1);
    assert.deepEqual(r1.problems, []);
    assert.deepEqual(r1.releases.map((r) => r.file), ['deploy/web.yaml'], 'the group member is released by its group only');
    assert.deepEqual(r1.others?.map((o) => [o.kind, o.file, o.workflowId, o.name]), [
      ['group', 'deploy/group.yaml', 'group_payments_shop', 'payments/shop'],
      ['apiVersion', 'deploy/orders-v2.yaml', 'api-shop-orders', 'shop/orders v2'],
    ]);
    assert.deepEqual(r1.notStarted, []);
    const again = await read(c1);
    assert.deepEqual(again.others?.map((o) => o.specHash), r1.others?.map((o) => o.specHash), 'the same commit reads the same (no temp dir in the hash)');

    const r2 = await read(c2);
    assert.notEqual(r2.others?.[0]?.specHash, r1.others?.[0]?.specHash, "a member's new image is a changed group");
    assert.equal(r2.others?.[1]?.specHash, r1.others?.[1]?.specHash);
    const r3 = await read(c3);
    assert.notEqual(r3.others?.[1]?.specHash, r2.others?.[1]?.specHash, 'a new image is a changed API version');
    assert.equal(r3.others?.[0]?.specHash, r2.others?.[0]?.specHash);

    const r4 = await read(dup);
    assert.match(r4.problems.join('\n'), /deploy\/orders-v2(-again)?\.yaml: introduces shop\/orders v2, as deploy\/orders-v2(-again)?\.yaml does; one file per API version/);
  } finally {
    pusher.stop();
  }
});

async function failureOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected a failure');
}

/** An ed25519 key pair made by ssh-keygen: the private key's path and the public key's line. */
function sshKey(name: string): { key: string; pub: string } {
  const key = join(cache, `key-${name}`);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', key]);
  return { key, pub: readFileSync(`${key}.pub`, 'utf8').trim() };
}

test('signing policy: .glidepath/allowed_signers at the trusted commit decides; unsigned, unknown-key and self-admitted signers are refused', { skip }, async () => {
  const url = await server.createRepo('signed');
  const pusher = await GitPusher.create(url, 'main', auth);
  const alice = sshKey('alice');
  const mallory = sshKey('mallory');
  try {
    const noPolicy = await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v1') }, 'no policy yet');
    const h0 = await acts.gitFetchHead(source(url));
    assert.equal(h0.signature, undefined, 'no allowed_signers: no policy');

    const policy = await pusher.commit({ '.glidepath/allowed_signers': `alice@example.test ${alice.pub}\n` }, 'signing policy', { signWith: alice.key });
    const h1 = await acts.gitFetchHead({ ...source(url), lastCommit: noPolicy, trustedCommit: noPolicy });
    assert.equal(h1.commit, policy);
    assert.equal(h1.signature, undefined, 'the policy applies from the commit that adds it on, once that commit is trusted');

    const good = await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v2') }, 'v2 signed by alice', { signWith: alice.key });
    const h2 = await acts.gitFetchHead({ ...source(url), lastCommit: policy, trustedCommit: policy });
    assert.deepEqual([h2.commit, h2.signature?.verified, h2.signature?.policyCommit], [good, true, policy]);
    assert.match(h2.signature?.detail ?? '', /Good "git" signature for alice@example\.test/);

    const unsigned = await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v3') }, 'v3 unsigned');
    const h3 = await acts.gitFetchHead({ ...source(url), lastCommit: good, trustedCommit: good });
    assert.deepEqual([h3.commit, h3.signature?.verified], [unsigned, false]);
    assert.equal(h3.signature?.detail, 'the commit is not signed');

    await pusher.rewind(1);
    const stranger = await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v3') }, 'v3 signed by mallory', { force: true, signWith: mallory.key });
    const h4 = await acts.gitFetchHead({ ...source(url), lastCommit: good, trustedCommit: good });
    assert.deepEqual([h4.commit, h4.signature?.verified], [stranger, false]);
    assert.match(h4.signature?.detail ?? '', /does not verify against \.glidepath\/allowed_signers/);

    // Mallory adds her own key and signs that commit: the list that decides is the trusted commit's.
    const selfAdmitted = await pusher.commit({ '.glidepath/allowed_signers': `alice@example.test ${alice.pub}\nmallory@example.test ${mallory.pub}\n` }, 'admit mallory', { signWith: mallory.key });
    const h5 = await acts.gitFetchHead({ ...source(url), lastCommit: good, trustedCommit: good });
    assert.deepEqual([h5.commit, h5.signature?.verified, h5.signature?.policyCommit], [selfAdmitted, false, good]);
    // Trust on first use: with no trusted commit the head's own list is read, and it verifies.
    const h6 = await acts.gitFetchHead({ ...source(url), sourceId: 'first-fetch' });
    assert.equal(h6.signature?.verified, true);

    const gone = await acts.gitFetchHead({ ...source(url), lastCommit: good, trustedCommit: 'f'.repeat(40) });
    assert.equal(gone.signature?.verified, false, 'a trusted commit the cache lacks never reads as "no policy"');
    assert.match(gone.signature?.detail ?? '', /is not in the source's cache/);
  } finally {
    pusher.stop();
  }
});

test('named failures: authentication refused, repository not found (non-retryable); no server answering (retryable)', { skip }, async () => {
  const closed = await startGitServer({ users: { [auth.user]: auth.password }, authForRead: true });
  try {
    const url = await closed.createRepo('private');
    const pusher = await GitPusher.create(url, 'main', auth);
    const id = await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v1') }, 'first');
    pusher.stop();

    const refused = await failureOf(acts.gitFetchHead(source(url)));
    assert.ok(refused instanceof ApplicationFailure && refused.nonRetryable, String(refused));
    assert.equal((refused as ApplicationFailure).type, 'GitAuthFailed');
    assert.doesNotMatch(refused.message, new RegExp(auth.password));

    const ok = await acts.gitFetchHead({ ...source(url), credentials: { file: credsFile } });
    assert.equal(ok.commit, id, 'with the credentials file the fetch reads');
    const wrong = join(cache, 'wrong');
    writeFileSync(wrong, `${auth.user}:not-the-password\n`);
    const bad = await failureOf(acts.gitFetchHead({ ...source(url), sourceId: 'other', credentials: { file: wrong } }));
    assert.equal((bad as ApplicationFailure).type, 'GitAuthFailed');
    assert.doesNotMatch(bad.message, /not-the-password/);

    const outside = await failureOf(acts.gitFetchHead({ ...source(url), sourceId: 'outside', credentials: { file: '/etc/hostname' } }));
    assert.equal((outside as ApplicationFailure).type, 'GitAuthFailed');
    assert.match(outside.message, /not inside GLIDEPATH_GIT_CREDENTIALS_DIR/, 'a file outside the credentials dir is never read and sent');
    const otherVar = await failureOf(acts.gitFetchHead({ ...source(url), sourceId: 'var', credentials: { env: 'HOME' } }));
    assert.match(otherVar.message, /only variables named GLIDEPATH_GIT_\* are read/);

    const missing = await failureOf(acts.gitFetchHead({ ...source(`${closed.url}/nothing.git`), credentials: { file: credsFile } }));
    assert.equal((missing as ApplicationFailure).type, 'GitNotFound', missing.message);

    const noBranch = await failureOf(acts.gitFetchHead({ ...source(url), branch: 'release', credentials: { file: credsFile } }));
    assert.equal((noBranch as ApplicationFailure).type, 'GitNotFound', noBranch.message);
  } finally {
    await closed.stop();
  }
  const port = await freePort(); // nothing listens there
  const down = await failureOf(acts.gitFetchHead(source(`http://127.0.0.1:${port}/x.git`)));
  assert.ok(!(down instanceof ApplicationFailure), `transient, retried: ${down.message}`);
  assert.match(down.message, /git failed: .*(Failed to connect|Connection refused|Couldn't connect)/i);
});

test('a revert is committed as Glidepath and pushed, restores the image, is found instead of written twice, and conflicts with a newer change', { skip }, async () => {
  const url = await server.createRepo('revert');
  const pusher = await GitPusher.create(url, 'main', auth);
  try {
    await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v1'), 'deploy/api.yaml': releaseYaml('api', 'v1') }, 'v1');
    const released = await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v2') }, 'web to v2');
    const ref = { ...source(url), sourceId: 'revert-test', credentials: { file: credsFile } };
    const request = { ...ref, releaseId: 'release_payments_web', file: 'deploy/web.yaml', commit: released, phase: 'RolledBack' as const, failedImage: 'registry.local:5000/web:v2', restoreImage: 'registry.local:5000/web:v1', reason: 'analysis "success-rate" failed: error rate 0.2 > 0.05' };

    const anonymous = await failureOf(acts.gitWriteRevert({ ...request, sourceId: 'revert-anon', credentials: undefined as never }));
    assert.equal((anonymous as ApplicationFailure).type, 'GitAuthFailed', 'a push needs the credentials');

    const r = await acts.gitWriteRevert(request);
    assert.equal(r.outcome, 'committed');
    const commit = (r as { commit: string }).commit;
    await pusher.git('pull', '--quiet', '--ff-only', 'origin', 'main');
    assert.equal(await pusher.git('rev-parse', 'HEAD'), commit, 'the revert is the branch head');
    assert.equal(await pusher.git('show', 'HEAD:deploy/web.yaml'), releaseYaml('web', 'v1').trimEnd(), 'the file is back at the image before');
    assert.equal(await pusher.git('show', 'HEAD:deploy/api.yaml'), releaseYaml('api', 'v1').trimEnd(), 'other files untouched');
    assert.equal(await pusher.git('log', '-1', '--format=%an <%ae>|%P'), `Glidepath <glidepath@localhost>|${released}`);
    const message = await pusher.git('log', '-1', '--format=%B');
    assert.match(message, /^Revert deploy\/web\.yaml to registry\.local:5000\/web:v1: release_payments_web RolledBack/);
    assert.match(message, /analysis "success-rate" failed/);
    assert.match(message, new RegExp(`Glidepath-Revert-Of: release_payments_web\\nGlidepath-Reverted-Commit: ${released}`));

    const again = await acts.gitWriteRevert(request);
    assert.deepEqual(again, { outcome: 'already-committed', commit }, 'a retry finds its revert');
    const head = await acts.gitFetchHead(ref);
    assert.equal(head.revertOf, 'release_payments_web', 'the source recognises its own revert');

    await pusher.commit({ 'deploy/api.yaml': releaseYaml('api', 'v2') }, 'api to v2');
    const api = await acts.gitWriteRevert({ ...request, releaseId: 'release_payments_api', file: 'deploy/api.yaml', commit: released, failedImage: 'registry.local:5000/api:v3', restoreImage: 'registry.local:5000/api:v1' });
    assert.equal(api.outcome, 'conflict');
    assert.match((api as { detail: string }).detail, /no longer releases registry\.local:5000\/api:v3/);
  } finally {
    pusher.stop();
  }
});

test('a revert for review goes to its own branch from the branch head, leaves the branch alone, and is found on a retry', { skip }, async () => {
  const url = await server.createRepo('review');
  const pusher = await GitPusher.create(url, 'main', auth);
  try {
    await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v1') }, 'v1');
    const released = await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v2') }, 'web to v2');
    const reviewBranch = reviewBranchOf('release_payments_web', released);
    const request = { ...source(url), sourceId: 'review-test', credentials: { file: credsFile }, releaseId: 'release_payments_web', file: 'deploy/web.yaml', commit: released, phase: 'Aborted' as const, failedImage: 'registry.local:5000/web:v2', restoreImage: 'registry.local:5000/web:v1', reason: 'aborted by oncall', reviewBranch };

    const r = await acts.gitWriteRevert(request);
    assert.equal(r.outcome, 'committed');
    const commit = (r as { commit: string }).commit;
    const heads = await pusher.git('ls-remote', '--heads', 'origin');
    assert.match(heads, new RegExp(`^${released}\\trefs/heads/main$`, 'm'), 'the branch itself is not written');
    assert.match(heads, new RegExp(`^${commit}\\trefs/heads/${reviewBranch}$`, 'm'), 'the revert is the review branch');
    await pusher.git('fetch', '--quiet', 'origin', reviewBranch);
    assert.equal(await pusher.git('show', 'FETCH_HEAD:deploy/web.yaml'), releaseYaml('web', 'v1').trimEnd());
    assert.equal(await pusher.git('log', '-1', '--format=%an|%P', 'FETCH_HEAD'), `Glidepath|${released}`, 'made from the branch head');

    const again = await acts.gitWriteRevert(request);
    assert.deepEqual(again, { outcome: 'already-committed', commit }, 'a retry finds the proposed revert');
  } finally {
    pusher.stop();
  }
});

const GROUP_WITH_CART = `apiVersion: glidepath.dev/v1alpha1
kind: ReleaseGroup
metadata: { name: shop, namespace: payments }
spec:
  members:
    - { name: ledger, file: ledger.yaml }
    - { name: cart, file: cart.yaml }
  waves:
    - { name: prod, clusters: [prod-eu] }
`;

test("a group's revert is one Glidepath commit restoring the group's files as at the base commit (a member file added with it removed, other files untouched), found instead of written twice, and a conflict when a newer commit changed a member", { skip }, async () => {
  const url = await server.createRepo('group-revert');
  const pusher = await GitPusher.create(url, 'main', auth);
  try {
    const good = await pusher.commit({ 'deploy/group.yaml': GROUP, 'deploy/ledger.yaml': releaseYaml('ledger', 'v1'), 'deploy/web.yaml': releaseYaml('web', 'v1') }, 'v1');
    const started = await pusher.commit({ 'deploy/group.yaml': GROUP_WITH_CART, 'deploy/ledger.yaml': releaseYaml('ledger', 'v2'), 'deploy/cart.yaml': releaseYaml('cart', 'v1'), 'deploy/web.yaml': releaseYaml('web', 'v2') }, 'shop: ledger v2, cart');
    const later = await pusher.commit({ 'deploy/web.yaml': releaseYaml('web', 'v3') }, 'web v3');
    const ref = { ...source(url), sourceId: 'group-revert-test', credentials: { file: credsFile } };
    const request = { ...ref, kind: 'group' as const, revertOf: 'group_payments_shop', what: 'group payments/shop', file: 'deploy/group.yaml', commit: started, baseCommit: good, phase: 'RolledBack', reason: 'gate prod: analysis "errors" failed' };

    const r = await acts.gitWriteFilesRevert(request);
    assert.equal(r.outcome, 'committed');
    const commit = (r as { commit: string }).commit;
    await pusher.git('pull', '--quiet', '--ff-only', 'origin', 'main');
    assert.equal(await pusher.git('rev-parse', 'HEAD'), commit, 'one commit, the branch head');
    assert.equal(await pusher.git('show', 'HEAD:deploy/group.yaml'), GROUP.trimEnd(), 'the group file as at the base');
    assert.equal(await pusher.git('show', 'HEAD:deploy/ledger.yaml'), releaseYaml('ledger', 'v1').trimEnd(), 'the member back at its image before');
    assert.equal(await pusher.git('ls-tree', '--name-only', 'HEAD', 'deploy/cart.yaml'), '', 'the member file added with the group is removed');
    assert.equal(await pusher.git('show', 'HEAD:deploy/web.yaml'), releaseYaml('web', 'v3').trimEnd(), 'a file outside the group is untouched (its change in the same commit too)');
    assert.equal(await pusher.git('log', '-1', '--format=%an <%ae>|%P'), `Glidepath <glidepath@localhost>|${later}`);
    const message = await pusher.git('log', '-1', '--format=%B');
    assert.match(message, new RegExp(`^Revert deploy/group\\.yaml to ${good.slice(0, 12)}: group_payments_shop RolledBack`));
    assert.match(message, /The group payments\/shop from \w{12} ended RolledBack: gate prod: analysis "errors" failed/);
    assert.match(message, /Restored as at \w{12}: deploy\/group\.yaml, deploy\/ledger\.yaml\nRemoved \(not there at \w{12}\): deploy\/cart\.yaml/);
    assert.match(message, new RegExp(`Glidepath-Revert-Of: group_payments_shop\\nGlidepath-Reverted-Commit: ${started}`));

    assert.deepEqual(await acts.gitWriteFilesRevert(request), { outcome: 'already-committed', commit }, 'a retry finds its revert');
    assert.equal((await acts.gitFetchHead(ref)).revertOf, 'group_payments_shop', 'the source recognises its own revert');

    const again = await pusher.commit({ 'deploy/ledger.yaml': releaseYaml('ledger', 'v3') }, 'ledger v3');
    await pusher.commit({ 'deploy/ledger.yaml': releaseYaml('ledger', 'v4') }, 'ledger v4');
    const conflict = await acts.gitWriteFilesRevert({ ...request, commit: again, baseCommit: commit });
    assert.equal(conflict.outcome, 'conflict');
    assert.match((conflict as { detail: string }).detail, /^deploy\/ledger\.yaml at \w{12} is not as \w{12} left it \(a newer commit changed it\)/);
    assert.equal(await pusher.git('ls-remote', 'origin', 'refs/heads/main'), `${await pusher.git('rev-parse', 'HEAD')}\trefs/heads/main`, 'nothing written');
  } finally {
    pusher.stop();
  }
});

const apiVersionOf = (version: string, image: string): string => apiVersion(image).replace(/v2/g, version);

test("an API version's revert restores its file as at the base commit, or removes a file its commit added (the parent when no base is known); for review on a branch of its own", { skip }, async () => {
  const url = await server.createRepo('api-revert');
  const pusher = await GitPusher.create(url, 'main', auth);
  try {
    const good = await pusher.commit({ 'deploy/orders-v2.yaml': apiVersionOf('v2', 'registry.local:5000/orders:2.0') }, 'orders v2');
    const changed = await pusher.commit({ 'deploy/orders-v2.yaml': apiVersionOf('v2', 'registry.local:5000/orders:2.1') }, 'orders v2 at 2.1');
    const ref = { ...source(url), sourceId: 'api-revert-test', credentials: { file: credsFile } };
    const base = { ...ref, kind: 'apiVersion' as const, what: 'API version shop/orders', phase: 'Failed', reason: 'Introducing: deployVersion: progress deadline exceeded' };
    const restored = await acts.gitWriteFilesRevert({ ...base, revertOf: 'api-shop-orders/v2', file: 'deploy/orders-v2.yaml', commit: changed, baseCommit: good });
    assert.equal(restored.outcome, 'committed');
    await pusher.git('pull', '--quiet', '--ff-only', 'origin', 'main');
    assert.equal(await pusher.git('show', 'HEAD:deploy/orders-v2.yaml'), apiVersionOf('v2', 'registry.local:5000/orders:2.0').trimEnd(), 'the spec as at the base');
    assert.match(await pusher.git('log', '-1', '--format=%B'), /^Revert deploy\/orders-v2\.yaml to \w{12}: api-shop-orders\/v2 Failed[\s\S]*Glidepath-Revert-Of: api-shop-orders\/v2\n/);

    const added = await pusher.commit({ 'deploy/orders-v3.yaml': apiVersionOf('v3', 'registry.local:5000/orders:3.0') }, 'orders v3');
    const reviewBranch = reviewBranchOf('api-shop-orders/v3', added);
    const request = { ...base, revertOf: 'api-shop-orders/v3', file: 'deploy/orders-v3.yaml', commit: added, reviewBranch };
    const proposed = await acts.gitWriteFilesRevert(request);
    assert.equal(proposed.outcome, 'committed');
    const commit = (proposed as { commit: string }).commit;
    const heads = await pusher.git('ls-remote', '--heads', 'origin');
    assert.match(heads, new RegExp(`^${added}\\trefs/heads/main$`, 'm'), 'the branch itself is not written');
    assert.match(heads, new RegExp(`^${commit}\\trefs/heads/${reviewBranch}$`, 'm'));
    await pusher.git('fetch', '--quiet', 'origin', reviewBranch);
    assert.equal(await pusher.git('ls-tree', '--name-only', 'FETCH_HEAD', 'deploy/'), 'deploy/orders-v2.yaml', 'the file its commit added is removed');
    assert.match(await pusher.git('log', '-1', '--format=%B', 'FETCH_HEAD'), /Removed \(not there at \w{12}\): deploy\/orders-v3\.yaml/);
    assert.deepEqual(await acts.gitWriteFilesRevert(request), { outcome: 'already-committed', commit }, 'a retry finds the proposed revert');
  } finally {
    pusher.stop();
  }
});
