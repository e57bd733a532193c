/**
 * No action is ever lost: 200 canary releases in flight on the real Temporal dev server, the real
 * workflow code (the production bundle's preload), fast stub activities, and promote and abort fired
 * at random moments (seeded: ACTIONS_SEED, printed) through the path `glidepath release promote|abort`
 * takes (starters/release.ts): an update, and on a refusal the refusedUpdate signal. Then, per
 * release, every action must have been acted on — its accepted entry in the audit trail and its
 * effect in the state — or rejected with a reason (counted in the release's status); nothing dropped.
 *
 * The canary's pauses are indefinite, so a pause ends only by an accepted promote (or abort): an
 * accepted promote whose pause did not end is a lost action.
 * Env: TEMPORAL_ADDRESS (the dev server; scripts/test.sh starts it), ACTIONS_SEED, ACTIONS_RELEASES.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, Connection, WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { releaseWorkflowId, type CanaryStep } from '../../model/types.ts';
import { createFreezeActivities } from '../../activities/freeze.ts';
import { ACTIVATION_LIMITS } from '../../workers/config.ts';
import { WORKFLOW_TASK_TIMEOUT } from '../../workflows/start-options.ts';
import { registerSearchAttributes } from '../../workers/search-attributes.ts';
import { UPDATES, refusedUpdateSignal, statusQuery, type ActionInput, type ReleaseResult, type ReleaseStatus } from '../../workflows/messages.ts';
import { executeActionUpdate } from '../../starters/action-update.ts';
import { seededRandom } from '../support/fault-proxy.ts';
import { cachedWorkflowBundle } from '../support/workflow-bundle.ts';
import { plan as releasePlan, releaseResult, succeedingActivities } from '../workflows/harness.ts';

const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const RELEASES = Number(process.env.ACTIONS_RELEASES ?? '200');
const SEED = Number(process.env.ACTIONS_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Actions land within this long after a release starts. */
const WINDOW_MS = 6_000;
const STUB_MS = 25;
const suffix = `${SEED.toString(36)}-${Date.now().toString(36)}`;
const taskQueue = `actions-${suffix}`;
const namespace = `act-${suffix}`.slice(0, 63).replace(/[^a-z0-9-]/g, '-');


const STEPS: CanaryStep[] = [{ kind: 'setWeight', weight: 25 }, { kind: 'pause' }, { kind: 'setWeight', weight: 50 }, { kind: 'pause' }, { kind: 'setWeight', weight: 100 }];
const PAUSES = STEPS.filter((s) => s.kind === 'pause').length;

type Kind = 'promote' | 'promote --full' | 'abort';
interface Sent {
  release: number;
  kind: Kind;
  by: string;
  atMs: number;
  outcome?: { accepted: ReleaseStatus } | { rejected: string; reported: boolean } | { notInFlight: string } | { error: string };
}

let client: Client;
let worker: Worker;
let running: Promise<void>;

before(async () => {
  try {
    client = new Client({ connection: await Connection.connect({ address, connectTimeout: '5s' }) });
  } catch (err) {
    throw new Error(`the Temporal dev server is not reachable at ${address} (TEMPORAL_ADDRESS): ${(err as Error).message}`, { cause: err });
  }
  await registerSearchAttributes(client.connection, 'default');
  const wait = () => new Promise<void>((resolve) => setTimeout(resolve, STUB_MS));
  const base = succeedingActivities();
  const slowed = Object.fromEntries(Object.entries(base).map(([name, fn]) => [name, name === 'validatePlan' ? fn : async (...args: unknown[]) => (await wait(), (fn as (...a: unknown[]) => unknown)(...args))]));
  worker = await Worker.create({
    connection: await NativeConnection.connect({ address }),
    taskQueue,
    workflowBundle: await cachedWorkflowBundle(),
    activities: { ...slowed, identityPolicy: async () => null, ...createFreezeActivities(undefined) },
    ...ACTIVATION_LIMITS,
    shutdownGraceTime: '2s',
    shutdownForceTime: '5s',
  });
  running = worker.run();
});

after(async () => {
  worker?.shutdown();
  await running;
  await client?.connection.close();
});

/** As `glidepath release <action>` sends it (starters/release.ts): the update until it has an answer; on a refusal, the refusedUpdate signal, and the reason shown. */
async function send(handle: WorkflowHandle, s: Sent): Promise<void> {
  const action = s.kind === 'abort' ? 'abort' : 'promote';
  const input: ActionInput = { by: s.by, reason: `load test ${s.by}`, ...(s.kind === 'promote --full' ? { full: true } : {}) };
  try {
    s.outcome = { accepted: await executeActionUpdate(handle, UPDATES[action], input) };
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const why = err.cause instanceof Error ? err.cause.message : String(err.cause);
      const reported = await handle.signal(refusedUpdateSignal, { action, by: input.by, reason: input.reason, why }).then(() => true, () => false);
      s.outcome = { rejected: why, reported };
    } else if (err instanceof WorkflowNotFoundError) {
      s.outcome = { notInFlight: err.message }; // the CLI: "no release <id> in flight"
    } else {
      const cause = (err as { cause?: { code?: number; details?: string; message?: string } }).cause;
      s.outcome = { error: `${(err as Error).message}${cause ? ` (${cause.code ?? ''} ${cause.details ?? cause.message ?? ''})` : ''}` };
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test(`promote and abort at random moments across ${RELEASES} releases in flight: every action acted on or rejected with a reason`, async () => {
  console.log(`ACTIONS_SEED=${SEED} (run again with this seed to repeat the schedule)`);
  const random = seededRandom(SEED);
  // No scale-down delay after an abort and a 1 s retry window: an aborted release ends at once.
  const plans = Array.from({ length: RELEASES }, (_, i) => releasePlan(`app-${i}`, { type: 'canary', steps: STEPS, abortScaleDownDelaySeconds: 0 }, { namespace, retryWindowSeconds: 1 }));
  const sent: Sent[] = [];
  for (let i = 0; i < RELEASES; i++) {
    const n = 1 + Math.floor(random() * 3);
    for (let k = 0; k < n; k++) {
      const x = random();
      const kind: Kind = x < 0.6 ? 'promote' : x < 0.7 ? 'promote --full' : 'abort';
      sent.push({ release: i, kind, by: `u${i}-${k}`, atMs: Math.floor(random() * WINDOW_MS) });
    }
  }
  const t0 = performance.now();
  const handles: WorkflowHandle[] = [];
  for (let i = 0; i < RELEASES; i += 20) {
    handles.push(
      ...(await Promise.all(
        plans.slice(i, i + 20).map((plan) => client.workflow.start('release', { taskQueue, workflowId: releaseWorkflowId(plan), args: [{ plan, initiator: 'ci-bot' }], workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT })),
      )),
    );
  }
  const started = performance.now();
  // Each action at its moment after its release started (the releases started within `started - t0`).
  await Promise.all(sent.map(async (s) => {
    await sleep(s.atMs);
    await send(handles[s.release] as WorkflowHandle, s);
  }));
  const acted = performance.now();
  // Then each release still in flight is ended by one more abort (counted like the others).
  const closers: Sent[] = [];
  await Promise.all(handles.map(async (h, i) => {
    const d = await h.describe();
    if (d.status.name !== 'RUNNING') return;
    const s: Sent = { release: i, kind: 'abort', by: `close${i}`, atMs: WINDOW_MS };
    closers.push(s);
    await send(h, s);
  }));
  const closed = performance.now();
  const results = await Promise.all(handles.map((h) => releaseResult(h).catch((err: Error) => ({ outcome: `unfinished: ${err.message}` }) as unknown as ReleaseResult)));
  const ended = performance.now();
  const finals: ReleaseStatus[] = [];
  for (let i = 0; i < handles.length; i += 10) finals.push(...(await Promise.all(handles.slice(i, i + 10).map((h) => h.query(statusQuery)))));
  const all = [...sent, ...closers];
  const secs = (a: number, b: number): string => `${((b - a) / 1000).toFixed(1)} s`;
  console.log(`${RELEASES} releases started in ${secs(t0, started)}; ${sent.length} actions at random in ${secs(started, acted)}, ${closers.length} closing aborts in ${secs(acted, closed)}; all ended ${secs(closed, ended)} later; final states read in ${secs(ended, performance.now())}`);

  const lost: string[] = [];
  const tally = { accepted: 0, rejected: 0, notInFlight: 0 };
  for (let i = 0; i < RELEASES; i++) {
    const mine = all.filter((s) => s.release === i);
    const final = finals[i] as ReleaseStatus;
    const result = results[i] as ReleaseResult;
    const id = releaseWorkflowId(plans[i] as (typeof plans)[number]);
    let promotesAccepted = 0;
    let fullAccepted = false;
    let abortAccepted = false;
    let rejectedReported = 0;
    for (const s of mine) {
      const o = s.outcome;
      const audited = final.audit.filter((e) => e.by === s.by && e.action === (s.kind === 'abort' ? 'abort' : 'promote'));
      if (!o) lost.push(`${id}: ${s.kind} by ${s.by} got no answer`);
      else if ('error' in o) lost.push(`${id}: ${s.kind} by ${s.by} failed without an answer (${o.error}); the release ${audited.some((e) => e.accepted) ? 'applied it all the same' : 'never applied it'}`);
      else if ('notInFlight' in o) {
        tally.notInFlight++;
        if (audited.length > 0) lost.push(`${id}: ${s.kind} by ${s.by} was told the release is not in flight, but the audit has it`);
      } else if ('rejected' in o) {
        tally.rejected++;
        if (o.rejected.trim() === '') lost.push(`${id}: ${s.kind} by ${s.by} rejected without a reason`);
        if (audited.some((e) => e.accepted)) lost.push(`${id}: ${s.kind} by ${s.by} was rejected, but the audit shows it accepted`);
        if (o.reported) rejectedReported++;
      } else {
        tally.accepted++;
        if (audited.length !== 1 || !audited[0]?.accepted) {
          lost.push(`${id}: ${s.kind} by ${s.by} was accepted, but the audit holds ${JSON.stringify(audited)}`);
        }
        if (s.kind === 'abort') abortAccepted = true;
        else if (s.kind === 'promote --full') fullAccepted = true;
        else {
          promotesAccepted++;
          // The reply is the state after the action: an accepted promote has ended its pause.
          if (o.accepted.phase === 'Paused') lost.push(`${id}: promote by ${s.by} was accepted, yet the release is still Paused at step ${o.accepted.step.index + 1}`);
        }
      }
    }
    const rejectedCounted = (final.rejectedSignals?.byAction.promote ?? 0) + (final.rejectedSignals?.byAction.abort ?? 0);
    if (rejectedCounted !== rejectedReported) lost.push(`${id}: ${rejectedReported} refusals reported to the release, its status counts ${rejectedCounted}`);
    // The effects, from the outcome: an accepted abort aborts; the pauses passed are the promotes accepted.
    if (abortAccepted && result.outcome !== 'Aborted') lost.push(`${id}: an abort was accepted, yet the release ended ${result.outcome}`);
    if (!abortAccepted && result.outcome !== 'Promoted') lost.push(`${id}: no abort was accepted, yet the release ended ${result.outcome}`);
    if (result.outcome === 'Promoted' && !fullAccepted && promotesAccepted !== PAUSES) lost.push(`${id}: promoted through ${PAUSES} indefinite pauses with ${promotesAccepted} promotes accepted`);
    if (promotesAccepted > PAUSES) lost.push(`${id}: ${promotesAccepted} promotes accepted for ${PAUSES} pauses (one did not end its pause)`);
  }
  console.log(`actions: ${tally.accepted} accepted, ${tally.rejected} rejected with a reason, ${tally.notInFlight} after the release ended`);
  assert.ok(tally.accepted > RELEASES && tally.rejected > RELEASES / 4, `the schedule should exercise both answers: ${JSON.stringify(tally)}`);
  for (const line of lost.slice(0, 40)) console.log(`not accounted for: ${line}`);
  assert.deepEqual(lost.slice(0, 40), [], `ACTIONS_SEED=${SEED}: ${lost.length} actions not accounted for (the first 40 shown)`);
});
