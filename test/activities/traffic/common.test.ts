/**
 * The routers' read-modify-write (activities/traffic/common.ts) without a cluster: a 409 Conflict
 * re-reads and applies the change to the newer object; conflicts beyond the limit fail retryably;
 * an object already as wanted is not written.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { KubeClients } from '../../../activities/kubernetes/client.ts';
import { updateObject, type ObjectRef, type RoutingObject } from '../../../activities/traffic/common.ts';

const ref: ObjectRef = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', resource: 'virtualservices.networking.istio.io', namespace: 'ns', name: 'vs' };

/** A fake apiserver holding one object; `conflicts` replaces fail with 409 after someone else's write. */
function fake(conflicts: number) {
  let stored: RoutingObject = { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: 'vs', resourceVersion: '1', labels: {} }, spec: { weight: 0 } };
  const log = { reads: 0, writes: 0, conflicts: 0 };
  const k = {
    call: <T>(_site: unknown, fn: () => Promise<T>) => fn(),
    objects: {
      read: async () => {
        log.reads++;
        return structuredClone(stored);
      },
      replace: async (obj: RoutingObject) => {
        if (log.conflicts < conflicts) {
          log.conflicts++;
          // someone else wrote in between: their label lands, our write is refused
          stored = { ...stored, metadata: { ...stored.metadata, resourceVersion: String(Number(stored.metadata?.resourceVersion) + 1), labels: { ...stored.metadata?.labels, [`other${log.conflicts}`]: 'x' } } };
          throw ApplicationFailure.retryable('update virtualservices ns/vs: conflict (HTTP 409)', 'Conflict');
        }
        assert.equal(obj.metadata?.resourceVersion, stored.metadata?.resourceVersion, 'writes carry the read resourceVersion');
        log.writes++;
        stored = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(Number(stored.metadata?.resourceVersion) + 1) } };
        return structuredClone(stored);
      },
    },
  } as unknown as KubeClients;
  return { k, log, get: () => stored };
}

const setWeight = (w: number) => (obj: RoutingObject) => {
  if (obj.spec?.weight === w) return false;
  obj.spec = { ...obj.spec, weight: w };
  return true;
};

test('a conflict re-reads and the change lands on the newer object, keeping the other writer\'s change', async () => {
  const f = fake(2);
  await updateObject(f.k, ref, setWeight(30), {});
  assert.equal(f.get().spec?.weight, 30);
  assert.deepEqual(f.get().metadata?.labels, { other1: 'x', other2: 'x' });
  assert.deepEqual(f.log, { reads: 3, writes: 1, conflicts: 2 });
});

test('more conflicts than the limit: a retryable failure for Temporal', async () => {
  const f = fake(10);
  await assert.rejects(updateObject(f.k, ref, setWeight(30), { conflictRetries: 3 }), (err: ApplicationFailure) => err.type === 'Conflict' && !err.nonRetryable);
  assert.equal(f.log.conflicts, 4);
  assert.equal(f.get().spec?.weight, 0);
});

test('already as wanted: read, not written', async () => {
  const f = fake(0);
  await updateObject(f.k, ref, setWeight(0), {});
  assert.deepEqual(f.log, { reads: 1, writes: 0, conflicts: 0 });
});
