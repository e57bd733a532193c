/**
 * Notifications on the real Temporal dev server, delivered by the real activity to real HTTP
 * receivers on loopback, with URLs and the signing key read from a Secret on the local control
 * plane. The receivers count every request and verify its HMAC signature; the worker is SIGKILLed
 * while a delivery is held open, and the retried delivery must be recognisably the same event (same
 * Idempotency-Key, same bytes, same signature); a receiver is down for the whole release, which
 * still promotes. Neither the URL nor the key may appear in the workflow's history.
 *
 * Env: TEMPORAL_ADDRESS (dev server), KUBECONFIG (control plane; scripts/kube.sh up).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { releaseWorkflowId } from '../../model/types.ts';
import { cli, connectClient, killWorker, kube, randomSuffix, startWorker, suiteEnv, tempDir, untilStatus, writeRelease, type Kube } from './support.ts';
import { releaseResult } from '../workflows/harness.ts';

const suffix = randomSuffix();
const ns = `notify-${suffix}`;
const env = suiteEnv(`notify-${suffix}`, { STUB_DELAY_MS: '300', GLIDEPATH_WEB_ALLOW: '127.0.0.0/8' });
const hmacKey = randomBytes(24).toString('hex');
const token = randomBytes(12).toString('hex'); // the secret part of the receiver's URL

interface Received {
  path: string;
  key: string;
  attempt: number;
  signature: string | undefined;
  contentType: string;
  body: string;
}

let k: Kube;
let client: Client;
let worker: ChildProcess | undefined;
let receiver: Server;
let downPort = 0;
const received: Received[] = [];
/** The first delivery of this sequence is held open (never answered) until the worker is killed. */
const HELD_SEQUENCE = 3;
let heldOnce = false;
let onHeld: () => void = () => {};
const held = new Promise<void>((r) => (onHeld = r));

function receive(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const r: Received = {
      path: req.url ?? '',
      key: String(req.headers['idempotency-key'] ?? ''),
      attempt: Number(req.headers['x-glidepath-delivery-attempt'] ?? 0),
      signature: req.headers['x-glidepath-signature'] as string | undefined,
      contentType: String(req.headers['content-type'] ?? ''),
      body,
    };
    received.push(r);
    if (r.path === `/ops/${token}` && !heldOnce && r.key.endsWith(`/${HELD_SEQUENCE}`)) {
      heldOnce = true;
      onHeld(); // never answered: the worker dies with this request open
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
}

/** A loopback port in this suite's range with nothing listening (a receiver that is down). */
async function unusedPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = 49000 + Math.floor(Math.random() * 500);
    const s = createServer();
    const ok = await new Promise<boolean>((resolve) => s.once('error', () => resolve(false)).listen(port, '127.0.0.1', () => resolve(true)));
    if (ok) {
      await new Promise((r) => s.close(r));
      return port;
    }
  }
  throw new Error('no free loopback port in 49000-49499');
}

before(async () => {
  k = kube();
  client = await connectClient();
  receiver = createServer(receive);
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  downPort = await unusedPort();
  const port = (receiver.address() as AddressInfo).port;
  await k.core.createNamespace({ body: { metadata: { name: ns } } });
  await k.core.createNamespacedSecret({
    namespace: ns,
    body: {
      metadata: { name: 'hooks' },
      stringData: { ops: `http://127.0.0.1:${port}/ops/${token}`, ce: `http://127.0.0.1:${port}/ce/${token}`, down: `http://127.0.0.1:${downPort}/down/${token}`, hmac: hmacKey },
    },
  });
  worker = await startWorker(env, 'test/e2e/stub-worker.ts', 'worker ready');
});

after(async () => {
  await killWorker(worker, 'SIGTERM');
  receiver?.closeAllConnections();
  receiver?.close();
  await k?.core.deleteNamespace({ name: ns }).catch(() => {});
  await client?.connection.close();
});

const TRIGGERS = ['on-rollout-updated', 'on-rollout-step-completed', 'on-rollout-paused', 'on-rollout-completed'];

test('deliveries are signed, in order, recognisably the same across a worker SIGKILL, and a receiver down for the whole release blocks nothing', async () => {
  const dir = await tempDir('notify');
  const file = await writeRelease(
    dir,
    ns,
    `  notifications:
    - name: ops
      type: webhook
      triggers: [${TRIGGERS.join(', ')}]
      urlFrom: { secretKeyRef: { name: hooks, key: ops } }
      signingKeyFrom: { secretKeyRef: { name: hooks, key: hmac } }
      template: "{{release.name}} {{trigger}} step {{step.number}} weight {{weight}}"
    - name: ce
      type: cloudevents
      triggers: [on-rollout-completed]
      urlFrom: { secretKeyRef: { name: hooks, key: ce } }
      signingKeyFrom: { secretKeyRef: { name: hooks, key: hmac } }
    - name: dead
      type: slack
      triggers: [on-rollout-updated, on-rollout-completed]
      urlFrom: { secretKeyRef: { name: hooks, key: down } }
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause: { duration: 1s }
        - setWeight: 60
        - setWeight: 100
`,
  );
  const started = await cli(env, ['release', 'start', '-f', file]);
  assert.equal(started.code, 0, started.stderr);
  const id = releaseWorkflowId({ namespace: ns, workload: { kind: 'Deployment', name: 'web' } });

  await held; // the worker is mid-delivery of event 3
  await killWorker(worker, 'SIGKILL');
  worker = await startWorker(env, 'test/e2e/stub-worker.ts', 'worker ready');

  const result = await releaseResult(client.workflow.getHandle(id));
  assert.equal(result.outcome, 'Promoted', 'a receiver that is down does not fail the release');
  const status = await untilStatus(client, id, (s) => s.notifications?.pending === 0, 'deliveries settled', 10_000);

  // ops: every request signed with the Secret's key; first arrivals in sequence order, each event once.
  const ops = received.filter((r) => r.path === `/ops/${token}`);
  for (const r of ops) assert.equal(r.signature, `sha256=${createHmac('sha256', hmacKey).update(r.body).digest('hex')}`, `signature of ${r.key}`);
  const first = new Map<string, Received>();
  for (const r of ops) if (!first.has(r.key)) first.set(r.key, r);
  const events = [...first.values()].map((r) => JSON.parse(r.body) as { sequence: number; trigger: string; step: { number: number }; text: string });
  assert.deepEqual(
    events.map((e) => `${e.sequence} ${e.trigger}`),
    ['1 on-rollout-updated', '2 on-rollout-step-completed', '3 on-rollout-paused', '4 on-rollout-step-completed', '5 on-rollout-step-completed', '6 on-rollout-step-completed', '7 on-rollout-completed'],
  );
  assert.equal(events[1]?.text, 'web on-rollout-step-completed step 1 weight 20');
  assert.ok([...first.keys()].every((key, i) => key === `${id}/${key.split('/')[1]}/${i + 1}`), `keys are release/run/sequence: ${[...first.keys()].join(' ')}`);

  // The held event was delivered again after the SIGKILL: same key, same bytes, same signature; nothing else twice.
  const repeats = ops.filter((r) => r.key === [...first.keys()][HELD_SEQUENCE - 1]);
  assert.equal(repeats.length, 2, 'the event held open when the worker died is delivered once more');
  assert.equal(repeats[1]?.body, repeats[0]?.body);
  assert.equal(repeats[1]?.signature, repeats[0]?.signature);
  assert.deepEqual(repeats.map((r) => r.attempt), [1, 2]);
  assert.equal(ops.length, first.size + 1, 'no other event arrived twice');

  // CloudEvents: structured mode, id = the Idempotency-Key.
  const ce = received.filter((r) => r.path === `/ce/${token}`);
  assert.equal(ce.length, 1);
  const event = JSON.parse(ce[0]?.body ?? '{}') as { specversion: string; id: string; type: string; source: string };
  assert.match(ce[0]?.contentType ?? '', /^application\/cloudevents\+json/);
  assert.deepEqual([event.specversion, event.id, event.type, event.source], ['1.0', ce[0]?.key, 'dev.glidepath.release.rollout.completed', `glidepath/${ns}/web`]);

  // dead: both events undelivered, in status and audit; the release did not wait for it.
  assert.equal(status.notifications?.undelivered, 2);
  assert.deepEqual(status.notifications?.lastUndelivered.map((u) => `${u.subscription} ${u.trigger}`), ['dead on-rollout-updated', 'dead on-rollout-completed']);
  assert.ok(status.audit.some((a) => a.action === 'notification-undelivered' && /dead: on-rollout-updated #1: .*unreachable/.test(a.detail ?? '')), JSON.stringify(status.audit.slice(-5)));

  // Nothing secret in history: not the key, not the URLs' secret part.
  const history = JSON.stringify(await client.workflow.getHandle(id).fetchHistory());
  assert.ok(!history.includes(hmacKey), 'the signing key is not in history');
  assert.ok(!history.includes(token), 'the receiver URLs are not in history');
});
