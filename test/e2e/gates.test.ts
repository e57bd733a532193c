/**
 * Webhook gates on the real Temporal dev server, asking real HTTP receivers on loopback through the
 * real activity: a confirm-promotion gate answering 500 (with a long body) then 200, a
 * confirm-rollout gate that times out before it answers, and a rollback hook whose 2xx answer
 * aborts a release. Answers and bounded bodies are checked in the audit.
 *
 * Env: TEMPORAL_ADDRESS (dev server).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { releaseWorkflowId } from '../../model/types.ts';
import { statusQuery } from '../../workflows/messages.ts';
import { releaseResult } from '../workflows/harness.ts';
import { cli, connectClient, killWorker, randomSuffix, startWorker, suiteEnv, tempDir, writeRelease } from './support.ts';

const suffix = randomSuffix();
const ns = `gates-${suffix}`;
const env = suiteEnv(`gates-${suffix}`, { STUB_DELAY_MS: '100' });
let client: Client;
let worker: ChildProcess | undefined;
let server: Server;
let base = '';
const counts = new Map<string, number>();

/** Each path answers by how often it has been asked. */
function answer(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  req.on('end', () => {
    const path = req.url ?? '';
    const n = (counts.get(path) ?? 0) + 1;
    counts.set(path, n);
    if (path === '/promote') return void (n === 1 ? res.writeHead(500).end(`busy ${'x'.repeat(5000)}`) : res.writeHead(200).end('go ahead'));
    if (path === '/slow') return n <= 3 ? undefined : void res.writeHead(200).end('finally'); // the first request (3 attempts) never answers
    if (path === '/rollback') return void (n < 2 ? res.writeHead(404).end() : res.writeHead(200).end('error budget burnt'));
    res.writeHead(200).end('ok');
  });
}

before(async () => {
  client = await connectClient();
  server = createServer(answer);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  worker = await startWorker(env, 'test/e2e/stub-worker.ts', 'worker ready');
});

after(async () => {
  await killWorker(worker, 'SIGTERM');
  server?.closeAllConnections();
  server?.close();
  await client?.connection.close();
});

test('confirm gates wait out a 500 and a timeout, answers clipped in the audit; a rollback hook answering 2xx aborts', async () => {
  const dir = await tempDir('gates');
  const gated = await writeRelease(
    dir,
    ns,
    `  webhooks:
    - { name: slow, type: confirm-rollout, url: "${base}/slow", timeout: 1s, interval: 1s }
    - { name: promote, type: confirm-promotion, url: "${base}/promote", interval: 1s }
    - { name: after, type: post-rollout, url: "${base}/after" }
  strategy:
    canary:
      steps:
        - setWeight: 50
`,
    'gated',
  );
  const doomed = await writeRelease(
    dir,
    ns,
    `  retryWindow: 0s
  webhooks:
    - { name: budget, type: rollback, url: "${base}/rollback", interval: 1s }
  strategy:
    canary:
      steps:
        - setWeight: 10
        - pause: {}
`,
    'doomed',
  );
  for (const file of [gated, doomed]) {
    const started = await cli(env, ['release', 'start', '-f', file]);
    assert.equal(started.code, 0, started.stderr);
  }
  const gatedId = releaseWorkflowId({ namespace: ns, workload: { kind: 'Deployment', name: 'gated' } });
  const doomedId = releaseWorkflowId({ namespace: ns, workload: { kind: 'Deployment', name: 'doomed' } });

  const [g, d] = await Promise.all([releaseResult(client.workflow.getHandle(gatedId)), releaseResult(client.workflow.getHandle(doomedId))]);
  assert.equal(g.outcome, 'Promoted');
  assert.equal(d.outcome, 'Aborted');
  assert.equal(d.reason, 'rollback webhook budget answered 200: error budget burnt');

  const audit = (await client.workflow.getHandle(gatedId).query(statusQuery)).audit.filter((a) => a.action === 'webhook').map((a) => a.detail ?? '');
  assert.equal(audit.length, 5, audit.join('\n'));
  assert.match(audit[0] ?? '', /^confirm-rollout slow answered nothing \(waiting\): .*webhook slow: no answer within 1s/);
  assert.equal(audit[1], 'confirm-rollout slow answered 200 (confirmed): finally');
  assert.match(audit[2] ?? '', /^confirm-promotion promote answered 500 \(waiting\): busy x+… \(truncated, 5005 characters\)$/);
  assert.ok((audit[2] ?? '').length < 1200, 'the body is clipped');
  assert.equal(audit[3], 'confirm-promotion promote answered 200 (confirmed): go ahead');
  assert.equal(audit[4], 'post-rollout after answered 200 (recorded): ok');
  assert.equal(counts.get('/slow'), 4, 'three attempts of the first request timed out, the next poll answered');
  assert.equal(counts.get('/promote'), 2);
  const doomedAudit = (await client.workflow.getHandle(doomedId).query(statusQuery)).audit.filter((a) => a.action === 'webhook').map((a) => a.detail);
  assert.deepEqual(doomedAudit, ['rollback budget answered 200 (abort): error budget burnt']);
});
