/**
 * Git as the source of a release, on real parts: a Git server (git http-backend behind basic auth on
 * loopback), the dev server, the real worker and the local control plane. A source watches
 * deploy/ of main; its first commit is the baseline; a push of a new image tag, announced by a webhook
 * with a bad signature, is refused (401) and changes nothing; announced with GitHub's signature, it
 * wakes the source, which starts the release from that commit, and the release promotes the new
 * image. The commit is on the release (input, audit, the GlidepathCommit search attribute). The next
 * push carries a canary analysis (a web metric on a loopback server the test runs, answering a failing
 * value): the analysis fails, the release rolls back, and Glidepath commits the revert (the image before
 * it, naming the release and the failed analysis, its trailers) to the branch; the source reads its own
 * revert without starting anything. The fix pushed next closes the rolled-back release (it only waits
 * for a retry) and promotes. A second source over platform/ starts a ReleaseGroup document as its
 * `releaseGroup` workflow (the commit in its memo and search attribute) and introduces an ApiVersion
 * document on the API's workflow (the commit in its audit); a commit that leaves them unchanged starts
 * nothing; the group's start retried finds its own group, and a later commit's waits while it runs.
 * The API version's template Deployment is not there, so its introduction fails: the source writes
 * back a revert that removes the ApiVersion file its commit added, and reads it as its own.
 * Needs KUBECONFIG and TEMPORAL_ADDRESS (npm test provides both).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { CoreV1Api, AppsV1Api } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { msToNumber, tsToMs } from '@temporalio/common/lib/time.js';
import { WORKFLOW_TASK_TIMEOUT } from '../../workflows/start-options.ts';
import { gitSourceStatusQuery, wakeSignal, type GitSourceStatus } from '../../workflows/git-source/messages.ts';
import { statusQuery } from '../../workflows/messages.ts';
import { apiStatusQuery } from '../../workflows/api-version-messages.ts';
import { createGitActivities } from '../../activities/git/index.ts';
import { GIT_CACHE_ENV } from '../../activities/git/git-cli.ts';
import { gitSourceWorkflowId } from '../../workflows/git-source/source.ts';
import { createWebhookServer, signBody, wakeSources } from '../../starters/source-webhook.ts';
import { cli, connectClient, findDeployment, imageOf, kube, randomSuffix, startWorker, suiteEnv, teardown, tempDir, untilStatus, waitAvailable, webNamespace } from '../e2e/support.ts';
import { untilQuery } from '../support/poll.ts';
import { GitPusher, gitMissing, startGitServer, type GitServer } from '../support/git-server.ts';

const skip = gitMissing();
const suffix = randomSuffix();
const ns = `e2e-git-${suffix}`;
const auth = { user: 'deployer', password: 'correct-horse-battery' };
const SECRET = 'webhook-secret-for-the-e2e-test';
let dir: string;
let env: NodeJS.ProcessEnv;
let git: GitServer;
let webhook: Server;
let webhookUrl: string;
/** The canary's health as the analysis reads it: always failing (`ok: 0`); counts the measurements. */
let health: Server;
let healthUrl: string;
let healthRequests = 0;
let apps: AppsV1Api;
let core: CoreV1Api;
let client: Client;
let worker: ChildProcess | undefined;

const CANARY_ANALYSIS = '        - setWeight: 50\n        - analysis: { templates: [{ templateName: health }] }\n        - setWeight: 100\n';
/** The web metric the canary's analysis reads: healthy only when the loopback server answers `ok: 1`. */
const healthTemplate = (): string => `---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: { name: health }
spec:
  metrics:
    - name: canary-health
      interval: 1s
      count: 2
      failureLimit: 0
      successCondition: result == 1
      provider:
        web: { url: "${healthUrl}", jsonPath: "{$.ok}" }
`;
const release = (tag: string, steps = '        - setWeight: 50\n        - pause: { duration: 1s }\n', templates = ''): string => `apiVersion: glidepath.dev/v1alpha1
kind: Release
metadata: { name: web, namespace: ${ns} }
spec:
  workloadRef: { kind: Deployment, name: web }
  image: registry.local/web:${tag}
  strategy:
    canary:
      steps:
${steps}${templates}`;

before(async () => {
  if (skip) return;
  ({ apps, core } = kube());
  dir = await tempDir('git');
  git = await startGitServer({ users: { [auth.user]: auth.password } });
  env = suiteEnv(`e2e-git-${suffix}`, { GLIDEPATH_GIT_CACHE: path.join(dir, 'cache'), GLIDEPATH_GIT_CREDENTIALS_DIR: dir });
  await webNamespace({ apps, core }, ns);
  await waitAvailable(apps, ns);
  client = await connectClient();
  worker = await startWorker(env);
  webhook = createWebhookServer({ secret: SECRET, wake: (push) => wakeSources(client, push) });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/webhook`;
  health = createServer((_req, res) => {
    healthRequests++;
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok": 0}');
  });
  await new Promise<void>((resolve) => health.listen(0, '127.0.0.1', resolve));
  healthUrl = `http://127.0.0.1:${(health.address() as AddressInfo).port}/health`;
});

after(async () => {
  if (skip) return;
  webhook?.close();
  health?.close();
  await teardown({ worker, client, core, namespaces: [ns] });
  await git?.stop();
  await rm(dir, { recursive: true, force: true });
});

const sourceStatus = (id: string, pred: (s: GitSourceStatus) => boolean, what: string) =>
  untilQuery(client.workflow.getHandle(id), gitSourceStatusQuery, pred, what, { timeoutMs: 30_000, intervalMs: 200, show: (s) => JSON.stringify(s?.condition) });

/** What `source poll` and the webhook send (the CLI's own poll is run once; each CLI process costs seconds on a loaded machine). */
const wake = (id: string) => client.workflow.getHandle(id).signal(wakeSignal, { by: 'e2e' });

async function post(body: string, signature: string | undefined): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(webhookUrl, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-GitHub-Event': 'push', ...(signature ? { 'X-Hub-Signature-256': signature } : {}) }, body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

test('a push of a new image tag, announced by a signed webhook, starts the release from that commit and it promotes; the next one, rolled back by a failing canary analysis, is reverted in Git with the right content; the fix after it replaces it', { skip, timeout: 180_000 }, async () => {
  const url = await git.createRepo(`app-${suffix}`);
  const pusher = await GitPusher.create(url, 'main', auth);
  try {
    const base = await pusher.commit({ 'deploy/web.yaml': release('v1'), 'README.md': '# app\n' }, 'web at v1');
    const credentials = path.join(dir, 'git-credentials');
    await writeFile(credentials, `${auth.user}:${auth.password}\n`, { mode: 0o600 });
    const started = await cli(env, ['source', 'start', '--repo', url, '--branch', 'main', '--path', 'deploy', '--interval', '10m', '--credentials-file', credentials]);
    assert.equal(started.code, 0, started.stderr);
    const id = gitSourceWorkflowId({ repository: url, branch: 'main', path: 'deploy' });
    assert.match(started.stdout, new RegExp(`started ${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    await sourceStatus(id, (s) => s.lastCommit === base, 'the baseline');

    const head = await pusher.commit({ 'deploy/web.yaml': release('v2') }, 'web to v2');
    const event = JSON.stringify({ ref: 'refs/heads/main', after: head, repository: { clone_url: url, html_url: url.replace(/\.git$/, '') } });

    const forged = await post(event, signBody('not-the-secret-at-all', event));
    assert.equal(forged.status, 401);
    const unsigned = await post(event, undefined);
    assert.equal(unsigned.status, 401);
    const quiet = await client.workflow.getHandle(id).query(gitSourceStatusQuery);
    assert.equal(quiet.wakes, 0, 'a refused webhook wakes nothing');
    assert.equal(quiet.lastCommit, base);

    const signed = await post(event, signBody(SECRET, event));
    assert.equal(signed.status, 202, JSON.stringify(signed.json));
    assert.deepEqual(signed.json.woken, [id]);
    const s = await sourceStatus(id, (x) => x.commits.at(-1)?.commit === head, 'the pushed commit');
    assert.deepEqual(s.commits.at(-1)?.releases.map((r) => [r.workflowId, r.outcome]), [[`release_${ns}_web`, 'started']]);

    const rid = `release_${ns}_web`;
    const done = await untilStatus(client, rid, (x) => x.phase === 'Promoted', 'the release promoted', 90_000);
    assert.equal(done.canaryImage, 'registry.local/web:v2');
    assert.ok(done.audit.some((a) => a.action === 'start' && a.detail?.includes(head)), 'the audit names the commit');
    assert.equal(imageOf(await findDeployment(apps, ns, 'web')), 'registry.local/web:v2');
    const d = await client.workflow.getHandle(rid).describe();
    assert.equal(d.memo?.gitCommit, head);
    assert.equal(tsToMs(d.raw.executionConfig?.defaultWorkflowTaskTimeout), msToNumber(WORKFLOW_TASK_TIMEOUT), 'started as the CLI starts a release');

    let found: string[] = [];
    for (let i = 0; i < 50 && found.length === 0; i++) {
      found = [];
      for await (const w of client.workflow.list({ query: `GlidepathCommit = '${head}'` })) found.push(w.workflowId);
      if (found.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(found, [rid], 'which commit runs where: one query');

    const status = await cli(env, ['source', 'status', id]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`${head.slice(0, 12)} released  web to v2  \\[${rid} started\\]`));

    // Rollback written back: the next release's canary analysis fails, it rolls back, and the branch gets Glidepath's revert.
    const v3 = await pusher.commit({ 'deploy/web.yaml': release('v3', CANARY_ANALYSIS, healthTemplate()) }, 'web to v3');
    assert.equal((await cli(env, ['source', 'poll', id])).code, 0);
    const rolledBack = await untilStatus(client, rid, (x) => x.phase === 'RolledBack' && x.canaryImage === 'registry.local/web:v3', 'the v3 release rolled back by its analysis', 60_000);
    const run = rolledBack.analysisRuns.at(-1);
    assert.equal(run?.phase, 'Failed', JSON.stringify(rolledBack.analysisRuns));
    assert.ok(run?.metrics.some((m) => m.name === 'canary-health' && m.measurements.some((x) => x.phase === 'Failed' && Number(x.value) === 0)), JSON.stringify(run?.metrics));
    assert.ok(healthRequests > 0, 'the analysis measured the loopback metric');
    assert.equal(imageOf(await findDeployment(apps, ns, 'web')), 'registry.local/web:v2', 'the stable stays on v2');
    await wake(id);
    const reverted = await sourceStatus(id, (x) => x.audit.some((a) => a.action === 'revert-committed'), 'the revert commit');
    const revert = reverted.audit.find((a) => a.action === 'revert-committed')?.commit as string;
    await pusher.git('pull', '--quiet', '--ff-only', 'origin', 'main');
    assert.equal(await pusher.git('rev-parse', 'HEAD'), revert, 'the revert is on the branch');
    assert.equal(await pusher.git('show', 'HEAD:deploy/web.yaml'), release('v2', CANARY_ANALYSIS, healthTemplate()).trimEnd(), 'the image before the release is back; nothing else changed');
    const message = await pusher.git('log', '-1', '--format=%an|%B');
    assert.match(message, new RegExp(`^Glidepath\\|Revert deploy/web.yaml to registry.local/web:v2: ${rid} RolledBack\\n`), message);
    assert.match(message, new RegExp(`analysis ${run?.name} \\(step 2\\) Failed`), 'the message names the failed analysis');
    assert.match(message, /canary-health/, 'and its failing metric');
    assert.match(message, new RegExp(`Glidepath-Revert-Of: ${rid}\\nGlidepath-Reverted-Commit: ${v3}`));
    await wake(id);
    const seen = await sourceStatus(id, (x) => x.commits.at(-1)?.commit === revert, 'the source reading its revert');
    assert.equal(seen.commits.at(-1)?.result, 'glidepath-revert', 'its own revert starts nothing');
    assert.equal((await client.workflow.getHandle(rid).query(statusQuery)).phase, 'RolledBack', 'the rolled-back release is left as it is');

    // The fix: a newer commit closes the rolled-back release (it only waited for a retry) and starts its own.
    const v4 = await pusher.commit({ 'deploy/web.yaml': release('v4') }, 'web to v4');
    await wake(id);
    const fixed = await sourceStatus(id, (x) => x.commits.at(-1)?.commit === v4, 'the fix');
    assert.deepEqual(fixed.commits.at(-1)?.releases.map((r) => r.outcome), ['started'], JSON.stringify(fixed.commits.at(-1)));
    const promoted = await untilStatus(client, rid, (x) => x.phase === 'Promoted' && x.canaryImage === 'registry.local/web:v4', 'the v4 release promoted', 60_000);
    assert.ok(promoted.audit.some((a) => a.action === 'start' && a.detail?.includes(v4)));
    assert.equal(imageOf(await findDeployment(apps, ns, 'web')), 'registry.local/web:v4');
    assert.equal((await cli(env, ['source', 'stop', id])).code, 0);
  } finally {
    pusher.stop();
  }
});

const GROUP = `apiVersion: glidepath.dev/v1alpha1
kind: ReleaseGroup
metadata: { name: shop, namespace: ${ns} }
spec:
  members:
    - { name: ledger, file: ledger.yaml }
  waves:
    - { name: edge, clusters: [gitops-edge] }
`;
const API_VERSION = `apiVersion: glidepath.dev/v1alpha1
kind: ApiVersion
metadata: { name: orders-v2, namespace: ${ns} }
spec:
  api: orders
  version: v2
  image: registry.local/orders:2.0
  templateFrom: { deployment: orders-v1 }
  route: { pathPrefix: /v2, httpRoute: { name: orders } }
`;

test('a ReleaseGroup document starts its group workflow and an ApiVersion document is introduced on its API workflow, each recording the commit; an unchanged commit starts nothing', { skip, timeout: 90_000 }, async () => {
  const url = await git.createRepo(`platform-${suffix}`);
  const pusher = await GitPusher.create(url, 'main', auth);
  const groupId = `group_${ns}_shop`;
  const apiId = `api-${ns}-orders`;
  const id = gitSourceWorkflowId({ repository: url, branch: 'main', path: 'platform' });
  try {
    const base = await pusher.commit({ 'README.md': '# platform\n' }, 'empty');
    const credentials = path.join(dir, 'git-credentials-platform');
    await writeFile(credentials, `${auth.user}:${auth.password}\n`, { mode: 0o600 });
    const started = await cli(env, ['source', 'start', '--repo', url, '--branch', 'main', '--path', 'platform', '--interval', '10m', '--credentials-file', credentials]);
    assert.equal(started.code, 0, started.stderr);
    await sourceStatus(id, (s) => s.lastCommit === base, 'the baseline');

    const c2 = await pusher.commit({ 'platform/group.yaml': GROUP, 'platform/ledger.yaml': release('v2').replace('name: web', 'name: ledger').replace('name: web', 'name: ledger'), 'platform/orders-v2.yaml': API_VERSION }, 'the shop group and orders v2');
    await wake(id);
    const s = await sourceStatus(id, (x) => x.commits.at(-1)?.commit === c2, 'the commit with the group and the API version');
    assert.deepEqual(s.commits.at(-1)?.releases.map((r) => [r.kind, r.workflowId, r.outcome]), [['group', groupId, 'started'], ['apiVersion', apiId, 'started']], JSON.stringify(s.commits.at(-1)));
    assert.equal(s.condition.type, 'Watching', JSON.stringify(s.condition));

    const group = client.workflow.getHandle(groupId);
    const d = await group.describe();
    assert.equal(d.memo?.gitCommit, c2);
    assert.equal(d.memo?.gitFile, 'platform/group.yaml');
    assert.equal(d.type, 'releaseGroup');
    assert.equal(tsToMs(d.raw.executionConfig?.defaultWorkflowTaskTimeout), msToNumber(WORKFLOW_TASK_TIMEOUT), 'started as the CLI starts a group');
    // The group's input as the workflow got it (its first event): the plan read at the commit, naming it.
    const first = (await group.fetchHistory()).events?.[0]?.workflowExecutionStartedEventAttributes;
    type GroupStart = { group: { source: string; members: { name: string; plan: { image: string } }[] }; initiator: string };
    const input = client.options.loadedDataConverter.payloadConverter.fromPayload<GroupStart>(first?.input?.payloads?.[0] as never);
    assert.equal(input?.group.source, `platform/group.yaml at ${c2} of ${url.replace(/\.git$/, '')} (main)`);
    assert.deepEqual(input?.group.members.map((m) => [m.name, m.plan.image]), [['ledger', 'registry.local/web:v2']]);
    assert.equal(input?.initiator, 'git:author@example.test');
    let found: string[] = [];
    for (let i = 0; i < 50 && found.length === 0; i++) {
      found = [];
      for await (const w of client.workflow.list({ query: `GlidepathCommit = '${c2}'` })) found.push(w.workflowId);
      if (found.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(found, [groupId], 'which commit a group runs: one query');

    const api = await untilQuery(client.workflow.getHandle(apiId), apiStatusQuery, (x) => x.versions.length > 0, 'the API version', { timeoutMs: 20_000, intervalMs: 200, show: (x) => JSON.stringify(x?.versions) });
    assert.deepEqual(api.versions.map((v) => [v.version, v.introducedBy]), [['v2', 'git:author@example.test']]);
    const introduced = api.audit.find((a) => a.action === 'introduce');
    assert.equal(introduced?.reason, `from platform/orders-v2.yaml at ${c2} of ${url.replace(/\.git$/, '')} (main)`, JSON.stringify(api.audit));

    // Its template Deployment orders-v1 is not there: the introduction fails, and Git stops claiming the
    // version: the source writes back a revert removing the file its commit added.
    const failed = await untilQuery(client.workflow.getHandle(apiId), apiStatusQuery, (x) => x.versions[0]?.phase === 'Failed', 'the failed introduction', { timeoutMs: 30_000, intervalMs: 200, show: (x) => JSON.stringify(x?.versions.map((v) => [v.phase, v.message])) });
    assert.match(failed.versions[0]?.message ?? '', /^Introducing: /);
    await wake(id); // the watch is checked at the next poll (every 10 s while one runs)
    const reverted = await sourceStatus(id, (x) => x.audit.some((a) => a.action === 'revert-committed'), 'the API version written back');
    assert.deepEqual(reverted.watching.filter((w) => w.kind === 'apiVersion'), []);
    await pusher.git('pull', '--quiet', '--ff-only', 'origin', 'main');
    assert.equal(await pusher.git('log', '-1', '--format=%an|%P'), `Glidepath|${c2}`);
    assert.match(await pusher.git('log', '-1', '--format=%B'), new RegExp(`^Revert platform/orders-v2\\.yaml to ${base.slice(0, 12)}: ${apiId}/v2 Failed[\\s\\S]*Removed \\(not there at ${base.slice(0, 12)}\\): platform/orders-v2\\.yaml[\\s\\S]*Glidepath-Revert-Of: ${apiId}/v2\nGlidepath-Reverted-Commit: ${c2}`));
    assert.equal(await pusher.git('ls-tree', '--name-only', 'HEAD', 'platform/'), 'platform/group.yaml\nplatform/ledger.yaml', 'the group is left alone');
    const revert = await pusher.git('rev-parse', 'HEAD');
    await wake(id);
    const own = await sourceStatus(id, (x) => x.commits.at(-1)?.commit === revert, 'its own revert read');
    assert.equal(own.commits.at(-1)?.result, 'glidepath-revert');

    const c3 = await pusher.commit({ 'README.md': '# platform, documented\n' }, 'docs only');
    await wake(id);
    const after3 = await sourceStatus(id, (x) => x.commits.at(-1)?.commit === c3, 'the unchanged commit');
    assert.equal(after3.commits.at(-1)?.result, 'unchanged');
    assert.equal((await group.describe()).runId, d.runId, 'the group was left alone');

    // Exactly once: the start retried (as Temporal retries an activity whose answer was lost) finds its
    // own group; a later commit finds the group in flight and waits. Read through a cache of the test's own.
    process.env[GIT_CACHE_ENV] = path.join(dir, 'test-cache');
    const acts = createGitActivities({ client, taskQueue: `unused-${suffix}` });
    const ref = { sourceId: id, repository: url.replace(/\.git$/, ''), branch: 'main', path: 'platform' };
    await acts.gitFetchHead(ref);
    const start = { ...ref, file: 'platform/group.yaml', specHash: s.tracked.find((t) => t.kind === 'group')?.specHash ?? '', initiator: 'git:author@example.test' };
    assert.deepEqual(await acts.gitStartGroup({ ...start, commit: c2 }), { outcome: 'already-started', workflowId: groupId });
    const later = await acts.gitStartGroup({ ...start, commit: c3 });
    assert.equal(later.outcome, 'in-flight', JSON.stringify(later));
    assert.match(later.detail ?? '', new RegExp(`group ${ns}/shop is in flight: ${groupId} from ${c2.slice(0, 12)}; this change starts when it ends`));
  } finally {
    pusher.stop();
    for (const w of [groupId, apiId, id]) await client.workflow.getHandle(w).terminate('test done').catch(() => {});
  }
});
