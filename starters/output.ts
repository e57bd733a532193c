/** Output helpers and exit codes shared by every command (documented in the README). */
export const EXIT = {
  ok: 0,
  /** lint: the spec is invalid; a release command: the release failed in a way not listed below. */
  invalid: 1,
  usage: 2,
  rolledBack: 3,
  aborted: 4,
  failed: 5,
  stillRunning: 6,
} as const;

export type Output = 'text' | 'json';

/** Prints data as JSON, or as the text `render` gives. */
export function print(output: Output, data: unknown, render: () => string, stream: 'stdout' | 'stderr' = 'stdout'): void {
  const text = output === 'json' ? JSON.stringify(data, null, 2) : render();
  (stream === 'stdout' ? process.stdout : process.stderr).write(`${text}\n`);
}
