/**
 * The Grafana dashboard (deploy/grafana/glidepath.json) against the real thing: the real worker process,
 * the Temporal dev server, the local control plane and a real Prometheus scraping the worker's /metrics
 * every second. The worker promotes one release, fails one (its Deployment does not exist, so an
 * activity fails) and watches the promoted workload for drift; then every query of the dashboard (its
 * panels' targets and its template variables, with Grafana's variables substituted) is sent to
 * Prometheus and must be accepted and return series. A misspelt metric or label, a query Prometheus
 * cannot parse, or a metric the worker no longer exports fails here.
 * Needs KUBECONFIG, TEMPORAL_ADDRESS and PROMETHEUS_BIN (npm test provides all three).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { eventually, startPrometheus, type PrometheusInstance } from '../support/prometheus.ts';
import { cli, connectClient, kube, randomSuffix, root, startWorker, suiteEnv, teardown, tempDir, waitAvailable, webNamespace, writeRelease } from './support.ts';

interface Target {
  refId: string;
  expr: string;
  datasource: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

const suffix = randomSuffix();
const taskQueue = `e2e-dashboard-${suffix}`;
const env = suiteEnv(taskQueue);
const DASHBOARD = path.join(root, 'deploy/grafana/glidepath.json');

let apps: AppsV1Api;
let core: CoreV1Api;
let client: Client;
let worker: ChildProcess | undefined;
let prometheus: PrometheusInstance | undefined;
const namespaces: string[] = [];

before(async () => {
  ({ apps, core } = kube());
  client = await connectClient();
  worker = await startWorker(env);
  prometheus = await startPrometheus({ targets: [String(env.GLIDEPATH_METRICS_ADDRESS)], scrapeIntervalSeconds: 1 });
});
after(async () => {
  await prometheus?.stop();
  await teardown({ worker, client, core, namespaces });
});

/** Grafana's variables as Grafana would expand them for this worker's task queue. */
const expand = (expr: string): string => expr.replaceAll('$__rate_interval', '30s').replaceAll('$task_queue', taskQueue);

async function query(expr: string): Promise<{ status: string; error?: string; data?: { result: unknown[] } }> {
  const url = `${prometheus!.url}/api/v1/query?query=${encodeURIComponent(expr)}`;
  return (await fetch(url)).json() as Promise<{ status: string; error?: string; data?: { result: unknown[] } }>;
}

/** `label_values(metric, label)` (Grafana's Prometheus variable query) through Prometheus' label API. */
async function labelValues(definition: string): Promise<string[]> {
  const m = /^label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)$/.exec(definition);
  assert.ok(m, `variable query ${definition} is label_values(metric, label)`);
  const url = `${prometheus!.url}/api/v1/label/${m[2]}/values?match[]=${encodeURIComponent(m[1] as string)}`;
  return ((await (await fetch(url)).json()) as { data: string[] }).data;
}

test('the dashboard is well formed: unique panel ids, every target on the dashboard datasource variable', async () => {
  const dash = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
  assert.equal(dash.uid, 'glidepath-releases');
  const ids = dash.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const targets = dash.panels.flatMap((p) => p.targets ?? []);
  assert.ok(targets.length >= 10, `the dashboard has its queries (${targets.length})`);
  for (const t of targets) assert.deepEqual(t.datasource, { type: 'prometheus', uid: '${datasource}' }, `target ${t.refId}: ${t.expr}`);
  assert.deepEqual(
    dash.templating.list.map((v) => v.name),
    ['datasource', 'task_queue'],
  );
});

test('every query of the dashboard returns series from a real Prometheus scraping the real worker', async () => {
  const ns = `e2e-dash-${suffix}`;
  namespaces.push(ns);
  await webNamespace({ apps, core }, ns);
  await waitAvailable(apps, ns);
  const dir = await tempDir('dashboard');
  const file = await writeRelease(dir, ns, `  strategy:\n    canary:\n      steps:\n        - setWeight: 50\n        - setWeight: 100\n`);
  const promoted = await cli(env, ['release', 'start', '-f', file, '--wait', '--timeout', '120s']);
  assert.equal(promoted.code, 0, promoted.stdout + promoted.stderr);
  // A release of a Deployment that does not exist: its preflight activity fails (NotFound), which the
  // worker counts in glidepath_activity_errors_total.
  const missing = await writeRelease(dir, ns, `  strategy:\n    canary:\n      steps:\n        - setWeight: 50\n`, 'absent');
  const failed = await cli(env, ['release', 'start', '-f', missing, '--wait', '--timeout', '60s']);
  assert.notEqual(failed.code, 0, 'the release of a missing Deployment fails');
  const watching = await cli(env, ['drift', 'start', '-f', file, '--policy', 'report', '--interval', '10s']);
  assert.equal(watching.code, 0, watching.stderr);

  const dash = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
  const names = [...new Set(dash.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => t.expr.match(/\b(?:glidepath|temporal)_\w+/g) ?? [])))];
  // Every metric the dashboard names has been scraped (histograms by their _bucket series).
  await eventually(
    async () => {
      const scraped = new Set(((await (await fetch(`${prometheus!.url}/api/v1/label/__name__/values`)).json()) as { data: string[] }).data);
      return names.every((n) => scraped.has(n));
    },
    90_000,
    `Prometheus to have scraped ${names.join(', ')}`,
  );
  await new Promise((r) => setTimeout(r, 3000)); // a few more scrapes, so rate() has two samples in its window

  for (const panel of dash.panels) {
    for (const t of panel.targets ?? []) {
      const expr = expand(t.expr);
      const r = await query(expr);
      assert.equal(r.status, 'success', `panel "${panel.title}": Prometheus refused ${expr}: ${r.error}`);
      assert.ok((r.data?.result.length ?? 0) > 0, `panel "${panel.title}": no series for ${expr}`);
    }
  }
  for (const v of dash.templating.list.filter((x) => x.type === 'query')) {
    const definition = typeof v.query === 'string' ? v.query : v.query.query;
    const values = await labelValues(definition);
    assert.ok(values.includes(taskQueue), `variable ${v.name}: ${definition} lists ${taskQueue} (got ${values.join(', ')})`);
  }
  await cli(env, ['drift', 'stop', `${ns}/web`]);
});
