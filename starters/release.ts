/**
 * `glidepath release …`: start, status, watch, list, history, approve, promote, abort, retry.
 * Exit codes (README): 0 promoted / done, 1 rejected (an update's validator said no, a release is
 * already in flight), 2 invalid input or usage, 3 rolled back, 4 aborted, 5 failed, 6 still running
 * when --timeout passed (the release goes on).
 */
import { Option, type Command } from 'commander';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { SpecError } from '../spec/normalize.ts';
import { formatDuration } from '../spec/duration.ts';
import { PHASES, SETTLED_PHASES, releaseWorkflowId, serviceKey, type Phase } from '../spec/types.ts';
import { UPDATES, statusQuery, SERVICE_ATTRIBUTE, type Action, type ReleaseStatus } from '../workflows/messages.ts';
import { uiLink } from '../workers/config.ts';
import { formatProblemList, loadPlan } from './spec-files.ts';
import { CliExit, context, duration, identity, type Ctx } from './command.ts';
import { EXIT, escapeControl, print } from './output.ts';
import { actionTarget, identitySource, requestAssertion, IDENTITY_URL_ENV, TOKEN_FILE_ENV } from './identity-client.ts';


const OUTCOME_EXIT: Partial<Record<Phase, number>> = { Promoted: EXIT.ok, RolledBack: EXIT.rolledBack, Aborted: EXIT.aborted, Failed: EXIT.failed };




/** A release named by workflow ID, or by its spec file (-f). */
async function releaseId(id: string | undefined, files: string[] | undefined): Promise<string> {
  if (id && files) throw new CliExit(EXIT.usage, 'name the release by ID or by -f FILE, not both');
  if (id) return id;
  if (!files) throw new CliExit(EXIT.usage, 'name the release: an ID (release-<namespace>-<name>) or -f FILE');
  return releaseWorkflowId(await loadSpec(files));
}

async function loadSpec(files: string[], image?: string) {
  try {
    return await loadPlan(files, image ? { image } : {});
  } catch (err) {
    if (err instanceof SpecError) throw new CliExit(EXIT.usage, formatProblemList(err.problems));
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
    `  step ${s.step.index} (${Math.min(s.step.index + 1, s.step.total)} of ${s.step.total}) ${s.step.kind}   canary weight ${s.canaryWeight}%   attempt ${s.attempt}`,
    `  stable ${s.stableImage ?? '(unknown yet)'}   new ${s.canaryImage}`,
    `  ${s.message}`,
  ];
  if (s.approvals) {
    lines.push(`  awaiting ${s.approvals.required - s.approvals.granted.length} more approval(s) from ${s.approvals.approvers.join(', ')}${s.approvals.deadline ? ` before ${s.approvals.deadline} (then ${s.approvals.onTimeout})` : ''}`);
  }
  for (const r of s.managedRoutes ?? []) lines.push(`  ${r.kind} route ${r.name}: ${r.match} (step ${r.step})`);
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
      const line = `${new Date().toISOString()} ${s.phase} step ${s.step.index}/${s.step.total} ${s.step.kind} weight ${s.canaryWeight}% ${s.message}`;
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


export function registerRelease(program: Command): void {
  const release = program.command('release').description('start, follow and steer releases');

  release
    .command('start')
    .description('start a release; prints its workflow ID and Temporal UI link')
    .requiredOption('-f, --file <file...>', 'spec files (Release, or Rollout + AnalysisTemplates)')
    .option('--image <ref>', 'image to release, overriding the spec')
    .option('--wait', 'follow the release and exit with its outcome (0 promoted, 3 rolled back, 4 aborted, 5 failed)')
    .option('--timeout <duration>', 'with --wait: stop waiting after this long and exit 6 (the release goes on)')
    .option('--as <user>', 'who starts it (default $GLIDEPATH_USER, else the OS user)')
    .action(async (opts: { file: string[]; image?: string; wait?: boolean; timeout?: string; as?: string }, cmd: Command) => {
      const timeoutMs = opts.timeout ? duration('--timeout', opts.timeout) : undefined;
      if (timeoutMs !== undefined && !opts.wait) throw new CliExit(EXIT.usage, '--timeout goes with --wait');
      const plan = await loadSpec(opts.file, opts.image);
      const ctx = await context(cmd);
      const workflowId = releaseWorkflowId(plan);
      const initiator = identity(opts.as);
      try {
        await ctx.client.workflow.start('release', {
          taskQueue: ctx.settings.taskQueue,
          workflowId,
          args: [{ plan, initiator }],
          workflowIdConflictPolicy: 'FAIL',
          workflowIdReusePolicy: 'ALLOW_DUPLICATE',
          typedSearchAttributes: [{ key: SERVICE_ATTRIBUTE, value: serviceKey(plan) }],
        });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) {
          throw new CliExit(EXIT.invalid, `a release of ${serviceKey(plan)} is already in flight: ${workflowId} (${uiLink(ctx.settings, workflowId)}); abort it or wait for it to finish`);
        }
        throw err;
      }
      const link = uiLink(ctx.settings, workflowId);
      print(ctx.output, { workflowId, ui: link, initiator }, () => `started ${workflowId}\n${link}`);
      if (opts.wait) process.exitCode = await follow(ctx, workflowId, timeoutMs, false);
    });

  release
    .command('status [id]')
    .description('the release status (phase, step, weights, header/mirror routes, analyses, approvals)')
    .option('-f, --file <file...>', 'name the release by its spec file')
    .action(async (id: string | undefined, opts: { file?: string[] }, cmd: Command) => {
      const ctx = await context(cmd);
      const s = await queryStatus(ctx, await releaseId(id, opts.file));
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
      process.exitCode = await follow(ctx, await releaseId(id, opts.file), timeoutMs, process.stdout.isTTY === true && ctx.output === 'text');
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
      const s = await queryStatus(ctx, await releaseId(id, opts.file));
      print(ctx.output, s.audit, () => s.audit.map(historyLine).join('\n'));
    });

  const actions: { name: Action; description: string }[] = [
    { name: 'approve', description: 'approve the pending approval step (four eyes: not the initiator)' },
    { name: 'promote', description: 'continue past a pause or an inconclusive analysis' },
    { name: 'abort', description: 'stop: all traffic to stable, canary removed; on an aborted release, close it' },
    { name: 'retry', description: 'start an aborted or rolled-back release again from step 0' },
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
    if (action.name === 'promote') c.option('--full', 'skip the remaining steps (approval gates still apply)');
    c.action(async (id: string | undefined, opts: { file?: string[]; as?: string; reason?: string; full?: boolean; identityUrl?: string; tokenFile?: string }, cmd: Command) => {
      let source;
      try {
        source = identitySource(opts);
      } catch (err) {
        throw new CliExit(EXIT.usage, (err as Error).message);
      }
      const ctx = await context(cmd);
      const workflowId = await releaseId(id, opts.file);
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
      const input = { by: proof ? proof.sub : identity(opts.as), ...(proof ? { proof: proof.assertion } : {}), ...(opts.reason ? { reason: opts.reason } : {}), ...(opts.full ? { full: true } : {}) };
      try {
        const s = await ctx.client.workflow.getHandle(workflowId).executeUpdate(UPDATES[action.name], { args: [input] });
        print(ctx.output, s, () => `${action.name}: accepted by ${workflowId}\n${summary(s)}`);
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) {
          const why = err.cause instanceof Error ? err.cause.message : String(err.cause);
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

