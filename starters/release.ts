/**
 * `glidepath release …`: start, status, watch, list, history, approve, promote, abort, retry, override-freeze.
 * Exit codes (README): 0 promoted / done, 1 rejected (an update's validator said no, a release is
 * already in flight), 2 invalid input or usage, 3 rolled back, 4 aborted, 5 failed, 6 still running
 * when --timeout passed (the release goes on).
 */
import { Option, type Command } from 'commander';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { SpecError } from '../model/normalize.ts';
import { describeOther } from '../model/documents.ts';
import { formatDuration } from '../model/duration.ts';
import { startProblems } from '../model/plan.ts';
import { PHASES, SETTLED_PHASES, legacyReleaseWorkflowId, releaseWorkflowId, serviceKey, type Phase, type ReleasePlan } from '../model/types.ts';
import { UPDATES, refusedUpdateSignal, statusQuery, SERVICE_ATTRIBUTE, type Action, type ReleaseStatus } from '../workflows/messages.ts';
import { executeActionUpdate } from './action-update.ts';
import { uiLink } from '../workers/config.ts';
import { WORKFLOW_TASK_TIMEOUT } from '../workflows/start-options.ts';
import { formatProblemList, loadRelease } from './spec-files.ts';
import { applyOthers } from './apply-others.ts';
import { CliExit, context, duration, identity, type Ctx } from './command.ts';
import { awaitPreflight, closeFinished, defaultPreflightTimeoutMs, inFlightMessage, preflightFailure, preflightTimeout, stepText, versionedNameWarnings } from './release-start.ts';
import { EXIT, escapeControl, print } from './output.ts';
import { actionTarget, identitySource, requestAssertion, IDENTITY_URL_ENV, TOKEN_FILE_ENV } from './identity-client.ts';


const OUTCOME_EXIT: Partial<Record<Phase, number>> = { Promoted: EXIT.ok, RolledBack: EXIT.rolledBack, Aborted: EXIT.aborted, Failed: EXIT.failed };




/**
 * A release named by workflow ID, or by its spec file (-f): the workload's ID, or the earlier
 * `release-<namespace>-<name>` form when a release started under it is still there.
 */
async function releaseId(ctx: Ctx, id: string | undefined, files: string[] | undefined): Promise<string> {
  if (id && files) throw new CliExit(EXIT.usage, 'name the release by ID or by -f FILE, not both');
  if (id) return id;
  if (!files) throw new CliExit(EXIT.usage, 'name the release: an ID (release_<namespace>_<workload>) or -f FILE');
  const { plan } = await loadSpec(files);
  const current = releaseWorkflowId(plan);
  if (await exists(ctx, current)) return current;
  const legacy = legacyReleaseWorkflowId(plan);
  return (await exists(ctx, legacy)) ? legacy : current;
}

async function exists(ctx: Ctx, id: string): Promise<boolean> {
  try {
    await ctx.client.workflow.getHandle(id).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

async function loadSpec(files: string[], image?: string) {
  try {
    return await loadRelease(files, image ? { image } : {});
  } catch (err) {
    if (err instanceof SpecError) throw new CliExit(EXIT.usage, formatProblemList(err.problems));
    throw err;
  }
}

async function isRunning(ctx: Ctx, id: string): Promise<boolean> {
  try {
    return (await ctx.client.workflow.getHandle(id).describe()).status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

async function queryStatus(ctx: Ctx, id: string): Promise<ReleaseStatus> {
  try {
    return await ctx.client.workflow.getHandle(id).query(statusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new CliExit(EXIT.usage, `no release ${id} in namespace ${ctx.settings.namespace}`);
    throw err;
  }
}

export function summary(s: ReleaseStatus): string {
  const lines = [
    `${s.releaseId}  ${s.service}  ${s.strategy}  ${s.phase}`,
    `  ${stepText(s.step)}   canary weight ${s.canaryWeight}%   attempt ${s.attempt}`,
    `  stable ${s.stableImage ?? '(unknown yet)'}   new ${s.canaryImage}`,
    `  ${s.message}`,
  ];
  if (s.approvals) {
    lines.push(`  awaiting ${s.approvals.required - s.approvals.granted.length} more approval(s) from ${(s.approvals.eligible ?? s.approvals.approvers).join(', ')}${s.approvals.deadline ? ` before ${s.approvals.deadline} (then ${s.approvals.onTimeout})` : ''}`);
  }
  if (s.rejectedSignals) lines.push(`  ${s.rejectedSignals.total} signal(s) ignored (last: ${s.rejectedSignals.last.at(-1)?.detail ?? ''})`);
  for (const r of s.managedRoutes ?? []) lines.push(`  ${r.kind} route ${r.name}: ${r.match} (step ${r.step + 1})`);
  for (const run of s.analysisRuns.slice(-3)) {
    lines.push(`  analysis ${run.name} (${run.at}) ${run.phase}${run.message ? `: ${run.message}` : ''}`);
    for (const m of run.metrics) {
      const values = m.measurements.slice(-5).map((x) => `${JSON.stringify(x.value) ?? '-'}:${x.phase}`).join(' ');
      lines.push(`    ${m.name}${m.dryRun ? ' (dry run)' : ''} ${m.phase}  ok ${m.successful} failed ${m.failed} inconclusive ${m.inconclusive} error ${m.error}  ${values}`);
    }
  }
  return lines.map(escapeControl).join('\n');
}

/** One audit entry as a line of text; what a client sent (`by`, `reason`) is escaped. */
export function historyLine(a: ReleaseStatus['audit'][number]): string {
  return escapeControl(`${a.at}  ${a.by}  ${a.action}${a.accepted ? '' : ' (rejected)'}${a.reason ? `  "${a.reason}"` : ''}${a.detail ? `  ${a.detail}` : ''}`);
}

/** The Temporal UI's summary of a release, fixed at its start: "canary of payments/web → image". */
export function releaseSummary(plan: ReleasePlan): string {
  return `${plan.strategy.type === 'blueGreen' ? 'blue/green' : 'canary'} of ${serviceKey(plan)} → ${plan.image}`;
}

/** Follows a release until it settles or the timeout passes; returns the exit code. */
async function follow(ctx: Ctx, id: string, timeoutMs: number | undefined, live: boolean): Promise<number> {
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const s = await queryStatus(ctx, id);
    const text = summary(s);
    if (live) {
      process.stdout.write(`\x1b[2J\x1b[H${text}\n`);
    } else if (ctx.output === 'text') {
      const line = `${new Date().toISOString()} ${s.phase} ${stepText(s.step)} weight ${s.canaryWeight}% ${s.message}`;
      if (line.slice(25) !== last) process.stdout.write(`${escapeControl(line)}\n`);
      last = line.slice(25);
    }
    if (SETTLED_PHASES.includes(s.phase)) {
      if (ctx.output === 'json') print('json', s, () => '');
      return OUTCOME_EXIT[s.phase] ?? EXIT.failed;
    }
    if (Date.now() >= deadline) {
      if (ctx.output === 'json') print('json', s, () => '');
      else process.stderr.write(`${id} is still ${s.phase} after ${formatDuration(timeoutMs ?? 0)}; it goes on\n`);
      return EXIT.stillRunning;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}


/** The gate and attempt an approval is for: `--step`, else the gate pending now; a later gate or attempt rejects it. */
async function approvalBinding(ctx: Ctx, id: string, step: string | undefined): Promise<{ step?: number; attempt?: number }> {
  if (step !== undefined && !/^[1-9]\d*$/.test(step)) throw new CliExit(EXIT.usage, '--step: the approval step\'s number, from 1 (as status prints it)');
  const s = await queryStatus(ctx, id);
  const gate = step !== undefined ? Number(step) - 1 : s.approvals?.step; // the workflow counts from 0
  return { ...(gate !== undefined ? { step: gate } : {}), attempt: s.attempt };
}

export function registerRelease(program: Command): void {
  const release = program.command('release').description('start, follow and steer releases');

  release
    .command('start')
    .description('start a release and wait until it is past preflight or held at its start by a freeze window (a failed preflight exits 5 with the reason and the remedy); prints its workflow ID and Temporal UI link, warnings on stderr')
    .requiredOption('-f, --file <file...>', 'spec files (Release, or Rollout + AnalysisTemplates)')
    .option('--image <ref>', 'image to release, overriding the spec')
    .option('--wait', 'follow the release and exit with its outcome (0 promoted, 3 rolled back, 4 aborted, 5 failed)')
    .option('--timeout <duration>', 'with --wait: stop waiting after this long and exit 6 (the release goes on)')
    .option('--preflight-timeout <duration>', 'how long to wait for the release to pass preflight, then exit 6 (default 2m, 30m with spec.build; 0: do not wait)')
    .option('--apply-others', 'first apply the files\' other Kubernetes objects (Services, Ingress, VirtualService, Secret …) by server-side apply (field manager glidepath-cli), as `kubectl apply --server-side` would; the Deployment a workloadRef names is never applied. Without it they are ignored (lint lists them)')
    .option('--replace', 'first close the release of this workload that was aborted or rolled back and waits for a retry (a release in progress is refused)')
    .option('--as <user>', 'who starts it (default $GLIDEPATH_USER, else the OS user)')
    .action(async (opts: { file: string[]; image?: string; wait?: boolean; timeout?: string; preflightTimeout?: string; applyOthers?: boolean; replace?: boolean; as?: string }, cmd: Command) => {
      const timeoutMs = opts.timeout ? duration('--timeout', opts.timeout) : undefined;
      if (timeoutMs !== undefined && !opts.wait) throw new CliExit(EXIT.usage, '--timeout goes with --wait');
      const preflightMs = opts.preflightTimeout === undefined ? undefined : duration('--preflight-timeout', opts.preflightTimeout);
      const { plan, others } = await loadSpec(opts.file, opts.image);
      for (const w of versionedNameWarnings(plan)) process.stderr.write(`warning: ${w}\n`);
      const initiator = identity(opts.as);
      const problems = startProblems(plan, initiator); // what the workflow checks at its start
      if (problems.length > 0) throw new CliExit(EXIT.usage, problems.join('\n'));
      const ctx = await context(cmd);
      const workflowId = releaseWorkflowId(plan);
      const link = uiLink(ctx.settings, workflowId);
      const legacy = legacyReleaseWorkflowId(plan);
      if (await exists(ctx, legacy)) {
        const running = await ctx.client.workflow.getHandle(legacy).describe();
        if (running.status.name === 'RUNNING') throw new CliExit(EXIT.invalid, await inFlightMessage(ctx, legacy, serviceKey(plan), uiLink(ctx.settings, legacy)));
      }
      const replaced = opts.replace ? await closeFinished(ctx, workflowId, initiator) : undefined;
      if (replaced && ctx.output === 'text') process.stderr.write(`${replaced}\n`);
      if (opts.applyOthers && others.length > 0) {
        // Not while a release of the workload runs: it may hold the Services' selectors.
        if (await isRunning(ctx, workflowId)) throw new CliExit(EXIT.invalid, await inFlightMessage(ctx, workflowId, serviceKey(plan), link));
        try {
          for (const a of await applyOthers(others, plan.namespace)) if (ctx.output === 'text') process.stderr.write(`applied ${a.object}\n`);
        } catch (err) {
          throw new CliExit(EXIT.invalid, (err as Error).message);
        }
      } else if (others.length > 0 && ctx.output === 'text') {
        process.stderr.write(`ignored ${others.length} other document(s) (apply them with --apply-others): ${others.map(describeOther).join(', ')}\n`);
      }
      try {
        await ctx.client.workflow.start('release', {
          taskQueue: ctx.settings.taskQueue,
          workflowId,
          args: [{ plan, initiator }],
          workflowIdConflictPolicy: 'FAIL',
          workflowIdReusePolicy: 'ALLOW_DUPLICATE',
          workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT, // room for a task that carries a flood of signals
          staticSummary: releaseSummary(plan),
          typedSearchAttributes: [{ key: SERVICE_ATTRIBUTE, value: serviceKey(plan) }],
        });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) throw new CliExit(EXIT.invalid, await inFlightMessage(ctx, workflowId, serviceKey(plan), link));
        throw err;
      }
      if (ctx.output === 'text') process.stdout.write(`started ${workflowId}\n${link}\n`);
      const waitMs = preflightMs ?? defaultPreflightTimeoutMs(plan);
      const pre = waitMs > 0 ? await awaitPreflight(ctx, workflowId, waitMs) : undefined;
      const started = { workflowId, ui: link, initiator, ...(replaced ? { replaced } : {}) };
      if (pre?.kind === 'settled') {
        const code = OUTCOME_EXIT[pre.status.phase] ?? EXIT.failed;
        if (ctx.output === 'json') print('json', { ...started, preflight: 'settled', phase: pre.status.phase, message: pre.status.message }, () => '');
        if (pre.status.phase === 'Promoted') return;
        throw pre.status.stableImage === undefined ? preflightFailure(workflowId, pre.status, code) : new CliExit(code, `${workflowId} ${pre.status.phase}: ${pre.status.message}`);
      }
      if (pre?.kind === 'timeout') {
        if (ctx.output === 'json') print('json', { ...started, preflight: 'timeout', phase: pre.status?.phase }, () => '');
        throw preflightTimeout(workflowId, waitMs, pre);
      }
      if (pre?.kind === 'frozen') {
        if (ctx.output === 'text') process.stderr.write(`${pre.status.message}; preflight runs when the window ends (or: glidepath release override-freeze ${workflowId} --reason …)\n`);
        else print('json', { ...started, preflight: 'frozen', freeze: pre.status.freeze }, () => '');
        if (opts.wait) process.exitCode = await follow(ctx, workflowId, timeoutMs, false);
        return;
      }
      const warnings = pre?.kind === 'passed' ? pre.warnings : [];
      if (ctx.output === 'text') for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      else print('json', { ...started, preflight: pre ? 'passed' : 'not checked', warnings }, () => '');
      if (opts.wait) process.exitCode = await follow(ctx, workflowId, timeoutMs, false);
    });

  release
    .command('status [id]')
    .description('the release status (phase, step, weights, header/mirror routes, analyses, approvals)')
    .option('-f, --file <file...>', 'name the release by its spec file')
    .action(async (id: string | undefined, opts: { file?: string[] }, cmd: Command) => {
      const ctx = await context(cmd);
      const s = await queryStatus(ctx, await releaseId(ctx, id, opts.file));
      print(ctx.output, s, () => summary(s));
    });

  release
    .command('watch [id]')
    .description('a live view until the release settles (plain lines when stdout is not a terminal)')
    .option('-f, --file <file...>', 'name the release by its spec file')
    .option('--timeout <duration>', 'stop watching after this long (exit 6)')
    .action(async (id: string | undefined, opts: { file?: string[]; timeout?: string }, cmd: Command) => {
      const ctx = await context(cmd);
      const timeoutMs = opts.timeout ? duration('--timeout', opts.timeout) : undefined;
      process.exitCode = await follow(ctx, await releaseId(ctx, id, opts.file), timeoutMs, process.stdout.isTTY === true && ctx.output === 'text');
    });

  release
    .command('list')
    .description('releases, newest first (a visibility query on the Glidepath search attributes)')
    .addOption(new Option('--phase <phase>', 'only releases in this phase').choices([...PHASES]))
    .option('--service <namespace/name>', 'only releases of this workload')
    .option('--limit <n>', 'at most this many', '50')
    .action(async (opts: { phase?: Phase; service?: string; limit: string }, cmd: Command) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new CliExit(EXIT.usage, '--limit: a whole number ≥ 1');
      if (opts.service !== undefined && !/^[a-z0-9-]+\/[a-z0-9-]+$/.test(opts.service)) throw new CliExit(EXIT.usage, '--service: expected namespace/name');
      const ctx = await context(cmd);
      const clauses = [`WorkflowType = 'release'`];
      if (opts.phase) clauses.push(`GlidepathPhase = '${opts.phase}'`);
      if (opts.service) clauses.push(`GlidepathService = '${opts.service}'`);
      const rows: { workflowId: string; service: string; phase: string; image: string; status: string; startTime: string }[] = [];
      for await (const w of ctx.client.workflow.list({ query: clauses.join(' AND ') })) {
        const attr = (name: string) => String(w.typedSearchAttributes.getAll().find((p) => p.key.name === name)?.value ?? '');
        rows.push({ workflowId: w.workflowId, service: attr('GlidepathService'), phase: attr('GlidepathPhase'), image: attr('GlidepathImage'), status: w.status.name, startTime: w.startTime.toISOString() });
        if (rows.length >= limit) break;
      }
      print(ctx.output, rows, () => (rows.length === 0 ? 'no releases' : rows.map((r) => escapeControl(`${r.workflowId}  ${r.service}  ${r.phase}  ${r.image}  ${r.status}  ${r.startTime}`)).join('\n')));
    });

  release
    .command('history [id]')
    .description('the audit trail: who did what, when and why')
    .option('-f, --file <file...>', 'name the release by its spec file')
    .action(async (id: string | undefined, opts: { file?: string[] }, cmd: Command) => {
      const ctx = await context(cmd);
      const s = await queryStatus(ctx, await releaseId(ctx, id, opts.file));
      print(ctx.output, s.audit, () => s.audit.map(historyLine).join('\n'));
    });

  const actions: { name: Action; description: string }[] = [
    { name: 'approve', description: 'approve the pending approval step (four eyes: not the initiator)' },
    { name: 'promote', description: 'continue past a pause or an inconclusive analysis' },
    { name: 'abort', description: 'stop: all traffic to stable, canary removed; on an aborted release, close it' },
    { name: 'retry', description: 'start an aborted or rolled-back release again from step 0' },
    { name: 'override-freeze', description: 'lift the freeze window holding the release now (its overriders only; --reason required, audited)' },
  ];
  for (const action of actions) {
    const c = release
      .command(`${action.name} [id]`)
      .description(action.description)
      .option('-f, --file <file...>', 'name the release by its spec file')
      .option('--as <user>', 'who you are (default $GLIDEPATH_USER, else the OS user)')
      .option('--reason <text>', 'why, for the audit trail')
      .option('--identity-url <url>', `identity server that proves who you are (default $${IDENTITY_URL_ENV})`)
      .option('--token-file <file>', `your Kubernetes token for the identity server (default $${TOKEN_FILE_ENV})`);
    if (action.name === 'promote') c.option('--full', 'skip the remaining steps and cancel a running analysis (approval gates still apply)');
    if (action.name === 'approve') c.option('--step <n>', 'the approval step this is for, numbered from 1 as status prints it (default: the one pending now); another gate rejects it');
    if (action.name === 'abort') c.option('--immediate', 'remove the canary or preview pods at once, without the scale-down delay');
    c.action(async (id: string | undefined, opts: { file?: string[]; as?: string; reason?: string; full?: boolean; step?: string; immediate?: boolean; identityUrl?: string; tokenFile?: string }, cmd: Command) => {
      let source;
      try {
        source = identitySource(opts);
      } catch (err) {
        throw new CliExit(EXIT.usage, (err as Error).message);
      }
      const ctx = await context(cmd);
      const workflowId = await releaseId(ctx, id, opts.file);
      let proof: { assertion: string; sub: string } | undefined;
      if (source) {
        try {
          proof = await requestAssertion(source, actionTarget(action.name, await queryStatus(ctx, workflowId)));
        } catch (err) {
          if (err instanceof CliExit) throw err;
          throw new CliExit(EXIT.invalid, `${action.name}: ${(err as Error).message}`);
        }
        if (opts.as !== undefined && opts.as !== proof.sub) throw new CliExit(EXIT.usage, `--as ${opts.as}: the identity server proved you are ${proof.sub}`);
      }
      // With a proof, who you are is what it proves; the token itself is never sent to Temporal.
      const input = {
        by: proof ? proof.sub : identity(opts.as),
        ...(proof ? { proof: proof.assertion } : {}),
        ...(opts.reason ? { reason: opts.reason } : {}),
        ...(opts.full ? { full: true } : {}),
        ...(opts.immediate ? { immediate: true } : {}),
        ...(action.name === 'approve' ? await approvalBinding(ctx, workflowId, opts.step) : {}),
      };
      const handle = ctx.client.workflow.getHandle(workflowId);
      try {
        const s = await executeActionUpdate(handle, UPDATES[action.name], input);
        print(ctx.output, s, () => `${action.name}: accepted by ${workflowId}\n${summary(s)}`);
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) {
          const why = err.cause instanceof Error ? err.cause.message : String(err.cause);
          // The validator wrote nothing to history: report the refusal so it is counted in the release's status.
          await handle
            .signal(refusedUpdateSignal, { action: action.name, by: input.by, ...(input.reason ? { reason: input.reason } : {}), why })
            .catch(() => undefined);
          print(ctx.output, { rejected: true, message: why }, () => `${action.name} rejected: ${why}`, 'stderr');
          process.exitCode = EXIT.invalid;
          return;
        }
        if (err instanceof WorkflowNotFoundError) throw new CliExit(EXIT.usage, `no release ${workflowId} in flight`);
        throw err;
      }
    });
  }
}

