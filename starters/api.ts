/**
 * `glidepath api …`: introduce a version of an API, retire one (deprecation headers, sunset, approval),
 * approve or abort a retirement, and show every version's state. One workflow per API,
 * `api-<namespace>-<api>`, started by the first `introduce` (update-with-start).
 * Exit codes as for releases (README): 0 done, 1 rejected by the workflow's validator, 2 invalid
 * input or usage (or no such API), 5 failed (or Temporal unreachable), 6 still running at --timeout.
 */
import type { Command } from 'commander';
import { WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { apiKey, apiWorkflowId, loadApiVersion, parseSunset, type ApiVersionPlan } from '../model/api-version.ts';
import { formatDuration } from '../model/duration.ts';
import { SpecError, formatProblem } from '../model/normalize.ts';
import {
  API_WORKFLOW_TYPE,
  abortRetirementUpdate,
  apiStatusQuery,
  approveRetirementUpdate,
  introduceVersionUpdate,
  retireVersionUpdate,
  type ApiStatus,
  type VersionStatus,
} from '../workflows/api-version-messages.ts';
import { SERVICE_ATTRIBUTE } from '../workflows/messages.ts';
import { uiLink } from '../workers/config.ts';
import { readSpecDocs } from './spec-files.ts';
import { CliExit, context, duration, identity, type Ctx } from './command.ts';
import { identitySource, requestAssertion, retirementTarget, IDENTITY_URL_ENV, TOKEN_FILE_ENV } from './identity-client.ts';
import { EXIT, print } from './output.ts';

async function loadPlan(files: string[]): Promise<ApiVersionPlan> {
  const { docs, problems } = await readSpecDocs(files);
  try {
    if (problems.length > 0) throw new SpecError(problems);
    return loadApiVersion(docs);
  } catch (err) {
    if (err instanceof SpecError) throw new CliExit(EXIT.usage, err.problems.map(formatProblem).join('\n'));
    throw err;
  }
}

function versionLine(v: VersionStatus): string {
  const p = v.plan;
  const r = v.retirement;
  const parts = [`  ${v.version.padEnd(6)} ${v.phase.padEnd(26)} ${p.route.pathPrefix} → ${p.service}${p.image ? ` (${p.image})` : ''}`, `         ${v.message}`];
  if (r) {
    parts.push(`         deprecated ${r.deprecatedAt} by ${r.requestedBy}; sunset ${r.sunset}; headers ${r.headers}${r.headersNote ? ` (${r.headersNote})` : ''}`);
    if (r.headers === 'set') parts.push(`         ${Object.entries(r.headerValues).map(([k, x]) => `${k}: ${x}`).join(' | ')}`);
    if (v.phase === 'AwaitingRetirementApproval') parts.push(`         awaiting approval from ${r.approvers.length ? r.approvers.join(', ') : `anyone but ${r.requestedBy}`}`);
    if (r.approvedBy) parts.push(`         approved by ${r.approvedBy.by} at ${r.approvedBy.at}`);
  }
  return parts.join('\n');
}

export function apiSummary(s: ApiStatus, auditLines = 5): string {
  const lines = [`${s.workflowId}  ${s.service}  ${s.phase}  (${s.versions.length} version${s.versions.length === 1 ? '' : 's'})`, ...s.versions.map(versionLine)];
  if (auditLines > 0 && s.audit.length > 0) {
    lines.push('  recent:');
    for (const a of s.audit.slice(-auditLines)) lines.push(`    ${a.at}  ${a.by}  ${a.action}${a.accepted ? '' : ' (ignored)'}${a.reason ? `  "${a.reason}"` : ''}${a.detail ? `  ${a.detail}` : ''}`);
  }
  return lines.join('\n');
}

async function queryStatus(ctx: Ctx, id: string): Promise<ApiStatus> {
  try {
    return await ctx.client.workflow.getHandle(id).query(apiStatusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new CliExit(EXIT.usage, `no API workflow ${id} in namespace ${ctx.settings.namespace} (introduce a version first)`);
    throw err;
  }
}

/** Runs an update; a validator's refusal prints why and exits 1. */
async function update(ctx: Ctx, id: string, what: string, run: () => Promise<ApiStatus>): Promise<ApiStatus | undefined> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const why = err.cause instanceof Error ? err.cause.message : String(err.cause);
      print(ctx.output, { rejected: true, message: why }, () => `${what} rejected: ${why}`, 'stderr');
      process.exitCode = EXIT.invalid;
      return undefined;
    }
    if (err instanceof WorkflowNotFoundError) throw new CliExit(EXIT.usage, `no API workflow ${id} in namespace ${ctx.settings.namespace} (introduce a version first)`);
    throw err;
  }
}

/** Follows one version until it reaches `goal` (0), fails (5) or the timeout passes (6). */
async function follow(ctx: Ctx, id: string, version: string, goal: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const s = await queryStatus(ctx, id);
    const v = s.versions.find((x) => x.version === version);
    const line = `${v?.phase ?? 'absent'} ${v?.message ?? ''}`;
    if (ctx.output === 'text' && line !== last) process.stdout.write(`${new Date().toISOString()} ${version} ${line}\n`);
    last = line;
    const done = v?.phase === goal ? EXIT.ok : v?.phase === 'Failed' ? EXIT.failed : undefined;
    if (done !== undefined || Date.now() >= deadline) {
      if (ctx.output === 'json') print('json', s, () => '');
      if (done === undefined && ctx.output === 'text') process.stderr.write(`${version} is still ${v?.phase} after ${formatDuration(timeoutMs)}; it goes on\n`);
      return done ?? EXIT.stillRunning;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}


export function registerApi(program: Command): void {
  const api = program.command('api').description('run API versions side by side: introduce a version, retire an old one (deprecation, sunset, approval)');

  api
    .command('introduce')
    .description('introduce a version (Deployment, Service and path route of its own), or register a running one (spec.existing); starts the API workflow if needed')
    .requiredOption('-f, --file <file...>', 'the ApiVersion spec')
    .option('--wait', 'follow until the version serves (exit 0) or fails (exit 5)')
    .option('--timeout <duration>', 'with --wait: stop waiting after this long and exit 6 (the introduction goes on)', '10m')
    .option('--as <user>', 'who introduces it (default $GLIDEPATH_USER, else the OS user)')
    .option('--reason <text>', 'why, for the audit trail')
    .action(async (opts: { file: string[]; wait?: boolean; timeout: string; as?: string; reason?: string }, cmd: Command) => {
      const timeoutMs = duration('--timeout', opts.timeout);
      const plan = await loadPlan(opts.file);
      const ctx = await context(cmd);
      const workflowId = apiWorkflowId(plan);
      const input = { plan, by: identity(opts.as), ...(opts.reason ? { reason: opts.reason } : {}) };
      const startWorkflowOperation = new WithStartWorkflowOperation(API_WORKFLOW_TYPE, {
        workflowId,
        taskQueue: ctx.settings.taskQueue,
        args: [{ namespace: plan.namespace, api: plan.api }],
        workflowIdConflictPolicy: 'USE_EXISTING',
        typedSearchAttributes: [{ key: SERVICE_ATTRIBUTE, value: apiKey(plan) }],
      });
      const s = await update(ctx, workflowId, 'introduce', () => ctx.client.workflow.executeUpdateWithStart(introduceVersionUpdate, { args: [input], startWorkflowOperation }));
      if (!s) return;
      const link = uiLink(ctx.settings, workflowId);
      if (!opts.wait || ctx.output === 'text') print(ctx.output, { workflowId, ui: link, version: plan.version, status: s }, () => `introducing ${plan.api} ${plan.version} at ${plan.route.pathPrefix}: ${workflowId}\n${link}`);
      if (opts.wait) process.exitCode = await follow(ctx, workflowId, plan.version, 'Serving', timeoutMs);
    });

  const target = (c: Command): Command => c.option('-n, --namespace <namespace>', 'the API\'s namespace', 'default').option('--as <user>', 'who you are (default $GLIDEPATH_USER, else the OS user)').option('--reason <text>', 'why, for the audit trail');

  target(
    api
      .command('retire <api> <version>')
      .description('deprecate a serving version: Deprecation/Sunset headers (HTTPRoute), a durable timer until the sunset, then an approval gate before its route goes and it scales to 0')
      .requiredOption('--sunset <when>', 'RFC 3339 date-time or date (2026-12-31T00:00:00Z, 2026-12-31), or a duration from now (21d, 72h)')
      .option('--link <url>', 'documentation for the Link: <url>; rel="deprecation" header (default: the version\'s retirement.deprecationLink)'),
  ).action(async (apiName: string, version: string, opts: { namespace: string; sunset: string; link?: string; as?: string; reason?: string }, cmd: Command) => {
    let sunset: number;
    try {
      sunset = parseSunset(opts.sunset, Date.now());
    } catch (err) {
      throw new CliExit(EXIT.usage, `--sunset: ${(err as Error).message}`);
    }
    const ctx = await context(cmd);
    const id = apiWorkflowId({ namespace: opts.namespace, api: apiName });
    const input = { version, sunset: new Date(sunset).toISOString(), by: identity(opts.as), ...(opts.reason ? { reason: opts.reason } : {}), ...(opts.link ? { link: opts.link } : {}) };
    const s = await update(ctx, id, 'retire', () => ctx.client.workflow.getHandle(id).executeUpdate(retireVersionUpdate, { args: [input] }));
    if (s) print(ctx.output, s, () => `retire: accepted; ${apiName} ${version} is deprecated until ${input.sunset}, then awaits approval\n${apiSummary(s, 0)}`);
  });

  for (const [name, def, description] of [
    ['approve-retirement', approveRetirementUpdate, 'approve removing a version whose sunset has passed (not by who requested the retirement)'],
    ['abort-retirement', abortRetirementUpdate, 'stop a retirement before its route is removed: headers removed, the version serves on'],
  ] as const) {
    target(api.command(`${name} <api> <version>`).description(description))
      .option('--identity-url <url>', `identity server that proves who you are (default $${IDENTITY_URL_ENV})`)
      .option('--token-file <file>', `your Kubernetes token for the identity server (default $${TOKEN_FILE_ENV})`)
      .action(async (apiName: string, version: string, opts: { namespace: string; as?: string; reason?: string; identityUrl?: string; tokenFile?: string }, cmd: Command) => {
        let source;
        try {
          source = identitySource(opts);
        } catch (err) {
          throw new CliExit(EXIT.usage, (err as Error).message);
        }
        const ctx = await context(cmd);
        const id = apiWorkflowId({ namespace: opts.namespace, api: apiName });
        let proof: { assertion: string; sub: string } | undefined;
        if (source) {
          try {
            proof = await requestAssertion(source, retirementTarget(name, await queryStatus(ctx, id), version));
          } catch (err) {
            if (err instanceof CliExit) throw err;
            throw new CliExit(EXIT.invalid, `${name}: ${(err as Error).message}`);
          }
          if (opts.as !== undefined && opts.as !== proof.sub) throw new CliExit(EXIT.usage, `--as ${opts.as}: the identity server proved you are ${proof.sub}`);
        }
        // With a proof, who you are is what it proves; the token itself is never sent to Temporal.
        const input = { version, by: proof ? proof.sub : identity(opts.as), ...(proof ? { proof: proof.assertion } : {}), ...(opts.reason ? { reason: opts.reason } : {}) };
        const s = await update(ctx, id, name, () => ctx.client.workflow.getHandle(id).executeUpdate(def, { args: [input] }));
        if (s) print(ctx.output, s, () => `${name}: accepted by ${id}\n${apiSummary(s, 0)}`);
      });
  }

  api
    .command('status <api>')
    .description('every version\'s state, retirement, and the recent audit trail (-o json: everything)')
    .option('-n, --namespace <namespace>', 'the API\'s namespace', 'default')
    .option('--audit <n>', 'audit entries to show in text output', '5')
    .action(async (apiName: string, opts: { namespace: string; audit: string }, cmd: Command) => {
      const n = Number(opts.audit);
      if (!Number.isInteger(n) || n < 0) throw new CliExit(EXIT.usage, '--audit: a whole number ≥ 0');
      const ctx = await context(cmd);
      const s = await queryStatus(ctx, apiWorkflowId({ namespace: opts.namespace, api: apiName }));
      print(ctx.output, s, () => apiSummary(s, n));
    });
}
