/**
 * Freeze windows: spans of time in which a release does not start, or does not go past a named
 * point of its strategy, unless a permitted person overrides the freeze (audited).
 *
 * A window is absolute (`start`/`end`, RFC 3339 with an offset) or weekly (`weekly.start`/`end` as
 * "Fri 18:00" in `weekly.timeZone`, an IANA zone). `before` names the point it holds:
 *   start       the release does not start (nothing is touched)
 *   promotion   canary/rolling: before promotion; blue/green: before the switch
 *   step-N      canary/rolling: before step N (numbered from 1, as status prints it)
 *
 * Windows come from the release (`spec.freeze`) and from the worker's policy file
 * (activities/freeze.ts, scoped by namespace or workload). The workflow never reads a clock zone:
 * an activity resolves the windows into absolute intervals (recorded in history) and the workflow
 * compares them with its own time. Workflow-safe; Intl is used only to check a zone name. The
 * schemas of `spec.freeze` and of the worker's policy file are in model/freeze-schema.ts (edge and
 * activities only: the workflow code never imports zod).
 */
export const MAX_FREEZE_WINDOWS = 50;
export const MAX_OVERRIDERS = 50;
/** How far ahead weekly windows are resolved into intervals; the workflow resolves again past it. */
export const FREEZE_HORIZON_MS = 14 * 24 * 3_600_000;

export const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const WEEK_MS = 7 * 24 * 3_600_000;

export interface WeeklySpec {
  /** "Fri 18:00": a weekday (Sun…Sat) and a 24-hour local time. */
  start: string;
  end: string;
  timeZone: string;
}

export interface FreezeWindowSpec {
  name: string;
  /** The point held (default `start`). */
  before?: string | undefined;
  start?: string | undefined;
  end?: string | undefined;
  weekly?: WeeklySpec | undefined;
}

/** `spec.freeze` of a Release (the plan keeps it as is). */
export interface FreezeSpec {
  windows: FreezeWindowSpec[];
  /** Who may override this release's windows (proven by the identity server when the worker has an identity policy). */
  overriders?: string[] | undefined;
}

/** A window of the worker's policy file: the same fields, plus its scope. */
export interface PolicyWindowSpec extends FreezeWindowSpec {
  /** Only releases in these namespaces (none: every namespace). */
  namespaces?: string[] | undefined;
  /** Only these workloads, as namespace/name (none: every workload in scope). */
  workloads?: string[] | undefined;
}

export interface FreezePolicyFile {
  windows: PolicyWindowSpec[];
  overriders?: string[] | undefined;
}

/** One occurrence of a window, as the workflow sees it (recorded in history). */
export interface FreezeInterval {
  /** `release/<name>` or `worker/<name>`. */
  window: string;
  before: string;
  startMs: number;
  endMs: number;
  /** Who may override it. */
  overriders: string[];
}

/** What the freeze-policy activity returns: the intervals overlapping [fromMs, untilMs), and when to ask again. */
export interface ResolvedFreeze {
  intervals: FreezeInterval[];
  untilMs: number;
}

// ---- validation ---------------------------------------------------------------------------------

export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
export const WEEKLY_TIME = /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) ([01]\d|2[0-3]):([0-5]\d)$/;

/** The time zone's problem, or undefined when Intl knows it. */
export function timeZoneProblem(zone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return undefined;
  } catch {
    return `unknown time zone "${zone}" (an IANA name such as Europe/Berlin or UTC)`;
  }
}

/** Minutes since Sunday 00:00 of a "Fri 18:00" weekly time. */
export function weeklyMinute(text: string): number | undefined {
  const m = WEEKLY_TIME.exec(text);
  if (!m) return undefined;
  return WEEKDAYS.indexOf(m[1] as (typeof WEEKDAYS)[number]) * 1440 + Number(m[2]) * 60 + Number(m[3]);
}

/** The points a strategy can be held at: start, step-1 … step-N (canary, rolling), promotion. */
export function freezePoints(strategy: { type: string; steps?: unknown[] }): string[] {
  const steps = strategy.type === 'blueGreen' ? [] : (strategy.steps ?? []).map((_, i) => `step-${i + 1}`);
  return ['start', ...steps, 'promotion'];
}

/** Windows whose `before` the strategy does not have: the window's index and why. */
export function freezePointProblems(freeze: FreezeSpec, strategy: { type: string; steps?: unknown[] }): { window: number; message: string }[] {
  const points = freezePoints(strategy);
  const shown = points.length > 6 ? [...points.slice(0, 3), '…', ...points.slice(-2)] : points;
  return freeze.windows.flatMap((w, i) =>
    w.before === undefined || points.includes(w.before) ? [] : [{ window: i, message: `unknown step "${w.before}": this ${strategy.type} release has ${shown.join(', ')}` }],
  );
}

// ---- the workflow's view --------------------------------------------------------------------------

/** The interval holding `point` at `nowMs` that ends last among those overlapping now (not overridden), if any. */
export function freezeAt(intervals: readonly FreezeInterval[], point: string, nowMs: number, overridden: (i: FreezeInterval) => boolean = () => false): FreezeInterval | undefined {
  let found: FreezeInterval | undefined;
  for (const i of intervals) {
    if (i.before !== point || i.startMs > nowMs || i.endMs <= nowMs || overridden(i)) continue;
    if (!found || i.endMs > found.endMs) found = i;
  }
  return found;
}

/** A stable key of one occurrence (an override lifts that occurrence only). */
export const intervalKey = (i: FreezeInterval): string => `${i.window}@${i.startMs}`;

// ---- resolution (run in an activity: it reads zone rules) -------------------------------------

/** The zone's offset from UTC at `ms`, in milliseconds. */
function zoneOffset(ms: number, zone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' }).formatToParts(new Date(ms));
  const get = (t: string): number => Number(parts.find((p) => p.type === t)?.value ?? 0);
  return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second')) - (ms - (ms % 1000));
}

/** UTC milliseconds of a local wall time in `zone` (a time skipped by DST lands just after the gap). */
function fromLocal(localAsUtcMs: number, zone: string): number {
  const first = localAsUtcMs - zoneOffset(localAsUtcMs, zone);
  const second = localAsUtcMs - zoneOffset(first, zone);
  return second;
}

/** The occurrences of a weekly window overlapping [fromMs, untilMs). */
export function weeklyIntervals(w: WeeklySpec, fromMs: number, untilMs: number): { startMs: number; endMs: number }[] {
  const s = weeklyMinute(w.start) as number;
  let e = weeklyMinute(w.end) as number;
  if (e <= s) e += 7 * 1440;
  // The local Sunday 00:00 (as if UTC) of the week before fromMs; walk week by week.
  const localFrom = fromMs + zoneOffset(fromMs, w.timeZone);
  const day = new Date(localFrom).getUTCDay();
  const midnight = localFrom - (localFrom % 86_400_000);
  const out: { startMs: number; endMs: number }[] = [];
  for (let week = midnight - day * 86_400_000 - WEEK_MS; week < untilMs + WEEK_MS + 86_400_000; week += WEEK_MS) {
    const startMs = fromLocal(week + s * 60_000, w.timeZone);
    const endMs = fromLocal(week + e * 60_000, w.timeZone);
    if (endMs > fromMs && startMs < untilMs) out.push({ startMs, endMs });
  }
  return out;
}

/** One window's occurrences overlapping [fromMs, untilMs) as intervals. */
export function windowIntervals(w: FreezeWindowSpec, source: 'release' | 'worker', overridersOf: string[], fromMs: number, untilMs: number): FreezeInterval[] {
  const base = { window: `${source}/${w.name}`, before: w.before ?? 'start', overriders: overridersOf };
  if (w.weekly) return weeklyIntervals(w.weekly, fromMs, untilMs).map((o) => ({ ...base, ...o }));
  const startMs = Date.parse(w.start as string);
  const endMs = Date.parse(w.end as string);
  return endMs > fromMs && startMs < untilMs ? [{ ...base, startMs, endMs }] : [];
}

/** Whether a worker window applies to a release of `namespace`/`workload`. */
export function inScope(w: PolicyWindowSpec, namespace: string, workload: string): boolean {
  if (w.namespaces && !w.namespaces.includes(namespace)) return false;
  if (w.workloads && !w.workloads.includes(`${namespace}/${workload}`)) return false;
  return true;
}

/** The release's and the worker's windows as intervals from `fromMs` over the horizon. */
export function resolveFreeze(release: FreezeSpec | undefined, worker: FreezePolicyFile | undefined, scope: { namespace: string; workload: string }, fromMs: number): ResolvedFreeze {
  const untilMs = fromMs + FREEZE_HORIZON_MS;
  const intervals = [
    ...(release?.windows ?? []).flatMap((w) => windowIntervals(w, 'release', release?.overriders ?? [], fromMs, untilMs)),
    ...(worker?.windows ?? []).filter((w) => inScope(w, scope.namespace, scope.workload)).flatMap((w) => windowIntervals(w, 'worker', worker?.overriders ?? [], fromMs, untilMs)),
  ];
  return { intervals, untilMs };
}
