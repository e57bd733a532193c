/**
 * Durations as Argo Rollouts writes them: Go duration strings ("30s", "1h30m", "500ms") or an
 * integer number of seconds. We also accept a `d` unit (24h) because week-long soaks are common.
 * Pure and workflow-safe.
 */
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/** Parses a duration; returns milliseconds, or throws an Error whose message says what is wrong. */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isInteger(input) || input < 0) {
      throw new Error(`duration ${input} must be a whole, non-negative number of seconds`);
    }
    return input * 1_000;
  }
  const text = input.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1_000;
  if (text === '' || text === '0') return 0;
  PART.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  let match: RegExpExecArray | null;
  while ((match = PART.exec(text)) !== null) {
    const [whole, amount, unit] = match;
    total += Number(amount) * (UNIT_MS[unit as string] as number);
    consumed += whole.length;
  }
  if (consumed !== text.length) {
    throw new Error(`"${input}" is not a duration (use e.g. "30s", "5m", "1h30m", "7d" or a number of seconds)`);
  }
  return Math.round(total);
}

/** Formats milliseconds compactly ("1h30m", "45s", "250ms") for messages and status. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1_000) return `${ms}ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1_000);
  for (const [unit, size] of [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}
