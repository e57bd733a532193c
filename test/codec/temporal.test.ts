// Encryption end to end against a REAL Temporal server (the dev server that scripts/test.sh starts;
// TEMPORAL_ADDRESS, default 127.0.0.1:7233): a client and a worker with the codec run a workflow;
// a client WITHOUT the codec reads the raw history and finds only ciphertext; the codec server and
// the real `temporal` CLI (--codec-endpoint) turn it back into plaintext.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import proto from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { closeGracefully, createCodecServer } from '../../starters/codec-server.ts';
import { dataConverterFromEnv, ENCODING_ENCRYPTED, loadCodecFromEnv, METADATA_KEY_ID } from '../../workers/codec.ts';
import * as activities from './fixtures/activities.ts';
import type { echoSecret } from './fixtures/workflows.ts';

const CODEC_TOKEN = 'codec-token-temporal-test-5d1e';
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const ADDRESS = process.env.TEMPORAL_ADDRESS || '127.0.0.1:7233';
const NAMESPACE = process.env.TEMPORAL_NAMESPACE || 'default';
const UI = 'http://127.0.0.1:8233';
const Payloads = proto.temporal.api.common.v1.Payloads;
const History = proto.temporal.api.history.v1.History;

const K1 = randomBytes(32).toString('base64');
const ENV = { GLIDEPATH_CODEC_KEYS: `k1:${K1}` };
const SECRET = `s3cr3t-${randomUUID()}`;
const SERVICE = `payments-${randomUUID().slice(0, 8)}`;
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} };

/** Payloads as the Web UI and the CLI send them: proto3 JSON, serialised by protobufjs. */
const protoJson = (payloads: Payload[]): string => JSON.stringify(Payloads.toObject(Payloads.create({ payloads }), { bytes: String }));
const text = (b: Uint8Array | null | undefined): string => Buffer.from(b ?? []).toString('utf8');

async function connect(): Promise<Connection> {
  try {
    return await Connection.connect({ address: ADDRESS, connectTimeout: '5s' });
  } catch (err) {
    throw new Error(
      `no Temporal server at ${ADDRESS} (TEMPORAL_ADDRESS): ${(err as Error).message}. ` +
        'Run the tests with scripts/test.sh (it starts the dev server), or start one: bash scripts/dev-server.sh start',
      { cause: err },
    );
  }
}

describe(`payload encryption against the Temporal server at ${ADDRESS}`, () => {
  let connection: Connection;
  let plain: Client;
  const workflowId = `codec-test-${randomUUID()}`;
  let result: Awaited<ReturnType<typeof echoSecret>>;
  let history: proto.temporal.api.history.v1.IHistory;
  const sites = new Map<string, Payload[]>();
  let server: Server;
  let base: string;

  before(async () => {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    connection = await connect();
    plain = new Client({ connection, namespace: NAMESPACE });
    const encrypted = new Client({ connection, namespace: NAMESPACE, dataConverter: dataConverterFromEnv(ENV) });
    const taskQueue = `codec-test-${randomUUID()}`;
    const [nativeConnection, workflowBundle] = await Promise.all([
      NativeConnection.connect({ address: ADDRESS }),
      bundleWorkflowCode({ workflowsPath: path.join(here, 'fixtures/workflows.ts'), logger: quiet as never }),
    ]);
    try {
      const worker = await Worker.create({
        connection: nativeConnection,
        namespace: NAMESPACE,
        taskQueue,
        workflowBundle,
        activities,
        dataConverter: dataConverterFromEnv(ENV),
      });
      result = await worker.runUntil(
        encrypted.workflow.execute<typeof echoSecret>('echoSecret', {
          taskQueue,
          workflowId,
          args: [{ service: SERVICE, secret: SECRET }],
          workflowExecutionTimeout: '1 minute',
        }),
      );
    } finally {
      await nativeConnection.close();
    }
    history = await plain.workflow.getHandle(workflowId).fetchHistory();
    for (const event of history.events ?? []) {
      const add = (site: string, p: proto.temporal.api.common.v1.IPayloads | null | undefined): void => {
        if (p?.payloads?.length) sites.set(site, [...(sites.get(site) ?? []), ...(p.payloads as Payload[])]);
      };
      add('workflow input', event.workflowExecutionStartedEventAttributes?.input);
      add('activity input', event.activityTaskScheduledEventAttributes?.input);
      add('activity result', event.activityTaskCompletedEventAttributes?.result);
      add('workflow result', event.workflowExecutionCompletedEventAttributes?.result);
    }
    server = createCodecServer({ codec: loadCodecFromEnv(ENV)!, auth: { tokens: [CODEC_TOKEN] }, uiOrigins: [UI] });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    if (server) await closeGracefully(server);
    await connection?.close();
  });

  it('the client and worker with the codec see plaintext', () => {
    assert.deepEqual(result, { service: SERVICE, secret: SECRET, shouted: SECRET.toUpperCase() });
  });

  it('the raw history holds only ciphertext: every input/result payload is binary/encrypted under k1, no plaintext anywhere', () => {
    assert.deepEqual([...sites.keys()].sort(), ['activity input', 'activity result', 'workflow input', 'workflow result']);
    for (const [site, payloads] of sites) {
      for (const p of payloads) {
        assert.equal(text(p.metadata?.encoding), ENCODING_ENCRYPTED, site);
        assert.equal(text(p.metadata?.[METADATA_KEY_ID]), 'k1', site);
        assert.deepEqual(Object.keys(p.metadata ?? {}).sort(), [METADATA_KEY_ID, 'encoding'].sort(), `${site}: only the codec's metadata is visible`);
      }
    }
    const raw = Buffer.from(History.encode(history).finish());
    for (const needle of [SECRET, SECRET.toUpperCase(), SERVICE, 'json/plain']) {
      assert.equal(raw.indexOf(needle), -1, `"${needle}" found in the raw history`);
    }
  });

  it('a client without the codec cannot read the result', async () => {
    await assert.rejects(plain.workflow.getHandle(workflowId).result(), /encoding|binary\/encrypted/i);
  });

  it("the codec server's /decode returns the plaintext of the history's payloads (UI origin, X-Namespace)", async () => {
    const decodeSite = async (site: string): Promise<unknown[]> => {
      const res = await fetch(`${base}/decode`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Namespace': NAMESPACE, Origin: UI, Authorization: `Bearer ${CODEC_TOKEN}` },
        body: protoJson(sites.get(site)!),
      });
      assert.equal(res.status, 200, site);
      assert.equal(res.headers.get('access-control-allow-origin'), UI);
      const decoded = Payloads.fromObject((await res.json()) as Record<string, unknown>).payloads as Payload[];
      for (const p of decoded) assert.equal(text(p.metadata?.encoding), 'json/plain');
      return decoded.map((p) => defaultPayloadConverter.fromPayload(p));
    };
    assert.deepEqual(await decodeSite('workflow input'), [{ service: SERVICE, secret: SECRET }]);
    assert.deepEqual(await decodeSite('activity input'), [SECRET]);
    assert.deepEqual(await decodeSite('activity result'), [SECRET.toUpperCase()]);
    assert.deepEqual(await decodeSite('workflow result'), [result]);
  });

  it('CORS on that server: preflight from the UI origin allowed; another origin gets 403 and no CORS headers', async () => {
    const preflight = await fetch(`${base}/decode`, {
      method: 'OPTIONS',
      headers: { Origin: UI, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-namespace' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), UI);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /X-Namespace/i);
    const evil = await fetch(`${base}/decode`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Namespace': NAMESPACE, Origin: 'http://127.0.0.1:9999', Authorization: `Bearer ${CODEC_TOKEN}` },
      body: protoJson(sites.get('workflow input')!),
    });
    assert.equal(evil.status, 403);
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
    assert.ok(!(await evil.text()).includes(SECRET));
  });

  it('after rotation (k2 current, k1 kept) the codec server still decodes the k1 history', async () => {
    const rotated = loadCodecFromEnv({ GLIDEPATH_CODEC_KEYS: `k1:${K1},k2:${randomBytes(32).toString('base64')}`, GLIDEPATH_CODEC_KEY_ID: 'k2' })!;
    const rotatedServer = createCodecServer({ codec: rotated, auth: { tokens: [CODEC_TOKEN] }, uiOrigins: [UI] });
    rotatedServer.listen(0, '127.0.0.1');
    await once(rotatedServer, 'listening');
    try {
      const res = await fetch(`http://127.0.0.1:${(rotatedServer.address() as AddressInfo).port}/${NAMESPACE}/decode`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${CODEC_TOKEN}` },
        body: protoJson(sites.get('workflow input')!),
      });
      assert.equal(res.status, 200);
      const [p] = Payloads.fromObject((await res.json()) as Record<string, unknown>).payloads as Payload[];
      assert.deepEqual(defaultPayloadConverter.fromPayload(p!), { service: SERVICE, secret: SECRET });
    } finally {
      await closeGracefully(rotatedServer);
    }
  });

  it('the real temporal CLI shows plaintext through --codec-endpoint (sending X-Namespace), and ciphertext without it', async () => {
    const cli = process.env.TEMPORAL_CLI || execFileSync('bash', [path.join(root, 'scripts/provision-temporal-cli.sh')], { encoding: 'utf8' }).trim();
    // Served for NAMESPACE only: a request without X-Namespace (and no /{namespace}/ path) would get 403.
    const strict = createCodecServer({ codec: loadCodecFromEnv(ENV)!, auth: { tokens: [CODEC_TOKEN] }, uiOrigins: [UI], namespaces: [NAMESPACE] });
    strict.listen(0, '127.0.0.1');
    await once(strict, 'listening');
    /** Every payload in `temporal workflow show -o json` (proto3 JSON: base64 fields), decoded to text. */
    const show = async (...extra: string[]): Promise<{ encoding: string; data: string }[]> => {
      const { stdout } = await promisify(execFile)(cli, ['workflow', 'show', '--address', ADDRESS, '--namespace', NAMESPACE, '-w', workflowId, '-o', 'json', ...extra], {
        maxBuffer: 16 << 20,
      });
      const found: { encoding: string; data: string }[] = [];
      const walk = (node: unknown): void => {
        if (Array.isArray(node)) node.forEach(walk);
        else if (node && typeof node === 'object') {
          for (const [k, v] of Object.entries(node)) {
            if (k === 'payloads' && Array.isArray(v)) {
              for (const p of v as { metadata?: Record<string, string>; data?: string }[]) {
                found.push({ encoding: Buffer.from(p.metadata?.encoding ?? '', 'base64').toString(), data: Buffer.from(p.data ?? '', 'base64').toString('latin1') });
              }
            } else walk(v);
          }
        }
      };
      walk(JSON.parse(stdout));
      return found;
    };
    try {
      const without = await show();
      assert.equal(without.length, 4);
      assert.ok(without.every((p) => p.encoding === ENCODING_ENCRYPTED && !p.data.includes(SECRET)));
      const decoded = await show('--codec-endpoint', `http://127.0.0.1:${(strict.address() as AddressInfo).port}`, '--codec-auth', `Bearer ${CODEC_TOKEN}`);
      assert.deepEqual(decoded.map((p) => p.encoding), ['json/plain', 'json/plain', 'json/plain', 'json/plain']);
      assert.deepEqual(JSON.parse(decoded[0]!.data), { service: SERVICE, secret: SECRET });
      assert.ok(decoded.some((p) => p.data === JSON.stringify(SECRET.toUpperCase())), 'activity result');
    } finally {
      await closeGracefully(strict);
    }
  });
});
