/**
 * What `glidepath release start` does around starting the workflow: warn about versioned workload
 * names, close a finished release that still waits for a retry (--replace), explain a release
 * already in flight, and wait until the new release is past preflight so that a release that
 * cannot run fails the command with its remedy instead of exiting 0.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { formatDuration } from '../model/duration.ts';
import { SETTLED_PHASES, type Phase, type ReleasePlan } from '../model/types.ts';
import { UPDATES, statusQuery, type ReleaseStatus } from '../workflows/messages.ts';
import { CliExit, type Ctx } from './command.ts';
import { EXIT } from './output.ts';

/** Phases of a release that has an outcome but keeps its workflow open for a `retry`. */
const RETRYABLE: readonly Phase[] = ['Aborted', 'RolledBack'];

/** How long `start` waits for preflight by default; a build runs first, so it gets longer. */
export const defaultPreflightTimeoutMs = (plan: ReleasePlan): number => (plan.build ? 30 * 60_000 : 2 * 60_000);

/** Warnings about a workload whose name carries a version (`payment-gateway-v1` keeps its name when it runs v2). */
export function versionedNameWarnings(plan: ReleasePlan): string[] {
  const name = plan.workload.name;
  if (!/-v\d+$/.test(name)) return [];
  return [`Deployment ${plan.namespace}/${name} has a version in its name: after promotion it keeps the name and runs ${plan.image} (see docs/naming.md)`];
}

/** One line for a step: 1-based "step N of M", as everywhere in the CLI (the status keeps it 0-based). */
export function stepText(step: ReleaseStatus['step']): string {
  if (step.kind === '') return `not started (${step.total} steps)`;
  if (step.index >= step.total) return `${step.kind} (after step ${step.total} of ${step.total})`;
  return `step ${step.index + 1} of ${step.total} ${step.kind}`;
}

/** What to do about a release that failed before it touched anything. */
export function preflightRemedy(message: string): string | undefined {
  if (/has no readinessProbe/.test(message)) {
    return 'add a readinessProbe to the container, or accept pods that count as ready once started with `readinessProbePolicy: warn` in the Release spec (the worker-wide default is GLIDEPATH_READINESS_PROBE_POLICY); then start again';
  }
  if (/NotFound/.test(message)) return 'check spec.workloadRef, metadata.namespace and the Services the spec names; then start again';
  if (/Forbidden/.test(message)) return 'grant the worker the permissions named above (deploy/rbac.yaml); then start again';
  return undefined;
}

async function queryOnce(ctx: Ctx, id: string, deadline: number): Promise<ReleaseStatus> {
  const by = Math.min(deadline, Date.now() + 5_000);
  return ctx.client.connection.withDeadline(by, () => ctx.client.workflow.getHandle(id).query(statusQuery));
}

export type PreflightOutcome =
  | { kind: 'passed'; status: ReleaseStatus; warnings: string[] }
  | { kind: 'settled'; status: ReleaseStatus }
  | { kind: 'frozen'; status: ReleaseStatus }
  | { kind: 'timeout'; status?: ReleaseStatus | undefined; error?: string | undefined };

/**
 * Polls the status until the release is past preflight (the stable image is known), has an
 * outcome, or is held at its start by a freeze window, or `timeoutMs` passes. Query errors (no worker yet) are retried until then.
 */
export async function awaitPreflight(ctx: Ctx, id: string, timeoutMs: number): Promise<PreflightOutcome> {
  const deadline = Date.now() + timeoutMs;
  let last: ReleaseStatus | undefined;
  let error: string | undefined;
  for (;;) {
    try {
      last = await queryOnce(ctx, id, deadline);
      error = undefined;
      if (SETTLED_PHASES.includes(last.phase)) return { kind: 'settled', status: last };
      if (last.freeze?.before === 'start') return { kind: 'frozen', status: last }; // preflight runs when the window ends
      if (last.stableImage !== undefined) {
        const warnings = last.audit.filter((a) => a.action === 'preflight-warning' && a.detail).map((a) => a.detail as string);
        return { kind: 'passed', status: last, warnings };
      }
    } catch (err) {
      error = (err as Error).message;
    }
    if (Date.now() >= deadline) return { kind: 'timeout', status: last, error };
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The error for a release that settled during preflight; its exit code is the outcome's. */
export function preflightFailure(id: string, s: ReleaseStatus, exitCode: number): CliExit {
  const remedy = preflightRemedy(s.message);
  const closed = RETRYABLE.includes(s.phase) ? `\n${id} waits for a retry; close it with: glidepath release abort ${id}` : '';
  return new CliExit(exitCode, `${id} ${s.phase} before it changed anything: ${s.message}${remedy ? `\nremedy: ${remedy}` : ''}${closed}`);
}

export function preflightTimeout(id: string, timeoutMs: number, o: Extract<PreflightOutcome, { kind: 'timeout' }>): CliExit {
  const where = o.status ? `it is ${o.status.phase}: ${o.status.message}` : `no worker answered${o.error ? ` (${o.error})` : ''}; is a worker polling task queue $GLIDEPATH_TASK_QUEUE?`;
  return new CliExit(EXIT.stillRunning, `${id} started but is not past preflight after ${formatDuration(timeoutMs)}; ${where}; it goes on (follow it: glidepath release watch ${id})`);
}

/** The status of a running release with ID `id`, or undefined when none runs. */
async function runningStatus(ctx: Ctx, id: string): Promise<ReleaseStatus | undefined> {
  const handle = ctx.client.workflow.getHandle(id);
  try {
    const d = await handle.describe();
    if (d.status.name !== 'RUNNING') return undefined;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
  return queryOnce(ctx, id, Date.now() + 10_000);
}

/** The message for a start refused because `id` is running: what it is doing and how to close it. */
export async function inFlightMessage(ctx: Ctx, id: string, service: string, link: string): Promise<string> {
  const s = await runningStatus(ctx, id).catch(() => undefined);
  const head = `a release of ${service} is already in flight: ${id} (${link})`;
  if (!s) return `${head}; abort it or wait for it to finish`;
  if (RETRYABLE.includes(s.phase)) {
    return `${head} is ${s.phase} and waits for a retry until its retry window ends; close it with \`glidepath release abort ${id}\`, or start with --replace to close it and start this one`;
  }
  return `${head} is ${s.phase} (${stepText(s.step)}); abort it or wait for it to finish`;
}

/**
 * --replace: closes the release `id` when it has an outcome and only waits for a retry, and waits
 * until its workflow has ended. A release still in progress is refused, naming it.
 */
export async function closeFinished(ctx: Ctx, id: string, by: string): Promise<string | undefined> {
  const s = await runningStatus(ctx, id);
  if (!s) return undefined;
  if (!RETRYABLE.includes(s.phase)) {
    throw new CliExit(EXIT.invalid, `--replace closes only a release that has finished (Aborted or RolledBack) and waits for a retry; ${id} is ${s.phase} (${stepText(s.step)}): abort it first or wait for it to finish`);
  }
  const handle = ctx.client.workflow.getHandle(id);
  try {
    await handle.executeUpdate(UPDATES.abort, { args: [{ by, reason: 'closed by release start --replace' }] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const why = err.cause instanceof Error ? err.cause.message : String(err.cause);
      throw new CliExit(EXIT.invalid, `--replace could not close ${id}: ${why}`);
    }
    throw err;
  }
  const closed = await Promise.race([handle.result().then(() => true, () => true), new Promise<false>((r) => setTimeout(() => r(false), 30_000).unref())]);
  if (!closed) throw new CliExit(EXIT.failed, `--replace: ${id} accepted the close but has not ended after 30s`);
  return `closed ${id} (${s.phase})`;
}
