/**
 * `glidepath source …`: start, list, status, poll and stop Git sources (workflows/git-source.ts),
 * and serve their webhook. Exit codes: 0 done, 1 refused (a source of that repository, branch and
 * path already runs), 2 invalid input or usage, 5 Temporal unreachable or failed.
 */
import { Option, type Command } from 'commander';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { AddressInfo } from 'node:net';
import { uiLink } from '../workers/config.ts';
import { gitSourceStatusQuery, wakeSignal, type GitSourceInput, type GitSourceStatus } from '../workflows/git-source/messages.ts';
import { DEFAULT_POLL_INTERVAL, GIT_SOURCE_WORKFLOW, MIN_POLL_INTERVAL_MS, gitSourceWorkflowId, sourceProblems, type RevertMode } from '../workflows/git-source/source.ts';
import { closeGracefully, untilStopSignal } from './codec-server.ts';
import { CliExit, context, identity, type Ctx } from './command.ts';
import { EXIT, escapeControl, print } from './output.ts';
import { WEBHOOK_PATH, WEBHOOK_SECRET_FILE_ENV, createWebhookServer, readWebhookSecret, wakeSources } from './source-webhook.ts';

interface Where {
  repo?: string;
  branch?: string;
  path?: string;
}

const whereOptions = (cmd: Command): Command =>
  cmd
    .option('--repo <url>', 'repository URL (http or https, without credentials)')
    .option('--branch <name>', 'branch', 'main')
    .option('--path <dir>', 'directory in the repository holding the documents', '.');

const OPTION_OF: Record<string, string> = { repository: '--repo', branch: '--branch', path: '--path', pollInterval: '--interval', 'credentials.file': '--credentials-file', 'credentials.env': '--credentials-env', revert: '--revert', credentials: '--credentials-file/--credentials-env' };

/** A problem of the source's input, naming the option that set the field. */
function asOption(problem: string): string {
  const at = problem.indexOf(': ');
  const option = OPTION_OF[problem.slice(0, at)];
  return option ? `${option}${problem.slice(at)}` : problem;
}

/** A source named by workflow ID, or by --repo/--branch/--path. */
function sourceId(id: string | undefined, w: Where): string {
  if (id && w.repo) throw new CliExit(EXIT.usage, 'name the source by ID or by --repo, not both');
  if (id) return id;
  if (!w.repo) throw new CliExit(EXIT.usage, 'name the source: an ID (gitsource:…) or --repo URL [--branch B] [--path DIR]');
  return gitSourceWorkflowId({ repository: w.repo, branch: w.branch ?? 'main', path: w.path ?? '.' });
}

async function queryStatus(ctx: Ctx, id: string): Promise<GitSourceStatus> {
  try {
    return await ctx.client.workflow.getHandle(id).query(gitSourceStatusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new CliExit(EXIT.usage, `no Git source ${id} in namespace ${ctx.settings.namespace}`);
    throw err;
  }
}

export function sourceSummary(s: GitSourceStatus): string {
  const lines = [
    `${s.sourceId}`,
    `  ${s.repository} ${s.branch} ${s.path}   every ${s.pollIntervalMs / 1000}s   ${s.polls} poll(s), ${s.wakes} wake(s)`,
    `  ${s.condition.type}${s.condition.commit ? ` at ${s.condition.commit.slice(0, 12)}` : ''}: ${s.condition.message}`,
    `  last commit ${s.lastCommit ?? '(none yet)'}${s.lastPolledAt ? `   polled ${s.lastPolledAt}` : ''}`,
  ];
  for (const t of s.tracked) lines.push(`  ${t.file} → ${t.workflowId}${t.kind ? ` (${t.kind === 'group' ? 'group' : 'API version'})` : ''} (from ${t.commit.slice(0, 12)}${t.lastGood && t.lastGood !== t.commit ? `; a revert restores it as at ${t.lastGood.slice(0, 12)}` : ''})`);
  for (const p of s.pending) lines.push(`  pending: ${p.file} at ${p.commit.slice(0, 12)} (${p.kind === 'group' ? 'the group or a member\'s workload' : 'a release of the workload'} is in flight)`);
  for (const c of s.commits.slice(-5)) {
    const releases = c.releases.map((r) => `${r.workflowId} ${r.outcome}`).join(', ');
    lines.push(`  ${c.commit.slice(0, 12)} ${c.result}${c.forcePushed ? ' (force-pushed)' : ''}  ${c.subject}${releases ? `  [${releases}]` : ''}`);
    for (const p of c.problems ?? []) lines.push(`    ${p}`);
  }
  return lines.map(escapeControl).join('\n');
}

function registerWebhook(source: Command): void {
  source
    .command('webhook')
    .description(`serve POST ${WEBHOOK_PATH}: a push event signed like GitHub's (X-Hub-Signature-256, HMAC-SHA256 of the body) wakes the sources of its repository and branch; a missing or wrong signature answers 401 and wakes nothing`)
    .addOption(new Option('--port <port>', 'port to listen on (0: any free port)').default('8790'))
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--secret-file <file>', `file holding the shared secret, at least 16 characters (default: $${WEBHOOK_SECRET_FILE_ENV})`)
    .action(async (opts: { port: string; host: string; secretFile?: string }, cmd: Command) => {
      const port = Number(opts.port);
      if (!/^\d+$/.test(opts.port) || port > 65535) throw new CliExit(EXIT.usage, `--port: a port number, got ${opts.port}`);
      const file = opts.secretFile ?? process.env[WEBHOOK_SECRET_FILE_ENV];
      if (!file) throw new CliExit(EXIT.usage, `--secret-file or $${WEBHOOK_SECRET_FILE_ENV}: the shared secret is required`);
      let secret: string;
      try {
        secret = readWebhookSecret(file);
      } catch (err) {
        throw new CliExit(EXIT.usage, (err as Error).message);
      }
      const ctx = await context(cmd);
      const server = createWebhookServer({
        secret,
        wake: (push) => wakeSources(ctx.client, push),
        onRequest: ({ status, message }) => process.stderr.write(`${JSON.stringify({ level: status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info', status, message })}\n`),
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, opts.host, () => resolve());
      });
      const { address, port: bound } = server.address() as AddressInfo;
      process.stdout.write(`git webhook listening on http://${address.includes(':') ? `[${address}]` : address}:${bound}${WEBHOOK_PATH}\n`);
      const signal = await untilStopSignal();
      process.stdout.write(`git webhook: ${signal}, shutting down\n`);
      await closeGracefully(server);
      await ctx.client.connection.close();
      process.exitCode = EXIT.ok;
    });
}

export function registerSource(program: Command): void {
  const source = program.command('source').description('watch Git repositories: releases start from the commits of a branch (docs/git.md)');

  whereOptions(source.command('start'))
    .description('start watching a repository\'s branch and path; the first commit seen is the baseline (nothing starts) unless --start-existing; prints the source\'s workflow ID')
    .option('--interval <duration>', `how often to poll (at least ${MIN_POLL_INTERVAL_MS / 1000}s; the webhook wakes a source at once)`, DEFAULT_POLL_INTERVAL)
    .option('--credentials-file <file>', 'a file holding user:password or a token, for fetching and pushing reverts: inside the worker\'s $GLIDEPATH_GIT_CREDENTIALS_DIR (relative to it, or absolute)')
    .option('--credentials-env <name>', 'an environment variable GLIDEPATH_GIT_* of the worker holding the same')
    .option('--start-existing', 'start releases for the documents of the first commit seen too')
    .option('--revert <mode>', 'where a rolled-back or aborted release or release group, or an API version whose introduction failed, is written back: commit (on the branch) or branch (a review branch glidepath/revert/<release, group or api-…/version>/<commit> to merge)', 'commit')
    .action(async (opts: Where & { interval: string; credentialsFile?: string; credentialsEnv?: string; startExisting?: boolean; revert: string }, cmd: Command) => {
      if (!opts.repo) throw new CliExit(EXIT.usage, '--repo: required');
      const input: GitSourceInput = {
        repository: opts.repo,
        branch: opts.branch ?? 'main',
        path: opts.path ?? '.',
        pollInterval: opts.interval,
        ...(opts.credentialsFile !== undefined || opts.credentialsEnv !== undefined
          ? { credentials: { ...(opts.credentialsFile !== undefined ? { file: opts.credentialsFile } : {}), ...(opts.credentialsEnv !== undefined ? { env: opts.credentialsEnv } : {}) } }
          : {}),
        ...(opts.startExisting ? { startExisting: true } : {}),
        ...(opts.revert !== 'commit' ? { revert: opts.revert as RevertMode } : {}),
      };
      const problems = sourceProblems(input); // what the workflow checks at its start, named as options here
      if (problems.length > 0) throw new CliExit(EXIT.usage, problems.map(asOption).join('\n'));
      const ctx = await context(cmd);
      const workflowId = gitSourceWorkflowId(input);
      try {
        await ctx.client.workflow.start(GIT_SOURCE_WORKFLOW, {
          taskQueue: ctx.settings.taskQueue,
          workflowId,
          args: [input],
          workflowIdConflictPolicy: 'FAIL',
          staticSummary: `Git source ${input.repository} ${input.branch} ${input.path}`,
        });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) throw new CliExit(EXIT.invalid, `a source of ${input.repository} ${input.branch} ${input.path} already runs: ${workflowId}`);
        throw err;
      }
      print(ctx.output, { workflowId, ui: uiLink(ctx.settings, workflowId) }, () => `started ${workflowId}\n${uiLink(ctx.settings, workflowId)}`);
    });

  whereOptions(source.command('status [id]'))
    .description('the source\'s condition, last commit, tracked files (releases, groups, API versions) and recent commits (what each started)')
    .action(async (id: string | undefined, opts: Where, cmd: Command) => {
      const ctx = await context(cmd);
      const s = await queryStatus(ctx, sourceId(id, opts));
      print(ctx.output, s, () => sourceSummary(s));
    });

  source
    .command('list')
    .description('the running sources')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = await context(cmd);
      const ids: string[] = [];
      for await (const w of ctx.client.workflow.list({ query: `WorkflowType = '${GIT_SOURCE_WORKFLOW}' AND ExecutionStatus = 'Running'` })) {
        ids.push(w.workflowId);
        if (ids.length >= 1000) break;
      }
      print(ctx.output, ids, () => ids.map(escapeControl).join('\n') || '(no running Git source)');
    });

  whereOptions(source.command('poll [id]'))
    .description('wake the source now (as its webhook does): it fetches the branch at once')
    .option('--as <user>', 'who asks (default $GLIDEPATH_USER, else the OS user)')
    .action(async (id: string | undefined, opts: Where & { as?: string }, cmd: Command) => {
      const ctx = await context(cmd);
      const wid = sourceId(id, opts);
      await queryStatus(ctx, wid); // names a missing source
      await ctx.client.workflow.getHandle(wid).signal(wakeSignal, { by: identity(opts.as) });
      print(ctx.output, { woken: wid }, () => `woke ${wid}`);
    });

  whereOptions(source.command('stop [id]'))
    .description('stop watching (cancels the source; releases it started go on)')
    .action(async (id: string | undefined, opts: Where, cmd: Command) => {
      const ctx = await context(cmd);
      const wid = sourceId(id, opts);
      try {
        await ctx.client.workflow.getHandle(wid).cancel();
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new CliExit(EXIT.usage, `no Git source ${wid} in namespace ${ctx.settings.namespace}`);
        throw err;
      }
      print(ctx.output, { stopped: wid }, () => `stopped ${wid}`);
    });

  registerWebhook(source);
}
