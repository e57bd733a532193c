/**
 * How long one workflow task of a release or a release group may run, set by everything that starts
 * one: the CLI (starters/), a push to Git (activities/git/) and a group starting its member releases
 * (workflows/group/cells.ts). Signals that arrive while a task runs come together in the next one, and
 * the SDK spends about 1 ms of CPU per signal (it records a source-mapped stack trace for every promise
 * it creates; docs/servers.md, "Signal floods"), so a flood of 10,000 signals is one activation of 10 s
 * on a quiet core and 40 s or more on a loaded one. A burst of starts does the same to a busy worker:
 * each task waits behind the others it holds. Past the server's default task timeout (10 s) the task
 * fails and its retry replays and carries everything since: the release never gets past it. The
 * worker's own limit (ACTIVATION_LIMITS in workers/config.ts) stays below this, so the worker ends an
 * overlong task itself.
 */
export const WORKFLOW_TASK_TIMEOUT = '90s';
