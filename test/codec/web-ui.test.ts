/**
 * The Temporal Web UI decodes encrypted payloads through our codec server, in a real browser, so
 * CORS is enforced by Chromium rather than asserted on headers: a Temporal dev server of its own
 * (`temporal server start-dev --ui-codec-endpoint`, in memory, free loopback ports) runs an
 * encrypted workflow; headless Chromium (playwright-core) opens its page in the UI.
 * - codec server allowing the UI's origin: the page shows the plaintext secret;
 * - codec server allowing only another origin: the browser's preflight is refused (403, no CORS
 *   headers), the page never shows the secret, and no /decode POST reaches the server.
 * Screenshots: test-artifacts/codec-ui-{allowed,refused}.png.
 * Env: TEMPORAL_CLI (else scripts/provision-temporal-cli.sh), CHROMIUM_BIN (/usr/bin/chromium).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { access, constants, mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { chromium, type Browser } from 'playwright-core';
import { closeGracefully, createCodecServer } from '../../starters/codec-server.ts';
import { dataConverterFromEnv, loadCodecFromEnv } from '../../workers/codec.ts';
import * as activities from './fixtures/activities.ts';
import type { echoSecret } from './fixtures/workflows.ts';
import { freePort } from '../support/daemon.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const artifacts = path.join(root, 'test-artifacts');
const chromiumBin = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ENV = { GLIDEPATH_CODEC_KEYS: `k1:${randomBytes(32).toString('base64')}` };
const SECRET = `ui-s3cr3t-${randomUUID().slice(0, 8)}`;
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} };

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('the Temporal Web UI decodes through the codec server (real browser CORS)', () => {
  let temporal: ChildProcess | undefined;
  let serverLog = '';
  let codecServer: Server | undefined;
  let browser: Browser | undefined;
  let dir: string;
  let uiUrl: string;
  let codecPort: number;
  let workflowUrl: string;
  const requests: { method: string; path: string; origin?: string | undefined; status: number }[] = [];

  /** (Re)starts the codec server on the port the UI was given, allowing `origins`. */
  async function startCodec(origins: string[]): Promise<void> {
    if (codecServer) await closeGracefully(codecServer);
    const server = createCodecServer({ codec: loadCodecFromEnv(ENV)!, auth: 'none', uiOrigins: origins }) // the dev server's UI has no login, so no token to pass;
    server.prependListener('request', (req, res) => {
      res.on('finish', () => requests.push({ method: req.method ?? '', path: req.url ?? '', origin: req.headers.origin, status: res.statusCode }));
    });
    server.listen(codecPort, '127.0.0.1');
    await once(server, 'listening');
    codecServer = server;
  }

  before(async () => {
    try {
      await access(chromiumBin, constants.X_OK);
    } catch (err) {
      throw new Error(`no Chromium at ${chromiumBin} (CHROMIUM_BIN); install it with bash scripts/provision-chromium.sh`, { cause: err });
    }
    const cli = process.env.TEMPORAL_CLI || execFileSync('bash', [path.join(root, 'scripts/provision-temporal-cli.sh')], { encoding: 'utf8' }).trim();
    dir = await mkdtemp(path.join(os.tmpdir(), 'glidepath-codec-ui-'));
    const [grpcPort, uiPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    codecPort = await freePort();
    uiUrl = `http://127.0.0.1:${uiPort}`;
    const address = `127.0.0.1:${grpcPort}`;
    temporal = spawn(
      cli,
      ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(grpcPort), '--ui-port', String(uiPort), '--http-port', String(httpPort), '--metrics-port', String(metricsPort), '--ui-codec-endpoint', `http://127.0.0.1:${codecPort}`, '--log-level', 'error'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    temporal.stdout?.on('data', (d) => (serverLog += String(d)));
    temporal.stderr?.on('data', (d) => (serverLog += String(d)));
    await until(async () => (await fetch(`${uiUrl}/api/v1/namespaces/default`, { signal: AbortSignal.timeout(2000) })).ok, 60_000, `the dev server's UI at ${uiUrl} (log: ${serverLog.slice(-500)})`);

    Runtime.install({ logger: new DefaultLogger('WARN') });
    const connection = await Connection.connect({ address });
    const client = new Client({ connection, dataConverter: dataConverterFromEnv(ENV) });
    const nativeConnection = await NativeConnection.connect({ address });
    const taskQueue = `codec-ui-${randomUUID()}`;
    const workflowId = `codec-ui-${randomUUID()}`;
    try {
      const worker = await Worker.create({
        connection: nativeConnection,
        taskQueue,
        workflowBundle: await bundleWorkflowCode({ workflowsPath: path.join(here, 'fixtures/workflows.ts'), logger: quiet as never }),
        activities,
        dataConverter: dataConverterFromEnv(ENV),
      });
      const handle = await worker.runUntil(async () => {
        const h = await client.workflow.start<typeof echoSecret>('echoSecret', { taskQueue, workflowId, args: [{ service: 'ui', secret: SECRET }] });
        await h.result();
        return h;
      });
      workflowUrl = `${uiUrl}/namespaces/default/workflows/${workflowId}/${handle.firstExecutionRunId}/history`;
    } finally {
      await nativeConnection.close();
      await connection.close();
    }
    await mkdir(artifacts, { recursive: true });
    browser = await chromium.launch({ executablePath: chromiumBin, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  });

  after(async () => {
    await browser?.close();
    if (codecServer) await closeGracefully(codecServer);
    if (temporal && temporal.exitCode === null) {
      temporal.kill('SIGTERM');
      await Promise.race([once(temporal, 'exit'), new Promise((r) => setTimeout(r, 15_000))]);
      if (temporal.exitCode === null) temporal.kill('SIGKILL');
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("with the UI's origin allowed, the page shows the decrypted input and result", async () => {
    await startCodec([uiUrl]);
    requests.length = 0;
    const page = await browser!.newPage({ viewport: { width: 1400, height: 900 } });
    try {
      await page.goto(workflowUrl, { waitUntil: 'networkidle' });
      const shown = await until(async () => (await page.content()).includes(SECRET), 30_000, 'the plaintext secret on the page').then(
        () => true,
        () => false,
      );
      await page.screenshot({ path: path.join(artifacts, 'codec-ui-allowed.png'), fullPage: true });
      assert.ok(shown, `the secret never appeared; codec requests: ${JSON.stringify(requests)}`);
      const decodes = requests.filter((r) => r.method === 'POST' && r.path.endsWith('/decode'));
      assert.ok(decodes.length > 0);
      assert.ok(decodes.every((r) => r.status === 200 && r.origin === uiUrl), JSON.stringify(decodes));
    } finally {
      await page.close();
    }
  });

  it('with only another origin allowed, the browser is refused at preflight and the page shows no plaintext', async () => {
    await startCodec(['http://127.0.0.1:1']);
    requests.length = 0;
    const page = await browser!.newPage({ viewport: { width: 1400, height: 900 } });
    try {
      await page.goto(workflowUrl, { waitUntil: 'networkidle' });
      await until(async () => requests.length > 0, 30_000, 'the UI to call the codec server');
      await new Promise((r) => setTimeout(r, 3000)); // let the UI render whatever it falls back to
      await page.screenshot({ path: path.join(artifacts, 'codec-ui-refused.png'), fullPage: true });
      assert.ok(!(await page.content()).includes(SECRET), 'plaintext shown although the codec server refused the origin');
      assert.ok(requests.some((r) => r.method === 'OPTIONS' && r.status === 403 && r.origin === uiUrl), JSON.stringify(requests));
      assert.equal(requests.filter((r) => r.method === 'POST').length, 0, `the browser must not send the POST after a refused preflight: ${JSON.stringify(requests)}`);
    } finally {
      await page.close();
    }
  });
});
