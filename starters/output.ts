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

/**
 * Control characters (C0, DEL, C1, line/paragraph separators, bidirectional overrides) escaped as
 * `\n`, `\x1b`, `\u202e` …: text from a release (who acted, their reason, messages) cannot start a line
 * of its own, move the cursor or recolour the terminal. Apply to each line of text output.
 */
export function escapeControl(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return String(text).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
