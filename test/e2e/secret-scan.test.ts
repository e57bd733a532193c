/**
 * Planted secrets never reach history, status or logs, end to end: the real worker process
 * (`workers/main.ts`) on the Temporal dev server and the local control plane runs a Release whose
 * analysis takes a Secret-backed arg (a planted canary value in a Kubernetes Secret) and reflects it
 * back: a loopback web server echoes the header carrying it into its JSON answer, and a real
 * Prometheus (basic auth; the worker's planted password in its environment only) returns it as a
 * result label on a NaN sample. Then the workflow's whole history (fetchHistory, payloads decoded), the
 * `glidepath -o json release status` output and the worker's log are scanned for the planted values.
 * Needs KUBECONFIG, TEMPORAL_ADDRESS, PROMETHEUS_BIN.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { startPrometheus, type PrometheusInstance } from '../support/prometheus.ts';
import type { ReleaseStatus } from '../../workflows/messages.ts';
import { cli as runCli, connectClient, kube, randomSuffix, startWorker, suiteEnv, teardown, tempDir, waitAvailable, webNamespace, writeRelease } from './support.ts';

const suffix = randomSuffix();
const taskQueue = `e2e-secret-scan-${suffix}`;
/** The planted Secret value (the analysis arg). */
const CANARY = `planted-CANARY-${suffix}-9f1c2e7a`;
/** The worker's Prometheus password: the bcrypt below is of this value (cost 4, as in analysis.test.ts). */
const PROM_PASSWORD = 's3cret-pw';
const PROM_PASSWORD_BCRYPT = '$2b$04$2VOWeqEi1HNa0X3pRX44ReYlo4ulMWH3uPsiYPD155LYwJmlnNlVu';
const PLANTED = [CANARY, PROM_PASSWORD, Buffer.from(CANARY).toString('base64'), Buffer.from(`glidepath:${PROM_PASSWORD}`).toString('base64')];

let env: NodeJS.ProcessEnv;
let apps: AppsV1Api;
let core: CoreV1Api;
let client: Client | undefined;
let echo: Server;
let echoUrl: string;
let prom: PrometheusInstance;
let worker: ChildProcess | undefined;
let workerLog = '';
let dir: string;
const namespaces: string[] = [];

before(async () => {
  ({ apps, core } = kube());
  dir = await tempDir('secret-scan');
  echo = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ echo: `hello ${String(req.headers['x-token'] ?? '')}` }));
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
  prom = await startPrometheus({ targets: [`127.0.0.1:${(echo.address() as AddressInfo).port}`], webConfig: `basic_auth_users:\n  glidepath: '${PROM_PASSWORD_BCRYPT}'\n` });
  env = suiteEnv(taskQueue, { GLIDEPATH_PROMETHEUS_URL: prom.url, GLIDEPATH_PROMETHEUS_USERNAME: 'glidepath', GLIDEPATH_PROMETHEUS_PASSWORD: PROM_PASSWORD });
  worker = await startWorker(env);
  worker.stdout?.on('data', (d: Buffer) => (workerLog += String(d)));
  worker.stderr?.on('data', (d: Buffer) => (workerLog += String(d)));
  client = await connectClient();
});

after(async () => {
  await teardown({ worker, client, core, namespaces });
  echo?.closeAllConnections();
  echo?.close();
  await prom?.stop();
});

/** The Release (25 % → analysis with the Secret-backed arg → 100 %) and its AnalysisTemplate. */
function spec(ns: string): Promise<string> {
  return writeRelease(
    dir,
    ns,
    `  strategy:
    canary:
      steps:
        - setWeight: 25
        - analysis:
            templates: [{ templateName: reflect }]
            args: [{ name: token, valueFrom: { secretKeyRef: { name: analysis-creds, key: token } } }]
        - setWeight: 100
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: { name: reflect }
spec:
  args: [{ name: token }]
  metrics:
    - name: echo
      failureLimit: 0
      successCondition: result == "never"
      provider:
        web:
          url: ${echoUrl}/echo
          headers: [{ key: X-Token, value: '{{args.token}}' }]
          jsonPath: '{$.echo}'
    - name: labels
      consecutiveErrorLimit: 0
      provider:
        prometheus:
          address: ${prom.url}
          query: 'label_replace(vector(NaN), "leak", "{{args.token}}", "", "")'
`,
  );
}

/** Every string in `v`, with byte payloads (Temporal payload data) decoded as UTF-8. */
function flatten(v: unknown, out: string[] = []): string[] {
  if (v instanceof Uint8Array) out.push(Buffer.from(v).toString('utf8'));
  else if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) flatten(x, out);
  else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push(k);
      flatten(x, out);
    }
  }
  return out;
}

function hits(where: string, text: string): string[] {
  return PLANTED.filter((p) => text.includes(p)).map((p) => `${where}: …${text.slice(Math.max(0, text.indexOf(p) - 120), text.indexOf(p) + p.length + 40)}…`);
}

test('a release whose analysis reflects a planted Secret value: history, status and worker log hold no planted value', { timeout: 240_000 }, async () => {
  const ns = `e2e-scan-${suffix}`;
  namespaces.push(ns);
  await webNamespace({ apps, core }, ns);
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'analysis-creds' }, data: { token: Buffer.from(CANARY).toString('base64') } } });
  await waitAvailable(apps, ns);
  const id = `release_${ns}_web`;
  const r = await runCli(env, ['release', 'start', '-f', await spec(ns), '--wait', '--timeout', '180s']);
  const statusOut = await runCli(env, ['-o', 'json', 'release', 'status', id]);
  assert.equal(statusOut.code, 0, statusOut.stderr);
  const status = JSON.parse(statusOut.stdout) as ReleaseStatus;
  assert.equal(status.phase, 'RolledBack', `${r.stdout}${r.stderr}${workerLog.slice(-2000)}`);

  // The scan is meaningful only if the planted value was really reflected: both metrics measured it.
  const metrics = status.analysisRuns[0]?.metrics ?? [];
  const echoed = metrics.find((m) => m.name === 'echo')?.measurements[0];
  const labelled = metrics.find((m) => m.name === 'labels')?.measurements[0];
  assert.equal(echoed?.phase, 'Failed', JSON.stringify(metrics));
  assert.match(String(echoed?.value), /^hello /, 'the web server echoed the header carrying the arg');
  assert.equal(labelled?.phase, 'Error', JSON.stringify(metrics));
  assert.match(labelled?.message ?? '', /leak=.*NaN/, 'Prometheus returned the arg as a result label');

  const history = await client!.workflow.getHandle(id).fetchHistory();
  const historyText = flatten(history).join('\n');
  assert.ok(historyText.includes('"hello '), 'the history was decoded (it holds the echoed measurement)');
  const found = [...hits('history', historyText), ...hits('release status -o json', statusOut.stdout + statusOut.stderr), ...hits('release start', r.stdout + r.stderr), ...hits('worker log', workerLog)];
  console.log(`scanned: history ${historyText.length} chars (${history.events?.length} events), status ${statusOut.stdout.length} chars, worker log ${workerLog.length} chars; echo value ${JSON.stringify(echoed?.value)}; labels message ${labelled?.message}`);
  assert.deepEqual(found, [], 'planted values found');
});
