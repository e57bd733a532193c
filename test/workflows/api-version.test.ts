/**
 * The API-versions workflow under time skipping (Java test server, activities stubbed): register v1,
 * introduce v2, the validators, a retirement whose 3-week sunset passes in seconds, the approval gate
 * (four eyes, approvers, signals ignored and audited), proven identity for retirement approvals
 * (the worker's identity policy stubbed per API, real Ed25519 proofs), aborting a retirement,
 * Ingress without headers, a failed activity, and continue-as-new carrying every version's state.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { VersioningActivities } from '../../activities/versioning/index.ts';
import { apiWorkflowId, type ApiVersionPlan } from '../../model/api-version.ts';
import { signalRefusal, type ActionClaims, type IdentityAction, type IdentityPolicy } from '../../model/identity.ts';
import { AssertionSigner, signClaims } from '../../starters/identity-signer.ts';
import {
  abortRetirementSignal,
  abortRetirementUpdate,
  apiStatusQuery,
  approveRetirementSignal,
  approveRetirementUpdate,
  introduceVersionUpdate,
  retireVersionUpdate,
  type ApiStatus,
  type VersionActionInput,
  type VersionStatus,
} from '../../workflows/api-version-messages.ts';
import { registerSearchAttributes } from '../../workers/search-attributes.ts';
import { untilQuery } from '../support/poll.ts';
import { holdSharedTimeSkippingEnv, releaseSharedTimeSkippingEnv } from '../support/time-skipping.ts';
import { Harness, causeOf, recordHistory, recordingActivities } from './harness.ts';

const NS = 'tests';
const DAY = 86_400_000;
const taskQueue = 'api-version-tests';

type Stubs = { [K in keyof VersioningActivities]: (...args: Parameters<VersioningActivities[K]>) => ReturnType<VersioningActivities[K]> };

function succeeding(): Stubs {
  return {
    deployVersion: async (p) => ({ replicas: p.replicas ?? 1 }),
    registerVersion: async () => ({ replicas: 3 }),
    addVersionRoute: async () => ({ changed: true }),
    setDeprecationHeaders: async (p) => (p.route.kind === 'ingress' ? { supported: false, note: 'Ingress cannot set response headers', changed: false } : { supported: true, changed: true }),
    clearDeprecationHeaders: async () => ({ changed: true }),
    removeVersionRoute: async () => ({ changed: true }),
    scaleDownVersion: async () => ({ previousReplicas: 3 }),
  };
}

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
const calls = new Map<string, { name: string; version: string; args: unknown[] }[]>();
const overrides = new Map<string, Partial<Stubs>>();
/** The worker's identity policy per API workflow (none: claimed identity). */
const policies = new Map<string, IdentityPolicy>();

before(async () => {
  const [e, workflowBundle] = await Promise.all([holdSharedTimeSkippingEnv(), Harness.workflowBundle()]);
  env = e;
  await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  const activities = {
    ...recordingActivities(succeeding(), overrides, calls, (name, args) => ({ name, version: (args[0] as ApiVersionPlan).version, args })),
    identityPolicy: async () => policies.get(Context.current().info.workflowExecution?.workflowId ?? '') ?? null,
  };
  worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle, activities, shutdownGraceTime: '2s', shutdownForceTime: '5s' });
  running = worker.run();
});

after(async () => {
  worker?.shutdown();
  await running;
  if (env) await releaseSharedTimeSkippingEnv();
});

function plan(api: string, version: string, extra: Partial<ApiVersionPlan> = {}): ApiVersionPlan {
  return {
    namespace: NS,
    api,
    version,
    source: 'new',
    deployment: `${api}-${version}`,
    service: `${api}-${version}`,
    image: `registry.local/${api}:${version}`,
    templateFrom: { deployment: `${api}-v1` },
    replicas: 2,
    port: 80,
    route: { kind: 'httpRoute', pathPrefix: `/${version}`, name: api, namespace: NS },
    approvers: ['alice', 'bob'],
    progressDeadlineSeconds: 600,
    ...extra,
  };
}

/** v1 as it runs: registered, not created. */
function existingV1(api: string, extra: Partial<ApiVersionPlan> = {}): ApiVersionPlan {
  const rest: Partial<ApiVersionPlan> = plan(api, 'v1', { source: 'existing', ...extra });
  delete rest.image;
  delete rest.templateFrom;
  delete rest.replicas;
  return rest as ApiVersionPlan;
}

async function startApi(api: string, o: { historyLimit?: number; stubs?: Partial<Stubs>; policy?: IdentityPolicy } = {}): Promise<WorkflowHandle> {
  const workflowId = apiWorkflowId({ namespace: NS, api });
  calls.set(workflowId, []);
  overrides.set(workflowId, o.stubs ?? {});
  if (o.policy) policies.set(workflowId, o.policy);
  await env.client.workflow.start('apiVersions', {
    taskQueue,
    workflowId,
    args: [{ namespace: NS, api, ...(o.historyLimit ? { historyLimit: o.historyLimit } : {}) }],
  });
  return env.client.workflow.getHandle(workflowId);
}

const trace = (h: WorkflowHandle): string[] => (calls.get(h.workflowId) ?? []).map((c) => `${c.name}(${c.version})`);
const versionOf = (s: ApiStatus, v: string): VersionStatus | undefined => s.versions.find((x) => x.version === v);

const showVersions = (last: ApiStatus | undefined): string => JSON.stringify(last?.versions.map((v) => [v.version, v.phase, v.message]));
const until = (h: WorkflowHandle, pred: (s: ApiStatus) => boolean, what: string, timeoutMs = 15_000): Promise<ApiStatus> =>
  untilQuery(h, apiStatusQuery, pred, what, { timeoutMs, intervalMs: 50, show: showVersions });

const phaseIs = (version: string, phase: string) => (s: ApiStatus) => versionOf(s, version)?.phase === phase;

/** v1 registered and v2 introduced, both Serving. */
async function twoServing(api: string, o: Parameters<typeof startApi>[1] = {}, v2: Partial<ApiVersionPlan> = {}): Promise<WorkflowHandle> {
  const h = await startApi(api, o);
  await h.executeUpdate(introduceVersionUpdate, { args: [{ plan: existingV1(api, v2.route?.kind === 'ingress' ? { route: { ...v2.route, pathPrefix: '/v1' } } : {}), by: 'ci-bot' }] });
  await until(h, phaseIs('v1', 'Serving'), 'v1 serving');
  await h.executeUpdate(introduceVersionUpdate, { args: [{ plan: plan(api, 'v2', v2), by: 'ci-bot', reason: 'v2 launch' }] });
  await until(h, phaseIs('v2', 'Serving'), 'v2 serving');
  return h;
}

async function rejected(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return causeOf(err);
  }
  assert.fail('the update was accepted');
}

describe('introducing versions', () => {
  test('register v1 as it runs, introduce v2: activities in order, every version in status, audit', async () => {
    const h = await twoServing('orders');
    assert.deepEqual(trace(h), ['registerVersion(v1)', 'deployVersion(v2)', 'addVersionRoute(v2)']);
    const s = await h.query(apiStatusQuery);
    assert.equal(s.service, `${NS}/orders`);
    assert.deepEqual(s.versions.map((v) => [v.version, v.phase, v.plan.source]), [['v1', 'Serving', 'existing'], ['v2', 'Serving', 'new']]);
    assert.equal(s.phase, 'Serving');
    assert.match(versionOf(s, 'v2')?.message ?? '', /serving at \/v2/);
    assert.deepEqual(s.audit.map((a) => [a.by, a.action]), [['ci-bot', 'register'], ['glidepath', 'serving'], ['ci-bot', 'introduce'], ['glidepath', 'serving']]);
    assert.equal(s.audit[2]?.reason, 'v2 launch');
    const described = await h.describe();
    assert.equal(described.searchAttributes.GlidepathService?.[0], `${NS}/orders`);
    assert.equal(described.searchAttributes.GlidepathPhase?.[0], 'Serving');
  });

  test('validators refuse bad requests and write nothing to history', async () => {
    const h = await twoServing('val');
    const before = (await h.fetchHistory()).events?.length ?? 0;
    const refusals: [() => Promise<unknown>, RegExp][] = [
      [() => h.executeUpdate(introduceVersionUpdate, { args: [{ plan: plan('val', 'v2', { route: { kind: 'httpRoute', pathPrefix: '/v2b', name: 'val', namespace: NS } }), by: 'ci-bot' }] }), /version v2 of tests\/val is already Serving/],
      [() => h.executeUpdate(introduceVersionUpdate, { args: [{ plan: plan('val', 'v3', { route: { kind: 'httpRoute', pathPrefix: '/v2', name: 'val', namespace: NS } }), by: 'ci-bot' }] }), /path \/v2 is in use by version v2/],
      [() => h.executeUpdate(introduceVersionUpdate, { args: [{ plan: plan('other', 'v3'), by: 'ci-bot' }] }), /this workflow manages tests\/val; the plan is for tests\/other/],
      [() => h.executeUpdate(introduceVersionUpdate, { args: [{ plan: { ...plan('val', 'v3'), image: 'Not An Image' }, by: 'ci-bot' }] }), /invalid ApiVersion plan: image/],
      [() => h.executeUpdate(introduceVersionUpdate, { args: [{ plan: plan('val', 'v3'), by: '' }] }), /payload must be/],
      [() => h.executeUpdate(retireVersionUpdate, { args: [{ version: 'v9', sunset: '2999-01-01T00:00:00Z', by: 'ci-bot' }] }), /has no version v9/],
      [() => h.executeUpdate(retireVersionUpdate, { args: [{ version: 'v1', sunset: '2000-01-01T00:00:00Z', by: 'ci-bot' }] }), /sunset 2000-01-01T00:00:00Z is not in the future/],
      [() => h.executeUpdate(retireVersionUpdate, { args: [{ version: 'v1', sunset: 'next tuesday', by: 'ci-bot' }] }), /is not an RFC 3339 date-time/],
      [() => h.executeUpdate(approveRetirementUpdate, { args: [{ version: 'v1', by: 'alice' }] }), /cannot approve the retirement of tests\/val v1: it is Serving/],
      [() => h.executeUpdate(abortRetirementUpdate, { args: [{ version: 'v1', by: 'alice' }] }), /cannot abort the retirement of tests\/val v1: it is Serving/],
    ];
    for (const [p, why] of refusals) assert.match(await rejected(p()), why);
    // The last serving version cannot be retired.
    await h.executeUpdate(retireVersionUpdate, { args: [{ version: 'v1', sunset: new Date((await env.currentTimeMs()) + 30 * DAY).toISOString(), by: 'ci-bot' }] });
    assert.match(await rejected(h.executeUpdate(retireVersionUpdate, { args: [{ version: 'v2', sunset: '2999-01-01T00:00:00Z', by: 'ci-bot' }] })), /it is the last serving version/);
    assert.match(await rejected(h.executeUpdate(retireVersionUpdate, { args: [{ version: 'v1', sunset: '2999-01-01T00:00:00Z', by: 'ci-bot' }] })), /it is Deprecated, not Serving/);
    assert.match(await rejected(h.executeUpdate(approveRetirementUpdate, { args: [{ version: 'v1', by: 'alice' }] })), /approval opens at the sunset/);
    const events = (await h.fetchHistory()).events ?? [];
    const updates = events.slice(before).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
    assert.equal(updates.length, 1, 'only the accepted retire entered history');
    const s = await h.query(apiStatusQuery);
    assert.deepEqual(s.audit.filter((a) => !a.accepted), [], 'rejected updates are not audited (they never ran)');
  });
});

describe('retiring a version', () => {
  test('a 3-week sunset passes in seconds; approval gate; route removed, then scaled to 0', async () => {
    const t0 = Date.now();
    const h = await twoServing('retire');
    const serverNow = await env.currentTimeMs();
    const sunset = new Date(serverNow + 21 * DAY).toISOString();
    await h.executeUpdate(retireVersionUpdate, { args: [{ version: 'v1', sunset, by: 'carol', reason: 'v2 is GA', link: 'https://docs.example.com/v1-sunset' }] });
    const deprecated = await until(h, (s) => versionOf(s, 'v1')?.retirement?.headers === 'set', 'headers set');
    const r = versionOf(deprecated, 'v1')?.retirement;
    assert.ok(r);
    assert.equal(versionOf(deprecated, 'v1')?.phase, 'Deprecated');
    assert.match(r.headerValues.Deprecation ?? '', /^@\d{10}$/);
    assert.equal(Number(r.headerValues.Deprecation?.slice(1)), Math.floor(Date.parse(r.deprecatedAt) / 1000));
    assert.equal(r.headerValues.Sunset, new Date(Date.parse(sunset)).toUTCString());
    assert.match(r.headerValues.Sunset ?? '', /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    assert.equal(r.headerValues.Link, '<https://docs.example.com/v1-sunset>; rel="deprecation"; type="text/html"');
    const headerCall = (calls.get(h.workflowId) ?? []).find((c) => c.name === 'setDeprecationHeaders');
    assert.deepEqual(headerCall?.args[1], r.headerValues, 'the activity got the header values status shows');

    await env.sleep('20d');
    assert.equal(versionOf(await h.query(apiStatusQuery), 'v1')?.phase, 'Deprecated', 'still deprecated a day before the sunset');
    await env.sleep(25 * 3_600_000);
    const awaiting = await until(h, phaseIs('v1', 'AwaitingRetirementApproval'), 'awaiting approval');
    assert.equal(awaiting.phase, 'AwaitingRetirementApproval');
    assert.equal((await h.describe()).searchAttributes.GlidepathPhase?.[0], 'AwaitingRetirementApproval');
    const history = (await h.fetchHistory()).events ?? [];
    const timer = history.find((e) => e.timerStartedEventAttributes)?.timerStartedEventAttributes?.startToFireTimeout;
    const timerDays = Number(timer?.seconds) / 86_400;
    assert.ok(timerDays > 20.9 && timerDays <= 21, `one durable timer of 21 days, got ${timerDays}`);
    assert.ok(!trace(h).includes('removeVersionRoute(v1)'), 'nothing removed before approval');

    // The gate: not the requester, only listed approvers; a signal that may not act is ignored and audited.
    assert.match(await rejected(h.executeUpdate(approveRetirementUpdate, { args: [{ version: 'v1', by: 'mallory' }] })), /mallory may not approve the retirement of v1 \(approvers: alice, bob\)/);
    await h.signal(approveRetirementSignal, { version: 'v1', by: 'mallory' });
    await h.signal(approveRetirementSignal, { version: 'v1', by: 'bob', reason: 'clients migrated' });
    const retired = await until(h, phaseIs('v1', 'Retired'), 'retired');
    assert.deepEqual(trace(h), ['registerVersion(v1)', 'deployVersion(v2)', 'addVersionRoute(v2)', 'setDeprecationHeaders(v1)', 'removeVersionRoute(v1)', 'scaleDownVersion(v1)']);
    const v1 = versionOf(retired, 'v1');
    assert.equal(v1?.retiredReplicas, 3);
    assert.equal(v1?.retirement?.approvedBy?.by, 'bob');
    assert.equal(versionOf(retired, 'v2')?.phase, 'Serving', 'v2 untouched');
    const ignored = retired.audit.find((a) => a.by === 'mallory');
    assert.equal(ignored?.accepted, false);
    assert.match(ignored?.detail ?? '', /ignored: mallory may not approve/);
    assert.deepEqual(
      retired.audit.slice(4).map((a) => `${a.by} ${a.action}`),
      ['carol retire', 'glidepath deprecation-headers', 'glidepath sunset', 'mallory approve-retirement', 'bob approve-retirement', 'glidepath retired'],
    );
    const wall = Date.now() - t0;
    assert.ok(wall < 30_000, `3 weeks of workflow time in ${wall} ms`);
    console.log(`# 21-day sunset retirement: ${wall} ms wall time`);
    await recordHistory(h, 'api-retire');
  });

  test('the requester cannot approve (four eyes); an empty approver list lets anyone else', async () => {
    const h = await twoServing('fe', {}, { approvers: [] });
    assert.deepEqual(versionOf(await h.query(apiStatusQuery), 'v2')?.plan.approvers, []);
    const now = await env.currentTimeMs();
    await h.executeUpdate(retireVersionUpdate, { args: [{ version: 'v2', sunset: new Date(now + 3_600_000).toISOString(), by: 'alice' }] });
    await env.sleep('2h');
    await until(h, phaseIs('v2', 'AwaitingRetirementApproval'), 'awaiting');
    assert.match(await rejected(h.executeUpdate(approveRetirementUpdate, { args: [{ version: 'v2', by: 'alice' }] })), /alice requested this retirement and cannot approve it/);
    await h.executeUpdate(approveRetirementUpdate, { args: [{ version: 'v2', by: 'zed' }] });
    await until(h, phaseIs('v2', 'Retired'), 'retired');
  });

  test('abort during the deprecation window removes the headers and serves again; abort at the gate too', async () => {
    const h = await twoServing('abort');
    const now = await env.currentTimeMs();
    await h.executeUpdate(retireVersionUpdate, { args: [{ version: 'v1', sunset: new Date(now + 14 * DAY).toISOString(), by: 'carol' }] });
    await until(h, (s) => versionOf(s, 'v1')?.retirement?.headers === 'set', 'headers set');
    await h.executeUpdate(abortRetirementUpdate, { args: [{ version: 'v1', by: 'dave', reason: 'a big client is still on v1' }] });
    const back = await until(h, phaseIs('v1', 'Serving'), 'serving again');
    assert.equal(versionOf(back, 'v1')?.retirement, undefined);
    assert.match(versionOf(back, 'v1')?.message ?? '', /retirement aborted by dave/);
    const clear = (calls.get(h.workflowId) ?? []).find((c) => c.name === 'clearDeprecationHeaders');
    const set = (calls.get(h.workflowId) ?? []).find((c) => c.name === 'setDeprecationHeaders');
    assert.deepEqual(clear?.args[1], set?.args[1], 'exactly the headers set are removed');

    // Retire again; abort at the approval gate by signal (the Temporal CLI's way).
    const now2 = await env.currentTimeMs();
    await h.executeUpdate(retireVersionUpdate, { args: [{ version: 'v1', sunset: new Date(now2 + DAY).toISOString(), by: 'carol' }] });
    await env.sleep('25h');
    await until(h, phaseIs('v1', 'AwaitingRetirementApproval'), 'awaiting');
    await h.signal(abortRetirementSignal, { version: 'v1', by: 'dave' });
    await until(h, phaseIs('v1', 'Serving'), 'serving again');
    assert.deepEqual(trace(h).slice(3), ['setDeprecationHeaders(v1)', 'clearDeprecationHeaders(v1)', 'setDeprecationHeaders(v1)', 'clearDeprecationHeaders(v1)']);
    assert.ok(!trace(h).includes('removeVersionRoute(v1)'));
    await recordHistory(h, 'api-abort-retirement');
  });

  test('Ingress: headers unsupported is recorded and the flow continues', async () => {
    const ingress = { kind: 'ingress' as const, pathPrefix: '/v2', name: 'ing' };
    const h = await twoServing('ing', {}, { route: ingress });
    const now = await env.currentTimeMs();
    await h.executeUpdate(retireVersionUpdate, { args: [{ version: 'v2', sunset: new Date(now + 7 * DAY).toISOString(), by: 'carol' }] });
    const s = await until(h, (x) => versionOf(x, 'v2')?.retirement?.headers === 'unsupported', 'headers unsupported');
    assert.match(versionOf(s, 'v2')?.retirement?.headersNote ?? '', /Ingress cannot set response headers/);
    assert.match(s.audit.at(-1)?.detail ?? '', /v2: not set \(Ingress cannot/);
    await env.sleep('8d');
    await until(h, phaseIs('v2', 'AwaitingRetirementApproval'), 'awaiting');
    await h.executeUpdate(approveRetirementUpdate, { args: [{ version: 'v2', by: 'alice' }] });
    await until(h, phaseIs('v2', 'Retired'), 'retired');
  });
});

describe('proven identity for retirement approvals', () => {
  const signer = new AssertionSigner(generateKeyPairSync('ed25519').privateKey, 120);
  const forger = generateKeyPairSync('ed25519').privateKey;
  const ALICE = 'system:serviceaccount:tests:alice';
  const BOB = 'system:serviceaccount:tests:bob';
  const CAROL = 'system:serviceaccount:tests:carol';

  /** A proof from the pinned identity server key, issued at the test server's time (it skips ahead). */
  const prove = async (h: WorkflowHandle, sub: string, action: IdentityAction, version?: string): Promise<string> =>
    signer.sign({ sub, action, releaseId: h.workflowId, namespace: NS, ...(version ? { version } : {}) }, await env.currentTimeMs()).assertion;

  /** v1 (approvers alice, bob and carol) and v2 serving under `mode`; v1's retirement, requested by carol, awaits approval. */
  async function awaitingApproval(api: string, mode: IdentityPolicy['mode']): Promise<WorkflowHandle> {
    const h = await startApi(api, { policy: { mode, publicKeys: [signer.publicKeyPem] } });
    await h.executeUpdate(introduceVersionUpdate, { args: [{ plan: existingV1(api, { approvers: [ALICE, BOB, CAROL] }), by: 'ci-bot' }] });
    await h.executeUpdate(introduceVersionUpdate, { args: [{ plan: plan(api, 'v2'), by: 'ci-bot' }] });
    await until(h, (s) => s.versions.length === 2 && s.versions.every((v) => v.phase === 'Serving'), 'v1 and v2 serving');
    await h.executeUpdate(retireVersionUpdate, { args: [{ version: 'v1', sunset: new Date((await env.currentTimeMs()) + DAY).toISOString(), by: CAROL }] });
    await env.sleep('25h');
    await until(h, phaseIs('v1', 'AwaitingRetirementApproval'), 'awaiting approval');
    return h;
  }

  const approve = (h: WorkflowHandle, input: Partial<VersionActionInput>) => h.executeUpdate(approveRetirementUpdate, { args: [{ version: 'v1', ...input } as VersionActionInput] });

  test('identity required: a claimed approver is refused, so are forged and misbound proofs; the proven approver counts; signals refused unread, as unauthenticated', async () => {
    const h = await awaitingApproval('idreq', 'required');
    // Anyone who can send updates claims to be bob: without a proof, refused.
    assert.equal(await rejected(approve(h, { by: BOB })), 'approve-retirement: this API requires a proof of identity (glidepath api approve-retirement with --token-file or $GLIDEPATH_IDENTITY_URL)');
    await h.signal(approveRetirementSignal, { version: 'v1', by: BOB, reason: 'trust me' });
    // The requester's own proof: proven, and the four-eyes rule judges the proven name.
    assert.equal(await rejected(approve(h, { proof: await prove(h, CAROL, 'approve-retirement', 'v1') })), `${CAROL} requested this retirement and cannot approve it (four-eyes rule)`);
    // Bob's proof signed with another key; bob's proof for v2, for a release approval, with another claimed name.
    const bobs = await prove(h, BOB, 'approve-retirement', 'v1');
    const forged = signClaims(JSON.parse(Buffer.from(bobs.split('.')[1]!, 'base64url').toString()) as ActionClaims, forger);
    assert.equal(await rejected(approve(h, { by: BOB, proof: forged })), 'approve-retirement: proof signature does not verify with the identity server key');
    assert.equal(await rejected(approve(h, { proof: await prove(h, BOB, 'approve-retirement', 'v2') })), 'approve-retirement: proof is for version v2, not v1');
    assert.equal(await rejected(approve(h, { proof: await prove(h, BOB, 'approve') })), 'approve-retirement: proof is for approve, not approve-retirement');
    await h.signal(approveRetirementSignal, { version: 'v1', proof: await prove(h, BOB, 'approve-retirement', 'v2') } as VersionActionInput);
    assert.equal(await rejected(approve(h, { by: ALICE, proof: bobs })), `approve-retirement: "by" is ${ALICE}, but the proof is for ${BOB}`);
    assert.equal(versionOf(await h.query(apiStatusQuery), 'v1')?.phase, 'AwaitingRetirementApproval', 'nothing above approved');

    const approved = await approve(h, { proof: bobs, reason: 'clients migrated' });
    assert.equal(versionOf(approved, 'v1')?.retirement?.approvedBy?.by, BOB);
    assert.equal(await rejected(approve(h, { proof: bobs })), 'approve-retirement: proof has already been used');
    const retired = await until(h, phaseIs('v1', 'Retired'), 'retired');
    assert.deepEqual(
      retired.audit.filter((a) => a.action === 'approve-retirement').map((a) => [a.by, a.accepted, a.detail?.replace(/:.*/, '')]),
      [
        ['unauthenticated', false, 'ignored'],
        ['unauthenticated', false, 'ignored'], // a signal's proof is not read, even one whose signature would verify
        [BOB, true, 'v1'],
      ],
    );
    const refusedSignals = retired.audit.filter((a) => a.action === 'approve-retirement' && !a.accepted).map((a) => a.detail);
    assert.deepEqual(refusedSignals, Array(2).fill(`ignored: ${signalRefusal('approve-retirement')}`));
    await recordHistory(h, 'api-identity-required');
  });

  test('identity optional: a plain approval still counts, audited as unproven; a refused plain one is audited as unauthenticated; a proven abort counts as its subject', async () => {
    const h = await awaitingApproval('idopt', 'optional');
    await h.signal(approveRetirementSignal, { version: 'v1', by: 'mallory' });
    assert.equal(await rejected(approve(h, { by: ALICE, proof: await prove(h, BOB, 'approve-retirement', 'v1') })), `approve-retirement: "by" is ${ALICE}, but the proof is for ${BOB}`);
    const aborted = await h.executeUpdate(abortRetirementUpdate, { args: [{ version: 'v1', by: 'ignored-when-proven', proof: await prove(h, ALICE, 'abort-retirement', 'v1') }] }).catch(causeOf);
    assert.equal(aborted, `abort-retirement: "by" is ignored-when-proven, but the proof is for ${ALICE}`);
    await approve(h, { by: BOB });
    const retired = await until(h, phaseIs('v1', 'Retired'), 'retired');
    const entries = retired.audit.filter((a) => a.action === 'approve-retirement').map((a) => [a.by, a.accepted, a.detail?.replace(/: .*/, '')]);
    assert.deepEqual(entries, [
      ['unauthenticated', false, 'ignored'],
      [BOB, true, 'v1 (unproven identity)'],
    ]);
    assert.equal(versionOf(retired, 'v1')?.retirement?.approvedBy?.by, BOB);

    // A second retirement (v2 would be the last serving version: introduce v3 first), aborted with a proof.
    await h.executeUpdate(introduceVersionUpdate, { args: [{ plan: plan('idopt', 'v3'), by: 'ci-bot' }] });
    await until(h, phaseIs('v3', 'Serving'), 'v3 serving');
    await h.executeUpdate(retireVersionUpdate, { args: [{ version: 'v2', sunset: new Date((await env.currentTimeMs()) + DAY).toISOString(), by: CAROL }] });
    const back = await h.executeUpdate(abortRetirementUpdate, { args: [{ version: 'v2', proof: await prove(h, ALICE, 'abort-retirement', 'v2'), reason: 'clients still on v2' } as VersionActionInput] });
    assert.equal(versionOf(back, 'v2')?.retirement?.abortedBy?.by, ALICE);
    await until(h, phaseIs('v2', 'Serving'), 'v2 serving again');
  });
});

describe('failures and continue-as-new', () => {
  test('a workflow ID other than api-<namespace>-<api> fails at once', async () => {
    const h = await env.client.workflow.start('apiVersions', { taskQueue, workflowId: 'api-tests-misnamed', args: [{ namespace: NS, api: 'orders' }] });
    await assert.rejects(h.result(), (err: Error) => {
      assert.match(causeOf(err), /workflow ID must be api-tests-orders \(one workflow per API\), got api-tests-misnamed/);
      return true;
    });
  });

  test('a non-retryable activity failure marks the version Failed; it can be introduced again', async () => {
    let fail = true;
    const h = await twoServing('fail', {
      stubs: {
        deployVersion: async (p) => {
          if (fail && p.version === 'v3') throw ApplicationFailure.nonRetryable('Deployment tests/fail-v1 (templateFrom) not found', 'NotFound');
          return { replicas: 2 };
        },
      },
    });
    await h.executeUpdate(introduceVersionUpdate, { args: [{ plan: plan('fail', 'v3'), by: 'ci-bot' }] });
    const failed = await until(h, phaseIs('v3', 'Failed'), 'failed');
    assert.match(versionOf(failed, 'v3')?.message ?? '', /Introducing: deployVersion: NotFound: Deployment tests\/fail-v1 \(templateFrom\) not found/);
    assert.equal(failed.phase, 'Failed');
    fail = false;
    await h.executeUpdate(introduceVersionUpdate, { args: [{ plan: plan('fail', 'v3'), by: 'ci-bot' }] });
    await until(h, phaseIs('v3', 'Serving'), 'serving');
    assert.equal((await h.query(apiStatusQuery)).versions.length, 3);
  });

  test('continue-as-new carries every version, the audit and a running sunset timer', async () => {
    const h = await twoServing('can', { historyLimit: 60 });
    const firstRun = (await h.describe()).runId;
    /**
     * The workflow continues as new in the activation that makes it idle with a full history. On the
     * Java test server a query or update that reaches the run while it closes is never answered, and
     * can leave time skipping locked. So the test reads history (no worker involved) until the run is
     * idle (no workflow task or activity outstanding) or has been continued, and only then queries.
     */
    const quiet = async (): Promise<boolean> => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const d = await h.describe();
        if (d.runId !== firstRun) return true;
        const events = (await h.fetchHistory()).events ?? [];
        const count = (has: (e: (typeof events)[number]) => unknown) => events.filter((e) => has(e)).length;
        const activitiesOpen =
          count((e) => e.activityTaskScheduledEventAttributes) -
          count((e) => e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? e.activityTaskCanceledEventAttributes);
        const tasksOpen = count((e) => e.workflowTaskScheduledEventAttributes) - count((e) => e.workflowTaskCompletedEventAttributes ?? e.workflowTaskFailedEventAttributes ?? e.workflowTaskTimedOutEventAttributes);
        if (activitiesOpen === 0 && tasksOpen === 0) return false;
        assert.ok(Date.now() < deadline, `the run did not settle: ${activitiesOpen} activities and ${tasksOpen} workflow tasks open`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const now = await env.currentTimeMs();
    await h.executeUpdate(retireVersionUpdate, { args: [{ version: 'v1', sunset: new Date(now + 10 * DAY).toISOString(), by: 'carol' }] });
    let continued = await quiet();
    if (!continued) await until(h, (s) => versionOf(s, 'v1')?.retirement?.headers === 'set', 'headers set');
    // More versions until history passes the limit.
    const introduced = ['v1', 'v2'];
    for (let i = 3; !continued; i++) {
      assert.ok(i <= 12, 'history reached the limit within 10 more versions');
      await h.executeUpdate(introduceVersionUpdate, { args: [{ plan: plan('can', `v${i}`), by: 'ci-bot' }] });
      introduced.push(`v${i}`);
      continued = await quiet();
      if (!continued) await until(h, phaseIs(`v${i}`, 'Serving'), `v${i} serving`);
    }
    const s = await until(h, (x) => x.continuedAsNew >= 1, 'continued as new');
    assert.notEqual((await h.describe()).runId, firstRun, 'a new run');
    assert.deepEqual(s.versions.map((v) => `${v.version}:${v.phase}`), introduced.map((v) => `${v}:${v === 'v1' ? 'Deprecated' : 'Serving'}`));
    assert.ok(s.audit.some((a) => a.action === 'retire' && a.by === 'carol'), 'audit carried');
    assert.equal(s.audit.filter((a) => a.action === 'continue-as-new').length, s.continuedAsNew);
    // The sunset timer resumes in the new run from the recorded instant.
    await env.sleep('11d');
    await until(h, phaseIs('v1', 'AwaitingRetirementApproval'), 'awaiting after continue-as-new');
    await h.executeUpdate(approveRetirementUpdate, { args: [{ version: 'v1', by: 'alice' }] });
    await until(h, phaseIs('v1', 'Retired'), 'retired');
    assert.equal(trace(h).filter((c) => c === 'setDeprecationHeaders(v1)').length, 1, 'headers are not set again after continue-as-new');
  });
});
