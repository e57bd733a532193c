/**
 * What the Temporal-facing commands (`release`, `api`) share: the error that carries an exit code,
 * the caller's identity, the connection, and duration arguments.
 */
import os from 'node:os';
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { parseDuration } from '../model/duration.ts';
import { connectClient, temporalSettings, type TemporalSettings } from '../workers/config.ts';
import { EXIT, type Output } from './output.ts';

/** Ends the command with `code` and `message` on stderr (starters/main.ts). */
export class CliExit extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/** `--as`, else $GLIDEPATH_USER, else the OS user. */
export function identity(as: string | undefined): string {
  return as ?? process.env.GLIDEPATH_USER ?? os.userInfo().username;
}

export interface Ctx {
  output: Output;
  settings: TemporalSettings;
  client: Client;
}

/** The output format and a connected client; an unreachable Temporal is exit 5. */
export async function context(cmd: Command): Promise<Ctx> {
  const output = cmd.optsWithGlobals<{ output: Output }>().output;
  const settings = temporalSettings();
  try {
    return { output, settings, client: await connectClient(settings) };
  } catch (err) {
    throw new CliExit(EXIT.failed, `cannot reach Temporal at ${settings.address} (TEMPORAL_ADDRESS): ${(err as Error).message}`);
  }
}

/** A duration argument (`90s`, `10m`); a bad one is a usage error naming the option. */
export function duration(name: string, value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new CliExit(EXIT.usage, `${name}: ${(err as Error).message}`);
  }
}
