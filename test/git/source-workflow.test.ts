/**
 * The Git source workflow's decisions under time skipping, its activities stubbed by a scripted
 * repository (Temporal's convention for workflow tests; the activities themselves are tested against
 * a real Git server in activities.test.ts): the first commit is the baseline; a new commit with a
 * changed spec starts its release; an unchanged one starts nothing; a commit that fails lint starts
 * nothing and is reported against that commit; a force push is a named, audited condition; a refused
 * fetch is a named condition and the source keeps watching; a busy workload is retried; Glidepath's own
 * revert starts nothing; polling runs on the durable timer; continue-as-new carries the state;
 * ReleaseGroup and ApiVersion documents start their group or introduce their version the same way.
 * RECORD_HISTORIES=1 records three histories for the replay test.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import type { GitActivities } from '../../activities/git/index.ts';
import { gitSourceStatusQuery, wakeSignal, type DocumentKind, type DocumentOutcome, type FetchedHead, type GitSourceInput, type GitSourceStatus, type ReadResult, type SignatureCheck, type StartRequest, type StartResult, type WatchedOutcome } from '../../workflows/git-source/messages.ts';
import { gitSourceWorkflowId } from '../../workflows/git-source/source.ts';
import type { RevertRequest, RevertResult } from '../../activities/git/revert.ts';
import type { FilesRevertRequest, FilesRevertResult } from '../../activities/git/revert-files.ts';
import { createTimeSkippingEnv } from '../support/time-skipping.ts';
import { recordHistory } from '../workflows/harness.ts';
import { SourceState } from '../../workflows/git-source/state.ts';
import { sourceSummary } from '../../starters/source.ts';
import { cachedWorkflowBundle } from '../support/workflow-bundle.ts';

const TASK_QUEUE = 'git-source-tests';
const commit = (n: number): string => n.toString(16).padStart(40, '0');

/** One scripted repository per source: its head, the documents at each commit, and the starts it saw. */
class Repo {
  head: FetchedHead | Error = new Error('no head yet');
  reads = new Map<string, ReadResult>();
  starts: StartRequest[] = [];
  /** ReleaseGroup and ApiVersion starts, with their kind. */
  otherStarts: (StartRequest & { kind: DocumentKind })[] = [];
  otherAnswer: (req: StartRequest, kind: DocumentKind) => StartResult = (req, kind) => ({ outcome: 'started', workflowId: workflowIdOf(kind, req.file) });
  /** Where each started release stands (default: promoted). */
  outcomes = new Map<string, WatchedOutcome>();
  reverts: RevertRequest[] = [];
  /** The trusted commit each fetch was asked to check the head against. */
  trustedAsked: (string | undefined)[] = [];
  revertAnswer: (req: RevertRequest) => RevertResult = () => ({ outcome: 'committed', commit: commit(0xbee) });
  /** Where each started group or API version stands, by file (default: promoted or serving). */
  documentOutcomes = new Map<string, DocumentOutcome>();
  filesReverts: FilesRevertRequest[] = [];
  filesRevertAnswer: (req: FilesRevertRequest) => FilesRevertResult = () => ({ outcome: 'committed', commit: commit(0xcafe) });
  startAnswer: (req: StartRequest) => StartResult = (req) => ({ outcome: 'started', workflowId: `release_payments_${req.file.replace(/\W/g, '')}` });

  /** `others`: ReleaseGroup and ApiVersion files, each with its kind and spec hash. */
  push(n: number, files: Record<string, string>, opts: { descends?: boolean; revertOf?: string; problems?: string[]; signature?: SignatureCheck; others?: Record<string, [DocumentKind, string]> } = {}): string {
    const id = commit(n);
    const first = this.head instanceof Error;
    this.head = { commit: id, subject: `commit ${n}`, authorEmail: 'dev@example.test', ...(first ? {} : { descends: opts.descends ?? true }), ...(opts.revertOf ? { revertOf: opts.revertOf } : {}), ...(opts.signature ? { signature: opts.signature } : {}) };
    this.reads.set(id, {
      releases: opts.problems ? [] : Object.entries(files).map(([file, hash]) => ({ file, workflowId: `release_payments_${file.replace(/\W/g, '')}`, service: 'payments/x', image: `x:${hash}`, specHash: hash })),
      ...(opts.others && !opts.problems ? { others: Object.entries(opts.others).map(([file, [kind, hash]]) => ({ kind, file, workflowId: workflowIdOf(kind, file), name: `payments/${file}`, specHash: hash })) } : {}),
      notStarted: [],
      problems: opts.problems ?? [],
      moreProblems: 0,
    });
    return id;
  }
}

function workflowIdOf(kind: DocumentKind, file: string): string {
  return kind === 'group' ? `group_payments_${file.replace(/\W/g, '')}` : `api-payments-${file.replace(/\W/g, '')}`;
}

const repos = new Map<string, Repo>();
const repoOf = (): Repo => {
  const id = Context.current().info.workflowExecution?.workflowId ?? '';
  const r = repos.get(id);
  if (!r) throw new Error(`no scripted repository for ${id}`);
  return r;
};

const activities: GitActivities = {
  async gitFetchHead(req) {
    const repo = repoOf();
    repo.trustedAsked.push(req.trustedCommit);
    const h = repo.head;
    if (h instanceof Error) throw h;
    return h;
  },
  async gitReadCommit(s) {
    const r = repoOf().reads.get(s.commit);
    if (!r) throw ApplicationFailure.nonRetryable(`unknown commit ${s.commit}`);
    return r;
  },
  async gitReleaseOutcome(w) {
    return repoOf().outcomes.get(w.workflowId) ?? { state: 'known', phase: 'Promoted', canaryImage: 'x', stableImage: 'x', message: 'promoted' };
  },
  async gitDocumentOutcome(w) {
    return repoOf().documentOutcomes.get(w.file) ?? { state: 'settled', phase: 'Promoted', message: 'promoted', writeBack: 'succeeded', revertOf: w.workflowId, what: w.file };
  },
  async gitWriteFilesRevert(r) {
    const repo = repoOf();
    repo.filesReverts.push(r);
    return repo.filesRevertAnswer(r);
  },
  async gitWriteRevert(r) {
    const repo = repoOf();
    repo.reverts.push(r);
    return repo.revertAnswer(r);
  },
  async gitStartRelease(req) {
    const repo = repoOf();
    repo.starts.push(req);
    return repo.startAnswer(req);
  },
  async gitStartGroup(req) {
    const repo = repoOf();
    repo.otherStarts.push({ ...req, kind: 'group' });
    return repo.otherAnswer(req, 'group');
  },
  async gitIntroduceApiVersion(req) {
    const repo = repoOf();
    repo.otherStarts.push({ ...req, kind: 'apiVersion' });
    return repo.otherAnswer(req, 'apiVersion');
  },
};

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;

before(async () => {
  const [e, workflowBundle] = await Promise.all([createTimeSkippingEnv(), cachedWorkflowBundle()]);
  env = e;
  worker = await Worker.create({ connection: env.nativeConnection, taskQueue: TASK_QUEUE, workflowBundle, activities, shutdownGraceTime: '2s', shutdownForceTime: '5s' });
  running = worker.run();
});
after(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

let n = 0;
async function startSource(repo: Repo, extra: Partial<GitSourceInput> = {}): Promise<WorkflowHandle> {
  const input: GitSourceInput = { repository: `https://git.example.test/app-${++n}.git`, branch: 'main', path: 'deploy', pollInterval: '1m', ...extra };
  const workflowId = gitSourceWorkflowId(input);
  repos.set(workflowId, repo);
  return env.client.workflow.start('gitSource', { taskQueue: TASK_QUEUE, workflowId, args: [input] });
}

/**
 * Queries until `pred` holds. Each query may take 1 s: one sent to a run that is closing as it
 * continues as new can go unanswered on the Java test server, and the next reaches the new run.
 */
async function until(handle: WorkflowHandle, pred: (s: GitSourceStatus) => boolean, what: string, timeoutMs = 20_000): Promise<GitSourceStatus> {
  const end = Date.now() + timeoutMs;
  let last: GitSourceStatus | undefined;
  while (Date.now() < end) {
    try {
      last = await handle.client.withDeadline(Date.now() + 1_000, () => handle.query(gitSourceStatusQuery));
      if (pred(last)) return last;
    } catch {
      // answered by the next attempt
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last?.condition)}`);
}

const polled = (after: number) => (s: GitSourceStatus) => s.polls > after;

test('a refused fetch is AuthFailed and the source keeps watching (durable timer); it recovers when the fetch works', async () => {
  const repo = new Repo();
  repo.head = ApplicationFailure.nonRetryable('authentication refused: HTTP 401', 'GitAuthFailed');
  const h = await startSource(repo);
  let s = await until(h, (x) => x.condition.type === 'AuthFailed', 'the auth failure');
  assert.match(s.condition.message, /authentication refused/);
  assert.ok(s.audit.some((a) => a.action === 'AuthFailed'));
  const polls = s.polls;
  const c1 = repo.push(1, { 'deploy/web.yaml': 'h1' });
  await env.sleep('61s'); // no wake: the poll timer fires
  s = await until(h, (x) => x.polls > polls && x.lastCommit === c1, 'the next timed poll');
  assert.equal(s.condition.type, 'Watching');
  await h.terminate();
});

test('first commit is the baseline; a changed spec starts its release with the commit; an unchanged one starts nothing', async () => {
  const repo = new Repo();
  const c1 = repo.push(1, { 'deploy/web.yaml': 'h1', 'deploy/api.yaml': 'a1' });
  const h = await startSource(repo);
  let s = await until(h, (x) => x.lastCommit === c1, 'the baseline');
  assert.equal(repo.starts.length, 0, 'the first commit is taken as running');
  assert.equal(s.commits.at(-1)?.result, 'baseline');

  const c2 = repo.push(2, { 'deploy/web.yaml': 'h2', 'deploy/api.yaml': 'a1' });
  await h.signal(wakeSignal, { by: 'webhook', commit: c2 });
  s = await until(h, (x) => x.lastCommit === c2 && x.commits.at(-1)?.commit === c2, 'the new commit');
  assert.deepEqual(repo.starts.map((r) => [r.commit, r.file, r.specHash, r.initiator]), [[c2, 'deploy/web.yaml', 'h2', 'git:dev@example.test']], 'only the changed file starts, from its commit');
  assert.deepEqual(s.commits.at(-1)?.releases.map((r) => r.outcome), ['started']);
  assert.equal(s.condition.type, 'Watching');
  assert.ok(s.audit.some((a) => a.action === 'release-started' && a.commit === c2));

  const c3 = repo.push(3, { 'deploy/web.yaml': 'h2', 'deploy/api.yaml': 'a1' });
  const before = s.polls;
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => polled(before)(x) && x.lastCommit === c3, 'the unchanged commit');
  assert.equal(repo.starts.length, 1, 'nothing started for an unchanged spec');
  assert.equal(s.commits.at(-1)?.result, 'unchanged');

  const again = s.polls;
  await h.signal(wakeSignal, { by: 'webhook' });
  await until(h, polled(again), 'a poll of the same head');
  assert.equal(repo.starts.length, 1, 'the same head starts nothing');
  await recordHistory(h, 'git-source-start');
  await h.terminate();
});

test('a commit that fails lint starts nothing and is reported against it; the next good commit starts', async () => {
  const repo = new Repo();
  const c1 = repo.push(1, { 'deploy/web.yaml': 'h1' });
  const h = await startSource(repo);
  await until(h, (x) => x.lastCommit === c1, 'the baseline');
  const bad = repo.push(2, {}, { problems: ['deploy/web.yaml: spec.strategy.canary.steps[0].setWeight: must be at most 100'] });
  await h.signal(wakeSignal, { by: 'webhook' });
  let s = await until(h, (x) => x.commits.at(-1)?.commit === bad, 'the bad commit');
  assert.equal(repo.starts.length, 0);
  assert.equal(s.condition.type, 'LintFailed');
  assert.equal(s.condition.commit, bad);
  assert.match(s.condition.message, /setWeight: must be at most 100/);
  assert.deepEqual(s.commits.at(-1)?.problems, ['deploy/web.yaml: spec.strategy.canary.steps[0].setWeight: must be at most 100']);
  assert.ok(s.audit.some((a) => a.action === 'LintFailed' && a.commit === bad), 'audited against the commit');
  assert.deepEqual(s.tracked.map((t) => [t.file, t.specHash]), [['deploy/web.yaml', 'h1']], 'the last good specs stay the reference');

  const good = repo.push(3, { 'deploy/web.yaml': 'h3' });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.commits.at(-1)?.commit === good, 'the fixed commit');
  assert.deepEqual(repo.starts.map((r) => r.commit), [good]);
  assert.equal(s.condition.type, 'Watching');
  await h.terminate();
});

test('under a signing policy an unverified head is refused and audited, nothing starts, the trusted commit stays; a verified one starts', async () => {
  const repo = new Repo();
  const c1 = repo.push(1, { 'deploy/web.yaml': 'h1' }, { signature: { verified: true, policyCommit: commit(1), detail: 'Good "git" signature for alice@example.test' } });
  const h = await startSource(repo);
  await until(h, (x) => x.lastCommit === c1, 'the baseline');
  const unsigned = repo.push(2, { 'deploy/web.yaml': 'h2' }, { signature: { verified: false, policyCommit: c1, detail: 'the commit is not signed' } });
  await h.signal(wakeSignal, { by: 'webhook' });
  let s = await until(h, (x) => x.condition.type === 'SignatureRefused', 'the refusal');
  assert.equal(repo.starts.length, 0, 'nothing started');
  assert.equal(s.condition.commit, unsigned);
  assert.match(s.condition.message, /the commit is not signed \(signing policy \.glidepath\/allowed_signers at 000000000000\)/);
  assert.ok(s.audit.some((a) => a.action === 'SignatureRefused' && a.commit === unsigned), 'audited against the commit');
  assert.equal(s.commits.at(-1)?.result, 'signature-refused');
  assert.deepEqual([s.lastCommit, s.trustedCommit], [c1, c1], 'the refused head is neither the last commit nor trusted');

  // Glidepath's own revert is unsigned: it is read (it starts nothing) but never becomes the trusted commit.
  const revert = repo.push(3, { 'deploy/web.yaml': 'h1' }, { revertOf: 'release_payments_web', signature: { verified: false, policyCommit: c1, detail: 'the commit is not signed' } });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.lastCommit === revert, 'the revert');
  assert.equal(s.commits.at(-1)?.result, 'glidepath-revert');
  assert.equal(s.trustedCommit, c1);

  const signed = repo.push(4, { 'deploy/web.yaml': 'h4' }, { signature: { verified: true, policyCommit: c1, detail: 'Good "git" signature for alice@example.test' } });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.commits.at(-1)?.commit === signed, 'the signed commit');
  assert.deepEqual(repo.starts.map((r) => r.commit), [signed]);
  assert.equal(s.trustedCommit, signed);
  assert.equal(s.condition.type, 'Watching');
  assert.equal(repo.trustedAsked.at(-1), c1, 'the head was checked against the last trusted commit, not the revert');
  await h.terminate();
});

test('a force push is the named condition ForcePushed, audited; the new head is still compared and started', async () => {
  const repo = new Repo();
  const c1 = repo.push(1, { 'deploy/web.yaml': 'h1' });
  const h = await startSource(repo);
  await until(h, (x) => x.lastCommit === c1, 'the baseline');
  const rewritten = repo.push(9, { 'deploy/web.yaml': 'h9' }, { descends: false });
  await h.signal(wakeSignal, { by: 'webhook' });
  const s = await until(h, (x) => x.commits.at(-1)?.commit === rewritten, 'the rewritten head');
  assert.equal(s.condition.type, 'ForcePushed');
  assert.equal(s.condition.commit, rewritten);
  assert.match(s.condition.message, /does not descend from the last commit seen/);
  assert.ok(s.audit.some((a) => a.action === 'ForcePushed' && a.commit === rewritten));
  assert.equal(s.commits.at(-1)?.forcePushed, true);
  assert.deepEqual(repo.starts.map((r) => r.commit), [rewritten]);
  await h.terminate();
});

test('a workload busy with another release stays pending and starts at a later poll', async () => {
  const repo = new Repo();
  const c1 = repo.push(1, { 'deploy/web.yaml': 'h1' });
  const h = await startSource(repo);
  await until(h, (x) => x.lastCommit === c1, 'the baseline');
  repo.startAnswer = (req) => ({ outcome: 'in-flight', workflowId: 'release_payments_web', detail: `busy (${req.file})` });
  const c2 = repo.push(2, { 'deploy/web.yaml': 'h2' });
  await h.signal(wakeSignal, { by: 'webhook' });
  let s = await until(h, (x) => x.lastCommit === c2 && x.condition.type === 'ReleaseInFlight', 'the busy workload');
  assert.deepEqual(s.pending.map((p) => [p.file, p.commit]), [['deploy/web.yaml', c2]]);
  assert.equal(s.commits.at(-1)?.result, 'pending');
  repo.startAnswer = () => ({ outcome: 'started', workflowId: 'release_payments_web' });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.pending.length === 0, 'the retried start');
  assert.deepEqual(repo.starts.map((r) => r.commit), [c2, c2]);
  assert.equal(s.condition.type, 'Watching');
  assert.deepEqual(s.tracked.map((t) => [t.specHash, t.commit]), [['h2', c2]]);
  await h.terminate();
});

test('a release that rolls back is written back as a revert restoring the image before it; a conflicting one is RevertConflict', async () => {
  const repo = new Repo();
  const c1 = repo.push(1, { 'deploy/web.yaml': 'h1', 'deploy/api.yaml': 'a1' });
  const h = await startSource(repo);
  await until(h, (x) => x.lastCommit === c1, 'the baseline');
  repo.outcomes.set('release_payments_deploywebyaml', { state: 'known', phase: 'Progressing', canaryImage: 'web:v2', stableImage: 'web:v1', message: 'step 1' });
  const c2 = repo.push(2, { 'deploy/web.yaml': 'h2', 'deploy/api.yaml': 'a1' });
  await h.signal(wakeSignal, { by: 'webhook' });
  let s = await until(h, (x) => x.commits.at(-1)?.commit === c2, 'the release start');
  assert.deepEqual(s.watching.map((w) => [w.workflowId, w.commit]), [['release_payments_deploywebyaml', c2]], 'watched while it runs');
  assert.equal(repo.reverts.length, 0, 'nothing written while it progresses');

  repo.outcomes.set('release_payments_deploywebyaml', { state: 'known', phase: 'RolledBack', canaryImage: 'web:v2', stableImage: 'web:v1', message: 'analysis "success-rate" failed' });
  await env.sleep('11s'); // watched releases are checked every 10 s
  s = await until(h, (x) => x.watching.length === 0, 'the revert');
  assert.deepEqual(repo.reverts.map((r) => [r.releaseId, r.file, r.commit, r.phase, r.failedImage, r.restoreImage, r.reason]), [['release_payments_deploywebyaml', 'deploy/web.yaml', c2, 'RolledBack', 'web:v2', 'web:v1', 'analysis "success-rate" failed']]);
  assert.ok(s.audit.some((a) => a.action === 'revert-committed' && a.commit === commit(0xbee)));

  // A second release that is aborted while a newer commit changed its file: a conflict, named, nothing written.
  repo.outcomes.set('release_payments_deployapiyaml', { state: 'known', phase: 'Progressing', canaryImage: 'api:v2', stableImage: 'api:v1', message: '' });
  const c3 = repo.push(3, { 'deploy/web.yaml': 'h2', 'deploy/api.yaml': 'a2' });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.commits.at(-1)?.commit === c3, 'the api release');
  assert.deepEqual(s.watching.map((w) => w.workflowId), ['release_payments_deployapiyaml']);
  repo.revertAnswer = () => ({ outcome: 'conflict', detail: 'deploy/api.yaml no longer releases api:v2' });
  repo.outcomes.set('release_payments_deployapiyaml', { state: 'known', phase: 'Aborted', canaryImage: 'api:v2', stableImage: 'api:v1', message: 'aborted by oncall' });
  await h.signal(wakeSignal, { by: 'test' });
  s = await until(h, (x) => x.condition.type === 'RevertConflict', 'the conflict');
  assert.equal(s.condition.commit, c3);
  assert.match(s.condition.message, /no longer releases api:v2/);
  assert.equal(s.watching.length, 0);
  await recordHistory(h, 'git-source-revert');
  await h.terminate();
});

test('with revert: branch the rollback is proposed on a review branch of its own and audited as revert-proposed', async () => {
  const repo = new Repo();
  const c1 = repo.push(1, { 'deploy/web.yaml': 'h1' });
  const h = await startSource(repo, { revert: 'branch' });
  await until(h, (x) => x.lastCommit === c1, 'the baseline');
  const c2 = repo.push(2, { 'deploy/web.yaml': 'h2' });
  repo.outcomes.set('release_payments_deploywebyaml', { state: 'known', phase: 'Aborted', canaryImage: 'web:v2', stableImage: 'web:v1', message: 'aborted by oncall' });
  await h.signal(wakeSignal, { by: 'webhook' });
  const s = await until(h, (x) => x.audit.some((a) => a.action === 'revert-proposed'), 'the proposed revert');
  assert.deepEqual(repo.reverts.map((r) => r.reviewBranch), [`glidepath/revert/release_payments_deploywebyaml/${c2.slice(0, 12)}`]);
  assert.ok(!s.audit.some((a) => a.action === 'revert-committed'));
  assert.match(s.audit.find((a) => a.action === 'revert-proposed')?.detail ?? '', /on branch glidepath\/revert\/release_payments_deploywebyaml\/0{12} restores web:v1 .* merging it rolls main back/);
  await h.terminate();
});

test("Glidepath's own revert starts nothing and becomes the reference", async () => {
  const repo = new Repo();
  const c1 = repo.push(1, { 'deploy/web.yaml': 'h1' });
  const h = await startSource(repo);
  await until(h, (x) => x.lastCommit === c1, 'the baseline');
  const revert = repo.push(2, { 'deploy/web.yaml': 'h0' }, { revertOf: 'release_payments_web' });
  await h.signal(wakeSignal, { by: 'webhook' });
  const s = await until(h, (x) => x.commits.at(-1)?.commit === revert, 'the revert');
  assert.equal(repo.starts.length, 0);
  assert.equal(s.commits.at(-1)?.result, 'glidepath-revert');
  assert.deepEqual(s.tracked.map((t) => t.specHash), ['h0']);
  await h.terminate();
});

test('ReleaseGroup and ApiVersion documents: a changed one starts its group or introduces its version from the commit; an unchanged one is left alone; a lint failure starts nothing', async () => {
  const repo = new Repo();
  const others = (group: string, api: string): Record<string, [DocumentKind, string]> => ({ 'deploy/group.yaml': ['group', group], 'deploy/api-v2.yaml': ['apiVersion', api] });
  const c1 = repo.push(1, { 'deploy/web.yaml': 'h1' }, { others: others('g1', 'a1') });
  const h = await startSource(repo);
  let s = await until(h, (x) => x.lastCommit === c1, 'the baseline');
  assert.equal(repo.otherStarts.length, 0, 'the first commit is taken as running');
  assert.deepEqual(s.tracked.map((t) => [t.kind, t.file, t.specHash]), [[undefined, 'deploy/web.yaml', 'h1'], ['group', 'deploy/group.yaml', 'g1'], ['apiVersion', 'deploy/api-v2.yaml', 'a1']]);

  const c2 = repo.push(2, { 'deploy/web.yaml': 'h1' }, { others: others('g2', 'a1') });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.commits.at(-1)?.commit === c2, 'the changed group');
  assert.deepEqual(repo.otherStarts.map((r) => [r.kind, r.commit, r.file, r.specHash, r.initiator]), [['group', c2, 'deploy/group.yaml', 'g2', 'git:dev@example.test']], 'only the changed group starts, from its commit');
  assert.equal(repo.starts.length, 0, 'the unchanged release is left alone');
  assert.deepEqual(s.commits.at(-1)?.releases, [{ kind: 'group', file: 'deploy/group.yaml', workflowId: 'group_payments_deploygroupyaml', outcome: 'started' }]);
  assert.ok(s.audit.some((a) => a.action === 'group-started' && a.commit === c2 && a.detail === 'group_payments_deploygroupyaml from deploy/group.yaml'));
  s = await until(h, (x) => x.watching.length === 0, 'the group promoted');
  assert.ok(s.tracked.some((t) => t.kind === 'group' && t.commit === c2 && t.lastGood === c2), 'a promoted group is watched until it settles, its commit the last good one');
  assert.equal(s.condition.type, 'Watching');

  const c3 = repo.push(3, { 'deploy/web.yaml': 'h1' }, { others: others('g2', 'a2') });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.commits.at(-1)?.commit === c3, 'the changed API version');
  assert.deepEqual(repo.otherStarts.slice(1).map((r) => [r.kind, r.commit, r.file, r.specHash]), [['apiVersion', c3, 'deploy/api-v2.yaml', 'a2']]);
  assert.ok(s.audit.some((a) => a.action === 'api-version-introduced' && a.commit === c3));
  assert.deepEqual(s.tracked.map((t) => [t.kind, t.specHash, t.commit]), [[undefined, 'h1', c1], ['group', 'g2', c2], ['apiVersion', 'a2', c3]], 'each document records the commit it was started from');

  const c4 = repo.push(4, { 'deploy/web.yaml': 'h1' }, { others: others('g2', 'a2') });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.commits.at(-1)?.commit === c4, 'the unchanged commit');
  assert.equal(s.commits.at(-1)?.result, 'unchanged');
  assert.equal(repo.otherStarts.length, 2, 'nothing started for unchanged documents');

  const bad = repo.push(5, {}, { problems: ['deploy/group.yaml: spec.waves[0].clusters[0]: cluster "eu" is already in wave "a"'], others: others('g3', 'a3') });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.commits.at(-1)?.commit === bad, 'the bad commit');
  assert.equal(s.condition.type, 'LintFailed');
  assert.equal(s.condition.commit, bad);
  assert.match(s.condition.message, /cluster "eu" is already in wave "a"/);
  assert.equal(repo.otherStarts.length + repo.starts.length, 2, 'a commit that fails lint starts nothing');

  // A group in flight waits (pending, retried at every poll); an introduction the API workflow refuses is StartFailed.
  repo.otherAnswer = (req, kind) => (kind === 'group' ? { outcome: 'in-flight', workflowId: 'group_payments_deploygroupyaml', detail: 'group payments/x is in flight' } : { outcome: 'failed', workflowId: 'api-payments-deployapiv2yaml', detail: 'refused to introduce payments/orders v2: version v2 of payments/orders is already Serving' });
  const c6 = repo.push(6, { 'deploy/web.yaml': 'h1' }, { others: others('g6', 'a6') });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.commits.at(-1)?.commit === c6, 'the busy group and the refused version');
  assert.equal(s.condition.type, 'StartFailed');
  assert.match(s.condition.message, /deploy\/api-v2\.yaml at 0{12}: refused to introduce .* already Serving/);
  assert.deepEqual(s.pending.map((p) => [p.kind, p.file, p.commit]), [['group', 'deploy/group.yaml', c6]]);
  assert.equal(s.commits.at(-1)?.result, 'pending');
  repo.otherAnswer = (req, kind) => ({ outcome: 'started', workflowId: workflowIdOf(kind, req.file) });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.pending.length === 0, 'the retried group');
  assert.deepEqual(repo.otherStarts.slice(2).map((r) => [r.kind, r.commit]), [['group', c6], ['apiVersion', c6], ['group', c6]]);
  assert.deepEqual(s.tracked.map((t) => [t.kind, t.specHash]), [[undefined, 'h1'], ['apiVersion', 'a2'], ['group', 'g6']], 'the refused version keeps the last one introduced as the reference');
  await recordHistory(h, 'git-source-documents');
  await h.terminate();
});

test('a release group that rolls back is written back as one revert of its files as at their last good commit; an API version whose introduction failed too; a newer change is RevertConflict; a failed push is retried', async () => {
  const repo = new Repo();
  const others = (group: string, api: string): Record<string, [DocumentKind, string]> => ({ 'deploy/group.yaml': ['group', group], 'deploy/api-v2.yaml': ['apiVersion', api] });
  const groupId = 'group_payments_deploygroupyaml';
  const settled = (phase: string, writeBack: 'revert' | 'kept' | 'succeeded', revertOf = groupId, detail?: string): DocumentOutcome => ({ state: 'settled', phase, message: `${phase}: wave prod failed`, writeBack, revertOf, what: 'group payments/shop', ...(detail ? { detail } : {}) });
  const c1 = repo.push(1, { 'deploy/web.yaml': 'h1' }, { others: others('g1', 'a1') });
  const h = await startSource(repo, { repository: 'https://git.example.test/groups-revert.git' });
  await until(h, (x) => x.lastCommit === c1, 'the baseline');

  // The group runs: watched, with the commit its files are restored to.
  repo.documentOutcomes.set('deploy/group.yaml', { state: 'running', phase: 'Running' });
  const c2 = repo.push(2, { 'deploy/web.yaml': 'h1' }, { others: others('g2', 'a1') });
  await h.signal(wakeSignal, { by: 'webhook' });
  let s = await until(h, (x) => x.commits.at(-1)?.commit === c2 && x.watching.length === 1, 'the group start');
  assert.deepEqual(s.watching.map((w) => [w.kind, w.workflowId, w.file, w.commit, w.baseCommit]), [['group', groupId, 'deploy/group.yaml', c2, c1]]);
  assert.equal(repo.filesReverts.length, 0, 'nothing written while it runs');

  repo.documentOutcomes.set('deploy/group.yaml', settled('RolledBack', 'revert'));
  await h.signal(wakeSignal, { by: 'test' }); // a poll checks the watched documents (every 10 s while any runs, or when woken)
  s = await until(h, (x) => x.watching.length === 0, 'the group revert');
  assert.deepEqual(repo.filesReverts.map((r) => [r.kind, r.revertOf, r.file, r.commit, r.baseCommit, r.phase, r.reason, r.reviewBranch]), [['group', groupId, 'deploy/group.yaml', c2, c1, 'RolledBack', 'RolledBack: wave prod failed', undefined]], 'one revert for the group, to its last good commit');
  assert.ok(s.audit.some((a) => a.action === 'revert-committed' && a.commit === commit(0xcafe) && a.detail.includes(`restores deploy/group.yaml as at ${c1.slice(0, 12)} after ${groupId} RolledBack`)));

  // Its revert is the reference (the last good commit); a group that promotes moves it; the next rollback restores to that.
  const c3 = repo.push(3, { 'deploy/web.yaml': 'h1' }, { others: others('g1', 'a1'), revertOf: groupId });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.commits.at(-1)?.commit === c3, 'the revert commit');
  assert.deepEqual(s.tracked.filter((t) => t.kind === 'group').map((t) => [t.commit, t.lastGood]), [[c3, c3]]);
  repo.documentOutcomes.delete('deploy/group.yaml'); // promotes
  const c4 = repo.push(4, { 'deploy/web.yaml': 'h1' }, { others: others('g4', 'a1') });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.commits.at(-1)?.commit === c4 && x.watching.length === 0, 'the promoted group');
  assert.deepEqual(s.tracked.filter((t) => t.kind === 'group').map((t) => [t.commit, t.lastGood]), [[c4, c4]]);
  repo.documentOutcomes.set('deploy/group.yaml', settled('Aborted', 'revert'));
  repo.filesRevertAnswer = () => ({ outcome: 'conflict', detail: 'deploy/ledger.yaml at 00000000000a is not as 000000000005 left it (a newer commit changed it); nothing reverted' });
  const c5 = repo.push(5, { 'deploy/web.yaml': 'h1' }, { others: others('g5', 'a1') });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.condition.type === 'RevertConflict', 'the conflict');
  assert.deepEqual(repo.filesReverts.slice(1).map((r) => [r.commit, r.baseCommit, r.phase]), [[c5, c4, 'Aborted']]);
  assert.equal(s.condition.commit, c5);
  assert.match(s.condition.message, /^group_payments_deploygroupyaml Aborted: deploy\/ledger\.yaml .*\(a newer commit changed it\)/);
  assert.equal(s.watching.length, 0);

  // A group that ended with a cell still on its image is left as it is, audited.
  repo.documentOutcomes.set('deploy/group.yaml', settled('Aborted', 'kept', groupId, 'ledger@prod-eu still on the group\'s image; Git is left as it is'));
  const c6 = repo.push(6, { 'deploy/web.yaml': 'h1' }, { others: others('g6', 'a1') });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.commits.at(-1)?.commit === c6 && x.watching.length === 0, 'the kept group');
  assert.equal(repo.filesReverts.length, 2, 'nothing written for it');
  assert.ok(s.audit.some((a) => a.action === 'revert-skipped' && a.commit === c6 && /ledger@prod-eu still on the group's image/.test(a.detail)));

  // An API version whose introduction failed: its file is written back; a refused push is RevertFailed and retried.
  const apiOf = 'api-payments-deployapiv2yaml/v2';
  repo.documentOutcomes.set('deploy/api-v2.yaml', { state: 'settled', phase: 'Failed', message: 'Introducing: deployVersion: image pull failed', writeBack: 'revert', revertOf: apiOf, what: 'API version payments/orders v2' });
  repo.filesRevertAnswer = () => {
    throw ApplicationFailure.nonRetryable('git failed: ! [rejected] main (fetch first)');
  };
  const c7 = repo.push(7, { 'deploy/web.yaml': 'h1' }, { others: others('g6', 'a7') });
  await h.signal(wakeSignal, { by: 'webhook' });
  s = await until(h, (x) => x.condition.type === 'RevertFailed', 'the failed push');
  assert.match(s.condition.message, /api-payments-deployapiv2yaml\/v2 Failed: writing the revert failed: .*rejected/);
  assert.deepEqual(s.watching.map((w) => [w.kind, w.file, w.commit, w.baseCommit]), [['apiVersion', 'deploy/api-v2.yaml', c7, c1]], 'still watched: written at the next poll');
  repo.filesRevertAnswer = () => ({ outcome: 'committed', commit: commit(0xcafe2) });
  await h.signal(wakeSignal, { by: 'test' });
  s = await until(h, (x) => x.watching.length === 0, 'the API version revert');
  assert.deepEqual(repo.filesReverts.slice(2).map((r) => [r.kind, r.revertOf, r.file, r.commit, r.baseCommit, r.phase]), [
    ['apiVersion', apiOf, 'deploy/api-v2.yaml', c7, c1, 'Failed'],
    ['apiVersion', apiOf, 'deploy/api-v2.yaml', c7, c1, 'Failed'],
  ]);
  assert.ok(s.audit.some((a) => a.action === 'revert-committed' && a.commit === commit(0xcafe2)));
  await recordHistory(h, 'git-source-group-revert');
  await h.terminate();
});

test('with revert: branch a rolled-back group is proposed on a review branch named after the group', async () => {
  const repo = new Repo();
  const c1 = repo.push(1, {}, { others: { 'deploy/group.yaml': ['group', 'g1'] } });
  const h = await startSource(repo, { revert: 'branch' });
  await until(h, (x) => x.lastCommit === c1, 'the baseline');
  repo.documentOutcomes.set('deploy/group.yaml', { state: 'settled', phase: 'RolledBack', message: 'gate prod failed', writeBack: 'revert', revertOf: 'group_payments_deploygroupyaml', what: 'group payments/shop' });
  const c2 = repo.push(2, {}, { others: { 'deploy/group.yaml': ['group', 'g2'] } });
  await h.signal(wakeSignal, { by: 'webhook' });
  const s = await until(h, (x) => x.audit.some((a) => a.action === 'revert-proposed'), 'the proposed revert');
  assert.deepEqual(repo.filesReverts.map((r) => [r.reviewBranch, r.baseCommit]), [[`glidepath/revert/group_payments_deploygroupyaml/${c2.slice(0, 12)}`, c1]]);
  assert.match(s.audit.find((a) => a.action === 'revert-proposed')?.detail ?? '', /on branch glidepath\/revert\/group_payments_deploygroupyaml\/0{12} restores deploy\/group\.yaml as at 0{12} after group_payments_deploygroupyaml RolledBack; merging it rolls main back/);
  await h.terminate();
});

test('a source from before groups and API versions were started takes their files as running at the first commit holding them; later changes start them', async () => {
  const repo = new Repo();
  const c1 = repo.push(1, { 'deploy/web.yaml': 'h1' });
  const id = gitSourceWorkflowId({ repository: `https://git.example.test/app-${n + 1}.git`, branch: 'main', path: 'deploy' });
  const earlier = new SourceState({ repository: `https://git.example.test/app-${n + 1}.git`, branch: 'main', path: 'deploy', pollInterval: '1m' }, id).status;
  earlier.lastCommit = c1;
  earlier.tracked = [{ file: 'deploy/web.yaml', specHash: 'h1', workflowId: 'release_payments_deploywebyaml', commit: c1 }];
  const c2 = repo.push(2, { 'deploy/web.yaml': 'h1' }, { others: { 'deploy/group.yaml': ['group', 'g1'] } });
  const h = await startSource(repo, { state: earlier });
  const s = await until(h, (x) => x.lastCommit === c2, 'the first commit read with a group');
  assert.equal(repo.otherStarts.length, 0, 'the group file is taken as running, not started');
  assert.equal(s.groupsAndApisTracked, true);
  assert.ok(s.audit.some((a) => a.action === 'baseline' && /1 ReleaseGroup\/ApiVersion file\(s\)/.test(a.detail)));
  const c3 = repo.push(3, { 'deploy/web.yaml': 'h1' }, { others: { 'deploy/group.yaml': ['group', 'g2'] } });
  await h.signal(wakeSignal, { by: 'webhook' });
  const later = await until(h, (x) => x.commits.at(-1)?.commit === c3, 'the changed group');
  assert.deepEqual(repo.otherStarts.map((r) => [r.kind, r.commit]), [['group', c3]]);
  assert.deepEqual(later.tracked.map((t) => [t.kind, t.specHash, t.commit]), [[undefined, 'h1', c1], ['group', 'g2', c3]]);
  await h.terminate();
});

/**
 * Wakes the source until it has seen `c`, as a webhook redelivers. The Java test server can drop a signal
 * that reaches a run as it continues as new (Temporal's server fails that completion and the signal
 * reaches the next task); without the redelivery the next run sleeps out its poll interval in real time.
 */
async function wakeUntilSeen(h: WorkflowHandle, c: string, what: string): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    await h.signal(wakeSignal, { by: 'webhook', commit: c });
    try {
      await until(h, (x) => x.commits.some((seen) => seen.commit === c), what, 2_000);
      return;
    } catch {
      // not seen yet: deliver again
    }
  }
  await until(h, (x) => x.commits.some((seen) => seen.commit === c), what);
}

test('continue-as-new carries the tracked specs, the commits seen and the counters', async () => {
  const repo = new Repo();
  const c1 = repo.push(1, { 'deploy/web.yaml': 'h1' });
  const h = await startSource(repo, { pollsPerRun: 2 });
  await until(h, (x) => x.lastCommit === c1, 'the baseline');
  for (let i = 2; i <= 6; i++) {
    const c = repo.push(i, { 'deploy/web.yaml': `h${i}` });
    await wakeUntilSeen(h, c, `commit ${i}`);
  }
  // Through `until` (1 s per query): a query without a deadline that reaches a closing run waits ~1 min.
  const s = await until(h, (x) => x.commits.length === 6, 'the six commits');
  assert.ok(s.continuedAsNew >= 2, `continued as new ${s.continuedAsNew} times`);
  assert.equal(repo.starts.length, 5, 'every change started once, across runs');
  assert.equal(new Set(repo.starts.map((r) => r.commit)).size, 5);
  assert.deepEqual(s.tracked.map((t) => [t.specHash, t.commit]), [['h6', commit(6)]]);
  assert.equal(s.commits.length, 6, 'the commits seen in earlier runs are carried');
  assert.ok(s.polls >= 6);
  await h.terminate();
});

test('the status lists are bounded: the last 20 commits, the last 50 audit entries', () => {
  const state = new SourceState({ repository: 'https://git.example.test/a.git', branch: 'main', path: 'deploy', pollInterval: '1m' }, 'id');
  for (let i = 0; i < 70; i++) {
    state.record({ commit: commit(i), at: '', subject: '', result: 'unchanged', releases: [] });
    state.audit('wake', `wake ${i}`);
  }
  assert.equal(state.status.commits.length, 20);
  assert.equal(state.status.commits[0]?.commit, commit(50));
  assert.equal(state.status.audit.length, 50);
  assert.equal(state.status.audit.at(-1)?.detail, 'wake 69');
});

test('source status names what a tracked or pending file is: a release, a group, an API version', () => {
  const state = new SourceState({ repository: 'https://git.example.test/a.git', branch: 'main', path: 'deploy', pollInterval: '1m' }, 'id');
  state.status.tracked = [
    { file: 'deploy/web.yaml', specHash: 'h', workflowId: 'release_payments_web', commit: commit(1) },
    { kind: 'group', file: 'deploy/group.yaml', specHash: 'g', workflowId: 'group_payments_shop', commit: commit(1) },
    { kind: 'group', file: 'deploy/group-b.yaml', specHash: 'g', workflowId: 'group_payments_b', commit: 'b'.repeat(40), lastGood: 'a'.repeat(40) },
    { kind: 'apiVersion', file: 'deploy/orders-v2.yaml', specHash: 'a', workflowId: 'api-shop-orders', commit: commit(1) },
  ];
  state.status.pending = [{ kind: 'group', file: 'deploy/group.yaml', specHash: 'g2', workflowId: 'group_payments_shop', commit: commit(2) }];
  const text = sourceSummary(state.status);
  assert.match(text, /deploy\/web\.yaml → release_payments_web \(from 0{12}\)/);
  assert.match(text, /deploy\/group\.yaml → group_payments_shop \(group\) \(from 0{12}\)/);
  assert.match(text, /deploy\/group-b\.yaml → group_payments_b \(group\) \(from b{12}; a revert restores it as at a{12}\)/);
  assert.match(text, /deploy\/orders-v2\.yaml → api-shop-orders \(API version\) \(from 0{12}\)/);
  assert.match(text, /pending: deploy\/group\.yaml at 0{12} \(the group or a member's workload is in flight\)/);
});
