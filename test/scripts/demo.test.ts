/**
 * `npm start` (scripts/demo.sh) on its own ports and state dir, as a process manager or CI runner
 * meets it: the dev server, the control plane, the worker and Prometheus come up, Prometheus scrapes
 * the worker, the UI link names TEMPORAL_UI_PORT; then one signal to npm's PID (SIGTERM, as
 * `timeout` or a process manager sends) or to its process group (SIGINT, as Ctrl-C does) stops every
 * process the demo started. Slow (a control plane per run); each run is bounded.
 * Needs PROMETHEUS_BIN and TEMPORAL_CLI (npm test provides both).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../support/daemon.ts';
import { root } from '../e2e/support.ts';

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
        found.set(pid, cmdline(pid).slice(0, 80));
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
  const names = [...procs.values()].join('\n');
  for (const want of ['npm', 'demo.sh', 'workers/main.ts', 'prometheus', 'server', 'etcd', 'kube-apiserver', 'kwok']) assert.match(names, new RegExp(want.replace('.', '\\.')), `${want} runs`);
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
}

test('SIGTERM to npm start\'s PID stops the dev server, the control plane, the worker and Prometheus', { timeout: 12 * 60_000 }, async () => {
  const d = await startDemo();
  try {
    const procs = await checkRunning(d);
    process.kill(d.npm.pid!, 'SIGTERM');
    await allGone(procs, d);
    await d.exited;
  } finally {
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
    await rm(d.state, { recursive: true, force: true });
  }
});
