/**
 * The Temporal Web UI shows releases: against the real dev server and its UI (scripts/dev-server.sh),
 * a stub worker process (test/e2e/stub-worker.ts), and a release started and paused with our CLI,
 * headless Chromium (Debian's package, driven by playwright-core) opens the UI's workflow list with
 * the visibility query `GlidepathService="<namespace>/<name>"` and must find the release's row; a
 * query for a service without a release must show none; once aborted and closed, the release's row
 * shows Failed (not Completed) and `release list` prints FAILED. Screenshots: test-artifacts/ui-release.png,
 * test-artifacts/ui-release-failed.png.
 * Env: TEMPORAL_ADDRESS (127.0.0.1:7233), GLIDEPATH_UI_URL (http://127.0.0.1:8233), CHROMIUM_BIN
 * (/usr/bin/chromium; `bash scripts/provision-chromium.sh` installs it).
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { access, constants, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { statusQuery, type ReleaseStatus } from '../../workflows/messages.ts';
import { writeRelease } from './support.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const uiUrl = (process.env.GLIDEPATH_UI_URL ?? 'http://127.0.0.1:8233').replace(/\/$/, '');
const chromiumBin = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const artifacts = path.join(root, 'test-artifacts');
const screenshot = path.join(artifacts, 'ui-release.png');
const suffix = Math.random().toString(36).slice(2, 7);
const taskQueue = `e2e-ui-${suffix}`;
const env = { ...process.env, TEMPORAL_ADDRESS: address, GLIDEPATH_TASK_QUEUE: taskQueue, GLIDEPATH_USER: 'ci-bot' };

const name = `ui-${suffix}`;
const service = `e2e/${name}`;
const workflowId = `release_e2e_${name}`;

let dir: string;
let file: string;
let client: Client;
let worker: ChildProcess | undefined;
let browser: BrowserContext | undefined;

async function startWorker(): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(root, 'test/e2e/stub-worker.ts')], { env: { ...env, STUB_DELAY_MS: '50' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let errors = '';
  child.stderr?.on('data', (d) => (errors += String(d)));
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d) => String(d).includes('worker ready') && resolve());
    child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${errors.slice(-2000)}`)));
  });
  return child;
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(path.join(root, 'bin/glidepath'), args, { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function untilPhase(id: string, phase: string, timeoutMs = 30_000): Promise<ReleaseStatus> {
  const end = Date.now() + timeoutMs;
  let last: ReleaseStatus | undefined;
  for (;;) {
    try {
      last = await client.workflow.getHandle(id).query(statusQuery);
      if (last.phase === phase) return last;
    } catch (err) {
      if (Date.now() > end) throw err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${id} to be ${phase}: ${last?.phase} ${last?.message}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The UI's workflow list filtered by a visibility query (the form the UI itself puts in the address bar). */
function listUrl(query: string): string {
  return `${uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(query)}`;
}

/** The link the list renders in a workflow's row (Workflow ID column): /namespaces/default/workflows/<id>/<runId>/history. */
function rowLink(page: Page, id: string) {
  return page.locator(`a[href*="/namespaces/default/workflows/${encodeURIComponent(id)}/"]`);
}

/**
 * Loads the filtered list until `settled` says the page shows what we wait for. Visibility is
 * eventually consistent and the list does not refresh by itself, so the page is reloaded.
 */
async function openList(page: Page, query: string, settled: () => Promise<boolean>, timeoutMs = 30_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  await page.goto(listUrl(query), { waitUntil: 'networkidle' });
  for (;;) {
    // The table has rendered: a row, or the empty state.
    await page.getByText('No Results').or(page.locator('a[href$="/history"]')).first().waitFor({ timeout: 15_000 }).catch(() => undefined);
    if (await settled()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 500));
    await page.reload({ waitUntil: 'networkidle' });
  }
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'glidepath-ui-'));
  try {
    client = new Client({ connection: await Connection.connect({ address, connectTimeout: '5s' }) });
  } catch (err) {
    throw new Error(`the Temporal dev server is not reachable at ${address} (TEMPORAL_ADDRESS); start it with \`bash scripts/dev-server.sh start\` or run through npm test: ${(err as Error).message}`, { cause: err });
  }
  try {
    const r = await fetch(`${uiUrl}/api/v1/namespaces/default`, { signal: AbortSignal.timeout(5000) });
    assert.ok(r.ok, `HTTP ${r.status}`);
  } catch (err) {
    throw new Error(`the Temporal Web UI is not reachable at ${uiUrl} (GLIDEPATH_UI_URL); scripts/dev-server.sh starts it with the server: ${(err as Error).message}`, { cause: err });
  }
  try {
    await access(chromiumBin, constants.X_OK);
  } catch (err) {
    throw new Error(`no Chromium at ${chromiumBin} (CHROMIUM_BIN); install it with \`bash scripts/provision-chromium.sh\``, { cause: err });
  }
  worker = await startWorker();

  file = await writeRelease(dir, 'e2e', `  policy: { promoters: [alice], aborters: [alice, oncall] }
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause: {}
        - setWeight: 100
`, name);

  await mkdir(artifacts, { recursive: true });
  browser = await chromium.launchPersistentContext(path.join(dir, 'chromium-profile'), {
    executablePath: chromiumBin,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 700 },
    timezoneId: 'UTC',
  });
});

after(async () => {
  await browser?.close();
  if (file) {
    // abort, then close the aborted release (it would otherwise wait out its retry window)
    await cli(['release', 'abort', '-f', file, '--as', 'oncall', '--reason', 'ui test done']);
    await untilPhase(workflowId, 'Aborted').catch(() => undefined);
    await cli(['release', 'abort', '-f', file, '--as', 'oncall']);
  }
  worker?.kill('SIGTERM');
  await client?.connection.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the Temporal Web UI lists releases by the GlidepathService search attribute', () => {
  test('a paused release is listed under GlidepathService="<namespace>/<name>"', async () => {
    const started = await cli(['release', 'start', '-f', file]);
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, new RegExp(`started ${workflowId}\\n`));
    await untilPhase(workflowId, 'Paused');

    const page = browser?.pages()[0] ?? (await browser!.newPage());
    const row = rowLink(page, workflowId);
    const listed = await openList(page, `GlidepathService="${service}"`, async () => (await row.count()) > 0, 60_000);
    await page.screenshot({ path: screenshot });
    assert.ok(listed, `${workflowId} is not listed in the Web UI at ${listUrl(`GlidepathService="${service}"`)} (screenshot ${screenshot})`);

    const first = row.first();
    assert.equal((await first.textContent())?.trim(), workflowId);
    // The row itself: the release is running, and it is the only workflow of that service.
    const tr = page.locator('tr', { has: page.locator(`a[href*="/workflows/${workflowId}/"]`) }).first();
    assert.match(await tr.innerText(), /Running/);
    assert.match(await tr.innerText(), /release/);
    assert.equal(await page.locator('a[href*="/namespaces/default/workflows/release_"]').evaluateAll((as) => new Set(as.map((a) => a.getAttribute('href')?.split('/')[4])).size), 1);
  });

  test('a service without a release shows no row', async () => {
    const page = browser?.pages()[0] ?? (await browser!.newPage());
    const nobody = `e2e/${name}-none`;
    const empty = await openList(page, `GlidepathService="${nobody}"`, async () => (await page.getByText('No Results').count()) > 0, 15_000);
    assert.ok(empty, `the list for ${nobody} never showed "No Results"`);
    assert.equal(await rowLink(page, workflowId).count(), 0);
    assert.equal(await page.locator('a[href*="/namespaces/default/workflows/release_"]').count(), 0, 'no release rows at all');
  });

  test('an aborted release, once closed, shows as Failed in the UI and FAILED in release list', async () => {
    assert.equal((await cli(['release', 'abort', '-f', file, '--as', 'oncall', '--reason', 'ui outcome'])).code, 0);
    await untilPhase(workflowId, 'Aborted');
    assert.equal((await cli(['release', 'abort', '-f', file, '--as', 'oncall'])).code, 0); // closes it
    const handle = client.workflow.getHandle(workflowId);
    await handle.result().catch(() => undefined);
    const d = await handle.describe();
    assert.equal(d.status.name, 'FAILED');
    assert.equal(await d.staticSummary(), `canary of ${service} → registry.local/${name}:v2`, 'the summary release start set');

    const page = browser?.pages()[0] ?? (await browser!.newPage());
    const tr = page.locator('tr', { has: page.locator(`a[href*="/workflows/${workflowId}/"]`) }).first();
    const failed = await openList(page, `GlidepathService="${service}"`, async () => (await tr.count()) > 0 && /Failed/.test(await tr.innerText()), 60_000);
    await page.screenshot({ path: path.join(artifacts, 'ui-release-failed.png') });
    assert.ok(failed, `${workflowId} does not show as Failed in the Web UI: ${(await tr.count()) > 0 ? await tr.innerText() : 'no row'}`);
    assert.doesNotMatch(await tr.innerText(), /Completed/);

    let listed = '';
    for (let i = 0; i < 40 && !/FAILED/.test(listed); i++) {
      listed = (await cli(['release', 'list', '--service', service])).stdout;
      if (!/FAILED/.test(listed)) await new Promise((r) => setTimeout(r, 250));
    }
    assert.match(listed, new RegExp(`^${workflowId}  ${service}  Aborted  \\S+  FAILED  `, 'm'));
  });
});
