/**
 * The CLI side of proven identity end to end: the Temporal dev server (TEMPORAL_ADDRESS, TEMPORAL_CLI
 * not needed), the stub worker running the real release workflow, the real control plane (KUBECONFIG)
 * behind an identity server on loopback. `release approve --identity-url --token-file` obtains an
 * assertion and sends it as the update's `proof`: it is in history, the token is not. A caller with
 * the namespace's `edit` role but not the approve verb gets exit 1 and nothing reaches Temporal.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { TestCluster, eventually } from '../activities/kubernetes/cluster.ts';
import { createIdentityServer } from '../../starters/identity-server.ts';
import { AssertionSigner } from '../../starters/identity-signer.ts';
import { verifyActionProof } from '../../model/identity.ts';
import { cli as runCli, killWorker, randomSuffix, startWorker, suiteEnv, tempDir, untilStatus, writeRelease } from './support.ts';

const cluster = new TestCluster();
const objects = KubernetesObjectApi.makeApiClient(cluster.kc);
const signer = new AssertionSigner(generateKeyPairSync('ed25519').privateKey, 120);
const env = suiteEnv(`identity-${randomSuffix()}`);
let client: Client;
let worker: ChildProcess | undefined;
let close: (() => Promise<void>) | undefined;
let url: string;
let ns: string;
let dir: string;

const apply = (obj: object) => objects.patch(obj as KubernetesObject, undefined, undefined, 'glidepath-test', true, PatchStrategy.ServerSideApply);

async function tokenFile(name: string): Promise<{ file: string; token: string }> {
  const tr = await cluster.core.createNamespacedServiceAccountToken({ name, namespace: ns, body: { spec: { audiences: ['glidepath-identity'], expirationSeconds: 600 } } });
  const token = tr.status?.token;
  assert.ok(token, 'TokenRequest returned a token');
  const file = path.join(dir, `${name}.token`);
  await writeFile(file, token, { mode: 0o600 });
  return { file, token };
}

before(async () => {
  dir = await tempDir('identity');
  client = new Client({ connection: await Connection.connect({ address: env.TEMPORAL_ADDRESS!, connectTimeout: '5s' }) });
  // The worker pins the identity server's public key: releases accept proven actions only.
  const keyFile = path.join(dir, 'identity.pub.pem');
  await writeFile(keyFile, signer.publicKeyPem);
  worker = await startWorker({ ...env, STUB_DELAY_MS: '100', GLIDEPATH_IDENTITY: 'required', GLIDEPATH_IDENTITY_PUBLIC_KEY_FILE: keyFile }, 'test/e2e/stub-worker.ts', 'worker ready');
  ns = await cluster.namespace('idente2e');
  for (const name of ['approver', 'writer']) await apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } });
  await apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'approve-releases', namespace: ns }, rules: [{ apiGroups: ['glidepath.dev'], resources: ['releases'], verbs: ['approve'] }] });
  await apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'approvers', namespace: ns }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'approve-releases' }, subjects: [{ kind: 'ServiceAccount', name: 'approver', namespace: ns }] });
  await apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'writers', namespace: ns }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' }, subjects: [{ kind: 'ServiceAccount', name: 'writer', namespace: ns }] });
  const server = createIdentityServer({ kubeConfig: cluster.kc, signer });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise((resolve) => server.close(() => resolve()));
});

after(async () => {
  await close?.();
  await killWorker(worker, 'SIGTERM');
  await client?.connection.close();
  await cluster.cleanup();
});

test('release approve with --identity-url and --token-file: the assertion is the update payload\'s proof, the token never reaches history; edit without approve exits 1', async () => {
  const approverName = `system:serviceaccount:${ns}:approver`;
  const file = await writeRelease(dir, ns, `  strategy:\n    canary:\n      steps:\n        - setWeight: 20\n        - approval: { approvers: ["${approverName}"], minApprovals: 1 }\n        - setWeight: 100\n`);
  const id = `release_${ns}_web`;
  assert.equal((await runCli(env, ['release', 'start', '-f', file])).code, 0);
  await untilStatus(client, id, (s) => s.phase === 'AwaitingApproval', 'awaiting approval', 60_000);

  const writer = await tokenFile('writer');
  const events = async () => (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
  const before = (await events()).length;
  const denied = await runCli(env, ['release', 'approve', id, '--identity-url', url, '--token-file', writer.file]);
  assert.equal(denied.code, 1, denied.stderr);
  assert.match(denied.stderr, new RegExp(`approve: identity server refused \\(HTTP 403\\): system:serviceaccount:${ns}:writer may not approve releases.glidepath.dev ${id} in namespace ${ns}`));
  assert.equal((await events()).length, before, 'the refused caller sent nothing to Temporal');

  const approver = await tokenFile('approver');
  const ok = await eventually('the approver RoleBinding in effect', async () => {
    const r = await runCli(env, ['release', 'approve', id, '--identity-url', url, '--token-file', approver.file, '--reason', 'checked']);
    return r.code === 0 ? r : undefined;
  }, 20_000, 500);
  assert.match(ok.stdout, /approve: accepted by/);
  const done = await untilStatus(client, id, (s) => s.phase === 'Promoted', 'promoted', 60_000);
  assert.ok(done.audit.some((a) => a.action === 'approve' && a.accepted && a.by === approverName), JSON.stringify(done.audit));

  const history = await events();
  const accepted = history.map((e) => e.workflowExecutionUpdateAcceptedEventAttributes).find((a) => a?.acceptedRequest?.meta?.updateId !== undefined);
  const payload = accepted?.acceptedRequest?.input?.args?.payloads?.[0]?.data;
  assert.ok(payload, 'the accepted update is in history');
  const input = JSON.parse(Buffer.from(payload).toString('utf8')) as { by: string; proof: string; reason: string };
  assert.equal(input.by, approverName);
  assert.equal(input.reason, 'checked');
  const verified = verifyActionProof(input.proof, [signer.publicKeyPem], { action: 'approve', releaseId: id, namespace: ns, step: 1, attempt: 1, nowMs: Date.now() });
  assert.ok(verified.ok, JSON.stringify(verified));
  const bytes = Buffer.from(proto.temporal.api.history.v1.History.encode({ events: history }).finish()).toString('latin1');
  assert.ok(!bytes.includes(approver.token) && !bytes.includes(writer.token), 'no token in history');
});
