/**
 * `glidepath group lint|start|status|watch|approve|abort|retry`: release groups (model/group.ts).
 * Exit codes as `release`: 0 promoted / done, 1 rejected (invalid spec, a refused action, a member
 * already in flight, a cluster no worker serves), 2 usage, 3 rolled back, 4 aborted, 5 failed,
 * 6 still running when --timeout passed.
 */
import type { Command } from 'commander';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { SpecError } from '../model/normalize.ts';
import { formatDuration } from '../model/duration.ts';
import { POLLER_SEEN_WITHIN_MS, clusterTaskQueue, groupWorkflowId, memberPlan, type GroupPlan } from '../model/group-plan.ts';
import { releaseWorkflowId } from '../model/types.ts';
import { statusQuery, type ReleaseStatus } from '../workflows/messages.ts';
import { GROUP_UPDATES, SETTLED_GROUP_PHASES, groupStatusQuery, type GroupPhase, type GroupStatus } from '../workflows/group/messages.ts';
import { createTaskQueueActivities } from '../activities/task-queue.ts';
import { uiLink } from '../workers/config.ts';
import { WORKFLOW_TASK_TIMEOUT } from '../workflows/start-options.ts';
import { CliExit, context, duration, identity, type Ctx } from './command.ts';
import { loadGroup } from './group-files.ts';
import { IDENTITY_URL_ENV, TOKEN_FILE_ENV, identitySource, requestAssertion } from './identity-client.ts';
import { formatProblemList, MAX_PRINTED_PROBLEMS } from './spec-files.ts';
import { EXIT, escapeControl, print } from './output.ts';

const OUTCOME_EXIT: Partial<Record<GroupPhase, number>> = { Promoted: EXIT.ok, RolledBack: EXIT.rolledBack, Aborted: EXIT.aborted, Failed: EXIT.failed };

async function load(file: string): Promise<GroupPlan> {
  try {
    return await loadGroup(file);
  } catch (err) {
    if (err instanceof SpecError) throw new CliExit(err.problems.every((p) => p.usage) ? EXIT.usage : EXIT.invalid, formatProblemList(err.problems));
    throw err;
  }
}

async function groupId(id: string | undefined, file: string | undefined): Promise<string> {
  if (id && file) throw new CliExit(EXIT.usage, 'name the group by ID or by -f FILE, not both');
  if (id) return id;
  if (!file) throw new CliExit(EXIT.usage, 'name the group: an ID (group_<namespace>_<name>) or -f FILE');
  return groupWorkflowId(await load(file));
}

async function queryGroup(ctx: Ctx, id: string): Promise<GroupStatus> {
  try {
    return await ctx.client.workflow.getHandle(id).query(groupStatusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new CliExit(EXIT.usage, `no release group ${id} in namespace ${ctx.settings.namespace}`);
    throw err;
  }
}

/** The running children's own status (step, weight), read from each child: the matrix's live columns. */
async function childStatuses(ctx: Ctx, s: GroupStatus): Promise<Map<string, ReleaseStatus>> {
  const out = new Map<string, ReleaseStatus>();
  await Promise.all(
    s.cells
      .filter((c) => c.phase === 'Running' || c.phase === 'Compensating')
      .map(async (c) => {
        try {
          out.set(c.workflowId, await ctx.client.workflow.getHandle(c.workflowId).query(statusQuery));
        } catch {
          // not started yet, or its worker is away: the group's own cell says enough
        }
      }),
  );
  return out;
}

export function groupSummary(s: GroupStatus, children: ReadonlyMap<string, ReleaseStatus> = new Map()): string {
  const lines = [`${s.groupId}  ${s.name}  ${s.phase}  (onFailure ${s.onFailure})`, `  ${s.message}`];
  for (const c of s.clusters) if (c.worker) lines.push(`  ${c.name}: ${c.worker}`);
  for (const [i, w] of s.waves.entries()) {
    lines.push(`  wave ${w.name}${i === s.wave && !SETTLED_GROUP_PHASES.includes(s.phase) ? ' (now)' : ''}`);
    for (const cluster of w.clusters) {
      for (const c of s.cells.filter((x) => x.cluster === cluster)) {
        const child = children.get(c.workflowId);
        const live = child ? `  step ${child.step.index}/${child.step.total} ${child.step.kind}  weight ${child.canaryWeight}%  ${child.phase}` : '';
        lines.push(`    ${cluster.padEnd(12)} ${c.member.padEnd(14)} ${c.phase.padEnd(12)} ${c.image ?? c.previousImage ?? ''}${live}${c.message ? `  ${c.message}` : ''}`);
      }
    }
    const gate = s.gates.find((g) => g.wave === w.name);
    if (gate) {
      lines.push(`    gate: ${gate.phase}${gate.soakUntil ? `  soak until ${gate.soakUntil}` : ''}${gate.analysisRuns.length ? `  analysis ${gate.analysisRuns.map((r) => `${r.cluster} ${r.phase}`).join(', ')}` : ''}`);
      if (gate.approval && gate.phase === 'AwaitingApproval') lines.push(`    awaiting ${gate.approval.required - gate.approval.granted.length} approval(s) from ${gate.approval.eligible.join(', ')}`);
    }
  }
  return lines.map(escapeControl).join('\n');
}

async function follow(ctx: Ctx, id: string, timeoutMs: number | undefined, live: boolean): Promise<number> {
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const s = await queryGroup(ctx, id);
    if (live) process.stdout.write(`\x1b[2J\x1b[H${groupSummary(s, await childStatuses(ctx, s))}\n`);
    else if (ctx.output === 'text') {
      const line = `${s.phase} ${s.message}`;
      if (line !== last) process.stdout.write(`${escapeControl(`${new Date().toISOString()} ${line}`)}\n`);
      last = line;
    }
    if (SETTLED_GROUP_PHASES.includes(s.phase)) {
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

/** Before anything starts: every cluster has a worker, and no member's workload is in flight there. */
async function startChecks(ctx: Ctx, group: GroupPlan, workerCheck: boolean): Promise<string[]> {
  const problems: string[] = [];
  const { taskQueuePollers } = createTaskQueueActivities(ctx.client);
  for (const [wi, w] of group.waves.entries()) {
    for (const [ci, cluster] of w.clusters.entries()) {
      if (workerCheck && (await taskQueuePollers(clusterTaskQueue(cluster), POLLER_SEEN_WITHIN_MS)).pollers === 0) {
        problems.push(`spec.waves[${wi}].clusters[${ci}]: no worker polls ${clusterTaskQueue(cluster)} (start one with GLIDEPATH_CLUSTER=${cluster}, or pass --no-worker-check to let the group wait for it)`);
      }
      for (const m of group.members) {
        const id = releaseWorkflowId(memberPlan(group, m, cluster));
        try {
          const d = await ctx.client.workflow.getHandle(id).describe();
          if (d.status.name === 'RUNNING') problems.push(`member ${m.name}: workload ${m.plan.namespace}/${m.plan.workload.name} in ${cluster} is in flight in another release or group (${id})`);
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
      }
    }
  }
  return problems;
}

/** A proof from the identity server for approving the gate pending now (RBAC: verb approve on releases.glidepath.dev named by the group's workflow ID). */
async function gateProof(ctx: Ctx, id: string, source: { url: URL; token: string }): Promise<{ assertion: string; sub: string }> {
  const s = await queryGroup(ctx, id);
  try {
    return await requestAssertion(source, { action: 'approve', releaseId: id, namespace: s.name.split('/')[0] ?? '', step: s.wave });
  } catch (err) {
    if (err instanceof CliExit) throw err;
    throw new CliExit(EXIT.invalid, `approve: ${(err as Error).message}`);
  }
}

async function act(ctx: Ctx, id: string, name: keyof typeof GROUP_UPDATES, input: { by: string; proof?: string; reason?: string; wave?: string }): Promise<void> {
  try {
    const s = await ctx.client.workflow.getHandle(id).executeUpdate(GROUP_UPDATES[name], { args: [input] });
    print(ctx.output, s, () => `${name}: accepted by ${id}\n${groupSummary(s)}`);
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new CliExit(EXIT.invalid, `${name} refused by ${id}: ${err.cause instanceof Error ? err.cause.message : String(err.cause)}`);
    if (err instanceof WorkflowNotFoundError) {
      // An update cannot reach a closed workflow: say it ended, not that it does not exist.
      const ended = await ctx.client.workflow.getHandle(id).describe().catch(() => undefined);
      if (ended) throw new CliExit(EXIT.invalid, `${name} refused: release group ${id} has ended (${ended.status.name})`);
      throw new CliExit(EXIT.usage, `no release group ${id} in namespace ${ctx.settings.namespace}`);
    }
    throw err;
  }
}

export function registerGroup(program: Command): void {
  const group = program.command('group').description('release groups: several services in dependency order over waves of clusters, with saga rollback (docs/fleet.md)');

  group
    .command('lint')
    .description('check a ReleaseGroup file and its member files without starting anything (exit 0 valid, 1 invalid, 2 usage)')
    .requiredOption('-f, --file <file>', 'the ReleaseGroup file')
    .action(async (opts: { file: string }, cmd: Command) => {
      const output = cmd.optsWithGlobals<{ output: 'text' | 'json' }>().output;
      try {
        const g = await loadGroup(opts.file);
        print(output, { valid: true, group: `${g.namespace}/${g.name}`, members: g.members.map((m) => m.name), waves: g.waves.map((w) => ({ name: w.name, clusters: w.clusters })) }, () =>
          `${opts.file}: valid (group ${g.namespace}/${g.name}: ${g.members.map((m) => m.name).join(' → ')} over ${g.waves.map((w) => `${w.name} [${w.clusters.join(', ')}]`).join(' → ')}, onFailure ${g.onFailure})`,
        );
        process.exitCode = EXIT.ok;
      } catch (err) {
        if (!(err instanceof SpecError)) throw err;
        const shown = err.problems.slice(0, MAX_PRINTED_PROBLEMS);
        print(output, { valid: false, problems: shown, ...(err.problems.length > shown.length ? { more: err.problems.length - shown.length } : {}) }, () => formatProblemList(err.problems), 'stderr');
        process.exitCode = err.problems.every((p) => p.usage) ? EXIT.usage : EXIT.invalid;
      }
    });

  group
    .command('start')
    .description('start a release group; prints its workflow ID and Temporal UI link')
    .requiredOption('-f, --file <file>', 'the ReleaseGroup file')
    .option('--wait', 'follow the group and exit with its outcome (0 promoted, 3 rolled back, 4 aborted, 5 failed)')
    .option('--timeout <duration>', 'with --wait: stop waiting after this long and exit 6 (the group goes on)')
    .option('--no-worker-check', 'start even when a cluster has no worker polling its task queue (its members wait)')
    .option('--as <user>', 'who starts it (default $GLIDEPATH_USER or the OS user)')
    .action(async (opts: { file: string; wait?: boolean; timeout?: string; workerCheck: boolean; as?: string }, cmd: Command) => {
      const timeoutMs = opts.timeout ? duration('--timeout', opts.timeout) : undefined;
      if (timeoutMs !== undefined && !opts.wait) throw new CliExit(EXIT.usage, '--timeout goes with --wait');
      const plan = await load(opts.file);
      const ctx = await context(cmd);
      const problems = await startChecks(ctx, plan, opts.workerCheck);
      if (problems.length > 0) throw new CliExit(EXIT.invalid, `${opts.file}: nothing started:\n${problems.join('\n')}`);
      const id = groupWorkflowId(plan);
      const link = uiLink(ctx.settings, id);
      try {
        await ctx.client.workflow.start('releaseGroup', { taskQueue: ctx.settings.taskQueue, workflowId: id, args: [{ group: plan, initiator: identity(opts.as) }], workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) throw new CliExit(EXIT.invalid, `release group ${id} is already running (${link})`);
        throw err;
      }
      if (!opts.wait) {
        print(ctx.output, { workflowId: id, ui: link }, () => `started ${id}\n${link}`);
        return;
      }
      if (ctx.output === 'text') process.stdout.write(`started ${id}\n${link}\n`);
      process.exitCode = await follow(ctx, id, timeoutMs, false);
    });

  group
    .command('status')
    .description('the member × cluster matrix: phase, image, and the running children\'s step and weight')
    .argument('[id]', 'group workflow ID (group_<namespace>_<name>)')
    .option('-f, --file <file>', 'name the group by its file instead')
    .action(async (id: string | undefined, opts: { file?: string }, cmd: Command) => {
      const wid = await groupId(id, opts.file);
      const ctx = await context(cmd);
      const s = await queryGroup(ctx, wid);
      const children = await childStatuses(ctx, s);
      print(ctx.output, { ...s, children: Object.fromEntries([...children].map(([k, v]) => [k, { phase: v.phase, step: v.step, canaryWeight: v.canaryWeight, canaryImage: v.canaryImage, stableImage: v.stableImage }])) }, () => groupSummary(s, children));
    });

  group
    .command('watch')
    .description('follow a group until it ends; exit with its outcome')
    .argument('[id]', 'group workflow ID')
    .option('-f, --file <file>', 'name the group by its file instead')
    .option('--timeout <duration>', 'stop after this long and exit 6')
    .action(async (id: string | undefined, opts: { file?: string; timeout?: string }, cmd: Command) => {
      const wid = await groupId(id, opts.file);
      const ctx = await context(cmd);
      process.exitCode = await follow(ctx, wid, opts.timeout ? duration('--timeout', opts.timeout) : undefined, ctx.output === 'text' && process.stdout.isTTY === true);
    });

  for (const [name, description] of [
    ['approve', 'approve the gate awaiting approval (listed approvers, never the initiator)'],
    ['abort', 'abort the group: in-flight members abort, promoted ones are rolled back per onFailure'],
    ['retry', 'a group paused after a failure starts its failed members again'],
  ] as const) {
    const c = group
      .command(name)
      .description(description)
      .argument('[id]', 'group workflow ID')
      .option('-f, --file <file>', 'name the group by its file instead')
      .option('--reason <text>', 'why (kept in the audit)')
      .option('--as <user>', 'who acts (default $GLIDEPATH_USER or the OS user)');
    if (name === 'approve') {
      c.option('--wave <name>', 'the wave whose gate this approval is for')
        .option('--identity-url <url>', `identity server that proves who you are (default $${IDENTITY_URL_ENV})`)
        .option('--token-file <file>', `your Kubernetes token for the identity server (default $${TOKEN_FILE_ENV})`);
    }
    c.action(async (id: string | undefined, opts: { file?: string; reason?: string; as?: string; wave?: string; identityUrl?: string; tokenFile?: string }, cmd: Command) => {
      const wid = await groupId(id, opts.file);
      let source;
      try {
        source = name === 'approve' ? identitySource(opts) : undefined;
      } catch (err) {
        throw new CliExit(EXIT.usage, (err as Error).message);
      }
      const ctx = await context(cmd);
      const proof = source ? await gateProof(ctx, wid, source) : undefined;
      if (proof && opts.as !== undefined && opts.as !== proof.sub) throw new CliExit(EXIT.usage, `--as ${opts.as}: the identity server proved you are ${proof.sub}`);
      // With a proof, who you are is what it proves; the token itself is never sent to Temporal.
      const by = proof ? proof.sub : identity(opts.as);
      await act(ctx, wid, name, { by, ...(proof ? { proof: proof.assertion } : {}), ...(opts.reason ? { reason: opts.reason } : {}), ...(opts.wave ? { wave: opts.wave } : {}) });
    });
  }
}
