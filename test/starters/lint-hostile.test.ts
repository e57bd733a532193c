/**
 * `glidepath lint` against hostile specs: prototype keys, paths and tags aimed at the worker's files,
 * values the workflow would refuse at start, oversized input, and text that forges output lines. Each
 * runs the real CLI (bin/glidepath) on a file written to a temp directory.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { stringify } from 'yaml';
import { escapeControl } from '../../starters/output.ts';
import { historyLine } from '../../starters/release.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'bin/glidepath');
const dir = await mkdtemp(path.join(os.tmpdir(), 'glidepath-lint-hostile-'));
after(() => rm(dir, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function lint(args: string[]): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(cli, ['lint', ...args], { maxBuffer: 64 * 1024 * 1024, timeout: 240_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? -1) : 0;
      resolve({ code: typeof code === 'number' ? code : -1, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

let n = 0;
async function specFile(text: string): Promise<string> {
  const f = path.join(dir, `spec-${++n}.yaml`);
  await writeFile(f, text);
  return f;
}

/** A valid canary Release `shop/web`, with `spec` overlaid. */
function release(spec: Record<string, unknown> = {}, canary: Record<string, unknown> = {}): string {
  return stringify({
    apiVersion: 'glidepath.dev/v1alpha1',
    kind: 'Release',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { workloadRef: { kind: 'Deployment', name: 'web' }, image: 'registry.example.com/shop/web:2', strategy: { canary: { steps: [{ setWeight: 10 }], ...canary } }, ...spec },
  });
}

const build = (b: Record<string, unknown>) => ({ build: { context: '.', tags: ['v1'], ...b } });

async function refused(text: string, field: RegExp, args: string[] = []): Promise<Run> {
  const r = await lint(['-f', await specFile(text), ...args]);
  assert.equal(r.code, 1, `exit 1 expected, got ${r.code}: ${r.stderr.slice(0, 500)}`);
  assert.match(r.stderr, field);
  assert.doesNotMatch(r.stderr, /TypeError|at .*\.ts:\d+/, 'a problem, not a crash');
  return r;
}

test('the baseline spec is valid', async () => {
  const r = await lint(['-f', await specFile(release(build({})))]);
  assert.equal(r.code, 0, r.stderr);
});

test('prototype keys are user keys: trafficRouting.constructor and build.builder constructor are refused by name', async () => {
  for (const key of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
    await refused(release({}, { trafficRouting: { [key]: { x: 1 } }, stableService: 's', canaryService: 'c' }), new RegExp(`spec\\.strategy\\.canary\\.trafficRouting(\\.${key})?: .*(not supported|set a traffic router)`));
  }
  await refused(release(build({ builder: 'constructor' })), /spec\.build\.builder: must be one of buildah, buildctl, buildx/);
});

test('build.dockerfile outside the context is refused at lint (absolute, ..)', async () => {
  await refused(release(build({ dockerfile: '/var/run/secrets/kubernetes.io/serviceaccount/token' })), /spec\.build\.dockerfile: must be a path inside build\.context/);
  await refused(release(build({ dockerfile: '../../etc/glidepath/codec.key' })), /spec\.build\.dockerfile: must be a path inside build\.context/);
  await refused(release(build({ context: '/', dockerfile: 'var/run/secrets/kubernetes.io/serviceaccount/token' })), /spec\.build\.context: \/ is the root or a system directory/);
  await refused(release(build({ context: '/srv/../etc/glidepath', dockerfile: 'codec.key' })), /spec\.build\.context: \/etc\/glidepath is the root or a system directory/);
  const ok = await lint(['-f', await specFile(release(build({ dockerfile: 'docker/Dockerfile.prod' })))]);
  assert.equal(ok.code, 0, ok.stderr);
});

test('build tags follow the OCI reference grammar: exporter fields cannot be injected', async () => {
  await refused(release(build({ tags: ['127.0.0.1:5000/x",type=local,dest=/tmp/pwn,"y:v1'] })), /spec\.build\.tags\[0\]: is not an image reference/);
  await refused(release(build({ tags: ['v1,registry.insecure=true'] })), /spec\.build\.tags\[0\]/);
  await refused(release(build({ tags: ['a",type=local,dest=..,"b.c/app:v1'] })), /spec\.build\.tags\[0\]: is not an image reference/);
  await refused(release(build({ tags: ['a",registry.insecure=true,"b.example.com/app:v1'] })), /spec\.build\.tags\[0\]: is not an image reference/);
  await refused(release(build({ tags: ['reg.example.com/app:v1,name=evil.example.com/x'] })), /spec\.build\.tags\[0\]/);
  await refused(release(build({ tags: ['reg.example.com/app@sha256:' + 'a'.repeat(64)] })), /spec\.build\.tags\[0\]: has a digest/);
  const ok = await lint(['-f', await specFile(release(build({ tags: ['v1', '127.0.0.1:5000/team/app:extra', '[::1]:5000/app:x'] })))]);
  assert.equal(ok.code, 0, ok.stderr);
});

test('--image is checked against the reference grammar', async () => {
  const f = await specFile(release());
  const r = await lint(['-f', f, '--image', 'evil",type=local,dest=/tmp/x']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--image: .*is not an image reference/);
  assert.equal((await lint(['-f', f, '--image', 'Registry.Example.com:5000/team/app:v3'])).code, 0);
});

test('values the workflow refuses at start are refused by lint, naming the field', async () => {
  await refused(release({ progressDeadline: '0s' }), /spec\.progressDeadline: "0s" must be at least 1s/);
  await refused(release({}, { steps: [{ pause: { duration: '100000000000000000000h' } }] }), /spec\.strategy\.canary\.steps\[0\]\.pause\.duration: .*longer than the maximum/);
  await refused(release({}, { steps: [{ pause: { duration: 1e20 } }] }), /spec\.strategy\.canary\.steps\[0\]\.pause\.duration/);
  await refused(release({ retryWindow: '9999999d' }), /spec\.retryWindow: .*longer than the maximum/);
  await refused(release({}, { steps: [{ approval: { approvers: ['a', 'b'], timeout: '100000d' } }] }), /spec\.strategy\.canary\.steps\[0\]\.approval\.timeout/);
  const template = (metric: Record<string, unknown>) =>
    `${release({}, { steps: [{ analysis: { templates: [{ templateName: 't' }] } }] })}---\n${stringify({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'AnalysisTemplate',
      metadata: { name: 't', namespace: 'shop' },
      spec: { metrics: [{ name: 'm', provider: { prometheus: { address: 'http://127.0.0.1:9090', query: 'up' } }, ...metric }] },
    })}`;
  await refused(template({ count: -3 }), /spec\.metrics\[0\]\.count: must be ≥ 0 .*got -3/);
  await refused(template({ count: '-3' }), /spec\.metrics\[0\]\.count/);
  await refused(template({ consecutiveErrorLimit: -1 }), /spec\.metrics\[0\]\.consecutiveErrorLimit/);
  await refused(template({ failureLimit: -2 }), /spec\.metrics\[0\]\.failureLimit/);
  await refused(template({ interval: '99999999999h' }), /spec\.metrics\[0\]\.interval/);
});

test('a spec file over the size cap is refused quickly, naming the file', async () => {
  const big = path.join(dir, 'big.yaml');
  await writeFile(big, `items:\n${'- 1234567890\n'.repeat(4_500_000)}`); // ~54 MB list
  const r = await lint(['-f', big]);
  console.log(`lint of a ${((13 * 4_500_000) / 1e6).toFixed(0)} MB file: exit ${r.code} in ${r.ms.toFixed(0)} ms`);
  assert.equal(r.code, 1, r.stderr.slice(0, 300));
  assert.match(r.stderr, new RegExp(`${big.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\(document\\): is \\d+ bytes; a spec file is at most 1048576 bytes`));
  assert.ok(r.ms < 20_000, `took ${r.ms} ms`);
});

test('100k empty documents: refused by document count, output bounded', async () => {
  const many = path.join(dir, 'many.yaml');
  await writeFile(many, '---\n'.repeat(100_000));
  const r = await lint(['-f', many]);
  console.log(`lint of 100k empty documents: exit ${r.code} in ${r.ms.toFixed(0)} ms, ${r.stderr.length} bytes of errors`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /many\.yaml: \(document\): holds more than 200 YAML documents; at most 200 are read/);
  assert.ok(r.stderr.length < 4096, `${r.stderr.length} bytes of errors`);
});

test('printed problems are capped with "… and N more"', async () => {
  const docs = Array.from({ length: 150 }, (_, i) => `kind: Nope${i}\n`).join('---\n');
  const r = await lint(['-f', await specFile(docs)]);
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 51, `${lines.length} lines`);
  assert.match(lines.at(-1) as string, /^… and 101 more$/);
});

test('text output escapes control characters: a reason cannot forge an audit line or recolour the terminal', () => {
  const forged = 'ok\n2026-12-01T00:00:00Z  alice  approve  "lgtm"\x1b[2J\x1b[31m\u202e';
  const line = historyLine({ at: '2026-12-01T10:00:00Z', by: 'mallory\r\nroot', action: 'approve', accepted: true, reason: forged } as Parameters<typeof historyLine>[0]);
  assert.equal(line.split('\n').length, 1, line);
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  assert.doesNotMatch(line, /[\x00-\x1f\x7f\u202e]/);
  assert.ok(line.includes('mallory\\r\\nroot  approve  "ok\\n2026-12-01T00:00:00Z  alice  approve  "lgtm"'), line);
  assert.match(line, /\\x1b\[2J\\x1b\[31m\\u202e/);
  assert.equal(escapeControl('plain text — ünïcode ok'), 'plain text — ünïcode ok');
});

test('job metrics: only restricted pods (no privileged, host namespaces, hostPath, other ServiceAccounts, own namespace)', async () => {
  const withJob = (pod: Record<string, unknown>, templateMeta?: Record<string, unknown>) =>
    `${release({}, { steps: [{ analysis: { templates: [{ templateName: 'j' }] } }] })}---\n${stringify({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'AnalysisTemplate',
      metadata: { name: 'j', namespace: 'shop' },
      spec: { metrics: [{ name: 'smoke', provider: { job: { spec: { backoffLimit: 0, template: { ...(templateMeta ? { metadata: templateMeta } : {}), spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox:1' }], ...pod } } } } } }] },
    })}`;
  const at = 'spec\\.metrics\\[0\\]\\.provider\\.job\\.spec\\.template';
  await refused(withJob({ hostNetwork: true }), new RegExp(`${at}\\.spec\\.hostNetwork: hostNetwork \\(a host namespace\\) is not allowed`));
  await refused(withJob({ hostPID: true, hostIPC: true }), new RegExp(`${at}\\.spec\\.hostPID: .*\\n.*${at}\\.spec\\.hostIPC`));
  await refused(withJob({ serviceAccountName: 'glidepath-worker' }), new RegExp(`${at}\\.spec\\.serviceAccountName: a job metric runs as the namespace's default ServiceAccount, not "glidepath-worker"`));
  await refused(withJob({ volumes: [{ name: 'root', hostPath: { path: '/' } }] }), new RegExp(`${at}\\.spec\\.volumes\\[0\\]\\.hostPath: hostPath volumes are not allowed`));
  await refused(withJob({ containers: [{ name: 'c', image: 'busybox:1', securityContext: { privileged: true, capabilities: { add: ['SYS_ADMIN'] } }, ports: [{ containerPort: 80, hostPort: 80 }] }] }), new RegExp(`${at}\\.spec\\.containers\\[0\\]\\.securityContext\\.privileged: privileged containers are not allowed`));
  await refused(withJob({ initContainers: [{ name: 'i', image: 'busybox:1', securityContext: { allowPrivilegeEscalation: true } }] }), new RegExp(`${at}\\.spec\\.initContainers\\[0\\]\\.securityContext\\.allowPrivilegeEscalation`));
  await refused(withJob({}, { namespace: 'kube-system' }), new RegExp(`${at}\\.metadata\\.namespace: a job metric runs in the release's namespace`));
  const ok = await lint(['-f', await specFile(withJob({ serviceAccountName: 'default', containers: [{ name: 'c', image: 'busybox:1', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } } }] }))]);
  assert.equal(ok.code, 0, ok.stderr);
});
