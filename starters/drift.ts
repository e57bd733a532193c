/**
 * `glidepath drift …`: start (or give a new reference to), show and stop the drift watch of a
 * workload (workflows/drift.ts). Exit codes: 0 done (status: in sync), 1 refused (the last release
 * of the workload is not promoted with that image) or, for status, drift found, 2 invalid input or
 * usage, 5 Temporal unreachable or failed.
 */
import { Option, type Command } from 'commander';
import { WorkflowNotFoundError } from '@temporalio/client';
import { uiLink } from '../workers/config.ts';
import { DEFAULT_DRIFT_INTERVAL, DRIFT_POLICIES, DRIFT_WORKFLOW, MIN_DRIFT_INTERVAL_MS, driftProblems, driftWorkflowId, type DriftBaseline, type DriftPolicy } from '../model/drift.ts';
import { SpecError } from '../model/normalize.ts';
import { releaseWorkflowId, type ReleasePlan } from '../model/types.ts';
import type { ReleaseResult } from '../workflows/messages.ts';
import { driftConfigureSignal, driftStatusQuery, type DriftConfigure, type DriftStatus, type DriftWatchInput } from '../workflows/drift/messages.ts';
import { targetOf } from '../workflows/release/target.ts';
import { CliExit, context, type Ctx } from './command.ts';
import { EXIT, escapeControl, print } from './output.ts';
import { formatProblemList, loadPlan } from './spec-files.ts';

const OPTION_OF: Record<string, string> = { policy: '--policy', interval: '--interval' };
const asOption = (problem: string): string => {
  const at = problem.indexOf(': ');
  const option = OPTION_OF[problem.slice(0, at)];
  return option ? `${option}${problem.slice(at)}` : problem;
};

/** `namespace/workload` as the watch's workflow ID (or the ID itself). */
function watchId(ref: string): string {
  if (ref.startsWith('drift_')) return ref;
  const m = /^([^/\s]+)\/([^/\s]+)$/.exec(ref);
  if (!m) throw new CliExit(EXIT.usage, `name the workload as <namespace>/<workload> (or the watch's ID drift_…), got ${JSON.stringify(ref.slice(0, 200))}`);
  return driftWorkflowId({ namespace: m[1] as string, workload: m[2] as string });
}

/** The last release of the plan's workload must have promoted the plan's image: that is the reference. */
async function promotedRelease(ctx: Ctx, plan: ReleasePlan): Promise<string> {
  const id = releaseWorkflowId(plan);
  const handle = ctx.client.workflow.getHandle(id);
  let status: string;
  try {
    status = (await handle.describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new CliExit(EXIT.invalid, `no release ${id} of ${plan.namespace}/${plan.workload.name}: drift is watched against a promoted release`);
    throw err;
  }
  const notPromoted = (why: string) => new CliExit(EXIT.invalid, `the last release of ${plan.namespace}/${plan.workload.name} (${id}) ${why}: drift is watched against what a promoted release left`);
  if (status !== 'COMPLETED') throw notPromoted(`is ${status.toLowerCase().replace(/_/g, ' ')}, not promoted`);
  const result = (await handle.result()) as ReleaseResult;
  if (result.outcome !== 'Promoted') throw notPromoted(`ended ${result.outcome}`);
  if (result.image !== plan.image) throw notPromoted(`promoted ${result.image}, not ${plan.image}`);
  return id;
}

export function driftSummary(s: DriftStatus): string {
  const lines = [
    `${s.watchId}   ${s.namespace}/${s.workload}   policy ${s.policy}, every ${s.intervalMs / 1000}s   ${s.checks} check(s), ${s.drifted} with drift, ${s.reverted} reverted`,
    `  reference: ${s.releaseId} ${s.image}${s.desired ? `${s.desired.replicas === undefined ? ', replicas owned by an HPA' : `, ${s.desired.replicas} replica(s)`}` : ' (not read yet)'}`,
    `  ${s.condition}: ${s.message}${s.lastCheckedAt ? `   (checked ${s.lastCheckedAt})` : ''}`,
  ];
  for (const f of s.drift) lines.push(`  drift ${f.field}: ${f.live} (expected ${f.desired})`);
  for (const a of s.audit.slice(-5)) lines.push(`  ${a.at} ${a.action}: ${a.detail}`);
  return lines.map(escapeControl).join('\n');
}

async function queryStatus(ctx: Ctx, id: string): Promise<DriftStatus> {
  try {
    return await ctx.client.workflow.getHandle(id).query(driftStatusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new CliExit(EXIT.usage, `no drift watch ${id} in namespace ${ctx.settings.namespace}`);
    throw err;
  }
}

export function registerDrift(program: Command): void {
  const drift = program.command('drift').description('watch a workload for drift from what its last promoted release left (docs/drift.md)');

  drift
    .command('start')
    .description('watch the workload of a release spec against its last promoted release (which must have promoted the spec\'s image); a watch that runs takes it as its new reference, policy and interval; prints the watch\'s workflow ID')
    .requiredOption('-f, --file <file...>', 'the release\'s spec files, as given to `release start`')
    .option('--image <ref>', 'the image the release promoted, overriding the spec')
    .addOption(new Option('--policy <policy>', 'report: status, audit and the glidepath_drift metric; revert: the same, then put back and verified').choices([...DRIFT_POLICIES]).default('report'))
    .option('--interval <duration>', `how often to compare (at least ${MIN_DRIFT_INTERVAL_MS / 1000}s)`, DEFAULT_DRIFT_INTERVAL)
    .action(async (opts: { file: string[]; image?: string; policy: string; interval: string }, cmd: Command) => {
      let plan: ReleasePlan;
      try {
        plan = await loadPlan(opts.file, opts.image ? { image: opts.image } : {});
      } catch (err) {
        if (err instanceof SpecError) throw new CliExit(EXIT.usage, formatProblemList(err.problems));
        throw err;
      }
      const releaseId = releaseWorkflowId(plan);
      const baseline: DriftBaseline = { releaseId, target: targetOf(plan, releaseId), image: plan.image };
      const settings: DriftConfigure = { baseline, policy: opts.policy as DriftPolicy, interval: opts.interval };
      const problems = driftProblems(settings); // what the workflow checks at its start, named as options here
      if (problems.length > 0) throw new CliExit(EXIT.usage, problems.map(asOption).join('\n'));
      const ctx = await context(cmd);
      await promotedRelease(ctx, plan);
      const workflowId = driftWorkflowId({ namespace: plan.namespace, workload: plan.workload.name });
      const input: DriftWatchInput = settings;
      await ctx.client.workflow.signalWithStart(DRIFT_WORKFLOW, {
        taskQueue: ctx.settings.taskQueue,
        workflowId,
        args: [input],
        signal: driftConfigureSignal,
        signalArgs: [settings],
        staticSummary: `drift watch of ${plan.namespace}/${plan.workload.name}`,
      });
      print(ctx.output, { workflowId, reference: releaseId, image: plan.image, policy: settings.policy, ui: uiLink(ctx.settings, workflowId) }, () => `watching ${workflowId} against ${releaseId} (${plan.image}), policy ${settings.policy}\n${uiLink(ctx.settings, workflowId)}`);
    });

  drift
    .command('status <workload>')
    .description('the watch of <namespace>/<workload>: its reference, condition, what drifted and recent audit; exits 1 while drift is found')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const id = watchId(ref);
      const ctx = await context(cmd);
      const s = await queryStatus(ctx, id);
      print(ctx.output, s, () => driftSummary(s));
      if (s.condition === 'Drifted' || s.condition === 'RevertFailed') process.exitCode = EXIT.invalid;
    });

  drift
    .command('stop <workload>')
    .description('stop watching <namespace>/<workload> (cancels the watch; nothing in the cluster changes)')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const id = watchId(ref);
      const ctx = await context(cmd);
      try {
        await ctx.client.workflow.getHandle(id).cancel();
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new CliExit(EXIT.usage, `no drift watch ${id} in namespace ${ctx.settings.namespace}`);
        throw err;
      }
      print(ctx.output, { stopped: id }, () => `stopped ${id}`);
    });
}
