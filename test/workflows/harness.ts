/**
 * Time-skipping harness for the release workflow: one worker per test file on its own task queue,
 * the Java test server shared by the files of one process (test/support/time-skipping.ts), the
 * workflow bundle built once and cached, activities stubbed per workflow (Temporal's convention for workflow tests), every call
 * recorded in order. Histories can be recorded for the replay test (RECORD_HISTORIES=1).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import proto from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundlePath } from '@temporalio/worker';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { batchReplicas, isNodeWave } from '../../model/rolling.ts';
import type { ReleaseActivities } from '../../activities/index.ts';
import { createFreezeActivities } from '../../activities/freeze.ts';
import type { IdentityPolicy } from '../../model/identity.ts';
import { startProblems } from '../../model/plan.ts';
import { statusQuery, type ReleaseResult, type ReleaseStatus } from '../../workflows/messages.ts';
import type { release } from '../../workflows/release.ts';
import { releaseWorkflowId, type AnalysisRunSpec, type CanaryStep, type Measurement, type MetricSpec, type ReleasePlan, type Strategy } from '../../model/types.ts';
import { untilQuery } from '../support/poll.ts';
import { holdSharedTimeSkippingEnv, releaseSharedTimeSkippingEnv } from '../support/time-skipping.ts';
import { cachedWorkflowBundle } from '../support/workflow-bundle.ts';
import { registerSearchAttributes } from '../../workers/search-attributes.ts';
import { ACTIVATION_LIMITS } from '../../workers/config.ts';
import { WORKFLOW_TASK_TIMEOUT } from '../../workflows/start-options.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const HISTORY_DIR = path.join(root, 'test/replay/histories');

export interface Call {
  name: keyof ReleaseActivities;
  args: unknown[];
}

type Overrides = Partial<{ [K in keyof ReleaseActivities]: (...args: Parameters<NonNullable<ReleaseActivities[K]>>) => ReturnType<NonNullable<ReleaseActivities[K]>> }>;

export const STABLE_IMAGE = 'registry.local/app:v1';
export const NEW_IMAGE = 'registry.local/app:v2';

function okMeasurements(n: number): Measurement[] {
  return Array.from({ length: n }, () => measurement('Successful', [0.999]));
}

/** Default behaviour: everything succeeds; analyses return `count` successful measurements. */
export function succeedingActivities(): ReleaseActivities {
  return {
    validatePlan: async (plan, initiator) => startProblems(plan, initiator),
    routeToStable: async () => {},
    routeWeight: async () => {},
    removeCanary: async () => {},
    preflight: async () => ({ stableImage: STABLE_IMAGE, replicas: 4, warnings: [] }),
    ensureCanary: async () => {},
    setWeight: async (_t, weight) => ({ canaryReplicas: Math.ceil((4 * weight) / 100) }),
    setCanaryScale: async () => ({ canaryReplicas: 1 }),
    setHeaderRoute: async () => {},
    setMirrorRoute: async () => {},
    promoteCanary: async () => {},
    abortCanary: async () => {},
    deployPreview: async () => {},
    switchActive: async () => {},
    finalizeBlueGreen: async () => {},
    abortBlueGreen: async () => {},
    beginRolling: async () => ({ replicas: 5 }),
    rollBatch: async (_t, step) => ({ updated: isNodeWave(step) ? 5 : batchReplicas(step, 5), replicas: 5 }),
    completeRolling: async () => ({ updated: 5, replicas: 5 }),
    abortRolling: async () => {},
    runAnalysis: async (_t, run) => ({ metrics: run.metrics.map((m) => ({ name: m.name, measurements: okMeasurements(m.count ?? 1) })), terminated: false }),
    startExperiment: async (_t, _step, templates) =>
      templates.map((t) => ({
        name: t.name,
        workload: `app-exp-${t.name}`,
        podTemplateHash: `hash-${t.name}`,
        replicaSet: `app-exp-${t.name}-hash-${t.name}`,
        ...(t.weight !== undefined || t.service !== undefined ? { service: t.service?.name ?? `app-exp-${t.name}` } : {}),
      })),
    routeExperiment: async () => {},
    removeExperiment: async () => ({ removed: [] }),
    prepareConfig: async (_t, refs) => ({ copies: refs.map((r) => ({ ...r, copy: `${r.name}-0123456789`, stable: r.name })) }),
    collectConfig: async () => ({ deleted: [] }),
  };
}

/**
 * Stub activities for a test worker: each call is recorded under its workflow ID (`entry` makes the
 * record), then runs that workflow's override, or `base`.
 */
export function recordingActivities<A extends object, E>(
  base: A,
  overrides: { get(workflowId: string): Partial<Record<keyof A, unknown>> | undefined },
  calls: Map<string, E[]>,
  entry: (name: keyof A, args: unknown[]) => E,
): Record<string, (...args: unknown[]) => Promise<unknown>> {
  return Object.fromEntries(
    (Object.keys(base) as (keyof A & string)[]).map((name) => [
      name,
      async (...args: unknown[]) => {
        const id = Context.current().info.workflowExecution?.workflowId ?? '';
        const list = calls.get(id) ?? [];
        list.push(entry(name, args));
        calls.set(id, list);
        const impl = (overrides.get(id)?.[name] ?? base[name]) as (...a: unknown[]) => Promise<unknown>;
        return impl(...args);
      },
    ]),
  );
}

export class Harness {
  readonly calls = new Map<string, Call[]>();
  readonly overrides = new Map<string, Overrides>();
  /** The worker's identity policy per release (none: claimed identity). */
  readonly identityPolicies = new Map<string, IdentityPolicy>();
  private static count = 0;
  /** Its own queue: the harnesses of one process share a server (holdSharedTimeSkippingEnv). */
  readonly taskQueue = `release-tests-${++Harness.count}`;
  env!: TestWorkflowEnvironment;
  worker!: Worker;
  private running!: Promise<void>;
  private static bundle: Promise<WorkflowBundlePath> | undefined;
  /** Activities beyond the release's own (not traced), e.g. notification delivery. */
  private readonly extraActivities: Record<string, (...args: never[]) => Promise<unknown>>;

  constructor(extraActivities: Record<string, (...args: never[]) => Promise<unknown>> = {}) {
    this.extraActivities = extraActivities;
  }

  /** The workflow code, bundled once and cached on disk across files and runs (test/support/workflow-bundle.ts). */
  static workflowBundle(): Promise<WorkflowBundlePath> {
    Harness.bundle ??= cachedWorkflowBundle();
    return Harness.bundle;
  }

  async start(): Promise<void> {
    const [env, workflowBundle] = await Promise.all([holdSharedTimeSkippingEnv(), Harness.workflowBundle()]);
    this.env = env;
    await registerSearchAttributes(env.connection, env.namespace ?? 'default');
    const base = succeedingActivities();
    // The start-time validation (a local activity) is real and not traced: traces show what touches the cluster.
    const activities = {
      ...recordingActivities(base, this.overrides, this.calls, (name, args) => ({ name, args })),
      validatePlan: base.validatePlan,
      identityPolicy: async () => this.identityPolicies.get(Context.current().info.workflowExecution?.workflowId ?? '') ?? null,
      ...createFreezeActivities(undefined), // the worker's freeze policy: none (a test may pass its own in extraActivities)
      driftFollowPromotion: async () => ({ skipped: 'no drift watches in these tests' }), // the worker's setting off (test/drift/promotion.test.ts runs the real one)
      ...this.extraActivities,
    };
    this.worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: this.taskQueue,
      workflowBundle,
      activities,
      ...ACTIVATION_LIMITS, // as the worker (workers/main.ts)
      shutdownGraceTime: '2s',
      shutdownForceTime: '5s', // a test that failed midway may leave a stub blocked; never hang the file
      // Cancellation reaches a heartbeating activity on its next heartbeat; keep that prompt in tests.
      maxHeartbeatThrottleInterval: '100ms',
      defaultHeartbeatThrottleInterval: '100ms',
    });
    this.running = this.worker.run();
  }

  async stop(): Promise<void> {
    this.worker?.shutdown();
    await this.running;
    if (this.env) await releaseSharedTimeSkippingEnv();
  }

  /** Starts a release of `plan`, with activity overrides for this release only. */
  async begin(plan: ReleasePlan, overrides: Overrides = {}, initiator = 'ci-bot'): Promise<WorkflowHandle<typeof release>> {
    const workflowId = releaseWorkflowId(plan);
    this.overrides.set(workflowId, overrides);
    this.calls.set(workflowId, []);
    return this.env.client.workflow.start('release', {
      taskQueue: this.taskQueue,
      workflowId,
      args: [{ plan, initiator }],
      workflowIdConflictPolicy: 'FAIL',
      workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT, // as the CLI starts releases (starters/release.ts)
    }) as Promise<WorkflowHandle<typeof release>>;
  }

  callsOf(plan: ReleasePlan): Call[] {
    return this.calls.get(releaseWorkflowId(plan)) ?? [];
  }

  /** Names of the calls, with the weight or target where the call has one: `setWeight(10)`. */
  trace(plan: ReleasePlan): string[] {
    return this.callsOf(plan).map((c) => {
      const arg = c.args[1];
      return c.name === 'setWeight' || c.name === 'switchActive' ? `${c.name}(${String(arg)})` : c.name;
    });
  }
}

/**
 * The release's result whichever way its workflow ended: Promoted completes; RolledBack, Aborted
 * and Failed fail with the outcome as the failure's type and the result in its details.
 */
export async function releaseResult(handle: WorkflowHandle): Promise<ReleaseResult> {
  try {
    return (await handle.result()) as ReleaseResult;
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && ['RolledBack', 'Aborted', 'Failed'].includes(cause.type ?? '')) {
      const result = cause.details?.[0] as ReleaseResult;
      if (result?.outcome !== cause.type) throw new Error(`failure type ${cause.type} but details hold ${JSON.stringify(result)}`, { cause: err });
      return result;
    }
    throw err;
  }
}

/** The message of a rejected update's cause (the validator's error). */
export function causeOf(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? cause.message : String(cause);
}

/** Polls the status query (real time; time skipping is locked meanwhile) until `pred` holds. */
export async function waitForStatus(handle: WorkflowHandle, pred: (s: ReleaseStatus) => boolean, what: string, timeoutMs = 15_000): Promise<ReleaseStatus> {
  return untilQuery(handle, statusQuery, pred, what, { timeoutMs, intervalMs: 50, show: (last) => `last status ${JSON.stringify(last && { phase: last.phase, step: last.step, message: last.message })}` });
}

/**
 * Saves the history as `<workflowId>.binpb` (replay needs the workflow ID the history ran under), in
 * HISTORY_DIR or RECORD_HISTORIES_DIR (e.g. test/replay/patches-first, whose files would otherwise
 * replace older versions' histories of the same scenarios).
 */
export async function recordHistory(handle: WorkflowHandle, _scenario: string): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1') return;
  const history = await handle.fetchHistory();
  const dir = process.env.RECORD_HISTORIES_DIR ? path.resolve(process.env.RECORD_HISTORIES_DIR) : HISTORY_DIR;
  await mkdir(dir, { recursive: true });
  // Binary protobuf: exact, and independent of which protobufjs copy produced the object.
  await writeFile(path.join(dir, `${handle.workflowId}.binpb`), proto.temporal.api.history.v1.History.encode(history).finish());
}

// ---- plan builders ---------------------------------------------------------------------------------

export function metric(name: string, extra: Partial<MetricSpec> = {}): MetricSpec {
  return {
    name,
    count: 3,
    intervalMs: 60_000,
    successCondition: 'result[0] >= 0.99',
    failureLimit: 0,
    inconclusiveLimit: 0,
    consecutiveErrorLimit: 4,
    dryRun: false,
    provider: { prometheus: { address: 'http://127.0.0.1:9090', query: 'up' } },
    ...extra,
  };
}

export function analysis(name: string, metrics: MetricSpec[] = [metric('success-rate')]): AnalysisRunSpec {
  return { name, templates: [name], args: {}, metrics };
}

export function plan(name: string, strategy: Strategy, extra: Partial<ReleasePlan> = {}): ReleasePlan {
  return {
    name,
    namespace: 'tests',
    workload: { kind: 'Deployment', name },
    image: NEW_IMAGE,
    progressDeadlineSeconds: 600,
    retryWindowSeconds: 3600,
    policy: {},
    strategy,
    ...extra,
  };
}

export function canary(name: string, steps: CanaryStep[], extra: Partial<ReleasePlan> & { background?: { analysis: AnalysisRunSpec; startingStep: number } } = {}): ReleasePlan {
  const { background, ...rest } = extra;
  return plan(name, { type: 'canary', steps, ...(background ? { background } : {}) }, rest);
}

export function measurement(phase: Measurement['phase'], value: unknown, message?: string): Measurement {
  return { phase, value, ...(message ? { message } : {}), startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:00:01.000Z' };
}
