/** The `glidepath` CLI. Usage errors exit 2; each command documents its other exit codes. */
import { Command, CommanderError, Option } from 'commander';
import { registerLint } from './lint.ts';
import { CliExit } from './command.ts';
import { registerRelease } from './release.ts';
import { registerGroup } from './group.ts';
import { registerCodecServer } from './codec-server.ts';
import { registerApi } from './api.ts';
import { registerIdentityServer } from './identity-server.ts';
import { registerSource } from './source.ts';
import { registerDrift } from './drift.ts';
import { EXIT } from './output.ts';

export function buildProgram(): Command {
  const program = new Command('glidepath')
    .description('Durable progressive delivery for Kubernetes, built on Temporal')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str) });
  registerLint(program);
  registerRelease(program);
  registerGroup(program);
  registerApi(program);
  registerCodecServer(program);
  registerIdentityServer(program);
  registerSource(program);
  registerDrift(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) return EXIT.ok;
      return EXIT.usage;
    }
    if (err instanceof CliExit) {
      process.stderr.write(`glidepath: ${err.message}\n`);
      return err.code;
    }
    process.stderr.write(`glidepath: ${(err as Error).message}\n`);
    return EXIT.failed;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
