/**
 * `npm start` (scripts/demo.sh) on its own ports and state dir, as a process manager or CI runner
 * meets it: the dev server, the control plane, the worker and Prometheus come up, Prometheus scrapes
 * the worker, the UI link names TEMPORAL_UI_PORT; the live traffic lines show the canary's share of real
 * requests through Traefik at each weight (within 3 σ, binomial) with zero errors, and, once approved,
 * every request answered by v2; then one signal to npm's PID (SIGTERM, as `timeout` or a process manager
 * sends) or to its process group (SIGINT, as Ctrl-C does) stops every process the demo started, and the data
 * plane's namespace and guard route are gone. The traffic module fails naming the data-plane lock when another
 * run holds it. Slow (a control plane per run); each run is bounded.
 * Needs PROMETHEUS_BIN and TEMPORAL_CLI (npm test provides both); the traffic needs root (network namespaces)
 * and Traefik (the demo provisions it, cached): without them the demo must say why in one line.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../support/daemon.ts';
import { root } from '../e2e/support.ts';
import { GUARD_CIDR, LOCK_FILE, netnsUnavailable } from '../../dataplane/netns.ts';
import { withinBinomial } from '../../dataplane/load.ts';

const trafficSkip = netnsUnavailable();

const READY = 'Everything keeps running until Ctrl-C.';

interface Demo {
  npm: ChildProcess;
  state: string;
  env: NodeJS.ProcessEnv;
  output: () => string;
  exited: Promise<void>;
}

async function startDemo(): Promise<Demo> {
  const state = await mkdtemp(path.join(os.tmpdir(), 'glidepath-demo-'));
  const metrics = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GLIDEPATH_STATE: state,
    TEMPORAL_PORT: String(await freePort()),
    TEMPORAL_UI_PORT: String(await freePort()),
    GLIDEPATH_KUBE_APISERVER_PORT: String(await freePort()),
    GLIDEPATH_ETCD_PORT: String(await freePort()),
    GLIDEPATH_ETCD_PEER_PORT: String(await freePort()),
    GLIDEPATH_METRICS_ADDRESS: `127.0.0.1:${metrics}`,
    GLIDEPATH_CORE_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
    GLIDEPATH_PROMETHEUS_PORT: String(await freePort()),
    GLIDEPATH_TRAEFIK_PORT: String(await freePort()),
    GLIDEPATH_TRAEFIK_ADMIN_PORT: String(await freePort()),
    // Another data-plane run on this machine (a suite of npm test runs one file at a time) may hold the lock a while.
    GLIDEPATH_DATAPLANE_LOCK_WAIT: '300',
    GLIDEPATH_SHUTDOWN_GRACE: '2s',
  };
  // The demo's own servers, not the ones npm test started for the other suites.
  for (const k of ['TEMPORAL_ADDRESS', 'KUBECONFIG', 'GLIDEPATH_TASK_QUEUE', 'GLIDEPATH_UI_URL']) delete env[k];
  // Its own process group (as in a terminal), so a group signal reaches npm and the demo, not this test.
  const npm = spawn('npm', ['start'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  npm.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  npm.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((r) => npm.once('exit', () => r()));
  const deadline = Date.now() + 8 * 60_000;
  while (!out.includes(READY)) {
    if (npm.exitCode !== null || npm.signalCode !== null) assert.fail(`npm start ended before it was ready:\n${out.slice(-4000)}`);
    if (Date.now() > deadline) {
      process.kill(-npm.pid!, 'SIGTERM');
      assert.fail(`npm start not ready after 8 min:\n${out.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { npm, state, env, output: () => out, exited };
}

const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};
const ppid = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
};
const cmdline = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
};

/** Every process of the demo: npm, its descendants, and the servers it started in their own sessions (pid files). */
function demoProcesses(d: Demo): Map<number, string> {
  const found = new Map<number, string>([[d.npm.pid!, 'npm']]);
  const pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number);
  for (let grew = true; grew; ) {
    grew = false;
    for (const pid of pids) {
      const parent = ppid(pid);
      if (!found.has(pid) && parent !== undefined && found.has(parent) && alive(pid)) {
        found.set(pid, cmdline(pid).slice(0, 200));
        grew = true;
      }
    }
  }
  const pidFiles = [path.join(d.state, 'temporal/server.pid'), ...['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'].map((n) => path.join(d.state, `kube/${n}.pid`))];
  for (const f of pidFiles) {
    assert.ok(existsSync(f), `${f} exists while the demo runs`);
    found.set(Number(readFileSync(f, 'utf8').trim()), path.basename(f, '.pid'));
  }
  return found;
}

async function checkRunning(d: Demo): Promise<Map<number, string>> {
  const procs = demoProcesses(d);
  // The demo script's short-lived subshells (its once-a-second parent check) may end between scan and check,
  // and so may a process already exiting when scanned (an empty command line: a zombie; CI saw one once).
  for (const [pid, name] of procs) if (!alive(pid) && (name.includes('demo.sh') || name === '')) procs.delete(pid);
  const names = [...procs.values()].join('\n');
  const traffic = trafficSkip ? [] : ['dataplane/demo-traffic.ts', 'traefik', 'backend.ts'];
  for (const want of ['npm', 'demo.sh', 'workers/main.ts', 'prometheus', 'server', 'etcd', 'kube-apiserver', 'kwok', ...traffic]) assert.match(names, new RegExp(want.replace('.', '\\.')), `${want} runs`);
  for (const [pid, name] of procs) assert.ok(alive(pid), `${name} (${pid}) alive`);
  assert.match(d.output(), new RegExp(`Temporal UI: +http://127\\.0\\.0\\.1:${d.env.TEMPORAL_UI_PORT}/namespaces/default/workflows/release_payments_payment-gateway`));
  // Prometheus runs and has scraped the worker.
  const url = `http://127.0.0.1:${d.env.GLIDEPATH_PROMETHEUS_PORT}/api/v1/query?query=${encodeURIComponent('up{job="glidepath-worker"}')}`;
  let up = '';
  for (let i = 0; i < 60 && up !== '1'; i++) {
    const body = (await (await fetch(url)).json()) as { data: { result: { value: [number, string] }[] } };
    up = body.data.result[0]?.value[1] ?? '';
    if (up !== '1') await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(up, '1', 'Prometheus scrapes the worker');
  return procs;
}

async function allGone(procs: Map<number, string>, d: Demo): Promise<void> {
  const deadline = Date.now() + 90_000;
  let left = [...procs].filter(([pid]) => alive(pid));
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    left = [...procs].filter(([pid]) => alive(pid));
  }
  if (left.length > 0) for (const [pid] of left) process.kill(pid, 'SIGKILL');
  assert.deepEqual(left.map(([pid, name]) => `${pid} ${name}`), [], `still running 90 s after the signal:\n${d.output().slice(-2000)}`);
  if (trafficSkip) return;
  const trafficPid = [...procs].find(([, name]) => name.includes('dataplane/demo-traffic.ts'))?.[0];
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  assert.ok(!namespaces.includes(`glidepath-dp-${trafficPid} `) && !namespaces.includes(`glidepath-dp-${trafficPid}\n`), `the demo's network namespace is gone: ${namespaces}`);
  const guard = execFileSync('ip', ['route', 'show', 'exact', GUARD_CIDR], { encoding: 'utf8' }).trim();
  assert.ok(guard === '' || ownedByAnotherRun(), `the guard route ${GUARD_CIDR} is gone after the demo (${guard})`);
}

/** After a failed check, the demo still runs: one SIGTERM to its process group stops it (and frees the data-plane lock). */
async function stopLeftover(d: Demo): Promise<void> {
  if (d.npm.exitCode !== null || d.npm.signalCode !== null) return;
  try {
    process.kill(-d.npm.pid!, 'SIGTERM');
  } catch {
    return;
  }
  await Promise.race([d.exited, new Promise((r) => setTimeout(r, 90_000))]);
}

/** Whether another run holds the data-plane lock now (then the guard route may be that run's). */
function ownedByAnotherRun(): boolean {
  try {
    execFileSync('flock', ['--nonblock', LOCK_FILE, 'true'], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
}

interface SplitLine {
  line: string;
  /** 2xx answers per version in the line's 2 s. */
  byVersion: Record<string, number>;
  errors: number;
  /** The canary weight Traefik served at the line's end; `changed`: it moved within the 2 s. */
  canaryWeight: number;
  changed: boolean;
}

/** The demo's live split lines so far: `traffic  v1 90 % (36)  v2 10 % (4)  errors 0  | route stable 90 canary 10`. */
function splitLines(out: string): SplitLine[] {
  const lines: SplitLine[] = [];
  for (const m of out.matchAll(/^traffic {2}(.*) {2}errors (\d+) {2}\| route stable (\d+) canary (\d+)( \(changed\))?$/gm)) {
    const byVersion: Record<string, number> = {};
    for (const v of (m[1] as string).matchAll(/(\S+) \d+ % \((\d+)\)/g)) byVersion[v[1] as string] = Number(v[2]);
    lines.push({ line: m[0], byVersion, errors: Number(m[2]), canaryWeight: Number(m[4]), changed: Boolean(m[5]) });
  }
  return lines;
}

/** Asserts that the requests of the lines at canary weight `weight` (not changing within a line) split as weighted. */
function assertShare(lines: SplitLine[], weight: number, version: string): void {
  const at = lines.filter((l) => l.canaryWeight === weight && !l.changed);
  assert.ok(at.length > 0, `a traffic line at canary weight ${weight}:\n${lines.map((l) => l.line).join('\n')}`);
  const n = at.reduce((a, l) => a + Object.values(l.byVersion).reduce((x, y) => x + y, 0), 0);
  const hits = at.reduce((a, l) => a + (l.byVersion[version] ?? 0), 0);
  // 3 σ, tighter than the suites' 4.5: with a few lines per step 4.5 σ would let a canary at 10 % that got nothing pass.
  const b = withinBinomial(hits, n, weight / 100, 3);
  assert.ok(hits > 0, `at weight ${weight} ${version} answered some requests:\n${at.map((l) => l.line).join('\n')}`);
  assert.ok(n >= 20 * at.length, `about 20 requests/s flow at weight ${weight}: ${n} in ${at.length} lines`);
  assert.ok(b.ok, `at weight ${weight} ${version} answered ${hits} of ${n}, expected ${b.expected.toFixed(1)} ± ${b.tolerance.toFixed(1)} (3 σ):\n${at.map((l) => l.line).join('\n')}`);
  console.log(`demo traffic at canary weight ${weight}: ${version} answered ${hits} of ${n} requests in ${at.length} lines (expected ${b.expected.toFixed(1)} ± ${b.tolerance.toFixed(1)})`);
}

/** Waits until `pred` holds for the split lines printed so far. */
async function untilLines(d: Demo, pred: (lines: SplitLine[]) => boolean, what: string, timeoutMs: number): Promise<SplitLine[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const lines = splitLines(d.output());
    if (pred(lines)) return lines;
    if (Date.now() > end) assert.fail(`no ${what} after ${timeoutMs / 1000} s:\n${d.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * The live split: at the first step (10 %) and at the approval (50 %) the canary's share of the requests is
 * the weight within 3 σ; after approval every request is answered by v2; no request failed at any moment.
 */
async function checkTraffic(d: Demo): Promise<void> {
  if (trafficSkip) {
    assert.match(d.output(), /^traffic: not shown: .+$/m, 'the demo says in one line why it shows no traffic');
    return;
  }
  const atApproval = await untilLines(d, (ls) => ls.filter((l) => l.canaryWeight === 50 && !l.changed).length >= 3, '3 traffic lines at weight 50', 30_000);
  assertShare(atApproval, 10, 'v2');
  assertShare(atApproval, 50, 'v2');
  assert.deepEqual(Object.keys(atApproval.reduce((a, l) => ({ ...a, ...l.byVersion }), {})).sort(), ['v1', 'v2'], 'v1 and v2 answer');
  const env = { ...d.env, TEMPORAL_ADDRESS: `127.0.0.1:${d.env.TEMPORAL_PORT}` };
  execFileSync(path.join(root, 'bin/glidepath'), ['release', 'approve', 'release_payments_payment-gateway', '--as', 'alice', '--reason', 'demo test'], { env, stdio: 'pipe' });
  const promoted = await untilLines(d, (ls) => ls.slice(atApproval.length).filter((l) => l.canaryWeight === 0 && !l.changed && (l.byVersion.v2 ?? 0) > 0 && !l.byVersion.v1).length >= 2, 'two traffic lines answered by v2 alone after approval', 120_000);
  const failed = promoted.filter((l) => l.errors > 0).map((l) => l.line);
  assert.deepEqual(failed, [], 'no request failed through the release and its promotion');
  const sum = promoted.reduce((a, l) => a + l.errors + Object.values(l.byVersion).reduce((x, y) => x + y, 0), 0);
  console.log(`demo traffic: ${promoted.length} lines, ${sum} requests through the release and its promotion, 0 failed; last: ${promoted.at(-1)?.line}`);
}

test('npm start shows the canary\'s live traffic split at its weights, then v2 alone after approval; SIGTERM to its PID stops the dev server, the control plane, the worker, Prometheus and the traffic', { timeout: 15 * 60_000 }, async () => {
  const d = await startDemo();
  try {
    const procs = await checkRunning(d);
    await checkTraffic(d);
    process.kill(d.npm.pid!, 'SIGTERM');
    await allGone(procs, d);
    await d.exited;
  } finally {
    await stopLeftover(d);
    await rm(d.state, { recursive: true, force: true });
  }
});

test('SIGINT to npm start\'s process group (Ctrl-C) stops everything too', { timeout: 12 * 60_000 }, async () => {
  const d = await startDemo();
  try {
    const procs = await checkRunning(d);
    process.kill(-d.npm.pid!, 'SIGINT');
    await allGone(procs, d);
    await d.exited;
  } finally {
    await stopLeftover(d);
    await rm(d.state, { recursive: true, force: true });
  }
});

test('the demo\'s traffic fails naming the data-plane lock when another run holds it past the wait', { skip: trafficSkip, timeout: 8 * 60_000 }, async () => {
  const state = await mkdtemp(path.join(os.tmpdir(), 'glidepath-demo-lock-'));
  // Holds the lock as another data-plane run would (waiting for it first if one runs now).
  // It holds it until its stdin closes (killing flock would leave its child holding the lock).
  const holder = spawn('flock', ['--exclusive', '--wait', '300', LOCK_FILE, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout.once('data', () => resolve());
      holder.once('exit', (code) => reject(new Error(`flock exited ${code}`)));
    });
    // The module parses the kubeconfig before the lock and talks to no cluster until it holds the lock.
    const kubeconfig = path.join(state, 'kubeconfig');
    writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n');
    const t0 = Date.now();
    const run = spawn(process.execPath, [path.join(root, 'dataplane/demo-traffic.ts')], {
      env: { ...process.env, KUBECONFIG: kubeconfig, TRAEFIK_BIN: '/nonexistent/traefik', GLIDEPATH_STATE: state, GLIDEPATH_DATAPLANE_LOCK_WAIT: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    run.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    run.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
    const code = await new Promise<number | null>((resolve) => run.once('exit', resolve));
    assert.equal(code, 1, out);
    assert.match(out, /another run holds the data-plane lock \/run\/glidepath-dataplane\.lock .*waiting up to 2 s/);
    assert.match(out, /traffic: failed: another run held the data-plane lock \/run\/glidepath-dataplane\.lock for more than 2 s/);
    assert.ok(Date.now() - t0 < 30_000, `it gave up in ${Date.now() - t0} ms`);
    assert.ok(!existsSync(path.join(state, 'traffic/ready')), 'not ready');
  } finally {
    holder.stdin.end();
    if (holder.exitCode === null) await new Promise((r) => holder.once('exit', r));
    await rm(state, { recursive: true, force: true });
  }
});
