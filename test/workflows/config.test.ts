/**
 * spec.config in the release workflow (time-skipping server, GLIDEPATH_TEST_SERVER; the config
 * activities are the real ones on the control plane, KUBECONFIG, the rollout activities stubs):
 * the copies are made after preflight and before the canary, the target carries only their names,
 * unused copies are deleted after the release ends (after the retry window when it did not promote),
 * a bad reference fails the release with the field named before anything is touched, and the
 * Secret's value appears nowhere in the workflow's history.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { V1Container } from '@kubernetes/client-node';
import { createKubernetesConfig } from '../../activities/kubernetes/index.ts';
import type { ReleaseTarget } from '../../activities/contract.ts';
import type { ConfigRef } from '../../model/config.ts';
import { abortUpdate } from '../../workflows/messages.ts';
import { TestCluster } from '../activities/kubernetes/cluster.ts';
import { Harness, canary, recordHistory, releaseResult, waitForStatus } from './harness.ts';

const cluster = new TestCluster();
const config = createKubernetesConfig(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 });
const h = new Harness();
before(() => h.start());
after(async () => {
  await h.stop();
  await cluster.cleanup();
});

const SECRET_VALUE = 'sk-live-0f9e8d7c6b5a49382716';
const REFS: ConfigRef[] = [
  { kind: 'ConfigMap', name: 'web-config' },
  { kind: 'Secret', name: 'web-secrets' },
];
const containers: V1Container[] = [
  {
    name: 'app',
    image: 'registry.local/app:v1',
    readinessProbe: { httpGet: { path: '/healthz', port: 8080 } },
    envFrom: [{ configMapRef: { name: 'web-config' } }, { secretRef: { name: 'web-secrets' } }],
  },
];

async function namespace(prefix: string): Promise<string> {
  const ns = await cluster.namespace(prefix);
  await cluster.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'web-config' }, data: { GREETING: 'hello' } } });
  await cluster.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'web-secrets' }, stringData: { API_KEY: SECRET_VALUE } } });
  await cluster.stable(ns, { replicas: 1, containers });
  return ns;
}

/** The real config activities, and the target each rollout stub was given. */
const realConfig = { prepareConfig: config.prepareConfig, collectConfig: config.collectConfig };

async function copiesIn(ns: string): Promise<string[]> {
  const label = 'rollouts.glidepath.dev/config-of';
  const cms = await cluster.core.listNamespacedConfigMap({ namespace: ns, labelSelector: label });
  const secrets = await cluster.core.listNamespacedSecret({ namespace: ns, labelSelector: label });
  return [...cms.items.map((o) => `ConfigMap/${o.metadata?.name}`), ...secrets.items.map((o) => `Secret/${o.metadata?.name}`)].sort();
}

test('copies before the canary, names only in the target, unused copies deleted after the end, the Secret value nowhere in history', async () => {
  const ns = await namespace('wf-config');
  const p = canary('web', [{ kind: 'setWeight', weight: 50 }], { namespace: ns, config: REFS });
  const handle = await h.begin(p, realConfig);
  assert.equal((await releaseResult(handle)).outcome, 'Promoted');
  assert.deepEqual(h.trace(p), ['preflight', 'prepareConfig', 'ensureCanary', 'setWeight(50)', 'promoteCanary', 'collectConfig']);

  const target = h.callsOf(p).find((c) => c.name === 'ensureCanary')?.args[0] as ReleaseTarget;
  assert.deepEqual(target.config?.map((c) => [c.kind, c.name, c.stable]), [['ConfigMap', 'web-config', 'web-config'], ['Secret', 'web-secrets', 'web-secrets']]);
  assert.match(target.config?.[1]?.copy ?? '', /^web-secrets-[0-9a-f]{10}$/);
  // The promoteCanary stub moved nothing: no Deployment uses the copies, so the cleanup at the end deleted them.
  const status = await handle.query('status');
  const collected = (status as { audit: { action: string; detail?: string }[] }).audit.find((a) => a.action === 'config-collected');
  assert.match(collected?.detail ?? '', new RegExp(`deleted .*Secret/${target.config?.[1]?.copy}`));
  assert.deepEqual(await copiesIn(ns), []);

  // The history as JSON holds payloads base64-encoded: decoded, every event and every payload is in one string.
  const decoded = (key: string, v: unknown): unknown => (key === 'data' && typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : v);
  const history = JSON.stringify(await handle.fetchHistory(), decoded);
  assert.ok(history.includes(target.config?.[1]?.copy ?? '?'), 'the history holds the copy names (the check below can see into it)');
  for (const form of [SECRET_VALUE, Buffer.from(SECRET_VALUE).toString('base64')]) assert.ok(!history.includes(form), `the Secret value (${form === SECRET_VALUE ? 'plain' : 'base64'}) is not in the history`);
  await recordHistory(handle, 'config-happy');
});

test('an aborted release keeps its copies through the retry window, then deletes those no Deployment uses', async () => {
  const ns = await namespace('wf-config-abort');
  const p = canary('web', [{ kind: 'setWeight', weight: 50 }, { kind: 'pause' }], { namespace: ns, config: REFS, retryWindowSeconds: 600 });
  const handle = await h.begin(p, realConfig);
  await waitForStatus(handle, (s) => s.phase === 'Paused', 'paused');
  await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall', reason: 'config looks wrong' }] });
  await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
  assert.equal((await copiesIn(ns)).length, 2, 'the copies stay while a retry may come');
  assert.ok(!h.trace(p).includes('collectConfig'));
  assert.equal((await releaseResult(handle)).outcome, 'Aborted'); // time skips past the retry window
  assert.deepEqual(h.trace(p), ['preflight', 'prepareConfig', 'ensureCanary', 'setWeight(50)', 'abortCanary', 'collectConfig']);
  assert.deepEqual(await copiesIn(ns), []);
});

test('a reference to a missing Secret fails the release naming the field, before anything is touched', async () => {
  const ns = await namespace('wf-config-bad');
  const p = canary('web', [{ kind: 'setWeight', weight: 50 }], { namespace: ns, config: [REFS[0] as ConfigRef, { kind: 'Secret', name: 'absent' }] });
  const handle = await h.begin(p, realConfig);
  const result = await releaseResult(handle);
  assert.equal(result.outcome, 'Failed');
  assert.match(result.reason, /spec\.config\[1\] \(Secret absent\): not found in namespace/);
  assert.deepEqual(h.trace(p), ['preflight', 'prepareConfig']);
  assert.deepEqual(await copiesIn(ns), [], 'not even the good reference was copied');
});
