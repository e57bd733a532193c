/**
 * The provisioning scripts on a machine without Go on PATH, once everything is cached (npm test has
 * provisioned the control plane and the Temporal CLI, and `kube.sh up --crds` has cached the CRD
 * bundle): they print their binaries and build nothing. Needs KUBECONFIG (the running control plane).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { root } from '../e2e/support.ts';

const run = promisify(execFile);
// Debian's /usr/bin and /bin only: Go lives in /usr/local/go/bin or ~/go, never here.
const noGo = { ...process.env, PATH: '/usr/bin:/bin' };

async function script(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('bash', args.map((a, i) => (i === 0 ? path.join(root, a) : a)), { env: noGo, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('the PATH of these tests has no go', async () => {
  await assert.rejects(run('bash', ['-c', 'command -v go'], { env: noGo }));
});

test('provision-kube.sh with every binary cached needs no Go', async () => {
  const r = await script(['scripts/provision-kube.sh']);
  assert.equal(r.code, 0, r.stderr);
  const bin = r.stdout.trim();
  for (const name of ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl', 'etcd', 'kwok']) assert.ok(existsSync(path.join(bin, name)), name);
  assert.doesNotMatch(r.stderr, /building/);
});

test('provision-temporal-cli.sh with the CLI cached needs no Go', async () => {
  const r = await script(['scripts/provision-temporal-cli.sh']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.trim(), /temporal-cli-v[\d.]+\/bin\/temporal$/);
});

test('kube.sh crds, once it has run with Go, applies the cached CRD bundle without Go', async () => {
  assert.ok(process.env.KUBECONFIG, 'KUBECONFIG must point at the running control plane (npm test sets it)');
  await run('bash', [path.join(root, 'scripts/kube.sh'), 'crds'], { timeout: 120_000 }); // as `kube.sh up --crds` did
  const r = await script(['scripts/kube.sh', 'crds']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /applying 11 CRDs/);
});
