/**
 * `glidepath identity-server` against the real control plane (scripts/kube.sh up; KUBECONFIG set).
 * The server runs as the glidepath-identity ServiceAccount of deploy/identity-server.yaml (TokenRequest
 * token), callers present ServiceAccount tokens for the glidepath-identity audience:
 * - a ServiceAccount bound to glidepath-release-approver gets an assertion the workflow's pure
 *   verifier accepts, under its proven name;
 * - one with namespace write access (the built-in `edit` role) but not the verb is refused (403,
 *   naming the permission) and audited under its proven name; no or a bad token: 401, audited as
 *   unauthenticated; a token for the apiserver's own audience: 401;
 * - a real assertion fails verification when forged, expired, used for another release or twice;
 * - the CLI side (`--token-file`, `--identity-url`) obtains the assertion it attaches as `proof`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readFile } from 'node:fs/promises';
import { KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { TestCluster, eventually } from '../activities/kubernetes/cluster.ts';
import { createIdentityServer, type IdentityDecision } from '../../starters/identity-server.ts';
import { AssertionSigner, signClaims } from '../../starters/identity-signer.ts';
import { actionTarget, identitySource, requestAssertion } from '../../starters/identity-client.ts';
import { rememberNonce, verifyActionProof, type ProofContext } from '../../model/identity.ts';
import { main } from '../../starters/main.ts';

const cluster = new TestCluster();
const objects = KubernetesObjectApi.makeApiClient(cluster.kc);
const created: KubernetesObject[] = [];
const decisions: IdentityDecision[] = [];
const signer = new AssertionSigner(generateKeyPairSync('ed25519').privateKey, 120);
const tmp = mkdtempSync(join(tmpdir(), 'glidepath-identity-'));
let url: string;
let ns: string;
let other: string;
let close: () => Promise<void>;

async function apply(obj: KubernetesObject, track: boolean): Promise<void> {
  await objects.patch(obj, undefined, undefined, 'glidepath-test', true, PatchStrategy.ServerSideApply);
  if (track) created.push(obj);
}

async function token(namespace: string, name: string, audiences: string[]): Promise<string> {
  const tr = await cluster.core.createNamespacedServiceAccountToken({ name, namespace, body: { spec: { audiences, expirationSeconds: 600 } } });
  assert.ok(tr.status?.token);
  return tr.status.token;
}

function kubeConfigWithToken(t: string): KubeConfig {
  const c = cluster.kc.getCurrentCluster();
  assert.ok(c);
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: c.server, ...(c.caData ? { caData: c.caData } : {}), ...(c.caFile ? { caFile: c.caFile } : {}) }],
    users: [{ name: 'identity', token: t }],
    contexts: [{ name: 'identity', cluster: 'local', user: 'identity' }],
    currentContext: 'identity',
  });
  return kc;
}

async function post(body: unknown, bearer?: string): Promise<{ status: number; body: { assertion?: string; sub?: string; error?: string } }> {
  const res = await fetch(`${url}/v1/assertions`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...(bearer !== undefined ? { Authorization: `Bearer ${bearer}` } : {}) }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { assertion?: string; sub?: string; error?: string } };
}

const releaseId = () => `release-${ns}-web`;
const ctxFor = (over: Partial<ProofContext> = {}): ProofContext => ({ action: 'approve', releaseId: releaseId(), namespace: ns, step: 1, attempt: 1, nowMs: Date.now(), ...over });
let approverToken: string;
let writerToken: string;

before(async () => {
  const text = [await readFile(new URL('../../deploy/namespace.yaml', import.meta.url), 'utf8'), await readFile(new URL('../../deploy/identity-server.yaml', import.meta.url), 'utf8')].join('\n---\n');
  for (const d of parseAllDocuments(text).map((x) => x.toJS() as KubernetesObject).filter(Boolean)) await apply(d, d.kind !== 'Namespace');
  ns = await cluster.namespace('ident');
  other = await cluster.namespace('identother');
  for (const name of ['approver', 'writer']) await apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } } as KubernetesObject, false);
  const bind = (namespace: string, name: string, role: string, sa: string) =>
    apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name, namespace }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role }, subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }] } as KubernetesObject, false);
  await bind(ns, 'approvers', 'glidepath-release-approver', 'approver');
  await bind(ns, 'writers', 'edit', 'writer'); // namespace write access: Deployments, Secrets, …, but no glidepath.dev verbs
  await bind(ns, 'operators', 'glidepath-release-operator', 'writer');
  await bind(ns, 'api-retirement', 'glidepath-api-retirement-approver', 'writer');
  approverToken = await token(ns, 'approver', ['glidepath-identity']);
  writerToken = await token(ns, 'writer', ['glidepath-identity']);

  const server = createIdentityServer({ kubeConfig: kubeConfigWithToken(await token('glidepath-system', 'glidepath-identity', [])), signer, onDecision: (d) => decisions.push(d) });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise((resolve) => server.close(() => resolve()));
  // RoleBindings reach the authorizer through an informer: wait until the approver is allowed.
  await eventually('the approver RoleBinding in effect', async () => ((await post({ action: 'approve', releaseId: releaseId(), namespace: ns, step: 1, attempt: 1 }, approverToken)).status === 200 ? true : undefined), 15_000, 200);
});

after(async () => {
  await close?.();
  await cluster.cleanup();
  for (const obj of created.reverse()) await objects.delete(obj).catch(() => undefined);
  rmSync(tmp, { recursive: true, force: true });
});

describe('identity server (TokenReview + SubjectAccessReview, Ed25519 assertions)', () => {
  test('a ServiceAccount allowed by RBAC gets an assertion the workflow verifier accepts, under its proven name', async () => {
    const res = await post({ action: 'approve', releaseId: releaseId(), namespace: ns, step: 1, attempt: 1 }, approverToken);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const pem = await (await fetch(`${url}/v1/public-key`)).text();
    const r = verifyActionProof(res.body.assertion, [pem], ctxFor());
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.claims.sub, `system:serviceaccount:${ns}:approver`);
    assert.equal(res.body.sub, r.claims.sub);
    const decoded = res.body.assertion!.split('.').slice(0, 2).map((part) => Buffer.from(part, 'base64url').toString()).join('\n');
    assert.ok(!decoded.includes(approverToken) && !res.body.assertion!.includes(approverToken), 'the token is not in the assertion');
    assert.ok(!JSON.stringify(decisions).includes(approverToken), 'the token is not in the audit');
  });

  test('namespace write access without the approve verb is refused (403 naming the permission) and audited under the proven name', async () => {
    const before = decisions.length;
    const res = await post({ action: 'approve', releaseId: releaseId(), namespace: ns, step: 1, attempt: 1 }, writerToken);
    assert.equal(res.status, 403);
    assert.equal(res.body.error, `system:serviceaccount:${ns}:writer may not approve releases.glidepath.dev ${releaseId()} in namespace ${ns}`);
    assert.deepEqual(decisions.slice(before), [{ status: 403, sub: `system:serviceaccount:${ns}:writer`, action: 'approve', releaseId: releaseId(), namespace: ns, message: res.body.error }]);
    // The same caller holds promote (glidepath-release-operator): that one is signed.
    assert.equal((await post({ action: 'promote', releaseId: releaseId(), namespace: ns, attempt: 1 }, writerToken)).status, 200);
  });

  test('the approver is refused in a namespace where it is not bound', async () => {
    const res = await post({ action: 'approve', releaseId: `release-${other}-web`, namespace: other, step: 1 }, approverToken);
    assert.equal(res.status, 403);
    assert.match(res.body.error ?? '', new RegExp(`may not approve releases.glidepath.dev release-${other}-web in namespace ${other}$`));
  });

  test('no token, a forged token, or a token for the apiserver audience: 401, audited as unauthenticated', async () => {
    const body = { action: 'abort', releaseId: releaseId(), namespace: ns };
    const before = decisions.length;
    const apiserverToken = await token(ns, 'approver', []);
    for (const bearer of [undefined, 'not-a-token', `${approverToken.slice(0, -4)}AAAA`, apiserverToken]) {
      const res = await post(body, bearer);
      assert.equal(res.status, 401, `${String(bearer).slice(0, 12)}: ${JSON.stringify(res.body)}`);
    }
    assert.deepEqual(decisions.slice(before).map((d) => [d.status, d.sub]), Array(4).fill([401, 'unauthenticated']));
  });

  test('an API version\'s retirement: RBAC on apis.glidepath.dev, the version bound into the assertion', async () => {
    const apiId = `api-${ns}-orders`;
    const body = { action: 'approve-retirement', releaseId: apiId, namespace: ns, version: 'v1' };
    const refused = await post(body, approverToken);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error, `system:serviceaccount:${ns}:approver may not approve-retirement apis.glidepath.dev ${apiId} in namespace ${ns}`);
    const res = await post(body, writerToken); // bound to glidepath-api-retirement-approver
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const ok = verifyActionProof(res.body.assertion, [signer.publicKeyPem], { action: 'approve-retirement', releaseId: apiId, namespace: ns, version: 'v1', nowMs: Date.now() });
    assert.ok(ok.ok, JSON.stringify(ok));
    assert.deepEqual(verifyActionProof(res.body.assertion, [signer.publicKeyPem], { action: 'approve-retirement', releaseId: apiId, namespace: ns, version: 'v2', nowMs: Date.now() }), { ok: false, why: 'proof is for version v1, not v2', sub: `system:serviceaccount:${ns}:writer` });
    assert.deepEqual((await post({ action: 'approve-retirement', releaseId: apiId, namespace: ns }, writerToken)).body, { error: 'version: the API version whose retirement approve-retirement is for' });
    assert.deepEqual((await post({ action: 'approve', releaseId: releaseId(), namespace: ns, step: 1, version: 'v1' }, approverToken)).body, { error: 'version: only approve-retirement and abort-retirement take a version' });
  });

  test('bad requests name the field', async () => {
    assert.deepEqual((await post({ action: 'deploy', releaseId: 'x', namespace: ns }, approverToken)).body, { error: 'action: one of approve, promote, abort, retry, override-freeze, approve-retirement, abort-retirement' });
    assert.deepEqual((await post({ action: 'approve', releaseId: releaseId(), namespace: 'Not_A_Namespace' }, approverToken)).body, { error: 'namespace: a Kubernetes namespace name' });
    assert.deepEqual((await post({ action: 'approve', releaseId: releaseId(), namespace: ns, by: 'bob' }, approverToken)).body, { error: 'by: unknown field' });
  });

  test('a real assertion fails verification when forged, expired, replayed for another release, or used twice', async () => {
    const res = await post({ action: 'approve', releaseId: releaseId(), namespace: ns, step: 1, attempt: 1 }, approverToken);
    const assertion = res.body.assertion!;
    const pem = signer.publicKeyPem;
    const claims = JSON.parse(Buffer.from(assertion.split('.')[1]!, 'base64url').toString()) as Parameters<typeof signClaims>[0];
    const forged = signClaims({ ...claims, sub: `system:serviceaccount:${ns}:writer` }, generateKeyPairSync('ed25519').privateKey);
    assert.deepEqual(verifyActionProof(forged, [pem], ctxFor()), { ok: false, why: 'proof signature does not verify with the identity server key' });
    assert.deepEqual(verifyActionProof(assertion, [pem], ctxFor({ nowMs: (claims.exp + 61) * 1000 })), { ok: false, why: 'proof has expired', sub: claims.sub });
    assert.deepEqual(verifyActionProof(assertion, [pem], ctxFor({ releaseId: `release-${ns}-api` })), { ok: false, why: `proof is for release ${releaseId()}, not release-${ns}-api`, sub: claims.sub });
    const used = rememberNonce([], claims, Date.now());
    assert.deepEqual(verifyActionProof(assertion, [pem], ctxFor({ usedNonces: used })), { ok: false, why: 'proof has already been used', sub: claims.sub });
  });

  test('the CLI side: --token-file and --identity-url obtain the assertion it sends as proof; a refusal carries the reason', async () => {
    const approverFile = join(tmp, 'approver.token');
    const writerFile = join(tmp, 'writer.token');
    writeFileSync(approverFile, `${approverToken}\n`);
    writeFileSync(writerFile, writerToken);
    const status = { releaseId: releaseId(), service: `${ns}/web`, approvals: { step: 3, approvers: [], required: 1, granted: [], onTimeout: 'abort' as const }, attempt: 2 };
    const target = actionTarget('approve', status);
    assert.deepEqual(target, { action: 'approve', releaseId: releaseId(), namespace: ns, step: 3, attempt: 2 });
    const source = identitySource({ identityUrl: url, tokenFile: approverFile }, {});
    assert.ok(source);
    const got = await requestAssertion(source, target);
    assert.equal(got.sub, `system:serviceaccount:${ns}:approver`);
    assert.equal(verifyActionProof(got.assertion, [signer.publicKeyPem], ctxFor({ step: 3, attempt: 2 })).ok, true);
    const refused = identitySource({}, { GLIDEPATH_IDENTITY_URL: url, GLIDEPATH_TOKEN_FILE: writerFile });
    assert.ok(refused);
    await assert.rejects(requestAssertion(refused, target), { message: `identity server refused (HTTP 403): system:serviceaccount:${ns}:writer may not approve releases.glidepath.dev ${releaseId()} in namespace ${ns}` });
    assert.throws(() => identitySource({ identityUrl: 'http://identity.example.com', tokenFile: approverFile }, {}), /is not https; the token would travel in clear/);
    assert.throws(() => identitySource({ identityUrl: url }, {}), /a Kubernetes token is needed/);
  });

  test('glidepath release approve --token-file without an identity server is a usage error (exit 2) before Temporal is reached', async () => {
    const write = process.stderr.write.bind(process.stderr);
    let err = '';
    process.stderr.write = ((chunk: string) => ((err += chunk), true)) as typeof process.stderr.write;
    const saved = process.env.GLIDEPATH_IDENTITY_URL;
    delete process.env.GLIDEPATH_IDENTITY_URL;
    try {
      assert.equal(await main(['release', 'approve', releaseId(), '--token-file', join(tmp, 'approver.token')]), 2);
    } finally {
      process.stderr.write = write;
      if (saved !== undefined) process.env.GLIDEPATH_IDENTITY_URL = saved;
    }
    assert.match(err, /--token-file needs the identity server: --identity-url or \$GLIDEPATH_IDENTITY_URL/);
  });

  test('the glidepath identity-server process: serves its public key, stops on SIGTERM; off loopback without TLS it does not start', async () => {
    const keyFile = join(tmp, 'identity.pem');
    const key = generateKeyPairSync('ed25519');
    writeFileSync(keyFile, key.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const run = (args: string[]) => {
      const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', new URL('../../starters/main.ts', import.meta.url).pathname, 'identity-server', '--key-file', keyFile, ...args], {
        env: { PATH: process.env.PATH ?? '', KUBECONFIG: process.env.KUBECONFIG ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      return { child, exited, out: () => out, err: () => err };
    };
    const refused = run(['--host', '0.0.0.0', '--port', '0']);
    assert.equal(await refused.exited, 2);
    assert.match(refused.err(), /--host 0\.0\.0\.0 is not loopback: callers send Kubernetes tokens, so serve TLS/);

    const server = run(['--port', '0']);
    const base = await eventually('the listening line', async () => /listening on (http:\/\/\S+);/.exec(server.out())?.[1], 15_000, 100);
    assert.equal(await (await fetch(`${base}/v1/public-key`)).text(), key.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0);
  });
});
