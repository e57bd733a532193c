/**
 * `release start --apply-others` against the real control plane: the files' other objects are
 * applied by server-side apply into the release's namespace (or their own), under the CLI's field
 * manager; one object the apiserver refuses means none is applied; a kind the cluster lacks is named.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { APPLY_FIELD_MANAGER, applyOthers } from '../../starters/apply-others.ts';
import { normalizeFiles, type SourceDoc } from '../../model/normalize.ts';
import { TestCluster } from '../activities/kubernetes/cluster.ts';

const cluster = new TestCluster();
after(() => cluster.cleanup());

/** The other documents of a Rollout file in namespace `ns` (the Rollout names no namespace of its own). */
function othersOf(docs: SourceDoc[]) {
  const rollout: SourceDoc = {
    source: 'app.yaml#9',
    doc: { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', metadata: { name: 'web' }, spec: { template: { spec: { containers: [{ name: 'web', image: 'example/web:2' }] } }, strategy: { canary: { steps: [{ setWeight: 20 }] } } } },
  };
  return normalizeFiles([...docs, rollout]).others;
}

const service = (name: string, port: number): SourceDoc => ({ source: `app.yaml#${name}`, doc: { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector: { app: 'web' }, ports: [{ port, targetPort: 8080 }] } } });

test('Services and a Secret are applied into the release namespace under the CLI field manager, idempotently', async () => {
  const ns = await cluster.namespace('apply-others');
  const secret: SourceDoc = { source: 'app.yaml#3', doc: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'token', namespace: ns }, stringData: { url: 'http://127.0.0.1:1/x' } } };
  const others = othersOf([service('web-stable', 80), service('web-canary', 80), secret]);
  for (let i = 0; i < 2; i++) {
    const applied = await applyOthers(others, ns, cluster.kc);
    assert.deepEqual(applied.map((a) => a.object), [
      'v1/Service web-stable (app.yaml#web-stable)',
      'v1/Service web-canary (app.yaml#web-canary)',
      `v1/Secret ${ns}/token (app.yaml#3)`,
    ]);
  }
  const svc = await cluster.core.readNamespacedService({ name: 'web-canary', namespace: ns });
  assert.equal(svc.spec?.ports?.[0]?.port, 80);
  assert.ok(svc.metadata?.managedFields?.some((f) => f.manager === APPLY_FIELD_MANAGER && f.operation === 'Apply'), 'applied by server-side apply under glidepath-cli');
  const s = await cluster.core.readNamespacedSecret({ name: 'token', namespace: ns });
  assert.equal(Buffer.from(s.data?.url ?? '', 'base64').toString(), 'http://127.0.0.1:1/x');
});

test('an object the apiserver refuses stops the apply before anything changes, naming the object and not echoing a Secret', async () => {
  const ns = await cluster.namespace('apply-others-bad');
  const secret: SourceDoc = { source: 'app.yaml#1', doc: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'token' }, stringData: { password: 'hunter2-do-not-print' } } };
  const others = othersOf([secret, service('web-stable', 80), service('web-canary', 700_000)]);
  await assert.rejects(applyOthers(others, ns, cluster.kc), (err: Error) => {
    assert.match(err.message, /^--apply-others: v1\/Service web-canary \(app\.yaml#web-canary\) is refused by the apiserver \(dry run\): HTTP 422: .*port.*; nothing was applied$/);
    assert.doesNotMatch(err.message, /hunter2/);
    return true;
  });
  await assert.rejects(cluster.core.readNamespacedService({ name: 'web-stable', namespace: ns }), /404|not found/i);
  await assert.rejects(cluster.core.readNamespacedSecret({ name: 'token', namespace: ns }), /404|not found/i);
});

test('a kind the cluster does not serve is named, and nothing is applied', async () => {
  const ns = await cluster.namespace('apply-others-crd');
  const mapping: SourceDoc = { source: 'app.yaml#2', doc: { apiVersion: 'getambassador.io/v2', kind: 'Mapping', metadata: { name: 'web' }, spec: {} } };
  await assert.rejects(applyOthers(othersOf([service('web-stable', 80), mapping]), ns, cluster.kc), /^Error: --apply-others: getambassador\.io\/v2\/Mapping web \(app\.yaml#2\): the cluster does not serve getambassador\.io\/v2 Mapping \(is its CRD installed\?\); nothing was applied$/);
  await assert.rejects(cluster.core.readNamespacedService({ name: 'web-stable', namespace: ns }), /404|not found/i);
});
