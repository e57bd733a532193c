/**
 * What `glidepath release …` prints and checks without a server: 1-based step numbering, UI links on
 * the dev server's UI port, the versioned-name warning, preflight remedies, and the
 * `readinessProbePolicy` field from spec to plan (lint refuses a bad value by its name).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { summary } from '../../starters/release.ts';
import { preflightRemedy, stepText, versionedNameWarnings } from '../../starters/release-start.ts';
import { normalize } from '../../model/normalize.ts';
import { planProblems } from '../../model/plan.ts';
import { temporalSettings, uiLink } from '../../workers/config.ts';
import { versionedLabels } from '../../activities/kubernetes/objects.ts';
import type { ReleaseStatus } from '../../workflows/messages.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

const status = (step: ReleaseStatus['step']): ReleaseStatus => ({
  releaseId: 'release-shop-web',
  service: 'shop/web',
  phase: 'Paused',
  strategy: 'canary',
  step,
  canaryWeight: 25,
  canaryImage: 'example/web:2',
  analysisRuns: [],
  managedRoutes: [{ name: 'beta', kind: 'header', match: 'X-Beta "1"', step: 1 }],
  audit: [],
  message: 'paused',
  initiator: 'ci-bot',
  attempt: 1,
  startedAt: '2026-12-01T00:00:00Z',
});

test('steps read 1-based "step N of M" in status and watch lines', () => {
  assert.equal(stepText({ index: 0, total: 8, kind: 'setWeight' }), 'step 1 of 8 setWeight');
  assert.equal(stepText({ index: 3, total: 5, kind: 'pause' }), 'step 4 of 5 pause');
  assert.equal(stepText({ index: 5, total: 5, kind: 'promote' }), 'promote (after step 5 of 5)');
  assert.equal(stepText({ index: 0, total: 8, kind: '' }), 'not started (8 steps)');
  const text = summary(status({ index: 3, total: 5, kind: 'pause' }));
  assert.match(text, /^ {2}step 4 of 5 pause {3}canary weight 25%/m);
  assert.doesNotMatch(text, /step 3\b/);
  assert.match(text, /header route beta: X-Beta "1" \(step 2\)/, 'a route set by the second step names step 2');
});

test('UI links follow TEMPORAL_UI_PORT unless GLIDEPATH_UI_URL says otherwise', () => {
  assert.equal(uiLink(temporalSettings({ TEMPORAL_UI_PORT: '48233' }), 'release-a-b'), 'http://127.0.0.1:48233/namespaces/default/workflows/release-a-b');
  assert.equal(temporalSettings({}).uiUrl, 'http://127.0.0.1:8233');
  assert.equal(temporalSettings({ TEMPORAL_UI_PORT: '48233', GLIDEPATH_UI_URL: 'https://ui.example/' }).uiUrl, 'https://ui.example');
});

test('a versioned workload name warns; a plain one does not', () => {
  const plan = (name: string) => normalize([{ source: 'r.yaml', doc: { apiVersion: 'glidepath.dev/v1alpha1', kind: 'Release', metadata: { name: 'pg', namespace: 'payments' }, spec: { workloadRef: { kind: 'Deployment', name }, image: 'pg:2', strategy: { canary: { steps: [{ setWeight: 10 }] } } } } }]);
  assert.match(versionedNameWarnings(plan('payment-gateway-v1')).join(''), /payments\/payment-gateway-v1 has a version in its name: after promotion it keeps the name and runs pg:2/);
  assert.deepEqual(versionedNameWarnings(plan('payment-gateway')), []);
  assert.deepEqual(versionedNameWarnings(plan('v2-gateway')), []);
  assert.deepEqual(versionedLabels({ app: 'web', version: 'v1', 'app.kubernetes.io/version': '1.4.0', track: 'web-v2', tier: 'backend' }), ['version=v1', 'app.kubernetes.io/version=1.4.0', 'track=web-v2']);
});

test('a preflight failure for a missing readiness probe names both ways out', () => {
  const remedy = preflightRemedy('preflight: PreflightFailed: container web of Deployment shop/web has no readinessProbe: pods count as ready as soon as they start');
  assert.match(remedy ?? '', /add a readinessProbe/);
  assert.match(remedy ?? '', /readinessProbePolicy: warn/);
  assert.equal(preflightRemedy('something else'), undefined);
});

test('spec.readinessProbePolicy reaches the plan; a bad value is refused by lint naming the field', async () => {
  const doc = (policy: unknown) => ({ source: 'r.yaml', doc: { apiVersion: 'glidepath.dev/v1alpha1', kind: 'Release', metadata: { name: 'web', namespace: 'shop' }, spec: { workloadRef: { kind: 'Deployment', name: 'web' }, image: 'web:2', readinessProbePolicy: policy, strategy: { canary: { steps: [{ setWeight: 10 }] } } } } });
  const plan = normalize([doc('warn')]);
  assert.equal(plan.readinessProbePolicy, 'warn');
  assert.deepEqual(planProblems(plan), []);
  assert.equal(normalize([doc(undefined)]).readinessProbePolicy, undefined);
  assert.match(planProblems({ ...plan, readinessProbePolicy: 'off' }).join('\n'), /readinessProbePolicy/);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'glidepath-cli-'));
  const file = path.join(dir, 'r.yaml');
  await writeFile(file, `apiVersion: glidepath.dev/v1alpha1
kind: Release
metadata: { name: web, namespace: shop }
spec:
  workloadRef: { kind: Deployment, name: web }
  image: web:2
  readinessProbePolicy: off
  strategy: { canary: { steps: [{ setWeight: 10 }] } }
`);
  const r = await run(path.join(root, 'bin/glidepath'), ['lint', '-f', file]).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /spec\.readinessProbePolicy: .*require.*warn/);
});
