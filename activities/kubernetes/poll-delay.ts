/**
 * How often a wait on a workload reads it again. Each read is a GET the apiserver serves from etcd, and
 * a thousand waits at the steady interval (500 ms) are 2,000 requests a second. On a busy control plane
 * those reads were most of its load (bench/scale-out.ts, 300 canaries waiting on a Deployment controller
 * busy with 10,000 Deployments: 171,127 GETs of Deployments in 9 minutes, over 8 times the next
 * request kind), slowing the very controller the waits wait for.
 * So a wait whose workload has not moved for a while reads it at most every tenth of that stall, up to
 * {@link STALLED_POLL_MAX_MS}: a stalled rollout that starts moving again is seen at most 10 % of its
 * stall later (5 s at most), and progress brings the steady interval back at once.
 */
export const STALLED_POLL_MAX_MS = 5000;

/** The interval after a read, for a wait whose steady interval is `intervalMs` and whose workload last moved `stalledMs` ago. */
export function stalledPollInterval(intervalMs: number, stalledMs: number): number {
  return Math.max(intervalMs, Math.min(STALLED_POLL_MAX_MS, Math.floor(stalledMs / 10)));
}
